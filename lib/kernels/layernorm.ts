// Launcher for shaders/layernorm.wgsl: out = (x − mean) / std · w + bias over the last dimension.

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, shapeStr, windows } from "./common.ts";

export function layernorm(b: Batch, x: Tensor, w: Tensor, bias: Tensor, eps: number, out?: Tensor): Tensor {
  const D = w.numel;
  need(x.numel % D === 0 && bias.numel === D, "layernorm", `x ${shapeStr(x, w, bias)} is not rows of ${D}`);
  const rows = x.numel / D;
  const y = out ?? empty(b.gpu, x.shape, "f32", "layernorm.out");
  for (const win of windows(b.gpu, rows, [D * 4])) {
    b.dispatch(
      { name: "layernorm" },
      [windowBinding(x, win, D), w, bias, windowBinding(y, win, D), b.uniform([win.rows, D], [eps])],
      grid(b.gpu, win.rows, 1),
      `rows=${rows} D=${D}`,
    );
  }
  return y;
}
