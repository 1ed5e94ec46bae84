// Launcher for shaders/matmul_naive.wgsl: the one-output-per-thread baseline for benchmarks.

import type { Batch } from "../gpu/kernel.ts";
import { empty, type Tensor } from "../gpu/tensor.ts";
import { need, shapeStr } from "./common.ts";

export function matmulNaive(b: Batch, x: Tensor, w: Tensor): Tensor {
  const [N, K] = w.shape;
  need(w.dtype === "f32" && x.numel % K === 0, "matmul_naive", `bad shapes ${shapeStr(x, w)}`);
  const M = x.numel / K;
  const y = empty(b.gpu, [M, N], "f32", "matmul_naive.out");
  b.dispatch(
    { name: "matmul_naive" },
    [x, w, y, b.uniform([M, N, K])],
    [Math.ceil(N / 16), Math.ceil(M / 16), 1],
    `M=${M} N=${N} K=${K}`,
  );
  return y;
}
