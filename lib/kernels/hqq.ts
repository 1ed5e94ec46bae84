// Launcher for shaders/hqq.wgsl: one step of HQQ's zero-point solver over all groups of W,
// split into windows of whole groups when W passes one storage binding (a 7B MLP layer is 180 MB).

import type { Batch } from "../gpu/kernel.ts";
import { grid } from "../gpu/kernel.ts";
import { type Tensor, windowBinding } from "../gpu/tensor.ts";
import { checkLoopBudget, need, shapeStr, windows } from "./common.ts";

export interface HqqStepParams {
  groupSize: number;
  bits: number;
  lpNorm: number;
  beta: number;
}

/**
 * z ← the solver's zero-point update; err[j] ← Σ |W − W_r| of group j. W is [nG·g] f32 laid out
 * group by group (an axis-0 view transposed by the caller).
 */
export function hqqStep(b: Batch, w: Tensor, s: Tensor, z: Tensor, err: Tensor, p: HqqStepParams): void {
  const nG = w.numel / p.groupSize;
  need(
    Number.isInteger(nG) && s.numel === nG && z.numel === nG && err.numel === nG,
    "hqq",
    `W ${shapeStr(w)} in groups of ${p.groupSize} disagrees with ${shapeStr(s, z, err)}`,
  );
  checkLoopBudget(b.gpu, "hqq", p.groupSize, `group size ${p.groupSize}`);
  const g = p.groupSize;
  for (const win of windows(b.gpu, nG, [g * 4, 4])) {
    b.dispatch(
      { name: "hqq" },
      [
        windowBinding(w, win, g),
        windowBinding(s, win, 1),
        windowBinding(z, win, 1),
        windowBinding(err, win, 1),
        b.uniform([win.rows, g, (1 << p.bits) - 1, 0], [p.lpNorm, 1 / p.beta]),
      ],
      grid(b.gpu, win.rows, 64),
      `groups=${nG} g=${g}`,
    );
  }
}
