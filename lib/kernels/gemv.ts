// Launcher for shaders/gemv.wgsl: y[N] = w[N, K] · x[K] (+ bias). Splits w by rows if needed.

import { type Batch, grid } from "../gpu/kernel.ts";
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

export function gemv(b: Batch, x: Tensor, w: Tensor, bias?: Tensor, out?: Tensor): Tensor {
  const sizes = shapeStr(x, w);
  need(w.shape.length === 2, "gemv", `weight must be [N, K], got ${sizes}`);
  const [N, K] = w.shape;
  need(x.numel === K && x.dtype === "f32", "gemv", `x must be f32 [${K}], got ${sizes}`);
  need(
    FP_WEIGHT_DTYPES.includes(w.dtype),
    "gemv",
    `weight dtype ${w.dtype} unsupported`,
  );
  need(!bias || bias.numel === N, "gemv", `bias must have ${N} values`);
  const y = out ?? empty(b.gpu, [N], "f32", "gemv.out");
  need(y.numel === N, "gemv", `out must have ${N} values`);
  checkLoopBudget(b.gpu, "gemv", Math.ceil(K / 4) + 4, `K=${K}`);
  const defines = rowAccessDefines(K, w.dtype);
  for (const nw of windows(b.gpu, N, [K * BYTES[w.dtype]])) {
    b.dispatch(
      { name: "gemv", defines },
      [x, windowBinding(w, nw, K), bias ?? dummy(b.gpu), y, b.uniform([nw.rows, K, nw.row0, bias ? 1 : 0])],
      grid(b.gpu, nw.rows, 64),
      `${sizes} N=${N} K=${K}`,
    );
  }
  return y;
}
