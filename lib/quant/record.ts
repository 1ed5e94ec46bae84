// One record for a quantized linear layer. Every method (RTN, GPTQ, AWQ, bitsandbytes, HQQ,
// AutoRound) produces it; the GPU runtime (quant_linear.ts) and the exporters consume it.
//
// Weight W [out, in] is split into groups of `groupSize` consecutive input columns (per-channel:
// groupSize = in). Column k belongs to group gIdx[k] (default k / groupSize; act-order permutes).
//   uniform:   W[n, k] ≈ scales[n, g] · (codes[n, k] − zeros[n, g])
//   codebook:  W[n, k] ≈ scales[n, g] · codebook[codes[n, k]]     (NF4/FP4: scales = absmax)
// Codes are kept unpacked here (one byte per weight, row-major [out, in]); exchange formats
// (pack/*.ts) and the runtime layout are derived from them.

export interface QuantRecord {
  name: string;
  /** Original weight shape [out, in] and dtype on disk. */
  shape: [number, number];
  dtype: string;
  bits: number;
  groupSize: number;
  /** Groups run along the input dimension (1, every method here) or the output dimension (0, HQQ's axis 0). */
  axis: 0 | 1;
  codes: Uint8Array; // [out, in]
  scales: Float32Array; // [out, groups]
  /** Integer-valued for GPTQ/AWQ/RTN; float for HQQ; null for codebooks and symmetric codebook-free formats. */
  zeros: Float32Array | null; // [out, groups]
  /** How zeros are stored in exchange formats: packed integers at `bits` (GPTQ/AWQ) or float (HQQ). */
  zeroKind?: "int" | "float";
  /** Input column → group (act-order). Absent: k / groupSize. */
  gIdx?: Int32Array; // [in]
  /** 2^bits values (NF4/FP4): the weight is scales · codebook[code]. */
  codebook?: Float32Array;
  /** Second-level quantization of the scales (bitsandbytes double quant): scales are its dequantized values. */
  scaleQuant?: {
    bits: number;
    blockSize: number;
    codes: Uint8Array;
    absmax: Float32Array;
    offset: number;
    codebook: Float32Array;
  };
  /**
   * HQQ's 8-bit meta-quantization: the scales (in groups of scaleGroup; null = not) and/or the
   * zeros (one range per tensor) above are its dequantized values.
   */
  metaQuant?: { bits: number; scaleGroup: number | null; zeros: boolean };
  /** LLM.int8: each row's absmax (bitsandbytes' SCB) as stored; scales above are SCB / 127. */
  rowAbsmax?: Float32Array; // [out]
  /** Bias, kept in float. */
  bias?: Float32Array; // [out]
  /** Which method and settings made it (for rows and exporters). */
  method: string;
}

export function groupsOf(r: Pick<QuantRecord, "shape" | "groupSize">): number {
  return Math.ceil(r.shape[1] / r.groupSize);
}

/**
 * Scale/zero entries of the record: [out, groups] for axis 1; for axis 0 (HQQ's), W is viewed as
 * [groupSize, out·in / groupSize] and each of its columns is a group: out·in / groupSize of them.
 */
export function scaleCount(r: Pick<QuantRecord, "shape" | "groupSize" | "axis">): number {
  return r.axis === 1 ? r.shape[0] * groupsOf(r) : (r.shape[0] * r.shape[1]) / r.groupSize;
}

/** Throws naming the layer when the record's arrays disagree with its shape. */
export function validateRecord(r: QuantRecord): void {
  const [out, inp] = r.shape;
  const fail = (what: string) => {
    throw new Error(`quantized layer ${r.name}: ${what}`);
  };
  if (!(out > 0 && inp > 0)) fail(`bad shape [${r.shape}]`);
  if (![1, 2, 3, 4, 5, 6, 8].includes(r.bits)) fail(`unsupported bits ${r.bits}`);
  const bound = r.axis === 1 ? inp : out * inp;
  if (!(Number.isInteger(r.groupSize) && r.groupSize > 0 && r.groupSize <= bound)) {
    fail(`bad group size ${r.groupSize}`);
  }
  if (r.axis === 0 && (out * inp) % r.groupSize) {
    fail(`group size ${r.groupSize} does not divide ${out}×${inp}`);
  }
  const S = scaleCount(r);
  if (r.codes.length !== out * inp) fail(`codes hold ${r.codes.length} values, expected ${out}×${inp}`);
  const want = r.axis === 1 ? `${out}×${groupsOf(r)}` : `${S}`;
  if (r.scales.length !== S) fail(`scales hold ${r.scales.length} values, expected ${want}`);
  if (r.zeros && r.zeros.length !== S) fail(`zeros hold ${r.zeros.length} values, expected ${want}`);
  if (r.bias && r.bias.length !== out) fail(`bias holds ${r.bias.length} values, expected ${out}`);
  if (r.codebook && r.codebook.length !== 1 << r.bits) {
    fail(`codebook has ${r.codebook.length} entries, expected ${1 << r.bits}`);
  }
  if (!r.codebook && !r.zeros) fail("a uniform record needs zeros");
  const max = (1 << r.bits) - 1;
  for (let i = 0; i < r.codes.length; i++) {
    if (r.codes[i] > max) fail(`code ${r.codes[i]} at ${i} exceeds ${max}`);
  }
  if (r.gIdx) {
    if (r.gIdx.length !== inp) fail(`g_idx holds ${r.gIdx.length} values, expected ${inp}`);
    const G = groupsOf(r);
    for (const g of r.gIdx) if (!(g >= 0 && g < G)) fail(`g_idx value ${g} outside 0..${G - 1}`);
  }
}

/** Fake-quant: the dequantized weight [out, in] in f32 — the reference the packed kernels are tested against. */
export function dequantize(r: QuantRecord): Float32Array<ArrayBuffer> {
  const [out, inp] = r.shape;
  const G = groupsOf(r);
  const w = new Float32Array(out * inp);
  if (r.axis === 0) {
    const nG = scaleCount(r); // element f is in group f mod nG
    for (let i = 0; i < w.length; i++) {
      const s = r.scales[i % nG], q = r.codes[i];
      w[i] = r.codebook ? s * r.codebook[q] : s * (q - r.zeros![i % nG]);
    }
    return w;
  }
  for (let n = 0; n < out; n++) {
    for (let k = 0; k < inp; k++) {
      const g = r.gIdx ? r.gIdx[k] : Math.floor(k / r.groupSize);
      const s = r.scales[n * G + g];
      const q = r.codes[n * inp + k];
      w[n * inp + k] = r.codebook ? s * r.codebook[q] : s * (q - r.zeros![n * G + g]);
    }
  }
  return w;
}

/**
 * Bits per weight as stored in the exchange format: codes plus scales and zeros (fp16 each, or
 * packed integer zeros at `bits`), g_idx (int32 per input column), per layer.
 */
export function bitsPerWeight(r: QuantRecord): number {
  const [out, inp] = r.shape;
  const S = scaleCount(r);
  let bits = out * inp * r.bits;
  if (r.scaleQuant) {
    const sq = r.scaleQuant;
    bits += sq.codes.length * sq.bits + sq.absmax.length * 32 + 32;
  } else if (r.metaQuant?.scaleGroup) {
    // 8-bit scales with an fp16 scale and zero per group of them; 8-bit zeros with one pair.
    bits += S * r.metaQuant.bits + (S / r.metaQuant.scaleGroup) * 32;
  } else {
    bits += S * (r.codebook ? 32 : 16); // fp16 scales; bitsandbytes keeps its absmax in fp32
  }
  if (r.metaQuant?.zeros) bits += S * r.metaQuant.bits + 32;
  else if (r.zeros) bits += S * (r.zeroKind === "float" ? 16 : r.bits);
  if (r.gIdx) bits += inp * 32;
  return bits / (out * inp);
}

/** Bits per weight over all quantized layers, weighted by their sizes. */
export function meanBitsPerWeight(records: QuantRecord[]): number {
  let bits = 0, n = 0;
  for (const r of records) {
    const numel = r.shape[0] * r.shape[1];
    bits += bitsPerWeight(r) * numel;
    n += numel;
  }
  return bits / n;
}
