// Launcher for shaders/matmul_wg.wgsl: y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]) with 64×64 tiles
// staged in workgroup memory (hardware adapters; the tuner measures it beside "tiled"). Windows as
// matmul.ts: w by output rows, x/y by token rows, past one storage binding.

import type { Batch } from "../gpu/kernel.ts";
import { BYTES, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { dummy, rowAccessDefines, windows } from "./common.ts";

/** The workgroup-tiled GEMM reads x and w as vec4s only. */
export function workgroupMatmulFits(K: number): boolean {
  return K % 4 === 0;
}

export function matmulWorkgroup(
  b: Batch,
  x: Tensor,
  w: Tensor,
  bias: Tensor | undefined,
  y: Tensor,
  sizes: string,
): void {
  const [N, K] = w.shape;
  const M = x.numel / K;
  const defines = rowAccessDefines(K, w.dtype);
  for (const mw of windows(b.gpu, M, [K * 4, N * 4])) {
    for (const nw of windows(b.gpu, N, [K * BYTES[w.dtype]])) {
      b.dispatch(
        { name: "matmul_wg", defines },
        [
          windowBinding(x, mw, K),
          windowBinding(w, nw, K),
          bias ?? dummy(b.gpu),
          windowBinding(y, mw, N),
          b.uniform([mw.rows, nw.rows, K, N, nw.row0, bias ? 1 : 0]),
        ],
        [Math.ceil(nw.rows / 64), Math.ceil(mw.rows / 64), 1],
        sizes,
      );
    }
  }
}
