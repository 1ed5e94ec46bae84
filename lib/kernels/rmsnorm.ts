// Launcher for shaders/rmsnorm.wgsl: out = x / rms(x) · w over the last dimension.

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, shapeStr, windows } from "./common.ts";

export function rmsnorm(b: Batch, x: Tensor, w: Tensor, eps: number, out?: Tensor): Tensor {
  const D = w.numel;
  need(x.numel % D === 0, "rmsnorm", `x ${shapeStr(x)} is not rows of ${D}`);
  const rows = x.numel / D;
  const y = out ?? empty(b.gpu, x.shape, "f32", "rmsnorm.out");
  for (const win of windows(b.gpu, rows, [D * 4])) {
    b.dispatch(
      { name: "rmsnorm" },
      [windowBinding(x, win, D), w, windowBinding(y, win, D), b.uniform([win.rows, D], [eps])],
      grid(b.gpu, win.rows, 1),
      `rows=${rows} D=${D}`,
    );
  }
  return y;
}
