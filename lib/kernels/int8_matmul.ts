// Launcher for shaders/int8_matmul.wgsl: LLM.int8()'s mixed-precision decomposition.

import type { Batch } from "../gpu/kernel.ts";
import { empty, type RowWindow, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { checkLoopBudget, dummy, need, shapeStr, windows } from "./common.ts";
import { int8MatmulTexture, int8TextureFits, int8Variant } from "./int8_matmul_tex.ts";

export interface Int8Weight {
  N: number;
  K: number;
  cb: Tensor; // u32 [N, K / 4], int8 codes
  scb: Tensor; // f32 [N], row absmax
  bias: Tensor | null;
  seen: Tensor; // u32 [K], columns that were outliers in any call
  threshold: number;
}

/**
 * y [T, N] = LLM.int8(x [T, K]). Tensors over the adapter's binding limit are split: token rows
 * into windows (x, ca, rowstat, y), output rows into windows of cb; the outlier columns are
 * those of the whole x (every token window is scanned before any row pass).
 */
export function int8Matmul(
  b: Batch,
  x: Tensor,
  w: Int8Weight,
  variant = int8Variant(b.gpu, w.K),
): Tensor {
  const { N, K } = w;
  need(x.numel % K === 0 && K % 4 === 0, "int8_matmul", `x ${shapeStr(x)} against K=${K}`);
  const T = x.numel / K;
  checkLoopBudget(b.gpu, "int8_matmul", Math.max(T, 2 * K), `T=${T} K=${K}`);
  const flags = empty(b.gpu, [K], "u32", "int8.flags");
  const rowstat = empty(b.gpu, [T], "f32", "int8.rowstat");
  const ca = empty(b.gpu, [T, K], "i32", "int8.ca");
  const y = empty(b.gpu, [T, N], "f32", "int8.out");
  const sizes = `T=${T} K=${K} N=${N}`;
  const tws = windows(b.gpu, T, [K * 4, K * 4, 4, N * 4]);
  const params = (tw: RowWindow, nw: RowWindow | null) =>
    b.uniform([tw.rows, K, nw?.rows ?? N, w.bias ? 1 : 0, nw?.row0 ?? 0, N, tw.row0 === 0 ? 1 : 0], [
      w.threshold,
    ]);
  if (variant === "texture") {
    need(int8TextureFits(b.gpu, K), "int8_matmul", `texture variant cannot take K=${K}`);
    int8MatmulTexture(b, x, w, { flags, rowstat, ca, y }, params, sizes);
  } else {
    for (const tw of tws) {
      b.dispatch(
        { name: "int8_matmul", entry: "cols" },
        [windowBinding(x, tw, K), flags, w.seen, null, null, null, null, null, null, params(tw, null)],
        [Math.ceil(K / 64), 1, 1],
        sizes,
      );
    }
    for (const tw of tws) {
      b.dispatch(
        { name: "int8_matmul", entry: "rows" },
        [
          windowBinding(x, tw, K),
          flags,
          null,
          windowBinding(rowstat, tw, 1),
          windowBinding(ca, tw, K),
          null,
          null,
          null,
          null,
          params(tw, null),
        ],
        [Math.ceil(tw.rows / 64), 1, 1],
        sizes,
      );
    }
    for (const tw of tws) {
      for (const nw of windows(b.gpu, N, [K])) {
        b.dispatch(
          { name: "int8_matmul", entry: "mm" },
          [
            windowBinding(x, tw, K),
            flags,
            null,
            windowBinding(rowstat, tw, 1),
            windowBinding(ca, tw, K),
            windowBinding(w.cb, nw, K / 4),
            w.scb,
            w.bias ?? dummy(b.gpu),
            windowBinding(y, tw, N),
            params(tw, nw),
          ],
          [Math.ceil(nw.rows / 8), Math.ceil(tw.rows / 8), 1],
          sizes,
        );
      }
    }
  }
  flags.release(), rowstat.release(), ca.release();
  return y;
}
