// The host side of AWQ's two searches (AutoAWQ's _search_best_scale and _compute_best_clip), in
// float32 arithmetic as the reference computes it: the per-channel weight magnitude s_w, the grid
// of candidate scales, and the choice of each (row, group)'s clipping range from the GPU's errors.

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
