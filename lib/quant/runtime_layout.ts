// QuantRecord → the GPU run-time layout read by shaders/qmatmul.wgsl (see its header):
// codes packed k-major, PER = ⌊32/bits⌋ adjacent outputs per u32, word columns padded to a
// multiple of 4 (one vec4<u32> load); scales and shifts group-major [G, W·PER]. Act-order
// layers (g_idx) get their input columns sorted by group, and a permutation for x.

import type { PackedDims } from "../kernels/qmatmul.ts";
import { groupsOf, type QuantRecord, validateRecord } from "./record.ts";

export interface RuntimeLayout extends PackedDims {
  words: Uint32Array<ArrayBuffer>; // [K, W]
  scale: Float32Array<ArrayBuffer>; // [G, W·per]
  shift: Float32Array<ArrayBuffer>; // [G, W·per]
  codebook: Float32Array<ArrayBuffer> | null;
  /** x column j of the sorted layout is input column perm[j]; null when groups are already in order. */
  perm: Uint32Array<ArrayBuffer> | null;
}

export function toRuntimeLayout(r: QuantRecord): RuntimeLayout {
  validateRecord(r);
  if (r.axis !== 1) {
    throw new Error(`quantized layer ${r.name}: only groups along the input dimension (axis 1) run packed`);
  }
  if (r.bits > 8) {
    throw new Error(`quantized layer ${r.name}: ${r.bits}-bit codes do not fit the runtime layout`);
  }
  const [N, K] = r.shape;
  const G = groupsOf(r), gs = r.groupSize;
  if (K % gs !== 0) {
    throw new Error(`quantized layer ${r.name}: in-features ${K} not divisible by group size ${gs}`);
  }
  const bits = r.bits, per = Math.floor(32 / bits);
  const W = Math.ceil(Math.ceil(N / per) / 4) * 4;
  // Column order: sorted by group (stable). Each group must then be gs consecutive columns.
  let perm: Uint32Array<ArrayBuffer> | null = null;
  if (r.gIdx) {
    const gi = r.gIdx;
    const order = Array.from({ length: K }, (_, k) => k).sort((a, b) => gi[a] - gi[b] || a - b);
    for (let j = 0; j < K; j++) {
      if (gi[order[j]] !== Math.floor(j / gs)) {
        throw new Error(
          `quantized layer ${r.name}: g_idx groups are not all of size ${gs}; this layout needs equal groups`,
        );
      }
    }
    if (order.some((k, j) => k !== j)) perm = Uint32Array.from(order);
  }
  const words = new Uint32Array(K * W);
  for (let j = 0; j < K; j++) {
    const k = perm ? perm[j] : j;
    for (let n = 0; n < N; n++) {
      const wi = j * W + Math.floor(n / per);
      words[wi] = (words[wi] | (r.codes[n * K + k] << (bits * (n % per)))) >>> 0;
    }
  }
  const NP = W * per, C = 1 << (bits - 1);
  const scale = new Float32Array(G * NP), shift = new Float32Array(G * NP);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const s = r.scales[n * G + g];
      scale[g * NP + n] = s;
      if (r.zeros) shift[g * NP + n] = s * (C - r.zeros[n * G + g]);
    }
  }
  return {
    bits,
    per,
    W,
    K,
    N,
    G,
    groupSize: gs,
    words,
    scale,
    shift,
    codebook: r.codebook ? Float32Array.from(r.codebook) : null,
    perm,
  };
}
