// Launcher for shaders/trtri.wgsl: X = L⁻¹ for a lower-triangular L, blocked by 16 rows.

import type { Gpu } from "../gpu/device.ts";
import type { Batch } from "../gpu/kernel.ts";
import { empty, type RowWindow, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { blockRowWindows, checkLoopBudget, need, shapeStr } from "./common.ts";

const B = 16;

/**
 * "texture" on a CPU adapter (trtri_tex.wgsl: L and X's finished rows read through textures,
 * 1.7–1.8× at n = 256 and 768 on llvmpipe, same bits) when rows copy into a texture as they are; else
 * "buffer". `variant` forces one (tests check both).
 */
export function trtriVariant(gpu: Gpu, n: number): "buffer" | "texture" {
  return gpu.isFallback && n % 64 === 0 && n <= gpu.maxTexture2D ? "texture" : "buffer";
}

/**
 * x [n, n] (zeroed by the caller) ← l⁻¹ on and below the diagonal. Matrices over the binding
 * limit run the buffer variant with x in windows of whole 16-row blocks (trtri.wgsl).
 */
export function trtri(b: Batch, l: Tensor, x: Tensor, variant = trtriVariant(b.gpu, l.shape[0])): void {
  const n = l.shape[0];
  need(
    l.shape.length === 2 && l.shape[1] === n && x.numel === n * n,
    "trtri",
    `bad shapes ${shapeStr(l, x)}`,
  );
  checkLoopBudget(b.gpu, "trtri", n + B * B, `n=${n}`);
  const wins = blockRowWindows(b.gpu, n, B);
  const tex = variant === "texture" && wins.length === 1;
  need(
    variant !== "texture" || (n % 64 === 0 && n <= b.gpu.maxTexture2D),
    "trtri",
    `texture variant cannot take n=${n}`,
  );
  const lt = tex ? b.texture({ buffer: l.buffer, offset: 0 }, n, n, "r32float", n * 4) : null;
  const xt = tex ? b.emptyTexture(n, n, "r32float") : null;
  const xv = xt?.createView();
  const partial = empty(b.gpu, [B, n], "f32", "trtri.partial");
  for (let r0 = 0; r0 < n; r0 += B) {
    const bs = Math.min(B, n - r0);
    const sizes = `n=${n} r0=${r0}`;
    const lRows = windowBinding(l, { row0: r0, rows: bs }, n);
    const own = wins.find((w) => r0 < w.row0 + w.rows)!; // the window holding block row r0
    const params = (w: RowWindow) => b.uniform([n, r0, bs, w.row0, w.rows, w === own ? 1 : 0]);
    // Block row r needs X of all earlier block rows; dispatches in one batch run in order.
    b.dispatch({ name: "trtri", entry: "diag" }, [lRows, windowBinding(x, own, n), params(own), null], [
      1,
      1,
      1,
    ], sizes);
    if (r0 > 0 && tex) {
      b.dispatch(
        { name: "trtri_tex" },
        [lt, xv!, x, b.uniform([n, r0, bs])],
        [Math.ceil(r0 / 64), 1, 1],
        sizes,
      );
    } else if (r0 > 0) {
      for (const w of wins) {
        if (w.row0 > own.row0) break;
        const kEnd = Math.min(r0, w.row0 + w.rows);
        if (w !== own && kEnd <= 0) continue;
        b.dispatch(
          { name: "trtri", entry: "row" },
          [lRows, windowBinding(x, w, n), params(w), partial],
          [Math.ceil((w === own ? r0 : kEnd) / 64), 1, 1],
          sizes,
        );
      }
    }
    // Block row r0 is final now: the texture copy is what later block rows read.
    if (xt) b.copyToTexture({ buffer: x.buffer, offset: r0 * n * 4 }, xt, r0, n, bs, n * 4);
  }
  partial.release(); // safe once encoded (pool.ts)
}
