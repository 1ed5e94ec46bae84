// HQQ's planar bit-packing (hqq/core/bitpack.py), along dim 0 of a [rows, cols] code matrix:
// the rows are cut into 8/b slices (10 for 3-bit) and slice s of every column goes to bits
// counted from the top: 4bit_u8 puts the first half of the rows in the high nibble, 2bit_u8 uses
// shifts 6, 4, 2, 0, 1bit_u8 shifts 7 … 0, and 3bit_32 packs 10 slices into an int32 at shifts
// 27, 24, …, 0 (rows padded to a multiple of 10). 8-bit is stored as is; 5/6-bit as 8-bit.

export type HqqPacking = "8bit_u8" | "4bit_u8" | "3bit_32" | "2bit_u8" | "1bit_u8";

export function hqqPacking(bits: number): HqqPacking {
  switch (bits) {
    case 8:
    case 6:
    case 5:
      return "8bit_u8";
    case 4:
      return "4bit_u8";
    case 3:
      return "3bit_32";
    case 2:
      return "2bit_u8";
    case 1:
      return "1bit_u8";
  }
  throw new Error(`HQQ packs 1, 2, 3, 4, 5, 6 or 8 bits, got ${bits}`);
}

const SLICES: Record<HqqPacking, number> = {
  "8bit_u8": 1,
  "4bit_u8": 2,
  "3bit_32": 10,
  "2bit_u8": 4,
  "1bit_u8": 8,
};

/** Rows that share one packed value (8 / bits; 10 for 3bit_32). */
export function hqqSlices(bits: number): number {
  return SLICES[hqqPacking(bits)];
}

/** Packed [ceil(rows / slices), cols]: Uint8Array, or Int32Array for 3bit_32. */
export function packHqq(
  codes: Uint8Array,
  rows: number,
  cols: number,
  bits: number,
): Uint8Array | Int32Array {
  const fmt = hqqPacking(bits), S = SLICES[fmt], step = fmt === "3bit_32" ? 3 : 8 / S;
  const outRows = Math.ceil(rows / S);
  if (fmt !== "3bit_32" && rows % S) throw new Error(`HQQ ${fmt} needs rows divisible by ${S}, got ${rows}`);
  const out = fmt === "3bit_32" ? new Int32Array(outRows * cols) : new Uint8Array(outRows * cols);
  const top = fmt === "3bit_32" ? 27 : 8 - step;
  for (let r = 0; r < outRows; r++) {
    for (let c = 0; c < cols; c++) {
      let v = 0;
      for (let s = 0; s < S; s++) {
        const src = s * outRows + r; // 3-bit: rows past the end are the zero padding
        if (src < rows) v |= codes[src * cols + c] << (top - step * s);
      }
      out[r * cols + c] = v;
    }
  }
  return out;
}

export function unpackHqq(
  packed: Uint8Array | Int32Array,
  rows: number,
  cols: number,
  bits: number,
): Uint8Array {
  const fmt = hqqPacking(bits), S = SLICES[fmt], step = fmt === "3bit_32" ? 3 : 8 / S;
  const outRows = Math.ceil(rows / S), mask = (1 << step) - 1, top = fmt === "3bit_32" ? 27 : 8 - step;
  if (packed.length !== outRows * cols) {
    throw new Error(`HQQ ${fmt}: ${packed.length} packed values for [${rows}, ${cols}]`);
  }
  const codes = new Uint8Array(rows * cols);
  for (let r = 0; r < outRows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = packed[r * cols + c];
      for (let s = 0; s < S; s++) {
        const dst = s * outRows + r;
        if (dst < rows) codes[dst * cols + c] = (v >>> (top - step * s)) & mask;
      }
    }
  }
  return codes;
}
