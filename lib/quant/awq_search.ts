// AWQ's two searches (AutoAWQ's _search_best_scale and _compute_best_clip) in pieces: the host
// side in float32 arithmetic as the reference computes it (the per-channel weight magnitude s_w,
// the grid of candidate scales, each (row, group)'s clipping range from the GPU's errors), and the
// GPU side of one batch's grid of trial weights — plus the search of one linear on given inputs.

import type { Gpu } from "../gpu/device.ts";
import { Batch } from "../gpu/kernel.ts";
import { readF32, type Tensor, upload } from "../gpu/tensor.ts";
import { colAbsSum, fakeQuantScaled, SQ_ERR_PARTS, sqErrAccumulate } from "../kernels/awq.ts";
import { DenseLinear } from "../model/linear.ts";
import type { LinearOverride } from "../model/model.ts";

const f = Math.fround;

/**
 * s_w: per input channel, the mean over all rows of the group's linears (W stacked [Σout, in]) of
 * |w| / (max |w| of its quantization group + 1e-6).
 */
export function weightMean(ws: Float32Array[], inp: number, g: number): Float32Array {
  const sum = new Float64Array(inp);
  let rows = 0;
  for (const w of ws) {
    const out = w.length / inp;
    rows += out;
    for (let n = 0; n < out; n++) {
      for (let j = 0; j < inp; j += g) {
        let amax = 0;
        for (let k = j; k < j + g; k++) amax = Math.max(amax, Math.abs(w[n * inp + k]));
        const den = f(amax + 1e-6);
        for (let k = j; k < j + g; k++) sum[k] += f(Math.abs(w[n * inp + k]) / den);
      }
    }
  }
  return Float32Array.from(sum, (v) => v / rows);
}

/**
 * The scales tried at α = a / nGrid, a = 0 … nGrid − 1: s = s_x^α / (s_w^(1−α) + 1e-4) (duo) or
 * s_x^α, clamped ≥ 1e-4, divided by √(max · min); a non-finite entry becomes 1.
 */
export function candidateScales(
  xMean: ArrayLike<number>,
  wMean: ArrayLike<number>,
  nGrid: number,
  duo: boolean,
): Float32Array<ArrayBuffer>[] {
  const n = xMean.length;
  return Array.from({ length: nGrid }, (_, a) => {
    const r = a / nGrid;
    const s = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      const xs = f(Math.pow(xMean[j], r));
      s[j] = Math.max(duo ? f(xs / f(f(Math.pow(wMean[j], 1 - r)) + 1e-4)) : xs, 1e-4);
    }
    let max = -Infinity, min = Infinity;
    for (const v of s) (max = Math.max(max, v)), (min = Math.min(min, v));
    const norm = f(Math.sqrt(f(max * min)));
    for (let j = 0; j < n; j++) {
      const v = f(s[j] / norm);
      s[j] = Number.isFinite(v) ? v : 1;
    }
    return s;
  });
}

/** The clip range of shrink step i: max|w| · (1 − i / nGrid), as the GPU kernel computes it. */
export function shrunk(amax: number, i: number, nGrid: number): number {
  return f(amax * f(1 - f(i / nGrid)));
}

/**
 * Clamp W [out, in] (in place) group by group to ±the range with the lowest error. `err` is
 * [out, G, nShrink, chunks] of Σ_t (x̂_t·d)² partial sums from the GPU; the mean over the `tokens`
 * sampled rows is compared, strictly lower wins, and no shrink (i = 0) is the start. Returns the
 * chosen step per (row, group).
 */
export function chooseClip(
  w: Float32Array,
  shape: [number, number],
  g: number,
  err: Float32Array,
  chunks: number,
  nShrink: number,
  nGrid: number,
  tokens: number,
): Uint8Array {
  const [out, inp] = shape, G = inp / g;
  const chosen = new Uint8Array(out * G);
  for (let n = 0; n < out; n++) {
    for (let j = 0; j < G; j++) {
      const base = n * inp + j * g;
      let amax = 0;
      for (let k = 0; k < g; k++) amax = Math.max(amax, Math.abs(w[base + k]));
      let best = amax, minErr = 1e9;
      for (let i = 0; i < nShrink; i++) {
        let e = 0;
        for (let c = 0; c < chunks; c++) e += err[((n * G + j) * nShrink + i) * chunks + c];
        e /= tokens;
        if (e < minErr) (minErr = e), (best = shrunk(amax, i, nGrid)), (chosen[n * G + j] = i);
      }
      for (let k = 0; k < g; k++) w[base + k] = Math.min(Math.max(w[base + k], -best), best);
    }
  }
  return chosen;
}

/**
 * Encode, for one calibration batch, the loss of every candidate scale of one group: with each
 * W replaced by Q(W·diag s_a)·diag(s_a)⁻¹, part[slot0 + a] += Σ (run(trial) − run())². Returns the
 * number of output elements (the mean's denominator).
 */
export function encodeGrid(
  b: Batch,
  linears: DenseLinear[],
  cands: Tensor[],
  run: (use?: LinearOverride) => Tensor,
  part: Tensor,
  slot0: number,
  groupSize: number,
  bits: number,
): number {
  const y0 = run();
  const n = y0.numel;
  for (const [a, s] of cands.entries()) {
    const trial = new Map(linears.map((l) => {
      return [l.name, new DenseLinear(l.name, fakeQuantScaled(b, l.weight, s, groupSize, bits), l.bias)];
    }));
    const y = run((name) => trial.get(name));
    sqErrAccumulate(b, y, y0, part, slot0 + a);
    y.release();
    for (const t of trial.values()) t.weight.release(); // the bias is the real layer's
  }
  y0.release();
  return n;
}

/**
 * The scale search of one linear judged on its own output (AutoAWQ's groups without a
 * module2inspect) for inputs x [T, in]: the loss at every α and the best α. For experiments
 * and tests; quantizeAwq streams the same computation over calibration batches.
 */
export async function searchScale(
  linear: DenseLinear,
  x: Tensor,
  o: { bits: number; groupSize: number; duoScaling?: boolean; nGrid?: number },
): Promise<{ alphas: number[]; losses: number[]; best: number; scales: Float32Array[] }> {
  const gpu = x.gpu, nGrid = o.nGrid ?? 20, inp = linear.inFeatures;
  const g = o.groupSize === -1 ? inp : o.groupSize;
  const acc = zeros(gpu, inp, "awq.abs_sum");
  let b = new Batch(gpu);
  colAbsSum(b, x, acc);
  await b.done();
  const xMean = (await readF32(acc)).map((v) => v / (x.numel / inp));
  acc.release();
  const scales = candidateScales(
    xMean,
    weightMean([await readF32(linear.weight)], inp, g),
    nGrid,
    o.duoScaling ?? true,
  );
  const cands = scales.map((s) => upload(gpu, s, [inp], "awq.scales"));
  const part = zeros(gpu, nGrid * SQ_ERR_PARTS, "awq.sq_err");
  b = new Batch(gpu);
  const n = encodeGrid(
    b,
    [linear],
    cands,
    (use) => (use?.(linear.name) ?? linear).forward(b, x),
    part,
    0,
    g,
    o.bits,
  );
  await b.done();
  const losses = lossesOf(await readF32(part), 0, nGrid, n);
  part.release();
  for (const c of cands) c.release();
  const best = argminStrict(losses);
  return { alphas: losses.map((_, a) => a / nGrid), losses, best: best / nGrid, scales };
}

export function lossesOf(parts: Float32Array, slot0: number, nGrid: number, elems: number): number[] {
  return Array.from({ length: nGrid }, (_, a) => {
    let s = 0;
    for (let k = 0; k < SQ_ERR_PARTS; k++) s += parts[(slot0 + a) * SQ_ERR_PARTS + k];
    return s / elems;
  });
}

/** The first index of the smallest finite value (AutoAWQ's `loss < best_error`), −1 when none. */
export function argminStrict(xs: number[]): number {
  let bi = -1, bl = Infinity;
  xs.forEach((l, a) => l < bl && ((bl = l), (bi = a)));
  return bi;
}

/** A zero-filled f32 tensor (an accumulator). */
export function zeros(gpu: Gpu, shape: number | number[], label: string): Tensor {
  const dims = typeof shape === "number" ? [shape] : shape;
  return upload(gpu, new Float32Array(dims.reduce((a, b) => a * b, 1)), dims, label);
}
