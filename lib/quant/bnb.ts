// bitsandbytes' 4-bit quantization (QLoRA): NF4 and FP4 codebooks, blockwise absmax over the
// row-major flattened weight, and double quantization of the absmax values — as
// bitsandbytes/functional.py and backends/default/ops.py do it.
//   blocks of `blocksize` (64) consecutive weights (the last one may be short), absmax in fp32,
//   x·(1/absmax) clamped to [−1, 1] and mapped to the nearest code (midpoints of the sorted code,
//   ties to the lower; FP4 maps the sorted index back to its code order)
//   double quant: offset = mean(absmax); absmax − offset quantized to 8 bits in blocks of 256 with
//   the signed dynamic map; dequantized absmax = map[q]·absmax₂ + offset
// Calibration-free ("quantize on load").

import quantile from "@stdlib/stats-base-dists-normal-quantile";
import { upload } from "../gpu/tensor.ts";
import { readF32 } from "../gpu/tensor.ts";
import { Batch } from "../gpu/kernel.ts";
import { DenseLinear, type Linear } from "../model/linear.ts";
import type { CausalLM } from "../model/model.ts";
import type { Gpu } from "../gpu/device.ts";
import { QuantLinear } from "./quant_linear.ts";
import type { QuantRecord } from "./record.ts";
import type { QuantizeResult } from "./rtn.ts";
import { quantTargets, visitTargets } from "./targets.ts";

const f = Math.fround;

/** The published NF4 table (QLoRA; bitsandbytes get_4bit_type("nf4")), code order = sorted. */
export const NF4 = Float32Array.from([
  -1.0,
  -0.6961928009986877,
  -0.5250730514526367,
  -0.39491748809814453,
  -0.28444138169288635,
  -0.18477343022823334,
  -0.09105003625154495,
  0.0,
  0.07958029955625534,
  0.16093020141124725,
  0.24611230194568634,
  0.33791524171829224,
  0.44070982933044434,
  0.5626170039176941,
  0.7229568362236023,
  1.0,
]);

/** FP4 (E2M1, bias 2) in bitsandbytes' code order: sign bit 3, values normalised by the max, 12. */
export const FP4 = Float32Array.from(
  [0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3],
  (v) => v / 12,
);

/**
 * NF4 derived as the QLoRA paper describes (create_normal_map): quantiles of N(0, 1) at 9 evenly
 * spaced points from `offset` down to 0.5 (the last dropped) for the positive side and 8 for the
 * negative, plus 0, normalised by the largest. 8 negative, 0, 7 positive + 1: asymmetric.
 */
export function normalFloat4(offset = 0.9677083): Float32Array<ArrayBuffer> {
  const lin = (n: number) => Array.from({ length: n }, (_, i) => f(offset + ((0.5 - offset) * i) / (n - 1)));
  const pos = lin(9).slice(0, -1).map((p) => quantile(p, 0, 1));
  const neg = lin(8).slice(0, -1).map((p) => -quantile(p, 0, 1));
  const v = [...pos, 0, ...neg].sort((a, b) => a - b);
  const max = v[v.length - 1];
  return Float32Array.from(v, (x) => x / max);
}

/** bitsandbytes' signed 8-bit dynamic map (create_dynamic_map(True, 7, 8)): 256 sorted values. */
export function dynamicMap(): Float32Array<ArrayBuffer> {
  const data: number[] = [];
  for (let i = 0; i < 7; i++) {
    const items = 2 ** i + 1;
    const b = Array.from({ length: items }, (_, k) => f(0.1 + (0.9 * k) / (items - 1)));
    for (let k = 0; k + 1 < items; k++) {
      const mean = f(f(b[k] + b[k + 1]) / 2);
      const v = f(10 ** (-6 + i) * mean);
      data.push(v, -v);
    }
  }
  data.push(0, 1);
  return Float32Array.from(data.sort((a, b) => a - b));
}

/** Nearest-code lookup through the midpoints of the sorted code, ties to the lower (torch.bucketize). */
function quantizer(code: Float32Array): (x: number) => number {
  const order = Array.from(code.keys()).sort((a, b) => code[a] - code[b] || a - b);
  const mids = order.slice(1).map((o, i) => f(f(code[order[i]] + code[o]) / 2));
  return (x) => {
    let lo = 0, hi = mids.length; // count of midpoints < x
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (mids[m] < x) lo = m + 1;
      else hi = m;
    }
    return order[lo];
  };
}

/** Blockwise absmax quantization of a flat tensor to `code` (4-bit or the 8-bit dynamic map). */
export function quantizeBlockwise(x: Float32Array, code: Float32Array, blocksize: number) {
  const n = x.length, blocks = Math.ceil(n / blocksize);
  const codes = new Uint8Array(n), absmax = new Float32Array(blocks);
  const nearest = quantizer(code);
  for (let b = 0; b < blocks; b++) {
    const lo = b * blocksize, hi = Math.min(lo + blocksize, n);
    let m = 0;
    for (let i = lo; i < hi; i++) m = Math.max(m, Math.abs(x[i]));
    absmax[b] = m;
    const am = Math.max(m, 1e-38), full = hi - lo === blocksize;
    const inv = f(1 / am); // full blocks multiply by the reciprocal, the short tail divides
    for (let i = lo; i < hi; i++) {
      const s = full ? f(x[i] * inv) : f(x[i] / am);
      codes[i] = nearest(Math.min(Math.max(s, -1), 1));
    }
  }
  return { codes, absmax };
}

export function checkBlocksize(blocksize: number): void {
  if (
    !(Number.isInteger(blocksize) && blocksize >= 32 && blocksize <= 4096 &&
      (blocksize & (blocksize - 1)) === 0)
  ) {
    throw new Error(`bitsandbytes blocksize must be a power of two in 32…4096, got ${blocksize}`);
  }
}

export interface Bnb4Options {
  type: "nf4" | "fp4";
  blocksize?: number;
  doubleQuant?: boolean;
}

/** One weight W [out, in] → a codebook record (scales = the absmax values dequantization uses). */
export function quantize4bit(
  name: string,
  w: Float32Array,
  shape: [number, number],
  o: Bnb4Options,
): QuantRecord {
  const blocksize = o.blocksize ?? 64;
  checkBlocksize(blocksize);
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i])) throw new Error(`${name}: weight ${i} is ${w[i]}`);
  }
  const code = o.type === "nf4" ? NF4 : FP4;
  const { codes, absmax } = quantizeBlockwise(w, code, blocksize);
  const r: QuantRecord = {
    name,
    shape,
    dtype: "float32",
    bits: 4,
    groupSize: blocksize,
    axis: 1,
    codes,
    scales: absmax,
    zeros: null,
    codebook: Float32Array.from(code),
    method: o.type,
  };
  if (o.doubleQuant ?? true) {
    let sum = 0;
    for (const a of absmax) sum += a;
    const offset = f(sum / absmax.length);
    const map = dynamicMap();
    const q = quantizeBlockwise(Float32Array.from(absmax, (a) => f(a - offset)), map, 256);
    r.scales = Float32Array.from(
      absmax,
      (_, i) => f(f(map[q.codes[i]] * q.absmax[Math.floor(i / 256)]) + offset),
    );
    r.scaleQuant = { bits: 8, blockSize: 256, codes: q.codes, absmax: q.absmax, offset, codebook: map };
  }
  return r;
}

/** The dequantized weight of a flat-block record (blocks may cross rows). */
export function dequantize4bit(r: QuantRecord): Float32Array<ArrayBuffer> {
  const w = new Float32Array(r.codes.length);
  for (let i = 0; i < w.length; i++) {
    w[i] = f(r.codebook![r.codes[i]] * r.scales[Math.floor(i / r.groupSize)]);
  }
  return w;
}

/** Packed kernels when blocks tile the rows (in % blocksize = 0); otherwise the dequantized weight. */
export function bnb4Linear(gpu: Gpu, r: QuantRecord): Linear {
  if (r.shape[1] % r.groupSize === 0) return QuantLinear.fromRecord(gpu, r);
  return new DenseLinear(
    r.name,
    upload(gpu, dequantize4bit(r), r.shape, `${r.name}.deq`),
    r.bias ? upload(gpu, Float32Array.from(r.bias), [r.shape[0]], `${r.name}.bias`) : undefined,
  );
}

/** NF4/FP4 on every linear of the decoder blocks (and lm_head with `quantizeHead`). */
export async function quantizeBnb4(
  model: CausalLM,
  o: Bnb4Options & { quantizeHead?: boolean },
): Promise<QuantizeResult> {
  checkBlocksize(o.blocksize ?? 64);
  const targets = quantTargets(model, o.quantizeHead);
  const t0 = performance.now();
  const records: QuantRecord[] = [];
  for await (const { linear: l, replace } of visitTargets(model, targets)) {
    const r = quantize4bit(l.name, await readF32(l.weight), [l.outFeatures, l.inFeatures], o);
    if (l.bias) r.bias = await readF32(l.bias);
    records.push(r);
    replace(bnb4Linear(model.gpu, r));
  }
  await new Batch(model.gpu).done();
  return { records, seconds: (performance.now() - t0) / 1000 };
}
