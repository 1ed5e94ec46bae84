// Launcher for shaders/token_nll.wgsl: per-row NLL of target tokens, or the full log-softmax.
// Logits [T, V] are the largest activation of an eval (2048 × 32000 f32 = 250 MiB), so rows are
// windowed to fit one binding.

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, shapeStr, windows } from "./common.ts";

/** nll[r] = logsumexp(logits[r]) − logits[r, targets[r]]; targets must be < V (checked by callers). */
export function tokenNll(b: Batch, logits: Tensor, targets: Tensor, V: number): Tensor {
  need(logits.numel % V === 0, "token_nll", `logits ${shapeStr(logits)} are not rows of ${V}`);
  const rows = logits.numel / V;
  need(
    targets.dtype === "u32" && targets.numel === rows,
    "token_nll",
    `need ${rows} u32 targets, got ${shapeStr(targets)}`,
  );
  const out = empty(b.gpu, [rows], "f32", "token_nll.out");
  for (const w of windows(b.gpu, rows, [V * 4, 4])) {
    b.dispatch(
      { name: "token_nll", entry: "nll" },
      [
        windowBinding(logits, w, V),
        windowBinding(targets, w, 1),
        windowBinding(out, w, 1),
        b.uniform([w.rows, V]),
      ],
      grid(b.gpu, w.rows, 1),
      `rows=${rows} V=${V}`,
    );
  }
  return out;
}

export function logSoftmax(b: Batch, logits: Tensor, V: number): Tensor {
  need(logits.numel % V === 0, "token_nll", `logits ${shapeStr(logits)} are not rows of ${V}`);
  const rows = logits.numel / V;
  const out = empty(b.gpu, logits.shape, "f32", "log_softmax.out");
  for (const w of windows(b.gpu, rows, [V * 4])) {
    b.dispatch(
      { name: "token_nll", entry: "log_softmax" },
      [windowBinding(logits, w, V), null, windowBinding(out, w, V), b.uniform([w.rows, V])],
      grid(b.gpu, w.rows, 1),
      `rows=${rows} V=${V}`,
    );
  }
  return out;
}
