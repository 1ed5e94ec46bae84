// The uniform (min/max) quantizer shared by RTN and the methods, groups along the input dimension.
//   asym: s = (max − min) / (2^b − 1),  z = round(−min / s),  q = clamp(round(w / s) + z, 0, 2^b − 1)
//   sym:  max = max(|min|, max), min = −max,  z = 2^(b−1)  (GPTQ's (maxq + 1) / 2)
// Range conventions (methods.md): "include-zero" widens [min, max] to contain 0 (GPTQ, AutoRound,
// the papers' RTN); "minmax" uses the raw range with s clamped ≥ 1e-5 and z clamped to [0, 2^b − 1]
// (AWQ). Arithmetic is rounded to float32 at each step and round() is half-to-even, as torch does,
// so codes match the Python references exactly.

import { z } from "zod";
import type { QuantRecord } from "./record.ts";

/** Option schemas the methods on this grid share: the bit widths it takes, and the group size. */
export const UniformBits = z.union([z.literal(2), z.literal(3), z.literal(4), z.literal(8)]);
export const GroupSize = z.number().int().refine(
  (g) => g === -1 || g > 0,
  "group size must be -1 or positive",
);

export type RangeConvention = "include-zero" | "minmax";

export interface UniformOptions {
  bits: number;
  /** Consecutive input columns per group; -1 = per-channel (the whole row). */
  groupSize: number;
  sym: boolean;
  range: RangeConvention;
}

const f = Math.fround;

/** torch.round: round half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function checkUniform(name: string, inFeatures: number, o: UniformOptions): number {
  if (![2, 3, 4, 8].includes(o.bits)) {
    throw new Error(`${name}: uniform quantization takes bits 2, 3, 4 or 8, got ${o.bits}`);
  }
  const g = o.groupSize === -1 ? inFeatures : o.groupSize;
  if (!(Number.isInteger(g) && g > 0)) {
    throw new Error(`${name}: group size must be -1 or a positive integer, got ${o.groupSize}`);
  }
  if (o.sym && o.range !== "include-zero") {
    throw new Error(
      `${name}: symmetric quantization here is GPTQ's (range including 0); use range "include-zero"`,
    );
  }
  if (inFeatures % g !== 0) {
    throw new Error(`${name}: in-features ${inFeatures} are not divisible by group size ${o.groupSize}`);
  }
  return g;
}

/** Scale and zero of one group, from its min and max. */
export function groupParams(min: number, max: number, o: UniformOptions): { scale: number; zero: number } {
  const maxq = (1 << o.bits) - 1;
  let lo = min, hi = max;
  if (o.range === "include-zero") {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  if (o.sym) {
    hi = Math.max(Math.abs(lo), hi);
    if (lo < 0) lo = -hi;
  }
  if (o.range === "include-zero") {
    if (lo === 0 && hi === 0) (lo = -1), (hi = 1); // GPTQ: an all-zero group gets a unit range
    const scale = f(f(hi - lo) / maxq);
    const zero = o.sym ? (maxq + 1) / 2 : roundHalfEven(f(-lo / scale)) + 0; // + 0 turns -0 into 0
    return { scale, zero };
  }
  const scale = f(Math.max(f(hi - lo), 1e-5) / maxq);
  const zero = o.sym ? (maxq + 1) / 2 : Math.min(Math.max(-roundHalfEven(f(lo / scale)), 0), maxq) + 0;
  return { scale, zero };
}

export function quantizeValue(w: number, scale: number, zero: number, maxq: number): number {
  return Math.min(Math.max(roundHalfEven(f(w / scale)) + zero, 0), maxq);
}

/** Quantize W [out, in] group by group. */
export function quantizeUniform(
  name: string,
  w: Float32Array,
  shape: [number, number],
  o: UniformOptions,
  method = "rtn",
): QuantRecord {
  const [out, inp] = shape;
  if (w.length !== out * inp) throw new Error(`${name}: ${w.length} weights do not fill [${shape}]`);
  const g = checkUniform(name, inp, o);
  const G = inp / g, maxq = (1 << o.bits) - 1;
  const codes = new Uint8Array(out * inp);
  const scales = new Float32Array(out * G), zeros = new Float32Array(out * G);
  for (let n = 0; n < out; n++) {
    for (let j = 0; j < G; j++) {
      const base = n * inp + j * g;
      let min = Infinity, max = -Infinity;
      for (let k = 0; k < g; k++) {
        const v = w[base + k];
        if (!Number.isFinite(v)) throw new Error(`${name}: weight [${n}, ${j * g + k}] is ${v}`);
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const { scale, zero } = groupParams(min, max, o);
      scales[n * G + j] = scale;
      zeros[n * G + j] = zero;
      for (let k = 0; k < g; k++) codes[base + k] = quantizeValue(w[base + k], scale, zero, maxq);
    }
  }
  return uniformRecord(name, shape, o.bits, g, { codes, scales, zeros }, method);
}

/** The record of a uniform grid with integer zeros, groups along the input dimension. */
export function uniformRecord(
  name: string,
  shape: [number, number],
  bits: number,
  groupSize: number,
  q: { codes: Uint8Array; scales: Float32Array; zeros: Float32Array; gIdx?: Int32Array },
  method: string,
): QuantRecord {
  return { name, shape, dtype: "float32", bits, groupSize, axis: 1, ...q, zeroKind: "int", method };
}
