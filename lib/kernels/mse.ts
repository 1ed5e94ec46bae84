// Launcher for shaders/mse.wgsl: the gradient of mean((y − t)²) and per-workgroup partial sums
// of the squared error (summed on the host in float64 after the batch is read back). Tensors over
// the binding limit go in windows of whole workgroups.

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, readF32, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, shapeStr, windows } from "./common.ts";

export interface MseOut {
  dy: Tensor;
  /** [workgroups] partial sums of (y − t)²; `mseValue` turns them into the mean. */
  partial: Tensor;
  n: number;
}

export function mse(b: Batch, y: Tensor, t: Tensor): MseOut {
  need(y.numel === t.numel, "mse", `shapes differ: ${shapeStr(y, t)}`);
  const n = y.numel;
  const groups = Math.ceil(n / 256);
  const dy = empty(b.gpu, y.shape, "f32", "mse.dy");
  const partial = empty(b.gpu, [groups], "f32", "mse.partial");
  // Windows of whole workgroups (256 values), so each writes its own partial sums [g0, …).
  for (const w of windows(b.gpu, groups, [256 * 4])) {
    const v = { row0: w.row0 * 256, rows: Math.min(w.rows * 256, n - w.row0 * 256) };
    b.dispatch(
      { name: "mse" },
      [
        windowBinding(y, v, 1),
        windowBinding(t, v, 1),
        windowBinding(dy, v, 1),
        partial,
        b.uniform([v.rows, w.row0], [1 / n]),
      ],
      grid(b.gpu, v.rows, 256),
      `n=${n}`,
    );
  }
  return { dy, partial, n };
}

/** The loss after the batch that computed `m` is done. */
export async function mseValue(m: MseOut): Promise<number> {
  const p = await readF32(m.partial);
  let s = 0;
  for (const v of p) s += v;
  return s / m.n;
}
