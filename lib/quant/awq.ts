// AWQ (Lin et al., 2024), block by block as AutoAWQ's quantizer runs it:
//   1. the FP block on its FP inputs: the per-channel mean |x| entering each scaling group, a
//      sample of ≤ clipTokens input rows per linear (every step-th token), and the block's FP
//      outputs (the next block's inputs — the reference's calibration chain stays FP)
//   2. scale search per group: s = s_x^α / (s_w^(1−α) + 1e-4) (duo scaling; s_x^α without),
//      s ← s / √(max s · min s), α ∈ {0, 1/n, …, (n−1)/n}; the loss is the mean squared error of the
//      inspected module's output with Q(W·diag s)·diag(s)⁻¹ in place of each W — streamed over the
//      calibration batches, so no block's linear inputs are ever cached whole (AutoAWQ#423's OOM)
//   3. fold the best s: the previous op ÷ s (a norm's weight and bias, or a linear's rows), W·diag s
//   4. clipping search for every linear but q/k: per (row, group) max|w| shrunk by 1 − i/n for
//      i < maxShrink·n, judged by Σ over the sampled rows of (x̂·(Q(clamp W) − W))², x̂ = x / s
//   5. quantization: asymmetric min/max with a zero-point (methods.md), scales rounded to fp16 as
//      the GEMM checkpoint stores them.
// Peak GPU memory: the model, the calibration set's hidden states (in and out of one block), one
// batch's activations and one group's trial weights.

import { z } from "zod";
import { Batch } from "../gpu/kernel.ts";
import { f16ToF32, f32ToF16, readF32, type Tensor, upload } from "../gpu/tensor.ts";
import { clipErrors, colAbsSum, foldScale, gramBlocks, SQ_ERR_PARTS } from "../kernels/awq.ts";
import { DenseLinear } from "../model/linear.ts";
import type { CausalLM, LinearOverride } from "../model/model.ts";
import { QuantLinear } from "./quant_linear.ts";
import { fakeLinear, type QuantizeResult } from "./rtn.ts";
import {
  argminStrict,
  candidateScales,
  chooseClip,
  encodeGrid,
  lossesOf,
  weightMean,
  zeros,
} from "./awq_search.ts";
import { calibrationChunks, embedChunks, States } from "./sequential.ts";
import { f32Block } from "./targets.ts";
import { checkUniform, GroupSize, quantizeUniform, UniformBits, type UniformOptions } from "./uniform.ts";

export const AwqOptions = z.object({
  bits: UniformBits.default(4),
  /** Consecutive input columns per group; -1 = per-channel. */
  groupSize: GroupSize
    .default(128),
  /** AutoAWQ's default: the weight magnitudes s_w enter the scales too. */
  duoScaling: z.boolean().default(true),
  /** The clipping search (AutoAWQ apply_clip). */
  clip: z.boolean().default(true),
  nGrid: z.number().int().min(1).max(1000).default(20),
  maxShrink: z.number().min(0).lt(1).default(0.5),
  /** Input rows sampled for the clipping search (n_sample_token). */
  clipTokens: z.number().int().positive().default(512),
  /** Windows per forward (default: as many as fit 4096 tokens). */
  samplesPerBatch: z.number().int().positive().optional(),
  /** Calibration hidden states in host memory between uses (they would not fit the GPU budget). */
  statesOnHost: z.boolean().default(false),
  /** Keep dequantized FP layers instead of packed ones. */
  fake: z.boolean().default(false),
  /** false: search, fold and clip only, leaving FP layers (AutoAWQ's export_compatible). */
  quantize: z.boolean().default(true),
}).strict();
export type AwqOptions = z.input<typeof AwqOptions>;
type Opts = z.output<typeof AwqOptions>;

/** One group's scale search: the loss at every α and the chosen one. */
export interface AwqSearch {
  block: number;
  prev: string;
  linears: string[];
  alphas: number[];
  losses: number[];
  best: number;
}

export interface AwqResult extends QuantizeResult {
  searches: AwqSearch[];
  /** FP parameters the folding changed (norm weights and biases), by checkpoint name. */
  folded: Map<string, Float32Array>;
  /** High-water mark of GPU bytes in use during quantization, the model included. */
  peakBytes: number;
  /** Seconds by step, summed over blocks: FP pass and statistics, scale search, fold, clip + quantize. */
  phases: { stats: number; search: number; fold: number; clipQuantize: number };
}

// AutoAWQ's _search_best_clip: "due to qk bmm, it is hard to clip precisely".
const AVOID_CLIP = ["q_", "k_", "query", "key", "Wqkv"];

export async function quantizeAwq(
  model: CausalLM,
  windows: number[][],
  options: AwqOptions,
  log: (msg: string) => void = () => {},
): Promise<AwqResult> {
  const o = AwqOptions.parse(options);
  const uo: UniformOptions = { bits: o.bits, groupSize: o.groupSize, sym: false, range: "minmax" };
  // Everything a user can get wrong fails here, before any work.
  for (let i = 0; i < model.numBlocks; i++) {
    for (const l of model.blockLinears(i)) {
      checkUniform(l.name, l.inFeatures, uo);
      if (!(l instanceof DenseLinear)) throw new Error(`AWQ: ${l.name} is already quantized`);
    }
    model.awqGroups(i);
  }
  const gpu = model.gpu;
  gpu.pool.resetPeak();
  const t0 = performance.now();
  const { seq, chunks } = calibrationChunks(model, windows, o.samplesPerBatch);
  const st = new States(o.statesOnHost);
  let hs = await embedChunks(model, chunks, seq, st);
  const res: AwqResult = {
    records: [],
    seconds: 0,
    searches: [],
    folded: new Map(),
    peakBytes: 0,
    phases: { stats: 0, search: 0, fold: 0, clipQuantize: 0 },
  };
  try {
    for (let i = 0; i < model.numBlocks; i++) {
      const tb = performance.now();
      await model.enterBlock(i);
      await f32Block(model, i); // scales fold into the weights in place
      const next = await awqBlock(model, i, hs, chunks.map((c) => c.length), seq, o, uo, res, st);
      for (const h of hs) h.release();
      hs = next;
      await model.leaveBlock(i, true);
      log(`block ${i + 1}/${model.numBlocks} quantized in ${((performance.now() - tb) / 1000).toFixed(1)} s`);
    }
  } finally {
    for (const h of hs) h.release();
  }
  res.seconds = (performance.now() - t0) / 1000;
  res.peakBytes = gpu.pool.stats().peak;
  return res;
}

/** Steps 1–5 for block i; returns the FP block's outputs. */
async function awqBlock(
  model: CausalLM,
  i: number,
  hs: Tensor[],
  sizes: number[],
  seq: number,
  o: Opts,
  uo: UniformOptions,
  res: AwqResult,
  st: States,
): Promise<Tensor[]> {
  const gpu = model.gpu;
  const groups = model.awqGroups(i);
  const sites = model.sequentialGroups(i); // linears sharing one input
  const lin = new Map(model.blockLinears(i).map((l) => [l.name, l as DenseLinear]));
  const inOf = (n: string) => lin.get(n)!.inFeatures;
  const N = sizes.reduce((a, n) => a + n * seq, 0);
  let tp = performance.now();
  const lap = (k: keyof AwqResult["phases"]) => {
    const now = performance.now();
    res.phases[k] += (now - tp) / 1000;
    tp = now;
  };
  const step = Math.max(1, Math.floor(N / o.clipTokens)), nSel = Math.ceil(N / step);

  // 1. The FP pass: |x| sums per scaling group, sampled rows per input site, the outputs.
  const absSum = groups.map((g) => zeros(gpu, inOf(g.linears[0]), "awq.abs_sum"));
  const sample = new Map(sites.map((s) => [s[0], zeros(gpu, [nSel, inOf(s[0])], "awq.sample")]));
  const next: Tensor[] = [];
  let t0 = 0;
  for (const [j, h] of hs.entries()) {
    await st.use([h]);
    const b = new Batch(gpu), base = t0;
    const out = model.block(b, i, h, seq, (name, x) => {
      const gi = groups.findIndex((g) => g.linears[0] === name);
      if (gi >= 0) colAbsSum(b, x, absSum[gi]);
      const xs = sample.get(name);
      if (xs) copySampled(b, x, xs, base, step);
    })!;
    next.push(out);
    await b.done();
    await st.park([h, out], false);
    t0 += sizes[j] * seq;
  }

  lap("stats");
  // 2. Candidate scales per group, then every candidate's loss in one more streamed pass.
  const cands: Tensor[][] = [];
  for (const [gi, g] of groups.entries()) {
    const sums = await readF32(absSum[gi]);
    absSum[gi].release();
    const xMean = sums.map((v) => v / N);
    if (xMean.some((v) => !Number.isFinite(v))) {
      throw new Error(
        `AWQ: block ${i}: NaN or Inf in the calibration activations entering ${g.linears.join(", ")}`,
      );
    }
    const ws = await Promise.all(g.linears.map((n) => readF32(lin.get(n)!.weight)));
    const wMean = weightMean(ws, xMean.length, uo.groupSize === -1 ? xMean.length : uo.groupSize);
    const host = candidateScales(xMean, wMean, o.nGrid, o.duoScaling);
    cands.push(host.map((s) => upload(gpu, s, [s.length], "awq.scales")));
  }
  const g = (n: string) => (uo.groupSize === -1 ? inOf(n) : uo.groupSize);
  const part = zeros(gpu, groups.length * o.nGrid * SQ_ERR_PARTS, "awq.sq_err");
  const elems = groups.map(() => 0);
  const lastSite = groups[groups.length - 1].linears[0];
  for (const h of hs) {
    await st.use([h]);
    const b = new Batch(gpu);
    model.block(b, i, h, seq, (name, x) => {
      const gi = groups.findIndex((gr) => gr.linears[0] === name);
      if (gi < 0) return;
      const gr = groups[gi], ls = gr.linears.map((n) => lin.get(n)!);
      const run = (use?: LinearOverride) =>
        gr.inspect
          ? model.inspect(b, i, gr.inspect, x, seq, use)
          : (use?.(ls[0].name) ?? ls[0]).forward(b, x);
      elems[gi] += encodeGrid(b, ls, cands[gi], run, part, gi * o.nGrid, g(ls[0].name), o.bits);
      return name === lastSite;
    });
    await b.done();
    await st.park([h], false);
  }
  const parts = await readF32(part);
  part.release();
  const best: number[] = [];
  for (const [gi, gr] of groups.entries()) {
    const losses = lossesOf(parts, gi * o.nGrid, o.nGrid, elems[gi]);
    const bi = argminStrict(losses);
    if (bi < 0) {
      throw new Error(`AWQ: block ${i}: no finite loss in the scale search of ${gr.linears.join(", ")}`);
    }
    best.push(bi);
    res.searches.push({
      block: i,
      prev: gr.prev.name,
      linears: gr.linears,
      alphas: losses.map((_, a) => a / o.nGrid),
      losses,
      best: bi / o.nGrid,
    });
  }

  lap("search");
  // 3. Fold the chosen scales: the FP function of the block is unchanged.
  {
    const b = new Batch(gpu);
    for (const [gi, gr] of groups.entries()) {
      const s = cands[gi][best[gi]];
      if (gr.prev.kind === "norm") {
        for (const part of ["weight", "bias"]) {
          const t = model.param(`${gr.prev.name}.${part}`);
          if (t) foldScale(b, t, s, "div_cols");
          else if (part === "weight") throw new Error(`AWQ: the model has no ${gr.prev.name}.weight`);
        }
      } else {
        const p = lin.get(gr.prev.name)!;
        if (p.outFeatures !== s.numel) {
          throw new Error(`AWQ: ${p.name} has ${p.outFeatures} rows, the scales of ${gr.linears} ${s.numel}`);
        }
        foldScale(b, p.weight, s, "div_rows");
        if (p.bias) foldScale(b, p.bias, s, "div_cols");
      }
      for (const n of gr.linears) foldScale(b, lin.get(n)!.weight, s, "mul_cols");
    }
    await b.done();
    for (const gr of groups) {
      for (const part of gr.prev.kind === "norm" ? ["weight", "bias"] : []) {
        const t = model.param(`${gr.prev.name}.${part}`);
        if (t) res.folded.set(`${gr.prev.name}.${part}`, await readF32(t));
      }
    }
  }

  lap("fold");
  // 4–5. Clip (not q/k), quantize, swap in the quantized layers.
  for (const site of sites) {
    const gi = groups.findIndex((gr) => gr.linears[0] === site[0]);
    const ones = gi < 0
      ? upload(gpu, new Float32Array(inOf(site[0])).fill(1), [inOf(site[0])], "awq.ones")
      : null;
    const s = gi < 0 ? ones! : cands[gi][best[gi]];
    let gm: Tensor | null = null;
    for (const n of site) {
      const l = lin.get(n)!, shape: [number, number] = [l.outFeatures, l.inFeatures];
      const w = await readF32(l.weight);
      const local = n.split(`.layers.${i}.`)[1] ?? n;
      if (o.clip && !AVOID_CLIP.some((a) => local.includes(a))) {
        const b = new Batch(gpu);
        gm ??= gramBlocks(b, sample.get(site[0])!, s, g(n));
        const nShrink = Math.floor(o.maxShrink * o.nGrid);
        const { err, chunks } = clipErrors(b, l.weight, gm, g(n), o.bits, o.nGrid, nShrink);
        await b.done();
        const e = await readF32(err);
        err.release();
        chooseClip(w, shape, g(n), e, chunks, nShrink, o.nGrid, nSel);
      }
      if (!o.quantize) {
        if (o.clip) await writeBack(l.weight, w);
        continue;
      }
      const r = quantizeUniform(n, w, shape, uo, "awq");
      r.scales = f16ToF32(f32ToF16(r.scales)); // the GEMM checkpoint's fp16 scales
      if (l.bias) r.bias = await readF32(l.bias);
      res.records.push(r);
      model.setLinear(n, o.fake ? fakeLinear(model, r) : QuantLinear.fromRecord(gpu, r));
    }
    gm?.release();
    ones?.release();
  }
  for (const xs of sample.values()) xs.release();
  for (const c of cands.flat()) c.release();
  lap("clipQuantize");
  return next;
}

/** Rows of x [T, in] whose global token index (base + row) is a multiple of `step`, into xs. */
function copySampled(b: Batch, x: Tensor, xs: Tensor, base: number, step: number): void {
  const cols = xs.shape[1], T = x.numel / cols, rb = cols * 4;
  if (step === 1) return b.copy(x.buffer, 0, xs.buffer, base * rb, T * rb);
  for (let r = (step - (base % step)) % step; r < T; r += step) {
    b.copy(x.buffer, r * rb, xs.buffer, ((base + r) / step) * rb, rb);
  }
}

async function writeBack(t: Tensor, data: Float32Array): Promise<void> {
  t.gpu.device.queue.writeBuffer(t.buffer, 0, data as Float32Array<ArrayBuffer>);
  await new Batch(t.gpu).done();
}
