// Launcher for shaders/gather_cols.wgsl: out[m, j] = x[m, perm[j]].

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, type Tensor } from "../gpu/tensor.ts";
import { need, shapeStr } from "./common.ts";

export function gatherCols(b: Batch, x: Tensor, perm: Tensor): Tensor {
  const K = perm.numel;
  need(
    perm.dtype === "u32" && x.numel % K === 0,
    "gather_cols",
    `x ${shapeStr(x, perm)} is not rows of ${K}`,
  );
  const M = x.numel / K;
  const out = empty(b.gpu, x.shape, "f32", "gather_cols.out");
  b.dispatch(
    { name: "gather_cols" },
    [x, perm, out, b.uniform([M, K])],
    grid(b.gpu, M * K, 256),
    `M=${M} K=${K}`,
  );
  return out;
}
