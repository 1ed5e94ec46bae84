// Launcher for shaders/gather_cols.wgsl: out[m, j] = x[m, perm[j]] (rows windowed past one binding).

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, shapeStr, windows } from "./common.ts";

export function gatherCols(b: Batch, x: Tensor, perm: Tensor): Tensor {
  const K = perm.numel;
  need(
    perm.dtype === "u32" && x.numel % K === 0,
    "gather_cols",
    `x ${shapeStr(x, perm)} is not rows of ${K}`,
  );
  const M = x.numel / K;
  const out = empty(b.gpu, x.shape, "f32", "gather_cols.out");
  for (const w of windows(b.gpu, M, [K * 4])) {
    b.dispatch(
      { name: "gather_cols" },
      [windowBinding(x, w, K), perm, windowBinding(out, w, K), b.uniform([w.rows, K])],
      grid(b.gpu, w.rows * K, 256),
      `M=${M} K=${K}`,
    );
  }
  return out;
}
