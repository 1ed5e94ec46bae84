// Float64 CPU references for every kernel in shaders/: plain loops, written for clarity, not
// speed. Tests compare the GPU results against these; later, the model-level reference forward
// pass is built from the same functions. Arrays are row-major; shapes are in the comments.

import erfc from "@stdlib/math-base-special-erfc";

type Arr = ArrayLike<number>;

/** y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]) */
export function matmul(x: Arr, w: Arr, M: number, N: number, K: number, bias?: Arr): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
  }
  return y;
}

/** y[N] = w[N, K] · x[K] (+ bias) */
export const gemv = (x: Arr, w: Arr, N: number, K: number, bias?: Arr): Float64Array =>
  matmul(x, w, 1, N, K, bias);

/** out[T, D] = table[ids[t], :] */
export function embedding(ids: Arr, table: Arr, D: number): Float64Array {
  const out = new Float64Array(ids.length * D);
  for (let t = 0; t < ids.length; t++) for (let d = 0; d < D; d++) out[t * D + d] = table[ids[t] * D + d];
  return out;
}

/** RMSNorm over rows of D: x / sqrt(mean(x²) + eps) · w */
export function rmsnorm(x: Arr, w: Arr, D: number, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / D; r++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += x[r * D + d] ** 2;
    const inv = 1 / Math.sqrt(s / D + eps);
    for (let d = 0; d < D; d++) out[r * D + d] = x[r * D + d] * inv * w[d];
  }
  return out;
}

/** LayerNorm over rows of D with biased variance: (x − μ) / sqrt(σ² + eps) · w + b */
export function layernorm(x: Arr, w: Arr, b: Arr, D: number, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / D; r++) {
    let mu = 0;
    for (let d = 0; d < D; d++) mu += x[r * D + d];
    mu /= D;
    let v = 0;
    for (let d = 0; d < D; d++) v += (x[r * D + d] - mu) ** 2;
    const inv = 1 / Math.sqrt(v / D + eps);
    for (let d = 0; d < D; d++) out[r * D + d] = (x[r * D + d] - mu) * inv * w[d] + b[d];
  }
  return out;
}

/**
 * Rotate-half RoPE on x [T, H, Dh] with exact float64 angles pos·θ^(−2i/Dh), pos = pos0 + t % seq.
 * (The GPU table rounds angles to float32 as transformers does; at test positions the two agree
 * far inside the tolerance.)
 */
export function rope(
  x: Arr,
  T: number,
  H: number,
  Dh: number,
  theta: number,
  seq: number,
  pos0 = 0,
): Float64Array {
  const out = Float64Array.from(x);
  const half = Dh / 2;
  for (let t = 0; t < T; t++) {
    const pos = pos0 + (t % seq);
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < half; i++) {
        const a = pos * theta ** ((-2 * i) / Dh);
        const o = (t * H + h) * Dh + i;
        const x1 = x[o], x2 = x[o + half];
        out[o] = x1 * Math.cos(a) - x2 * Math.sin(a);
        out[o + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
      }
    }
  }
  return out;
}

/** Causal GQA attention. q, out [T, Hq·Dh]; k, v [T, Hkv·Dh]; rows are sequences of `seq`. */
export function attention(
  q: Arr,
  k: Arr,
  v: Arr,
  T: number,
  seq: number,
  Hq: number,
  Hkv: number,
  Dh: number,
) {
  const out = new Float64Array(T * Hq * Dh);
  const scale = 1 / Math.sqrt(Dh);
  for (let t = 0; t < T; t++) {
    const t0 = t - (t % seq);
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / (Hq / Hkv));
      const scores: number[] = [];
      for (let j = t0; j <= t; j++) {
        let s = 0;
        for (let d = 0; d < Dh; d++) s += q[(t * Hq + h) * Dh + d] * k[(j * Hkv + kh) * Dh + d];
        scores.push(s * scale);
      }
      const mx = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - mx));
      const z = e.reduce((a, b) => a + b, 0);
      for (let d = 0; d < Dh; d++) {
        let acc = 0;
        for (let j = t0; j <= t; j++) acc += e[j - t0] * v[(j * Hkv + kh) * Dh + d];
        out[(t * Hq + h) * Dh + d] = acc / z;
      }
    }
  }
  return out;
}

export const silu = (g: number): number => g / (1 + Math.exp(-g));
export const siluMul = (g: Arr, u: Arr): Float64Array => Float64Array.from(g, (x, i) => silu(x) * u[i]);
export const relu = (x: Arr): Float64Array => Float64Array.from(x, (v) => Math.max(v, 0));
/** Exact GELU: x · Φ(x) = x/2 · erfc(−x/√2) (erfc, not 1 + erf, keeps the negative tail exact). */
export const gelu = (x: Arr): Float64Array => Float64Array.from(x, (v) => 0.5 * v * erfc(-v / Math.SQRT2));
export const add = (a: Arr, b: Arr): Float64Array => Float64Array.from(a, (v, i) => v + b[i]);

/** Rows of V: logsumexp(row) − row[target]. */
export function tokenNll(logits: Arr, targets: Arr, V: number): Float64Array {
  const out = new Float64Array(targets.length);
  for (let r = 0; r < targets.length; r++) out[r] = logSumExp(logits, r * V, V) - logits[r * V + targets[r]];
  return out;
}

export function logSoftmax(logits: Arr, V: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let r = 0; r < logits.length / V; r++) {
    const lse = logSumExp(logits, r * V, V);
    for (let j = 0; j < V; j++) out[r * V + j] = logits[r * V + j] - lse;
  }
  return out;
}

function logSumExp(a: Arr, off: number, n: number): number {
  let mx = -Infinity;
  for (let j = 0; j < n; j++) mx = Math.max(mx, a[off + j]);
  let s = 0;
  for (let j = 0; j < n; j++) s += Math.exp(a[off + j] - mx);
  return mx + Math.log(s);
}

/** H ← a·H + b·XᵀX for X [T, D] (the Hessian update of GPTQ). */
export function hessianUpdate(
  h: ArrayLike<number>,
  x: Arr,
  T: number,
  D: number,
  a: number,
  b: number,
): Float64Array {
  const out = Float64Array.from(h, (v) => a * v);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < D; i++) {
      const xi = x[t * D + i];
      for (let j = 0; j < D; j++) out[i * D + j] += b * xi * x[t * D + j];
    }
  }
  return out;
}

/** Lower Cholesky factor of a symmetric positive-definite n×n matrix; throws naming the column. */
export function cholesky(a: Arr, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let k = 0; k < j; k++) d -= l[j * n + k] ** 2;
    if (!(d > 0)) throw new Error(`not positive definite at column ${j}`);
    l[j * n + j] = Math.sqrt(d);
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = s / l[j * n + j];
    }
  }
  return l;
}

/** Inverse of a lower-triangular n×n matrix by forward substitution (reference of trtri.wgsl). */
export function trtri(l: Arr, n: number): Float64Array {
  const inv = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    for (let i = j; i < n; i++) {
      let s = i === j ? 1 : 0;
      for (let k = j; k < i; k++) s -= l[i * n + k] * inv[k * n + j];
      inv[i * n + j] = s / l[i * n + i];
    }
  }
  return inv;
}

/** max|a − ref| / max|ref|; Infinity when a has NaN/Inf or lengths differ. */
export function relErr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (a.length !== ref.length) return Infinity;
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity;
    num = Math.max(num, Math.abs(a[i] - ref[i]));
    den = Math.max(den, Math.abs(ref[i]));
  }
  return num / Math.max(den, 1e-30);
}
