// Launcher for shaders/trtri.wgsl: X = L⁻¹ for a lower-triangular L, blocked by 16 rows.

import type { Batch } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { checkLoopBudget, need, shapeStr } from "./common.ts";

const B = 16;

/** x [n, n] (zeroed by the caller) ← l⁻¹ on and below the diagonal. */
export function trtri(b: Batch, l: Tensor, x: Tensor): void {
  const n = l.shape[0];
  need(
    l.shape.length === 2 && l.shape[1] === n && x.numel === n * n,
    "trtri",
    `bad shapes ${shapeStr(l, x)}`,
  );
  checkLoopBudget(b.gpu, "trtri", n + B * B, `n=${n}`);
  for (let r0 = 0; r0 < n; r0 += B) {
    const bs = Math.min(B, n - r0);
    const params = b.uniform([n, r0, bs]);
    // Block row r needs X of all earlier block rows; dispatches in one batch run in order.
    b.dispatch({ name: "trtri", entry: "diag" }, [l, x, params], [1, 1, 1], `n=${n} r0=${r0}`);
    if (r0 > 0) {
      b.dispatch(
        { name: "trtri", entry: "row" },
        [l, x, params],
        [Math.ceil(r0 / 64), 1, 1],
        `n=${n} r0=${r0}`,
      );
    }
  }
}
