// Float64 reference of AutoRound's fake-quantizer (auto_round/data_type/int.py: quant_tensor_sym,
// quant_tensor_asym) and its straight-through gradients, for the kernel tests. Rounding and the
// float16 cast of the scale go through a `Rounding` so that the same code also evaluates the STE
// surrogate (each round/cast replaced by x + its offset at a base point), whose finite
// differences must equal the analytic gradients.

import { roundHalfEven } from "../../lib/quant/uniform.ts";
import { f32ToF16, halfToFloat } from "../../lib/gpu/tensor.ts";

export interface Grid {
  bits: number;
  groupSize: number;
  sym: boolean;
}

const f16 = (x: number) => halfToFloat(f32ToF16(new Float32Array([x]))[0]);
const THRESH = f16(1e-5);

/** Records each round/cast at the base point; a replay evaluates the surrogate x + offset. */
export class Rounding {
  #offsets: number[] = [];
  #i = 0;
  constructor(readonly replay = false) {}
  #apply(x: number, exact: (x: number) => number): number {
    if (!this.replay) {
      const y = exact(x);
      this.#offsets.push(y - x);
      return y;
    }
    return x + this.#offsets[this.#i++];
  }
  round = (x: number) => this.#apply(x, roundHalfEven);
  half = (x: number) => this.#apply(x, f16);
  /** A replaying copy (offsets shared, position reset). */
  surrogate(): Rounding {
    const r = new Rounding(true);
    r.#offsets = this.#offsets;
    return r;
  }
}

/** The grid's maxq and clamp bounds: sym −2^(b−1) … 2^(b−1) − 1, asym 0 … 2^b − 1. */
function levels(o: Grid) {
  const maxq = o.sym ? 2 ** (o.bits - 1) : 2 ** o.bits - 1;
  const [lo, hi] = o.sym ? [-maxq, maxq - 1] : [0, maxq];
  return { maxq, lo, hi };
}

/**
 * One group's range (clamped to include 0), its scale s (through `rd.half`, clamped away from 0),
 * zero zp (asym, through `rd.round`) and whether s escaped its clamp (`live`).
 */
function groupScale(
  w: ArrayLike<number>,
  base: number,
  g: number,
  msv: number,
  Msv: number,
  o: Grid,
  rd: Rounding,
) {
  const { maxq } = levels(o);
  let mn = Infinity, mx = -Infinity;
  for (let k = 0; k < g; k++) (mn = Math.min(mn, w[base + k])), (mx = Math.max(mx, w[base + k]));
  const wminT = Math.min(mn, 0), wmaxT = Math.max(mx, 0);
  const a = -wminT * msv, b = wmaxT * Msv;
  if (o.sym) {
    const s0 = rd.half(((b < a ? 1 : -1) * Math.max(a, b)) / maxq);
    const s = s0 < 0 ? Math.min(s0, -THRESH) : Math.max(s0, THRESH);
    return { wminT, wmaxT, a, b, s, zp: 0, live: Math.abs(s0) >= THRESH ? 1 : 0 };
  }
  const s0 = rd.half((b + a) / maxq);
  const s = Math.max(s0, THRESH);
  return { wminT, wmaxT, a, b, s, zp: rd.round(a / s), live: s0 >= THRESH ? 1 : 0 };
}

/** ŵ [rows, cols], and per group scale s, zero zp (codes: q − lower). */
export function qdqRef(
  w: ArrayLike<number>,
  v: ArrayLike<number>,
  ms: ArrayLike<number>,
  Ms: ArrayLike<number>,
  rows: number,
  cols: number,
  o: Grid,
  rd = new Rounding(),
) {
  const g = o.groupSize, G = cols / g;
  const { lo, hi } = levels(o);
  const wq = new Float64Array(rows * cols), codes = new Float64Array(rows * cols);
  const scales = new Float64Array(rows * G), zeros = new Float64Array(rows * G);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < G; j++) {
      const base = r * cols + j * g, idx = r * G + j;
      const { s, zp } = groupScale(w, base, g, ms[idx], Ms[idx], o, rd);
      scales[idx] = s;
      zeros[idx] = zp - lo;
      for (let k = 0; k < g; k++) {
        const q = Math.min(Math.max(rd.round(w[base + k] / s + v[base + k]) + zp, lo), hi);
        wq[base + k] = s * (q - zp);
        codes[base + k] = q - lo;
      }
    }
  }
  return { wq, codes, scales, zeros };
}

/** dL/dV, dL/dms, dL/dMs for dL/dŵ = dwq, with round and the fp16 cast passed straight through. */
export function qdqBackwardRef(
  w: ArrayLike<number>,
  v: ArrayLike<number>,
  ms: ArrayLike<number>,
  Ms: ArrayLike<number>,
  dwq: ArrayLike<number>,
  rows: number,
  cols: number,
  o: Grid,
) {
  const g = o.groupSize, G = cols / g;
  const { maxq, lo, hi } = levels(o);
  const gv = new Float64Array(rows * cols),
    gms = new Float64Array(rows * G),
    gMs = new Float64Array(rows * G);
  const rd = new Rounding(); // exact rounding; the offsets it records are not used
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < G; j++) {
      const base = r * cols + j * g, idx = r * G + j;
      const { wminT, wmaxT, a, b, s, zp, live } = groupScale(w, base, g, ms[idx], Ms[idx], o, rd);
      // ŵ = s·(q − zp), q = clamp(round(w/s + v) + zp): ∂ŵ/∂v = s·in, ∂ŵ/∂s = (q − zp) − in·w/s,
      // ∂ŵ/∂zp = s·(in − 1).
      let ds = 0, dz = 0;
      for (let k = 0; k < g; k++) {
        const i = base + k;
        const c = roundHalfEven(w[i] / s + v[i]) + zp;
        const inr = c >= lo && c <= hi ? 1 : 0;
        const q = Math.min(Math.max(c, lo), hi);
        gv[i] = dwq[i] * s * inr;
        ds += dwq[i] * (q - zp - (inr * w[i]) / s);
        dz += dwq[i] * s * (inr - 1);
      }
      if (o.sym) {
        // s = ±max(a, b)/maxq: + (a wins) when b < a.
        const dm = (live * ds) / maxq;
        if (b < a) gms[idx] = dm * -wminT;
        else if (b > a) gMs[idx] = -dm * wmaxT;
        else (gms[idx] = -0.5 * dm * -wminT), (gMs[idx] = -0.5 * dm * wmaxT);
      } else {
        // s = (wmax − wmin)/maxq with wmin = wminT·ms; zp = round(−wmin/s) (∂zp/∂wmin = −1/s, ∂zp/∂s = wmin/s²).
        const wmin = wminT * ms[idx];
        const dst = live * (ds + (dz * wmin) / (s * s));
        gms[idx] = (-dst / maxq - dz / s) * wminT;
        gMs[idx] = (dst / maxq) * wmaxT;
      }
    }
  }
  return { gv, gms, gMs };
}
