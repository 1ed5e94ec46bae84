// Launcher for shaders/rmsnorm.wgsl: out = x / rms(x) · w over the last dimension.

import { type Batch, grid } from "../gpu/kernel.ts";
import type { Gpu } from "../gpu/device.ts";
import { empty, rowWindows, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, rowPartials, shapeStr, windows } from "./common.ts";

/**
 * "texture" (rmsnorm_tex.wgsl, a thread per row, same bits) on a CPU adapter when rows are
 * 64-multiples (256-byte texture rows): on llvmpipe 9× at 512×256, 13× at 2048×256, 4.4× at
 * 512×4096 (the 64-thread workgroup pays for barriers and lane-by-lane loads); else "workgroup".
 */
export function rmsnormVariant(gpu: Gpu, D: number): "workgroup" | "texture" {
  return gpu.isFallback && texFits(gpu, D) ? "texture" : "workgroup";
}

const texFits = (gpu: Gpu, D: number) => D % 64 === 0 && D / 4 <= gpu.maxTexture2D;

/** The partials s{l} (l = element position mod 64), their sums per 16 texels, and the tree. */
function texCode(): { DECL: string; SUM: string; TREE: string } {
  return {
    DECL: rowPartials.decl("s", "0.0"),
    SUM: rowPartials.pass("xt", (v, l) => `s${l} += ${v} * ${v};`),
    TREE: rowPartials.tree((l, h) => `s${l} += s${l + h};`),
  };
}

export function rmsnorm(
  b: Batch,
  x: Tensor,
  w: Tensor,
  eps: number,
  out?: Tensor,
  variant?: "workgroup" | "texture",
): Tensor {
  const D = w.numel;
  need(x.numel % D === 0, "rmsnorm", `x ${shapeStr(x)} is not rows of ${D}`);
  const rows = x.numel / D;
  const y = out ?? empty(b.gpu, x.shape, "f32", "rmsnorm.out");
  const v = variant ?? rmsnormVariant(b.gpu, D);
  if (v === "texture") {
    need(texFits(b.gpu, D), "rmsnorm", `texture variant cannot take D=${D}`);
    const wt = b.texture({ buffer: w.buffer, offset: 0 }, D / 4, 1, "rgba32float", D * 4);
    // Row windows: y is one binding; x is copied (texture height at most maxTexture2D).
    const cap = Math.min(b.gpu.maxBinding, b.gpu.maxTexture2D * D * 4);
    for (const win of rowWindows(rows, [D * 4], cap, b.gpu.offsetAlign)) {
      const xt = b.texture(
        { buffer: x.buffer, offset: win.row0 * D * 4 },
        D / 4,
        win.rows,
        "rgba32float",
        D * 4,
      );
      b.dispatch(
        { name: "rmsnorm_tex", defines: texCode() },
        [xt, wt, windowBinding(y, win, D), b.uniform([win.rows, D], [eps])],
        [Math.ceil(win.rows / 8), 1, 1],
        `rows=${rows} D=${D}`,
      );
    }
    return y;
  }
  for (const win of windows(b.gpu, rows, [D * 4])) {
    b.dispatch(
      { name: "rmsnorm" },
      [windowBinding(x, win, D), w, windowBinding(y, win, D), b.uniform([win.rows, D], [eps])],
      grid(b.gpu, win.rows, 1),
      `rows=${rows} D=${D}`,
    );
  }
  return y;
}
