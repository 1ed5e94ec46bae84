// Launcher for shaders/add.wgsl: a += b (the residual stream update).

import { type Batch, grid } from "../gpu/kernel.ts";
import { type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, shapeStr, windows } from "./common.ts";

export function addInPlace(b: Batch, a: Tensor, x: Tensor): void {
  need(a.numel === x.numel, "add", `shapes differ: ${shapeStr(a, x)}`);
  for (const w of windows(b.gpu, a.numel, [4])) {
    b.dispatch(
      { name: "add" },
      [windowBinding(a, w, 1), windowBinding(x, w, 1), b.uniform([w.rows])],
      grid(b.gpu, w.rows, 256),
      `n=${a.numel}`,
    );
  }
}
