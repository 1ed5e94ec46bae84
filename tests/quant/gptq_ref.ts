// GPTQ for one layer in float64 on the CPU, written to be read beside the paper and the
// reference's fasterquant(): the yardstick the GPU implementation will be tested against.
//
//   W [rows = out, cols = in], H [in, in] = (2/n) Σ x xᵀ.
//   1. per-channel params from the whole W (group size -1); dead columns (H_jj = 0): H_jj = 1, W[:, j] = 0
//   2. static groups: params of every group from this W; act-order: columns by descending diag H
//   3. damp: H_jj += percdamp · mean(diag H); U = upper Cholesky factor of H⁻¹
//   4. for each block of `blocksize` columns, for each column i in it:
//        (dynamic groups) at a group start, params from W[:, i : i + g] as W stood at the block start
//        q = quant(w_i);  err = (w_i − q) / U_ii;  W_block[:, i:] −= err · U[i, i:]
//      then the columns after the block: W[:, i2:] −= Err · U[i1:i2, i2:]
// Scale/zero follow the shared quantizer (lib/quant/uniform.ts), like the reference's find_params.

import * as ref from "../../lib/cpu/ref.ts";
import { groupParams, quantizeValue, type UniformOptions } from "../../lib/quant/uniform.ts";

export interface GptqRefOptions extends UniformOptions {
  actOrder: boolean;
  staticGroups: boolean;
  percdamp: number;
  blocksize: number;
}

export interface GptqRefResult {
  codes: Uint8Array; // [out, in], original column order
  scales: Float64Array; // [out, G]
  zeros: Float64Array; // [out, G]
  gIdx: Int32Array; // [in]
  /** Codes whose w / scale lay within 1e-4 of a rounding tie (x.5): float32 may round them either way. */
  ties: Uint8Array; // [out, in]
  /** Σ over rows and columns of (w − q)² / U_jj², the reference's Losses. */
  loss: number;
}

/** Upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU), as torch.cholesky(cholesky_inverse(cholesky(H)), upper=True). */
export function upperCholeskyOfInverse(h: Float64Array, n: number): Float64Array {
  const linv = ref.trtri(ref.cholesky(h, n), n); // H⁻¹ = L⁻ᵀ L⁻¹
  const hinv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = Math.max(i, j); k < n; k++) s += linv[k * n + i] * linv[k * n + j];
      hinv[i * n + j] = s;
    }
  }
  const lo = ref.cholesky(hinv, n); // H⁻¹ = lo loᵀ, so U = loᵀ
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) u[i * n + j] = lo[j * n + i];
  return u;
}

export function gptqRef(
  w0: ArrayLike<number>,
  h0: ArrayLike<number>,
  rows: number,
  cols: number,
  o: GptqRefOptions,
): GptqRefResult {
  const maxq = (1 << o.bits) - 1;
  const g = o.groupSize === -1 ? cols : o.groupSize;
  const G = cols / g;
  const W = Float64Array.from(w0), H = Float64Array.from(h0);
  const params = (cols0: number, width: number) =>
    Array.from({ length: rows }, (_, r) => {
      let min = Infinity, max = -Infinity;
      for (let k = cols0; k < cols0 + width; k++) {
        (min = Math.min(min, W[r * cols + k])), (max = Math.max(max, W[r * cols + k]));
      }
      return groupParams(min, max, o);
    });
  let current = params(0, cols); // per-channel, before dead columns are zeroed (as the reference)
  for (let j = 0; j < cols; j++) {
    if (H[j * cols + j] === 0) {
      H[j * cols + j] = 1;
      for (let r = 0; r < rows; r++) W[r * cols + j] = 0;
    }
  }
  const staticParams = o.staticGroups ? Array.from({ length: G }, (_, q) => params(q * g, g)) : [];
  // Column order: descending diag H for act-order (stable for ties).
  const perm = Array.from({ length: cols }, (_, j) => j);
  if (o.actOrder) perm.sort((a, b) => H[b * cols + b] - H[a * cols + a] || a - b);
  const Wp = new Float64Array(rows * cols), Hp = new Float64Array(cols * cols);
  for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) Wp[r * cols + j] = W[r * cols + perm[j]];
  for (let i = 0; i < cols; i++) {
    for (let j = 0; j < cols; j++) Hp[i * cols + j] = H[perm[i] * cols + perm[j]];
  }
  let mean = 0;
  for (let j = 0; j < cols; j++) mean += Hp[j * cols + j] / cols;
  for (let j = 0; j < cols; j++) Hp[j * cols + j] += o.percdamp * mean;
  const U = upperCholeskyOfInverse(Hp, cols);

  const codes = new Uint8Array(rows * cols),
    scales = new Float64Array(rows * G),
    zeros = new Float64Array(rows * G);
  const gIdx = new Int32Array(cols);
  const ties = new Uint8Array(rows * cols);
  let loss = 0;
  for (let i1 = 0; i1 < cols; i1 += o.blocksize) {
    const i2 = Math.min(i1 + o.blocksize, cols);
    const W1 = new Float64Array(rows * (i2 - i1)), Err = new Float64Array(rows * (i2 - i1));
    for (let r = 0; r < rows; r++) {
      for (let j = i1; j < i2; j++) W1[r * (i2 - i1) + j - i1] = Wp[r * cols + j];
    }
    for (let i = i1; i < i2; i++) {
      const orig = perm[i];
      let group: number;
      if (o.staticGroups) {
        group = Math.floor(orig / g);
        current = staticParams[group];
      } else {
        group = Math.floor(i / g);
        if (o.groupSize !== -1 && i % g === 0) {
          current = Array.from({ length: rows }, (_, r) => groupFromWp(Wp, r, cols, i, g, o));
        }
      }
      gIdx[orig] = group;
      const d = U[i * cols + i];
      for (let r = 0; r < rows; r++) {
        const { scale, zero } = current[r];
        const w = W1[r * (i2 - i1) + i - i1];
        const code = quantizeValue(w, scale, zero, maxq);
        const q = scale * (code - zero);
        codes[r * cols + orig] = code;
        const t = w / scale - Math.floor(w / scale);
        ties[r * cols + orig] = Math.abs(t - 0.5) < 1e-4 ? 1 : 0;
        scales[r * G + group] = scale;
        zeros[r * G + group] = zero;
        const err = (w - q) / d;
        loss += ((w - q) / d) ** 2;
        for (let j = i; j < i2; j++) W1[r * (i2 - i1) + j - i1] -= err * U[i * cols + j];
        Err[r * (i2 - i1) + i - i1] = err;
      }
    }
    for (let r = 0; r < rows; r++) {
      for (let j = i2; j < cols; j++) {
        let s = 0;
        for (let k = i1; k < i2; k++) s += Err[r * (i2 - i1) + k - i1] * U[k * cols + j];
        Wp[r * cols + j] -= s;
      }
    }
  }
  return { codes, scales, zeros, gIdx, ties, loss: loss / 2 };
}

/** Params of one row's group from the permuted W as it stood at the start of the current block. */
function groupFromWp(Wp: Float64Array, r: number, cols: number, start: number, g: number, o: UniformOptions) {
  let min = Infinity, max = -Infinity;
  for (let k = start; k < start + g; k++) {
    (min = Math.min(min, Wp[r * cols + k])), (max = Math.max(max, Wp[r * cols + k]));
  }
  return groupParams(min, max, o);
}
