// Launcher for shaders/silu_mul.wgsl: out = silu(gate) · up.

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, shapeStr, windows } from "./common.ts";

export function siluMul(b: Batch, gate: Tensor, up: Tensor): Tensor {
  need(gate.numel === up.numel, "silu_mul", `gate and up differ: ${shapeStr(gate, up)}`);
  const out = empty(b.gpu, gate.shape, "f32", "silu_mul.out");
  for (const w of windows(b.gpu, gate.numel, [4])) {
    b.dispatch(
      { name: "silu_mul" },
      [windowBinding(gate, w, 1), windowBinding(up, w, 1), windowBinding(out, w, 1), b.uniform([w.rows])],
      grid(b.gpu, w.rows, 256),
      `n=${gate.numel}`,
    );
  }
  return out;
}
