// HQQ (Badri & Shaji, 2023): calibration-free. The scale comes from each group's min/max; only the
// zero-point is optimised, to minimise ‖W − s⁻¹·(Q − z)‖_p^p (p = 0.7) by half-quadratic splitting,
// as mobiusml/hqq's Quantizer.quantize and its proximal solver do (hqq/core/quantize.py, optimize.py):
//   s = (2^b − 1) / (max − min)  (inverse scale; 1 where |max − min| ≤ 1e-4; clamped ≤ 2e4),  z = −min·s
//   repeat: W_q = clamp(round(W·s + z)), W_r = (W_q − z)/s, W_e = shrink_p(W − W_r, β),
//           z = mean_group(W_q − (W − W_e)·s), β ← κβ;
//           stop once mean|W − W_r| over the whole tensor stops falling (the step that found it
//           has already moved z: the reference's order, kept)
//   W_q = clamp(round(W·s + z)); the stored scale is 1/s. z stays a float.
// "slow" is the reference's optimize_weights_proximal_slow: 100 steps, no early stop.
// Groups: axis 1 = consecutive input columns (hqq_base_quant_config's default; our packed kernels
// run it); axis 0 = W viewed as [g, numel / g], groups down its columns (Quantizer.quantize's
// default), which runs here as dequantized FP weights.

import { z } from "zod";
import type { Gpu } from "../gpu/device.ts";
import { Batch } from "../gpu/kernel.ts";
import { readF32, upload } from "../gpu/tensor.ts";
import { hqqStep } from "../kernels/hqq.ts";
import { DenseLinear } from "../model/linear.ts";
import type { CausalLM } from "../model/model.ts";
import { QuantLinear } from "./quant_linear.ts";
import { quantTargets, visitTargets } from "./targets.ts";
import { dequantize, type QuantRecord } from "./record.ts";
import type { QuantizeResult } from "./rtn.ts";
import { GroupSize, roundHalfEven } from "./uniform.ts";

const f = Math.fround;

export const HqqOptions = z.object({
  bits: z.number().int().refine((b) => [1, 2, 3, 4, 5, 6, 8].includes(b), "HQQ takes 1–6 or 8 bits"),
  groupSize: GroupSize.default(
    64,
  ),
  axis: z.union([z.literal(0), z.literal(1)]).default(1),
  optimize: z.boolean().default(true),
  roundZero: z.boolean().default(false),
  lpNorm: z.number().gt(0).max(1).default(0.7),
  beta: z.number().positive().default(10),
  kappa: z.number().min(1).default(1.01),
  iters: z.number().int().min(1).max(10000).default(20),
  earlyStop: z.boolean().default(true),
  /** Read the error after every step without early stopping too (a readback per step; notebooks). */
  trackErrors: z.boolean().default(false),
  /**
   * 8-bit meta-quantization of the scales (groups of 128, strided as Quantizer.quantize's axis 0)
   * and the zeros (one range for the tensor): hqq_base_quant_config's quant_scale and quant_zero
   * together, the 2-bit g16 recipe of the HQQ Llama-2-70B model.
   */
  metaQuant: z.boolean().default(false),
  /** quant_scale alone: the scales' 8-bit meta-quantization (groups of 128). */
  quantScale: z.boolean().default(false),
  /** quant_zero alone: the zeros' 8-bit meta-quantization (one range per tensor). */
  quantZero: z.boolean().default(false),
}).strict();
export type HqqOptions = z.input<typeof HqqOptions>;
type Opts = z.output<typeof HqqOptions>;

/** The reference's slow variant: 100 steps without early stop. */
export const HQQ_SLOW = { iters: 100, earlyStop: false } as const;

export interface HqqLayerResult {
  record: QuantRecord;
  /** Solver steps taken and the mean |W − W_r| of each. */
  steps: number;
  errors: number[];
}

/** Group size along the chosen axis: -1 = a whole row (axis 1) or a whole column (axis 0). */
export function hqqGroupSize(
  name: string,
  shape: [number, number],
  o: { groupSize: number; axis: 0 | 1 },
): number {
  const [out, inp] = shape;
  const g = o.groupSize === -1 ? (o.axis === 1 ? inp : out) : o.groupSize;
  if ((out * inp) % g !== 0 || (o.axis === 1 && inp % g !== 0)) {
    throw new Error(`${name}: group size ${g} does not divide the tensor [${shape}] along axis ${o.axis}`);
  }
  return g;
}

/** Initial inverse scale and zero of one group, in float32 as the reference computes them. */
export function hqqInit(
  min: number,
  max: number,
  bits: number,
  roundZero: boolean,
): { s: number; z: number } {
  const maxq = (1 << bits) - 1;
  const denom = f(max - min);
  let s = Math.abs(denom) <= 1e-4 ? 1 : f(maxq / denom);
  s = Math.min(s, 2e4);
  let zz = f(-min * s) + 0;
  if (roundZero) zz = roundHalfEven(zz);
  return { s, z: zz };
}

export async function hqqLayer(
  gpu: Gpu,
  name: string,
  w: Float32Array,
  shape: [number, number],
  options: HqqOptions,
): Promise<HqqLayerResult> {
  const o: Opts = HqqOptions.parse(options);
  const [out, inp] = shape, numel = out * inp;
  if (w.length !== numel) throw new Error(`${name}: ${w.length} weights do not fill [${shape}]`);
  const g = hqqGroupSize(name, shape, o), nG = numel / g;
  const at = (j: number, e: number) => (o.axis === 1 ? j * g + e : e * nG + j);
  const s = new Float32Array(nG), zero = new Float32Array(nG);
  for (let j = 0; j < nG; j++) {
    let min = Infinity, max = -Infinity;
    for (let e = 0; e < g; e++) {
      const v = w[at(j, e)];
      if (!Number.isFinite(v)) throw new Error(`${name}: weight ${at(j, e)} is ${v}`);
      (min = Math.min(min, v)), (max = Math.max(max, v));
    }
    const init = hqqInit(min, max, o.bits, o.roundZero);
    (s[j] = init.s), (zero[j] = init.z);
  }
  const errors: number[] = [];
  let zFinal: Float32Array = zero;
  if (o.optimize) {
    // The kernel reads groups contiguously: an axis-0 view ([g, nG], groups down columns) is
    // transposed to [nG, g] first (the same values in the same order per group).
    const grouped = new Float32Array(numel);
    for (let j = 0; j < nG; j++) for (let e = 0; e < g; e++) grouped[j * g + e] = w[at(j, e)];
    const W = upload(gpu, grouped, [numel], `${name}.W`), S = upload(gpu, s, [nG], `${name}.s`);
    const Z = upload(gpu, zero, [nG], `${name}.z`),
      E = upload(gpu, new Float32Array(nG), [nG], `${name}.err`);
    let beta = o.beta, best = Infinity;
    for (let i = 0; i < o.iters; i++) {
      const b = new Batch(gpu);
      hqqStep(b, W, S, Z, E, { groupSize: g, bits: o.bits, lpNorm: o.lpNorm, beta });
      await b.submit();
      beta *= o.kappa;
      if (!o.earlyStop && !o.trackErrors) continue;
      let sum = 0;
      for (const v of await readF32(E)) sum += v;
      errors.push(sum / numel);
      if (!o.earlyStop) continue;
      if (sum / numel < best) best = sum / numel;
      else break;
    }
    zFinal = await readF32(Z);
    for (const t of [W, S, Z, E]) t.release();
  }
  const maxq = (1 << o.bits) - 1;
  const codes = new Uint8Array(numel);
  for (let j = 0; j < nG; j++) {
    for (let e = 0; e < g; e++) {
      const k = at(j, e);
      codes[k] = Math.min(Math.max(roundHalfEven(f(f(w[k] * s[j]) + zFinal[j])), 0), maxq);
    }
  }
  let scales = Float32Array.from(s, (v) => 1 / v), zeros = Float32Array.from(zFinal);
  const quantScale = o.metaQuant || o.quantScale, quantZero = o.metaQuant || o.quantZero;
  if (quantScale) {
    if (nG % META_GROUP) {
      throw new Error(`${name}: meta-quantization needs ${nG} groups divisible by ${META_GROUP}`);
    }
    scales = metaQuantize(scales, META_GROUP);
  }
  if (quantZero) zeros = metaQuantize(zeros, nG);
  const record: QuantRecord = {
    name,
    shape,
    dtype: "float32",
    bits: o.bits,
    groupSize: g,
    axis: o.axis,
    codes,
    scales,
    zeros,
    zeroKind: "float",
    metaQuant: quantScale || quantZero
      ? { bits: 8, scaleGroup: quantScale ? META_GROUP : null, zeros: quantZero }
      : undefined,
    method: "hqq",
  };
  return { record, steps: o.earlyStop ? errors.length : o.iters, errors };
}

const META_GROUP = 128;

/**
 * 8-bit round-to-nearest of a scale or zero tensor, as Quantizer.quantize(optimize=False) does it
 * with axis 0: the values viewed as [groupSize, n / groupSize], one min/max per column. Returns
 * the dequantized values, which is what dequantization then uses.
 */
export function metaQuantize(x: Float32Array, groupSize: number): Float32Array<ArrayBuffer> {
  const nCols = x.length / groupSize, out = new Float32Array(x.length);
  for (let c = 0; c < nCols; c++) {
    let min = Infinity, max = -Infinity;
    for (let e = 0; e < groupSize; e++) {
      (min = Math.min(min, x[e * nCols + c])), (max = Math.max(max, x[e * nCols + c]));
    }
    const { s, z: zz } = hqqInit(min, max, 8, false);
    for (let e = 0; e < groupSize; e++) {
      const i = e * nCols + c;
      const q = Math.min(Math.max(roundHalfEven(f(f(x[i] * s) + zz)), 0), 255);
      out[i] = f(f(q - zz) / s);
    }
  }
  return out;
}

/** HQQ on every linear of the decoder blocks (embeddings stay FP; lm_head too unless `quantizeHead`). */
export async function quantizeHqq(
  model: CausalLM,
  options: HqqOptions & { fake?: boolean; quantizeHead?: boolean },
  onLayer?: (name: string, steps: number) => void,
): Promise<QuantizeResult> {
  const { fake, quantizeHead, ...rest } = options;
  const o = HqqOptions.parse(rest);
  const targets = quantTargets(model, quantizeHead);
  for (const { linear: l } of targets) hqqGroupSize(l.name, [l.outFeatures, l.inFeatures], o);
  const t0 = performance.now();
  const records: QuantRecord[] = [];
  for await (const { linear: l, replace } of visitTargets(model, targets)) {
    const r = await hqqLayer(model.gpu, l.name, await readF32(l.weight), [l.outFeatures, l.inFeatures], o);
    if (l.bias) r.record.bias = await readF32(l.bias);
    records.push(r.record);
    replace(hqqRuntimeLinear(model.gpu, r.record, fake));
    onLayer?.(l.name, r.steps);
  }
  await new Batch(model.gpu).done();
  return { records, seconds: (performance.now() - t0) / 1000 };
}

/** Packed layer for axis 1; the dequantized weight as an FP layer for axis 0 (or when `fake`). */
export function hqqRuntimeLinear(gpu: Gpu, r: QuantRecord, fake = false) {
  if (r.axis === 1 && !fake) return QuantLinear.fromRecord(gpu, r);
  return new DenseLinear(
    r.name,
    upload(gpu, dequantize(r), r.shape, `${r.name}.deq`),
    r.bias ? upload(gpu, Float32Array.from(r.bias), [r.shape[0]], `${r.name}.bias`) : undefined,
  );
}
