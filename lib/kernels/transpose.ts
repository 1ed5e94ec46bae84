// Launcher for shaders/transpose.wgsl: x [R, C] → xᵀ [C, R]. A tensor over the binding limit
// (AutoRound transposes a layer's f32 weight: 180 MB for a 7B MLP) goes in blocks: rows
// [r0, r0 + rw) of x — a contiguous window — land in columns [r0, r0 + rw) of rows [c0, c0 + cw)
// of out, a window of out's rows.

import { type Batch } from "../gpu/kernel.ts";
import { empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, shapeStr, windows } from "./common.ts";

export function transpose(b: Batch, x: Tensor, R: number, C: number): Tensor {
  need(x.numel === R * C && x.dtype === "f32", "transpose", `${shapeStr(x)} is not f32 [${R}, ${C}]`);
  const out = empty(b.gpu, [C, R], "f32", "transpose.out");
  for (const rw of windows(b.gpu, R, [C * 4])) {
    for (const cw of windows(b.gpu, C, [R * 4])) {
      need(
        Math.ceil(rw.rows / 16) <= b.gpu.maxWorkgroupsPerDim &&
          Math.ceil(cw.rows / 16) <= b.gpu.maxWorkgroupsPerDim,
        "transpose",
        `[${R}, ${C}] needs more than ${b.gpu.maxWorkgroupsPerDim} tiles along one side`,
      );
      b.dispatch(
        { name: "transpose" },
        [
          windowBinding(x, rw, C),
          windowBinding(out, cw, R),
          b.uniform([rw.rows, cw.rows, R, C, rw.row0, cw.row0]),
        ],
        [Math.ceil(cw.rows / 16), Math.ceil(rw.rows / 16), 1],
        `R=${R} C=${C}`,
      );
    }
  }
  return out;
}
