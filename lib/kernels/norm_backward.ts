// Launcher for shaders/norm_backward.wgsl (entries rmsnorm, layernorm): the input gradient of a
// row norm with frozen weights, rows split across bindings like the forward kernels.

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, shapeStr, windows } from "./common.ts";

function normBackward(
  entry: "rmsnorm" | "layernorm",
  b: Batch,
  x: Tensor,
  w: Tensor,
  dy: Tensor,
  eps: number,
): Tensor {
  const name = `norm_backward:${entry}`;
  const D = w.numel;
  need(x.numel % D === 0 && dy.numel === x.numel, name, `x, dy ${shapeStr(x, dy)} are not rows of ${D}`);
  const rows = x.numel / D;
  const dx = empty(b.gpu, x.shape, "f32", `${name}.dx`);
  for (const win of windows(b.gpu, rows, [D * 4])) {
    b.dispatch(
      { name: "norm_backward", entry },
      [
        windowBinding(x, win, D),
        w,
        windowBinding(dy, win, D),
        windowBinding(dx, win, D),
        b.uniform([win.rows, D], [eps]),
      ],
      grid(b.gpu, win.rows, 1),
      `rows=${rows} D=${D}`,
    );
  }
  return dx;
}

/** dL/dx of y = rmsnorm(x) · w given dL/dy, x [T, D]. */
export const rmsnormBackward = (b: Batch, x: Tensor, w: Tensor, dy: Tensor, eps: number): Tensor =>
  normBackward("rmsnorm", b, x, w, dy, eps);

/** dL/dx of y = layernorm(x) · w + bias given dL/dy (the bias does not enter dx). */
export const layernormBackward = (b: Batch, x: Tensor, w: Tensor, dy: Tensor, eps: number): Tensor =>
  normBackward("layernorm", b, x, w, dy, eps);
