// Launcher for shaders/sign_sgd.wgsl: p ← p − lr · sign(g) in place (optionally kept in [0, 1]).

import { type Batch, grid } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { need, shapeStr } from "./common.ts";

export function signSgdStep(b: Batch, param: Tensor, grad: Tensor, lr: number, clamp01: boolean): void {
  need(param.numel === grad.numel, "sign_sgd", `shapes differ: ${shapeStr(param, grad)}`);
  b.dispatch(
    { name: "sign_sgd" },
    [param, grad, b.uniform([param.numel, clamp01 ? 1 : 0], [lr])],
    grid(b.gpu, param.numel, 256),
    `n=${param.numel}`,
  );
}
