// Launchers for the elementwise backward kernels: shaders/silu_mul_backward.wgsl (SwiGLU) and
// shaders/relu_backward.wgsl, split into windows of one binding each like the forward kernels.

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, shapeStr, windows } from "./common.ts";

/** dL/dgate, dL/dup of h = silu(gate) · up given dL/dh. */
export function siluMulBackward(b: Batch, gate: Tensor, up: Tensor, dh: Tensor): [Tensor, Tensor] {
  need(
    gate.numel === up.numel && dh.numel === up.numel,
    "silu_mul_backward",
    `shapes differ: ${shapeStr(gate, up, dh)}`,
  );
  const dg = empty(b.gpu, gate.shape, "f32", "silu_mul.dgate");
  const du = empty(b.gpu, up.shape, "f32", "silu_mul.dup");
  for (const w of windows(b.gpu, gate.numel, [4])) {
    const win = (t: Tensor) => windowBinding(t, w, 1);
    b.dispatch(
      { name: "silu_mul_backward" },
      [win(gate), win(up), win(dh), win(dg), win(du), b.uniform([w.rows])],
      grid(b.gpu, w.rows, 256),
      `n=${gate.numel}`,
    );
  }
  return [dg, du];
}

/** dL/dx of y = relu(x) given the output y and dL/dy. */
export function reluBackward(b: Batch, y: Tensor, dy: Tensor): Tensor {
  need(y.numel === dy.numel, "relu_backward", `shapes differ: ${shapeStr(y, dy)}`);
  const dx = empty(b.gpu, y.shape, "f32", "relu.dx");
  for (const w of windows(b.gpu, y.numel, [4])) {
    const win = (t: Tensor) => windowBinding(t, w, 1);
    b.dispatch(
      { name: "relu_backward" },
      [win(y), win(dy), win(dx), b.uniform([w.rows])],
      grid(b.gpu, w.rows, 256),
      `n=${y.numel}`,
    );
  }
  return dx;
}
