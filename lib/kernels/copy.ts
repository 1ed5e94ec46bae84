// Launcher for shaders/copy.wgsl: dst = src through a shader (bandwidth yardstick).

import { type Batch, grid } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { need } from "./common.ts";

export function copy(b: Batch, src: Tensor, dst: Tensor): void {
  need(
    src.numel === dst.numel && src.numel % 4 === 0,
    "copy",
    `sizes ${src.numel} → ${dst.numel} (multiple of 4)`,
  );
  const n4 = src.numel / 4;
  b.dispatch({ name: "copy" }, [src, dst, b.uniform([n4])], grid(b.gpu, n4, 256), `n=${src.numel}`);
}
