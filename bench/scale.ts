// `deno task bench:scale`: how quantlab scales to real model sizes, measured per block on a
// random-init model with Llama-2-7B's shapes and K decoder layers (written here as fp16
// safetensors with our own writer — no Python), then extrapolated to 7B/13B/70B.
//
// Per block: GPU bytes (FP16, RTN W4 g128), host RSS, load + upload seconds, RTN and HQQ
// quantization seconds, eval tokens/s resident vs streamed (the two must give the same ppl), and
// decode tokens/s FP16 vs W4. Results: OUT/scale.json and OUT/scale.md (default results/scale/).
//
//   deno task bench:scale [--layers 2] [--seqlen 128] [--decode-tokens 4] [--out results/scale]
//                         [--tiled-init] [--render]

import { parseArgs } from "node:util";
import { perplexity } from "../lib/eval/perplexity.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { f32ToF16 } from "../lib/gpu/tensor.ts";
import { writeSafetensors } from "../lib/io/safetensors.ts";
import type { TensorToWrite } from "../lib/io/safetensors.ts";
import { readConfig } from "../lib/io/config.ts";
import { loadModel } from "../lib/load.ts";
import { footprint, forwardWork, planMemory } from "../lib/model/memory.ts";
import { llamaLinearShapes } from "../lib/model/shapes.ts";
import { provenance, writeJsonAtomic, writeTextAtomic } from "../lib/provenance.ts";
import { quantizeHqq } from "../lib/quant/hqq.ts";
import { quantizeRtn } from "../lib/quant/rtn.ts";
import { decodeSpeed } from "../lib/bench/speed.ts";
import { LLAMA2, type Llama2, llama2Config, llama2Json } from "./llama2.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    layers: { type: "string", default: "2" },
    seqlen: { type: "string", default: "128" },
    "decode-tokens": { type: "string", default: "4" },
    out: { type: "string", default: "results/scale" },
    render: { type: "boolean" },
    /** Fill each tensor by repeating one random block of 2^20 values: writes a 32-layer model in seconds. */
    "tiled-init": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  },
});
if (a.help) {
  console.log(Deno.readTextFileSync(new URL(import.meta.url)).split("\n").slice(0, 9).join("\n"));
  Deno.exit(0);
}
if (a.render) {
  // Re-render OUT/scale.md from OUT/scale.json (e.g. after a change of wording), measuring nothing.
  const md = render(JSON.parse(await Deno.readTextFile(`${a.out}/scale.json`)));
  await writeTextAtomic(`${a.out}/scale.md`, md + "\n");
  console.log(md);
  Deno.exit(0);
}
const K = Number(a.layers), seqlen = Number(a.seqlen), decodeTokens = Number(a["decode-tokens"]);
if (!(K >= 1 && seqlen >= 2 && decodeTokens >= 0)) {
  throw new Error("--layers ≥ 1, --seqlen ≥ 2, --decode-tokens ≥ 0");
}
const log = (s: string) => console.error(s);
const rss = () => Deno.memoryUsage().rss;

/** N(0, std²) as fp16 bits, from a fixed-seed generator (xorshift + Box–Muller). */
function randomF16(n: number, seed: number, std: number): Uint16Array<ArrayBuffer> {
  if (a["tiled-init"] && n > 1 << 20) {
    const tile = randomF16(1 << 20, seed, std), out = new Uint16Array(n);
    for (let i = 0; i < n; i += tile.length) out.set(tile.subarray(0, Math.min(tile.length, n - i)), i);
    return out;
  }
  let s = (seed * 2654435761) >>> 0 || 1;
  const next = () => ((s ^= s << 13), (s ^= s >>> 17), (s ^= s << 5), (s >>> 0) / 4294967296 + 1e-12);
  const f = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next())) * std, t = 2 * Math.PI * next();
    f[i] = r * Math.cos(t);
    if (i + 1 < n) f[i + 1] = r * Math.sin(t);
  }
  return f32ToF16(f);
}

async function writeModel(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(llama2Json("Llama-2-7B", K), null, 2));
  const c = await readConfig(dir);
  if (c.family !== "llama") throw new Error("unreachable");
  const ts: TensorToWrite[] = [];
  const ones = (n: number) => f32ToF16(new Float32Array(n).fill(1));
  let seed = 1;
  ts.push({
    name: "model.embed_tokens.weight",
    dtype: "F16",
    shape: [c.vocab, c.hidden],
    data: randomF16(c.vocab * c.hidden, seed++, 0.02),
  });
  for (let i = 0; i < K; i++) {
    for (const [n, out, inp] of llamaLinearShapes(c)) {
      ts.push({
        name: `model.layers.${i}.${n}.weight`,
        dtype: "F16",
        shape: [out, inp],
        data: randomF16(out * inp, seed++, 0.02),
      });
    }
    for (const n of ["input_layernorm", "post_attention_layernorm"]) {
      ts.push({
        name: `model.layers.${i}.${n}.weight`,
        dtype: "F16",
        shape: [c.hidden],
        data: ones(c.hidden),
      });
    }
  }
  ts.push({ name: "model.norm.weight", dtype: "F16", shape: [c.hidden], data: ones(c.hidden) });
  ts.push({
    name: "lm_head.weight",
    dtype: "F16",
    shape: [c.vocab, c.hidden],
    data: randomF16(c.vocab * c.hidden, seed++, 0.02),
  });
  await writeSafetensors(`${dir}/model.safetensors`, ts);
}

const out = a.out!;
await Deno.mkdir(out, { recursive: true });
const dir = await Deno.makeTempDir({ prefix: "quantlab-scale-" });
try {
  let t0 = performance.now();
  await writeModel(dir);
  log(`wrote a ${K}-layer Llama-2-7B-shaped fp16 model in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const c = await readConfig(dir);
  const f = footprint(c);
  const gpu = await getGpu();
  const prov = await provenance(gpu);
  const ids = Array.from({ length: 2 * seqlen }, (_, i) => (i * 7919 + 13) % c.vocab);
  const work = forwardWork(c, seqlen);
  const streamedPlan = planMemory(c, f.rest + 2 * f.block + work + 64 * 2 ** 20, work, false);

  const stage = async (stream: boolean) => {
    gpu.pool.trim();
    gpu.pool.resetPeak();
    gpu.pool.budget = stream ? streamedPlan.budget : null;
    const r0 = rss();
    let t = performance.now();
    const model = await loadModel(gpu, dir, stream);
    const loadS = (performance.now() - t) / 1000;
    const loadPeak = gpu.pool.stats().peak;
    gpu.pool.resetPeak();
    t = performance.now();
    const ppl = await perplexity(model, ids, { seqlen, windowsPerPass: 2 });
    const evalS = (performance.now() - t) / 1000;
    const s = gpu.pool.stats();
    gpu.pool.budget = null;
    return {
      model,
      loadS,
      loadPeak,
      evalPeak: s.peak,
      held: s.peakHeld,
      ppl: ppl.ppl,
      tokensPerS: ppl.tokens / evalS,
      rss: rss() - r0,
    };
  };

  const res = await stage(true);
  res.model.release();
  log(
    `streamed: ppl ${res.ppl.toFixed(3)}, ${res.tokensPerS.toFixed(1)} tok/s, eval peak ${
      MB(res.evalPeak).toFixed(0)
    } MiB (budget ${MB(streamedPlan.budget!).toFixed(0)} MiB)`,
  );
  const fp = await stage(false);
  log(
    `resident: ppl ${fp.ppl.toFixed(3)}, ${fp.tokensPerS.toFixed(1)} tok/s, eval peak ${
      MB(fp.evalPeak).toFixed(0)
    } MiB`,
  );
  if (fp.ppl !== res.ppl) throw new Error(`streamed ppl ${res.ppl} differs from resident ${fp.ppl}`);
  const fpBytes = fp.model.bytes();
  const fpDecode = decodeTokens ? await decodeSpeed(fp.model, ids.slice(0, 8), decodeTokens) : null;
  t0 = performance.now();
  await quantizeRtn(fp.model, { bits: 4, groupSize: 128 });
  const rtnS = (performance.now() - t0) / 1000;
  const w4Bytes = fp.model.bytes();
  const w4Decode = decodeTokens ? await decodeSpeed(fp.model, ids.slice(0, 8), decodeTokens) : null;
  fp.model.release();
  const hq = await loadModel(gpu, dir);
  t0 = performance.now();
  await quantizeHqq(hq, { bits: 4, groupSize: 64, axis: 1 });
  const hqqS = (performance.now() - t0) / 1000;
  hq.release();

  const perBlock = {
    fp16_gpu_bytes: f.block,
    w4_gpu_bytes: (w4Bytes - (fpBytes - K * f.block)) / K,
    load_seconds: fp.loadS / K,
    rtn_seconds: rtnS / K,
    hqq_seconds: hqqS / K,
  };
  const rest = fpBytes - K * f.block;
  // Other sizes: their config.json shapes through the same footprint arithmetic, scaling the
  // measured per-block figures by block parameters and the embeddings/head by theirs.
  const extrapolated: Extrapolated[] = [];
  for (const name of Object.keys(LLAMA2) as Llama2[]) {
    const g = footprint(llama2Config(name));
    const bs = g.block / f.block, rs = g.rest / f.rest;
    extrapolated.push({
      model: name,
      fp16_weight_gb: (rest * rs + g.blocks * perBlock.fp16_gpu_bytes * bs) / 1e9,
      w4_weight_gb: (rest * rs + g.blocks * perBlock.w4_gpu_bytes * bs) / 1e9,
      rtn_minutes: (g.blocks * perBlock.rtn_seconds * bs) / 60,
      hqq_minutes: (g.blocks * perBlock.hqq_seconds * bs) / 60,
    });
  }
  const result = {
    layers: K,
    seqlen,
    windows: ids.length / seqlen,
    adapter: gpu.name,
    fallback_adapter: gpu.isFallback,
    git_commit: prov.git_commit,
    date: prov.date,
    per_block: perBlock,
    embeddings_head_bytes: rest,
    resident: {
      load_seconds: fp.loadS,
      load_peak_gpu_bytes: fp.loadPeak,
      eval_peak_gpu_bytes: fp.evalPeak,
      held_gpu_bytes: fp.held,
      eval_tokens_per_second: fp.tokensPerS,
      host_rss_growth_bytes: fp.rss,
      ppl: fp.ppl,
    },
    streamed: {
      budget: streamedPlan.budget,
      load_seconds: res.loadS,
      load_peak_gpu_bytes: res.loadPeak,
      eval_peak_gpu_bytes: res.evalPeak,
      held_gpu_bytes: res.held,
      eval_tokens_per_second: res.tokensPerS,
      host_rss_growth_bytes: res.rss,
      ppl: res.ppl,
    },
    decode_tokens_per_second: { fp16: fpDecode, w4: w4Decode },
    extrapolated,
  };
  await writeJsonAtomic(`${out}/scale.json`, result);
  await writeTextAtomic(`${out}/scale.md`, render(result) + "\n");
  console.log(render(result));
} finally {
  await Deno.remove(dir, { recursive: true });
}

function MB(n: number): number {
  return n / 2 ** 20;
}

interface Extrapolated {
  model: string;
  fp16_weight_gb: number;
  w4_weight_gb: number;
  rtn_minutes: number;
  hqq_minutes: number;
}

// deno-lint-ignore no-explicit-any
function render(r: any): string {
  return [
    `# bench:scale — ${r.layers} layer${r.layers === 1 ? "" : "s"} of Llama-2-7B's shapes, fp16, random init`,
    "",
    `adapter ${r.adapter}, eval ${r.windows} windows of ${r.seqlen} random tokens, commit ${r.git_commit}.` +
    (r.fallback_adapter
      ? ' A CPU adapter: its "GPU" buffers live in host memory, so host RSS includes them.'
      : ""),
    "",
    "| per block | value |",
    "|---|---:|",
    `| GPU bytes FP16 | ${MB(r.per_block.fp16_gpu_bytes).toFixed(1)} MiB |`,
    `| GPU bytes RTN W4 g128 | ${MB(r.per_block.w4_gpu_bytes).toFixed(1)} MiB |`,
    `| load + upload s | ${r.per_block.load_seconds.toFixed(2)} |`,
    `| RTN W4 g128 s | ${r.per_block.rtn_seconds.toFixed(2)} |`,
    `| HQQ W4 g64 s | ${r.per_block.hqq_seconds.toFixed(2)} |`,
    "",
    "| mode | GPU budget | eval peak GPU | held (with pool cache) | host RSS growth | eval tok/s | ppl |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...(["resident", "streamed"] as const).map((m) => {
      const x = r[m];
      const budget = m === "streamed" ? `${MB(r.streamed.budget!).toFixed(0)} MiB` : "—";
      return `| ${m} | ${budget} | ${MB(x.eval_peak_gpu_bytes).toFixed(0)} MiB | ${
        MB(x.held_gpu_bytes).toFixed(0)
      } MiB | ${MB(x.host_rss_growth_bytes).toFixed(0)} MiB | ${x.eval_tokens_per_second.toFixed(1)} | ${
        x.ppl.toFixed(3)
      } |`;
    }),
    "",
    `decode tokens/s: FP16 ${r.decode_tokens_per_second.fp16?.toFixed(2) ?? "—"}, RTN W4 ${
      r.decode_tokens_per_second.w4?.toFixed(2) ?? "—"
    }`,
    "",
    "| extrapolated | FP16 weights GB | W4 g128 weights GB | RTN min | HQQ min |",
    "|---|---:|---:|---:|---:|",
    ...r.extrapolated.map((e: Extrapolated) =>
      `| ${e.model} | ${e.fp16_weight_gb.toFixed(1)} | ${e.w4_weight_gb.toFixed(1)} | ${
        e.rtn_minutes.toFixed(1)
      } | ${e.hqq_minutes.toFixed(1)} |`
    ),
    "",
    "Extrapolation: the measured per-block figures × layers, scaled by each model's block bytes over 7B's, and the measured embeddings/head bytes by theirs (lib/model/memory.ts footprint of each config.json).",
  ].join("\n");
}
