// Launcher for shaders/transpose.wgsl: x [R, C] → xᵀ [C, R].

import { type Batch } from "../gpu/kernel.ts";
import { empty, type Tensor } from "../gpu/tensor.ts";
import { need, shapeStr } from "./common.ts";

export function transpose(b: Batch, x: Tensor, R: number, C: number): Tensor {
  need(x.numel === R * C && x.dtype === "f32", "transpose", `${shapeStr(x)} is not f32 [${R}, ${C}]`);
  const out = empty(b.gpu, [C, R], "f32", "transpose.out");
  need(
    Math.ceil(R / 16) <= b.gpu.maxWorkgroupsPerDim && Math.ceil(C / 16) <= b.gpu.maxWorkgroupsPerDim,
    "transpose",
    `[${R}, ${C}] needs more than ${b.gpu.maxWorkgroupsPerDim} tiles along one side`,
  );
  b.dispatch(
    { name: "transpose" },
    [x, out, b.uniform([R, C])],
    [Math.ceil(C / 16), Math.ceil(R / 16), 1],
    `R=${R} C=${C}`,
  );
  return out;
}
