// Launcher for shaders/matmul.wgsl: y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]).
// Splits w by output rows and x/y by token rows when they exceed one storage binding.

import type { Batch } from "../gpu/kernel.ts";
import { BYTES, empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import {
  checkLoopBudget,
  dummy,
  FP_WEIGHT_DTYPES,
  need,
  rowAccessDefines,
  shapeStr,
  windows,
} from "./common.ts";

const TILE = 32; // 8×8 threads × 4×4 outputs each

export function matmul(b: Batch, x: Tensor, w: Tensor, bias?: Tensor, out?: Tensor): Tensor {
  const sizes = shapeStr(x, w);
  need(w.shape.length === 2, "matmul", `weight must be [N, K], got ${sizes}`);
  const [N, K] = w.shape;
  need(x.numel % K === 0 && x.dtype === "f32", "matmul", `x must be f32 [M, ${K}], got ${sizes}`);
  need(
    FP_WEIGHT_DTYPES.includes(w.dtype),
    "matmul",
    `weight dtype ${w.dtype} unsupported`,
  );
  need(!bias || bias.numel === N, "matmul", `bias must have ${N} values, got ${bias?.numel}`);
  const M = x.numel / K;
  const y = out ?? empty(b.gpu, [M, N], "f32", "matmul.out");
  need(y.numel === M * N, "matmul", `out must be [${M}, ${N}], got [${y.shape}]`);
  checkLoopBudget(b.gpu, "matmul", Math.ceil(K / 4) + 4, `K=${K}`);
  const defines = rowAccessDefines(K, w.dtype);
  for (const mw of windows(b.gpu, M, [K * 4, N * 4])) {
    for (const nw of windows(b.gpu, N, [K * BYTES[w.dtype]])) {
      const params = b.uniform([mw.rows, nw.rows, K, N, nw.row0, bias ? 1 : 0]);
      b.dispatch(
        { name: "matmul", defines },
        [
          windowBinding(x, mw, K),
          windowBinding(w, nw, K),
          bias ?? dummy(b.gpu),
          windowBinding(y, mw, N),
          params,
        ],
        [Math.ceil(nw.rows / TILE), Math.ceil(mw.rows / TILE), 1],
        `${sizes} M=${M} N=${N} K=${K}`,
      );
    }
  }
  return y;
}
