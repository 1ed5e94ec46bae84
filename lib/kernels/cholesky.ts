// Launcher for shaders/cholesky.wgsl: in-place blocked Cholesky (lower triangle) on the GPU.
// GPTQ factors its damped Hessian with it.

import type { Batch } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { need, shapeStr } from "./common.ts";

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
  for (let k0 = 0; k0 < n; k0 += B) {
    const bs = Math.min(B, n - k0);
    const params = b.uniform([n, k0, bs]);
    const sizes = `n=${n} k0=${k0}`;
    b.dispatch({ name: "cholesky", entry: "diag" }, [a, status, params], [1, 1, 1], sizes);
    const rest = n - k0 - bs;
    if (rest === 0) break;
    b.dispatch({ name: "cholesky", entry: "panel" }, [a, null, params], [Math.ceil(rest / 64), 1, 1], sizes);
    const tiles = Math.ceil(rest / 4);
    b.dispatch({ name: "cholesky", entry: "update" }, [a, null, params], [
      Math.ceil(tiles / 8),
      Math.ceil(tiles / 8),
      1,
    ], sizes);
  }
}
