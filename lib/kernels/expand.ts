// Launcher for shaders/expand.wgsl: a 16-bit float tensor (f16/bf16, packed) → a new f32 tensor
// of the same shape, split into windows that fit one binding. CPU reference: f16ToF32/bf16ToF32.

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, shapeStr, windows } from "./common.ts";

export function expandToF32(b: Batch, x: Tensor, label = `${x.label}.f32`): Tensor {
  need(x.dtype === "f16" || x.dtype === "bf16", "expand", `expects f16/bf16, got ${x.dtype} ${shapeStr(x)}`);
  const out = empty(b.gpu, x.shape, "f32", label);
  const T1 = x.dtype === "f16"
    ? "unpack2x16float(src[i / 2u])[i % 2u]"
    : "bitcast<f32>(select(src[i / 2u] << 16u, src[i / 2u] & 0xffff0000u, (i % 2u) == 1u))";
  // Windows of an even number of elements keep each source window on whole u32 words.
  for (const w of windows(b.gpu, Math.ceil(x.numel / 2), [4, 8])) {
    const e0 = w.row0 * 2, n = Math.min(w.rows * 2, x.numel - e0);
    b.dispatch(
      { name: "expand", defines: { T1 } },
      [
        windowBinding(x, { row0: e0, rows: n }, 1),
        windowBinding(out, { row0: e0, rows: n }, 1),
        b.uniform([n]),
      ],
      grid(b.gpu, n, 256),
      `${shapeStr(x)}`,
    );
  }
  return out;
}
