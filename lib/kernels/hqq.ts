// Launcher for shaders/hqq.wgsl: one step of HQQ's zero-point solver over all groups of W.

import type { Batch } from "../gpu/kernel.ts";
import { grid } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { checkLoopBudget, need, shapeStr } from "./common.ts";

export interface HqqStepParams {
  groupSize: number;
  /** 1: groups of consecutive elements; 0: W viewed as [g, numel / g], groups down its columns. */
  axis: 0 | 1;
  bits: number;
  lpNorm: number;
  beta: number;
}

/** z ← the solver's zero-point update; err[j] ← Σ |W − W_r| of group j. W is [numel] f32. */
export function hqqStep(b: Batch, w: Tensor, s: Tensor, z: Tensor, err: Tensor, p: HqqStepParams): void {
  const nG = w.numel / p.groupSize;
  need(
    Number.isInteger(nG) && s.numel === nG && z.numel === nG && err.numel === nG,
    "hqq",
    `W ${shapeStr(w)} in groups of ${p.groupSize} disagrees with ${shapeStr(s, z, err)}`,
  );
  checkLoopBudget(b.gpu, "hqq", p.groupSize, `group size ${p.groupSize}`);
  b.dispatch(
    { name: "hqq" },
    [w, s, z, err, b.uniform([nG, p.groupSize, p.axis, (1 << p.bits) - 1], [p.lpNorm, 1 / p.beta])],
    grid(b.gpu, nG, 64),
    `groups=${nG} g=${p.groupSize} axis=${p.axis}`,
  );
}
