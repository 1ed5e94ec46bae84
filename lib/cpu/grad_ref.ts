// Float64 CPU references for the backward kernels (shaders/*_backward.wgsl, autoround.wgsl's
// qdq_backward): plain loops from the textbook derivatives. Tests check these against finite
// differences of the forward references in ref.ts, and the GPU kernels against these.

type Arr = ArrayLike<number>;

/** dx of rmsnorm(x)·w: r·g − x·r³·Σ(g·x)/D, g = dy·w. */
export function rmsnormBackward(x: Arr, w: Arr, dy: Arr, D: number, eps: number): Float64Array {
  const dx = new Float64Array(x.length);
  for (let r = 0; r < x.length / D; r++) {
    let s = 0, gx = 0;
    for (let d = 0; d < D; d++) (s += x[r * D + d] ** 2), (gx += dy[r * D + d] * w[d] * x[r * D + d]);
    const inv = 1 / Math.sqrt(s / D + eps);
    for (let d = 0; d < D; d++) {
      dx[r * D + d] = inv * dy[r * D + d] * w[d] - (x[r * D + d] * inv ** 3 * gx) / D;
    }
  }
  return dx;
}

/** dx of layernorm(x)·w + b: r·(g − mean g − x̂·mean(g·x̂)). */
export function layernormBackward(x: Arr, w: Arr, dy: Arr, D: number, eps: number): Float64Array {
  const dx = new Float64Array(x.length);
  for (let r = 0; r < x.length / D; r++) {
    let mu = 0;
    for (let d = 0; d < D; d++) mu += x[r * D + d] / D;
    let v = 0;
    for (let d = 0; d < D; d++) v += (x[r * D + d] - mu) ** 2 / D;
    const inv = 1 / Math.sqrt(v + eps);
    let mg = 0, mgx = 0;
    for (let d = 0; d < D; d++) {
      const g = dy[r * D + d] * w[d];
      (mg += g / D), (mgx += (g * (x[r * D + d] - mu) * inv) / D);
    }
    for (let d = 0; d < D; d++) {
      const xh = (x[r * D + d] - mu) * inv;
      dx[r * D + d] = inv * (dy[r * D + d] * w[d] - mg - xh * mgx);
    }
  }
  return dx;
}

/** dx of rotate-half RoPE: the same rotation by −angle. x [T, H, Dh]. */
export function ropeBackward(dy: Arr, T: number, H: number, Dh: number, theta: number, seq: number) {
  const dx = Float64Array.from(dy);
  const half = Dh / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < half; i++) {
        const a = (t % seq) * theta ** ((-2 * i) / Dh);
        const o = (t * H + h) * Dh + i;
        const y1 = dy[o], y2 = dy[o + half];
        dx[o] = y1 * Math.cos(a) + y2 * Math.sin(a);
        dx[o + half] = y2 * Math.cos(a) - y1 * Math.sin(a);
      }
    }
  }
  return dx;
}

/** dq, dk, dv of causal GQA attention (shapes as ref.attention), scores recomputed in float64. */
export function attentionBackward(
  q: Arr,
  k: Arr,
  v: Arr,
  dout: Arr,
  T: number,
  seq: number,
  Hq: number,
  Hkv: number,
  Dh: number,
) {
  const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
  const c = 1 / Math.sqrt(Dh);
  const qi = (t: number, h: number, d: number) => (t * Hq + h) * Dh + d;
  const ki = (j: number, h: number, d: number) => (j * Hkv + h) * Dh + d;
  for (let t = 0; t < T; t++) {
    const t0 = t - (t % seq);
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / (Hq / Hkv));
      const s: number[] = [];
      for (let j = t0; j <= t; j++) {
        let x = 0;
        for (let d = 0; d < Dh; d++) x += q[qi(t, h, d)] * k[ki(j, kh, d)];
        s.push(x * c);
      }
      const mx = Math.max(...s);
      const e = s.map((x) => Math.exp(x - mx));
      const z = e.reduce((a, b) => a + b, 0);
      const P = e.map((x) => x / z);
      const dP = P.map((_, jj) => {
        let x = 0;
        for (let d = 0; d < Dh; d++) x += dout[qi(t, h, d)] * v[ki(t0 + jj, kh, d)];
        return x;
      });
      const D = P.reduce((a, p, jj) => a + p * dP[jj], 0); // = dO·o
      for (let jj = 0; jj < P.length; jj++) {
        const j = t0 + jj, ds = P[jj] * (dP[jj] - D);
        for (let d = 0; d < Dh; d++) {
          dq[qi(t, h, d)] += c * ds * k[ki(j, kh, d)];
          dk[ki(j, kh, d)] += c * ds * q[qi(t, h, d)];
          dv[ki(j, kh, d)] += P[jj] * dout[qi(t, h, d)];
        }
      }
    }
  }
  return { dq, dk, dv };
}

/** d(gate), d(up) of silu(gate)·up. */
export function siluMulBackward(g: Arr, u: Arr, dh: Arr) {
  const dg = new Float64Array(g.length), du = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const s = 1 / (1 + Math.exp(-g[i]));
    dg[i] = dh[i] * u[i] * s * (1 + g[i] * (1 - s));
    du[i] = dh[i] * g[i] * s;
  }
  return { dg, du };
}

export const reluBackward = (x: Arr, dy: Arr): Float64Array =>
  Float64Array.from(dy, (g, i) => (x[i] > 0 ? g : 0));

/** Directional finite difference ⟨dy, (f(x + εd) − f(x − εd)) / 2ε⟩ of a float64 function. */
export function directional(f: (x: Float64Array) => ArrayLike<number>, x: Arr, d: Arr, dy: Arr, eps = 1e-5) {
  const plus = f(Float64Array.from(x, (v, i) => v + eps * d[i]));
  const minus = f(Float64Array.from(x, (v, i) => v - eps * d[i]));
  let s = 0;
  for (let i = 0; i < dy.length; i++) s += (dy[i] * (plus[i] - minus[i])) / (2 * eps);
  return s;
}

export function dot(a: Arr, b: Arr): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
