// AWQ's pieces on the CPU in float64, written straight from the definitions (methods.md; AutoAWQ's
// pseudo_quantize_tensor, _compute_best_scale, _compute_best_clip) — what awq.test.ts compares
// the GPU kernels and the host search code against.

/** torch.round: half to even. */
function round(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Within float32 rounding of a .5 tie, where float32 and float64 may round differently. */
const nearTie = (r: number) => Math.abs(Math.abs(r % 1) - 0.5) < 1e-5;

/** Asymmetric min/max quantize-dequantize of one group; `tie` when a rounding sat on a .5 tie. */
export function qdqGroup(v: ArrayLike<number>, bits: number, tie = { hit: false }): Float64Array {
  const maxq = 2 ** bits - 1;
  let lo = Infinity, hi = -Infinity;
  for (let k = 0; k < v.length; k++) (lo = Math.min(lo, v[k])), (hi = Math.max(hi, v[k]));
  const s = Math.max(hi - lo, 1e-5) / maxq;
  if (nearTie(lo / s)) tie.hit = true;
  const z = Math.min(Math.max(-round(lo / s), 0), maxq);
  return Float64Array.from(v, (x) => {
    if (nearTie(x / s)) tie.hit = true;
    return (Math.min(Math.max(round(x / s) + z, 0), maxq) - z) * s;
  });
}

/** Q(W·diag s)·diag(s)⁻¹, W [rows, cols], groups of g along cols. */
export function fakeQuantScaledRef(
  w: ArrayLike<number>,
  s: ArrayLike<number>,
  cols: number,
  g: number,
  bits: number,
) {
  const out = new Float64Array(w.length);
  for (let base = 0; base < w.length; base += g) {
    const c0 = base % cols;
    const v = Array.from({ length: g }, (_, k) => w[base + k] * s[c0 + k]);
    qdqGroup(v, bits).forEach((q, k) => (out[base + k] = q / s[c0 + k]));
  }
  return out;
}

/** y [T, out] = x [T, in] · Wᵀ. */
export function matmulT(x: ArrayLike<number>, w: ArrayLike<number>, T: number, out: number, inp: number) {
  const y = new Float64Array(T * out);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < out; o++) {
      let acc = 0;
      for (let k = 0; k < inp; k++) acc += x[t * inp + k] * w[o * inp + k];
      y[t * out + o] = acc;
    }
  }
  return y;
}

/** The scale search's loss at every α for one linear judged on its own output. */
export function scaleLossesRef(
  w: ArrayLike<number>,
  x: ArrayLike<number>,
  [out, inp]: [number, number],
  g: number,
  bits: number,
  duo: boolean,
  nGrid = 20,
): number[] {
  const T = x.length / inp;
  const xMean = new Float64Array(inp), wMean = new Float64Array(inp);
  for (let t = 0; t < T; t++) for (let k = 0; k < inp; k++) xMean[k] += Math.abs(x[t * inp + k]) / T;
  for (let o = 0; o < out; o++) {
    for (let j = 0; j < inp; j += g) {
      let amax = 0;
      for (let k = j; k < j + g; k++) amax = Math.max(amax, Math.abs(w[o * inp + k]));
      for (let k = j; k < j + g; k++) wMean[k] += Math.abs(w[o * inp + k]) / (amax + 1e-6) / out;
    }
  }
  const y0 = matmulT(x, w, T, out, inp);
  return Array.from({ length: nGrid }, (_, a) => {
    const r = a / nGrid;
    const s = Array.from(
      xMean,
      (xm, k) => Math.max(duo ? xm ** r / (wMean[k] ** (1 - r) + 1e-4) : xm ** r, 1e-4),
    );
    const norm = Math.sqrt(Math.max(...s) * Math.min(...s));
    const sn = s.map((v) => v / norm);
    const y = matmulT(x, fakeQuantScaledRef(w, sn, inp, g, bits), T, out, inp);
    let e = 0;
    for (let i = 0; i < y.length; i++) e += (y[i] - y0[i]) ** 2;
    return e / y.length;
  });
}

/**
 * The clipping search for W [out, in] on inputs x [N, in] (already divided by the scales): per
 * (row, group) the mean over tokens of (x·(Q(clamp W) − W))² for each shrink step; returns the
 * errors [out, G, nShrink], the chosen step (strictly lowest, starting from 1e9), and which steps
 * met a .5 rounding tie — a group clamped on both sides always does: its zero is (2^b − 1)/2.
 */
export function clipRef(
  w: ArrayLike<number>,
  x: ArrayLike<number>,
  [out, inp]: [number, number],
  g: number,
  bits: number,
  nGrid = 20,
  nShrink = 10,
): { err: Float64Array; chosen: Uint8Array; tie: Uint8Array } {
  const N = x.length / inp, G = inp / g;
  const err = new Float64Array(out * G * nShrink), chosen = new Uint8Array(out * G);
  const tie = new Uint8Array(out * G * nShrink);
  for (let o = 0; o < out; o++) {
    for (let j = 0; j < G; j++) {
      const base = o * inp + j * g;
      const wg = Array.from({ length: g }, (_, k) => w[base + k]);
      const amax = Math.max(...wg.map(Math.abs));
      let minErr = 1e9;
      for (let i = 0; i < nShrink; i++) {
        const mv = amax * (1 - i / nGrid);
        const t = { hit: false };
        const q = qdqGroup(wg.map((v) => Math.min(Math.max(v, -mv), mv)), bits, t);
        tie[(o * G + j) * nShrink + i] = t.hit ? 1 : 0;
        let e = 0;
        for (let t = 0; t < N; t++) {
          let d = 0;
          for (let k = 0; k < g; k++) d += x[t * inp + j * g + k] * (q[k] - wg[k]);
          e += d * d;
        }
        e /= N;
        err[(o * G + j) * nShrink + i] = e;
        if (e < minErr) (minErr = e), (chosen[o * G + j] = i);
      }
    }
  }
  return { err, chosen, tie };
}
