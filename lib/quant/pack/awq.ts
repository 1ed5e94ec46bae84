// AutoAWQ GEMM exchange format (methods.md): 4-bit, packed along the output dimension, eight
// codes per int32 with nibble i holding output column AWQ_ORDER[i] of its group of eight:
//   qweight int32 [in, out/8]   qzeros int32 [G, out/8] (zeros as-is)   scales f16 [G, out]

import type { QuantRecord } from "../record.ts";

export const AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7];

export interface AwqTensors {
  qweight: Int32Array<ArrayBuffer>; // [in, out/8]
  qzeros: Int32Array<ArrayBuffer>; // [G, out/8]
  scales: Float32Array<ArrayBuffer>; // [G, out]
}

function check(name: string, out: number, bits: number) {
  if (bits !== 4) throw new Error(`${name}: the AWQ GEMM format is 4-bit only, got ${bits}`);
  if (out % 8) throw new Error(`${name}: the AWQ GEMM format needs out-features divisible by 8, got ${out}`);
}

/** Pack row `get(c)` of `cols` (multiple of 8) 4-bit values in AWQ order. */
function packRow(cols: number, get: (c: number) => number, dst: Int32Array, off: number) {
  for (let j = 0; j < cols / 8; j++) {
    let word = 0;
    for (let i = 0; i < 8; i++) word |= (get(j * 8 + AWQ_ORDER[i]) & 15) << (4 * i);
    dst[off + j] = word;
  }
}

function unpackRow(cols: number, src: Int32Array, off: number, set: (c: number, v: number) => void) {
  for (let j = 0; j < cols / 8; j++) {
    const word = src[off + j];
    for (let i = 0; i < 8; i++) set(j * 8 + AWQ_ORDER[i], (word >>> (4 * i)) & 15);
  }
}

export function packAwq(r: QuantRecord): AwqTensors {
  const [out, inp] = r.shape, G = inp / r.groupSize;
  check(r.name, out, r.bits);
  if (!r.zeros || r.gIdx) throw new Error(`${r.name}: the AWQ format needs integer zeros and no g_idx`);
  const qweight = new Int32Array(inp * (out / 8));
  for (let k = 0; k < inp; k++) packRow(out, (n) => r.codes[n * inp + k], qweight, k * (out / 8));
  const qzeros = new Int32Array(G * (out / 8));
  for (let g = 0; g < G; g++) packRow(out, (n) => r.zeros![n * G + g], qzeros, g * (out / 8));
  const scales = new Float32Array(G * out);
  for (let n = 0; n < out; n++) for (let g = 0; g < G; g++) scales[g * out + n] = r.scales[n * G + g];
  return { qweight, qzeros, scales };
}

export function unpackAwq(
  name: string,
  t: AwqTensors,
  shape: [number, number],
  groupSize: number,
): QuantRecord {
  const [out, inp] = shape, G = inp / groupSize;
  check(name, out, 4);
  if (
    t.qweight.length !== inp * (out / 8) || t.qzeros.length !== G * (out / 8) || t.scales.length !== G * out
  ) {
    throw new Error(`${name}: AWQ tensors disagree with shape [${shape}], group size ${groupSize}`);
  }
  const codes = new Uint8Array(out * inp),
    zeros = new Float32Array(out * G),
    scales = new Float32Array(out * G);
  for (let k = 0; k < inp; k++) unpackRow(out, t.qweight, k * (out / 8), (n, v) => (codes[n * inp + k] = v));
  for (let g = 0; g < G; g++) {
    unpackRow(out, t.qzeros, g * (out / 8), (n, v) => (zeros[n * G + g] = v));
    for (let n = 0; n < out; n++) scales[n * G + g] = t.scales[g * out + n];
  }
  return {
    name,
    shape,
    dtype: "float16",
    bits: 4,
    groupSize,
    axis: 1,
    codes,
    scales,
    zeros,
    zeroKind: "int",
    method: "awq",
  };
}
