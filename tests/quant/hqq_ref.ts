// HQQ's zero-point solver in float64 on the CPU, written from hqq/core/optimize.py's proximal
// solver to be read beside it: the yardstick for the GPU solver (lib/quant/hqq.ts).

export interface HqqRefOptions {
  bits: number;
  groupSize: number;
  axis: 0 | 1;
  lpNorm: number;
  beta: number;
  kappa: number;
  iters: number;
  earlyStop: boolean;
}

/** W flat [numel]; returns the inverse scales, the zero-points and the codes. */
export function hqqRef(w: ArrayLike<number>, o: HqqRefOptions) {
  const numel = w.length, g = o.groupSize, nG = numel / g, maxq = 2 ** o.bits - 1;
  const at = (j: number, e: number) => (o.axis === 1 ? j * g + e : e * nG + j);
  const s = new Float64Array(nG), z = new Float64Array(nG);
  for (let j = 0; j < nG; j++) {
    let min = Infinity, max = -Infinity;
    for (let e = 0; e < g; e++) (min = Math.min(min, w[at(j, e)])), (max = Math.max(max, w[at(j, e)]));
    s[j] = Math.min(Math.abs(max - min) <= 1e-4 ? 1 : maxq / (max - min), 2e4);
    z[j] = -min * s[j];
  }
  const q = (v: number, j: number) => Math.min(Math.max(Math.round(v * s[j] + z[j]), 0), maxq);
  let beta = o.beta, best = Infinity;
  for (let i = 0; i < o.iters; i++) {
    let err = 0;
    const next = new Float64Array(nG);
    for (let j = 0; j < nG; j++) {
      let sum = 0;
      for (let e = 0; e < g; e++) {
        const v = w[at(j, e)], wq = q(v, j), d = v - (wq - z[j]) / s[j], a = Math.abs(d);
        err += a;
        const we = a > 0 ? Math.sign(d) * Math.max(a - a ** (o.lpNorm - 1) / beta, 0) : 0;
        sum += wq - (v - we) * s[j];
      }
      next[j] = sum / g;
    }
    z.set(next); // the step that fails to improve has moved z too, as the reference's loop does
    beta *= o.kappa;
    if (!o.earlyStop) continue;
    if (err / numel < best) best = err / numel;
    else break;
  }
  const codes = new Uint8Array(numel);
  for (let j = 0; j < nG; j++) for (let e = 0; e < g; e++) codes[at(j, e)] = q(w[at(j, e)], j);
  return { s, z, codes };
}
