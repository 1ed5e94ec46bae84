// Launcher for shaders/activation.wgsl: relu and gelu (erf form), in place.

import { type Batch, grid } from "../gpu/kernel.ts";
import { type Tensor, windowBinding } from "../gpu/tensor.ts";
import { windows } from "./common.ts";

function activation(b: Batch, x: Tensor, entry: "relu" | "gelu"): void {
  for (const w of windows(b.gpu, x.numel, [4])) {
    b.dispatch(
      { name: "activation", entry },
      [windowBinding(x, w, 1), b.uniform([w.rows])],
      grid(b.gpu, w.rows, 256),
      `n=${x.numel}`,
    );
  }
}

export const relu = (b: Batch, x: Tensor): void => activation(b, x, "relu");
export const gelu = (b: Batch, x: Tensor): void => activation(b, x, "gelu");
