// What fits: Llama-2 7B/13B/70B × FP16 / W4 g128 / W3 g128 × a 24/80/141 GB GPU, resident or
// streamed, from the memory plan's arithmetic (lib/model/memory.ts) at the shapes of the Hub
// configs, evaluating at seqlen 2048. Quantized blocks are counted in our run-time layout: b bits
// per weight plus an f32 scale and an f32 shift per group of 128 per output column.
//   deno run -A bench/what_fits.ts   → a markdown table on stdout

import type { LlamaConfig } from "../lib/io/config.ts";
import { footprint, formatBytes, forwardWork } from "../lib/model/memory.ts";

const base = {
  family: "llama",
  dtype: "float16",
  vocab: 32000,
  maxPositions: 4096,
  headDim: 128,
  qkvBias: false,
  oBias: false,
  mlpBias: false,
  tied: false,
} as const;
const MODELS: [string, Partial<LlamaConfig>][] = [
  ["Llama-2-7B", { hidden: 4096, intermediate: 11008, layers: 32, heads: 32, kvHeads: 32 }],
  ["Llama-2-13B", { hidden: 5120, intermediate: 13824, layers: 40, heads: 40, kvHeads: 40 }],
  ["Llama-2-70B", { hidden: 8192, intermediate: 28672, layers: 80, heads: 64, kvHeads: 8 }],
];
const SETTINGS: [string, number | null][] = [["FP16", null], ["W4 g128", 4], ["W3 g128", 3]];
const GPUS = [24e9, 80e9, 141e9];
const gb = (n: number) => `${(n / 1e9).toFixed(1)} GB`;

console.log("| model | weights | block | GPU bytes resident | GPU bytes streamed | 24 GB | 80 GB | 141 GB |");
console.log("|---|---|---:|---:|---:|---|---|---|");
for (const [name, shape] of MODELS) {
  const c = { ...base, ...shape } as unknown as LlamaConfig;
  const f = footprint(c);
  const work = forwardWork(c, 2048);
  for (const [label, bits] of SETTINGS) {
    // FP16 blocks as stored; a quantized block: its weights at bits + 64/128 bits each.
    const weights = (f.blockF32 - f.block) / 2; // parameters of the block's linears (4 − 2 bytes each)
    const block = bits === null ? f.block : weights * (bits + 64 / 128) / 8 + (f.block - 2 * weights);
    const resident = f.rest + c.layers * block + work;
    const streamed = f.rest + 2 * block + work;
    const fit = (g: number) => (resident <= g ? "resident" : streamed <= g ? "streamed" : "no");
    console.log(
      `| ${name} | ${label} | ${formatBytes(block)} | ${gb(resident)} | ${gb(streamed)} | ` +
        GPUS.map(fit).join(" | ") + " |",
    );
  }
}
console.log(
  "\nresident = embeddings/head + layers × block + one 2048-token forward's work; streamed = " +
    "embeddings/head + 2 × block + the same work (evaluation; a method adds its own work).",
);
