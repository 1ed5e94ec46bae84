// Launcher for shaders/sign_sgd.wgsl: p ← p − lr · sign(g) in place (optionally kept in [0, 1]).
// AutoRound's rounding offsets are one f32 per weight (180 MB for a 7B MLP layer): tensors over the
// binding limit are stepped in flat windows.

import { type Batch, grid } from "../gpu/kernel.ts";
import { type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, shapeStr, windows } from "./common.ts";

export function signSgdStep(b: Batch, param: Tensor, grad: Tensor, lr: number, clamp01: boolean): void {
  need(param.numel === grad.numel, "sign_sgd", `shapes differ: ${shapeStr(param, grad)}`);
  for (const w of windows(b.gpu, param.numel, [4])) {
    b.dispatch(
      { name: "sign_sgd" },
      [windowBinding(param, w, 1), windowBinding(grad, w, 1), b.uniform([w.rows, clamp01 ? 1 : 0], [lr])],
      grid(b.gpu, w.rows, 256),
      `n=${param.numel}`,
    );
  }
}
