// AutoGPTQ "gptq" v1 exchange format (methods.md): for W [out, in] with groups along the input,
//   qweight int32 [in·b/32, out]    column n is the bit stream of codes[n, 0..in) packed along input
//   qzeros  int32 [G, out·b/32]     row g is the bit stream of (zero − 1) over outputs (the v1 quirk)
//   scales  f16   [G, out]
//   g_idx   int32 [in]
// 3-bit uses the same stream: 32 codes in 3 words with straddling values.

import type { QuantRecord } from "../record.ts";
import { packBits, unpackBit } from "./bitstream.ts";

export interface GptqTensors {
  qweight: Int32Array<ArrayBuffer>; // [in·b/32, out]
  qzeros: Int32Array<ArrayBuffer>; // [G, out·b/32]
  scales: Float32Array<ArrayBuffer>; // [G, out] (written as f16)
  gIdx: Int32Array<ArrayBuffer>; // [in]
}

export function checkGptqShape(name: string, out: number, inp: number, bits: number): void {
  if (![2, 3, 4, 8].includes(bits)) {
    throw new Error(`${name}: the GPTQ format takes bits 2, 3, 4 or 8, got ${bits}`);
  }
  if ((inp * bits) % 32 || (out * bits) % 32) {
    throw new Error(
      `${name}: GPTQ packing needs in·bits and out·bits divisible by 32, got [${out}, ${inp}] at ${bits} bits`,
    );
  }
}

export function packGptq(r: QuantRecord): GptqTensors {
  const [out, inp] = r.shape, b = r.bits, G = inp / r.groupSize;
  checkGptqShape(r.name, out, inp, b);
  if (!r.zeros) throw new Error(`${r.name}: the GPTQ format needs integer zeros`);
  const rowsW = (inp * b) / 32, colsZ = (out * b) / 32;
  const qweight = new Int32Array(rowsW * out);
  for (let n = 0; n < out; n++) {
    const col = packBits(inp, b, (k) => r.codes[n * inp + k]);
    for (let w = 0; w < rowsW; w++) qweight[w * out + n] = col[w];
  }
  const qzeros = new Int32Array(G * colsZ);
  const mask = (1 << b) - 1;
  for (let g = 0; g < G; g++) {
    // v1 stores zero − 1; a zero of 0 wraps to all ones (−1 & mask), as AutoGPTQ's uint arithmetic does.
    const row = packBits(out, b, (n) => (r.zeros![n * G + g] - 1) & mask);
    qzeros.set(new Int32Array(row.buffer), g * colsZ);
  }
  const scales = new Float32Array(G * out);
  for (let n = 0; n < out; n++) for (let g = 0; g < G; g++) scales[g * out + n] = r.scales[n * G + g];
  const gIdx = r.gIdx
    ? Int32Array.from(r.gIdx)
    : Int32Array.from({ length: inp }, (_, k) => Math.floor(k / r.groupSize));
  return { qweight, qzeros, scales, gIdx };
}

export function unpackGptq(
  name: string,
  t: GptqTensors,
  shape: [number, number],
  bits: number,
  groupSize: number,
): QuantRecord {
  const [out, inp] = shape, G = inp / groupSize;
  checkGptqShape(name, out, inp, bits);
  const rowsW = (inp * bits) / 32, colsZ = (out * bits) / 32;
  if (
    t.qweight.length !== rowsW * out || t.qzeros.length !== G * colsZ || t.scales.length !== G * out ||
    t.gIdx.length !== inp
  ) {
    throw new Error(
      `${name}: GPTQ tensors disagree with shape [${shape}], ${bits} bits, group size ${groupSize}`,
    );
  }
  const codes = new Uint8Array(out * inp);
  const col = new Uint32Array(rowsW);
  for (let n = 0; n < out; n++) {
    for (let w = 0; w < rowsW; w++) col[w] = t.qweight[w * out + n];
    for (let k = 0; k < inp; k++) codes[n * inp + k] = unpackBit(col, bits, k);
  }
  const zeros = new Float32Array(out * G), scales = new Float32Array(out * G);
  const mask = (1 << bits) - 1;
  for (let g = 0; g < G; g++) {
    const row = new Uint32Array(t.qzeros.buffer, t.qzeros.byteOffset + g * colsZ * 4, colsZ);
    for (let n = 0; n < out; n++) {
      zeros[n * G + g] = (unpackBit(row, bits, n) + 1) & mask; // undo the v1 "minus one"
      scales[n * G + g] = t.scales[g * out + n];
    }
  }
  const trivial = t.gIdx.every((g, k) => g === Math.floor(k / groupSize));
  return {
    name,
    shape,
    dtype: "float16",
    bits,
    groupSize,
    axis: 1,
    codes,
    scales,
    zeros,
    zeroKind: "int",
    gIdx: trivial ? undefined : Int32Array.from(t.gIdx),
    method: "gptq",
  };
}
