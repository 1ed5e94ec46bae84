// What fits: Llama-2 7B/13B/70B × FP16 / W4 g128 / W3 g128 × a 24/80/141 GB GPU, resident or
// streamed, from the memory plan's arithmetic (lib/model/memory.ts) at the shapes of the Hub
// configs, evaluating at seqlen 2048. Quantized blocks are counted in our run-time layout: b bits
// per weight plus an f32 scale and an f32 shift per group of 128 per output column.
//   deno run -A bench/what_fits.ts   → a markdown table on stdout

import { footprint, formatBytes, forwardWork } from "../lib/model/memory.ts";
import { LLAMA2, type Llama2, llama2Config } from "./llama2.ts";

const SETTINGS: [string, number | null][] = [["FP16", null], ["W4 g128", 4], ["W3 g128", 3]];
const GPUS = [24e9, 80e9, 141e9];
const gb = (n: number) => `${(n / 1e9).toFixed(1)} GB`;

console.log("| model | weights | block | GPU bytes resident | GPU bytes streamed | 24 GB | 80 GB | 141 GB |");
console.log("|---|---|---:|---:|---:|---|---|---|");
for (const name of Object.keys(LLAMA2) as Llama2[]) {
  const c = llama2Config(name);
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
