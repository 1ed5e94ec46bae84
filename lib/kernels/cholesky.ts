// Launcher for shaders/cholesky.wgsl: in-place blocked Cholesky (lower triangle) on the GPU.
// GPTQ factors its damped Hessian with it. A matrix over the adapter's storage-binding limit
// (K = 11008: 485 MB against llvmpipe's 128 MiB) is bound by windows of whole 16-row blocks;
// the current block column goes through a small [n, 16] panel buffer, so any row can read it.

import type { Batch } from "../gpu/kernel.ts";
import { empty, type RowWindow, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { blockRowWindows, need, shapeStr } from "./common.ts";

const B = 16;

/**
 * A [n, n] ← L (lower triangle; the strict upper triangle keeps A's values). `status` (u32 [1],
 * zeroed by the caller) receives 1 + the column of the first non-positive pivot, 0 on success.
 */
export function cholesky(b: Batch, a: Tensor, status: Tensor): void {
  const n = a.shape[0];
  need(
    a.shape.length === 2 && a.shape[1] === n && a.dtype === "f32",
    "cholesky",
    `A must be square f32, got ${shapeStr(a)}`,
  );
  need(status.dtype === "u32" && status.numel >= 1, "cholesky", "status must be u32 [1]");
  const wins = blockRowWindows(b.gpu, n, B);
  const pnl = empty(b.gpu, [n, B], "f32", "cholesky.panel");
  const bind = (w: RowWindow) => windowBinding(a, w, n);
  for (let k0 = 0; k0 < n; k0 += B) {
    const bs = Math.min(B, n - k0);
    const sizes = `n=${n} k0=${k0}`;
    const own = wins.find((w) => k0 < w.row0 + w.rows)!; // the window holding block k0
    const params = (w: RowWindow) => b.uniform([n, k0, bs, w.row0, w.rows]);
    b.dispatch({ name: "cholesky", entry: "diag" }, [bind(own), status, params(own), pnl], [1, 1, 1], sizes);
    const t0 = k0 + bs;
    if (t0 >= n) break;
    for (const w of wins) {
      const end = w.row0 + w.rows;
      if (end <= t0) continue;
      const first = Math.max(t0, w.row0), rows = end - first;
      b.dispatch({ name: "cholesky", entry: "panel" }, [bind(w), null, params(w), pnl], [
        Math.ceil(rows / 64),
        1,
        1,
      ], sizes);
    }
    for (const w of wins) {
      const end = w.row0 + w.rows;
      if (end <= t0) continue;
      const first = Math.max(t0, w.row0);
      b.dispatch({ name: "cholesky", entry: "update" }, [bind(w), null, params(w), pnl], [
        Math.ceil(Math.ceil((end - t0) / 4) / 8),
        Math.ceil(Math.ceil((end - first) / 4) / 8),
        1,
      ], sizes);
    }
  }
  pnl.release(); // safe once encoded (pool.ts)
}
