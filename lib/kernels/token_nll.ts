// Launcher for shaders/token_nll.wgsl: per-row NLL of target tokens, or the full log-softmax.
// Logits [T, V] are the largest activation of an eval (2048 × 32000 f32 = 250 MiB), so rows are
// windowed to fit one binding.

import { type Batch, grid } from "../gpu/kernel.ts";
import type { Gpu } from "../gpu/device.ts";
import { empty, rowWindows, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { need, rowPartials, shapeStr, windows } from "./common.ts";

/**
 * "texture" (token_nll_tex.wgsl: a thread per row, same bits) on a CPU adapter when rows are
 * 64-multiples that fit a texture's width; else "workgroup" (token_nll.wgsl).
 */
export function tokenNllVariant(gpu: Gpu, V: number): "workgroup" | "texture" {
  return gpu.isFallback && texFits(gpu, V) ? "texture" : "workgroup";
}

const texFits = (gpu: Gpu, V: number) => V % 64 === 0 && V / 4 <= gpu.maxTexture2D;

/** Partials m{l}/s{l} (l = column mod 64) over 16 texels per step, and their trees. */
function texCode(): Record<string, string> {
  return {
    DECL_MAX: rowPartials.decl("m", "-3.4e38"),
    MAX: rowPartials.pass("lt", (v, l) => `m${l} = max(m${l}, ${v});`),
    TREE_MAX: rowPartials.tree((l, h) => `m${l} = max(m${l}, m${l + h});`),
    DECL_SUM: rowPartials.decl("s", "0.0"),
    SUM: rowPartials.pass("lt", (v, l) => `s${l} += exp(${v} - mx);`),
    TREE_SUM: rowPartials.tree((l, h) => `s${l} += s${l + h};`),
  };
}

/** nll[r] = logsumexp(logits[r]) − logits[r, targets[r]]; targets must be < V (checked by callers). */
export function tokenNll(
  b: Batch,
  logits: Tensor,
  targets: Tensor,
  V: number,
  variant?: "workgroup" | "texture",
): Tensor {
  need(logits.numel % V === 0, "token_nll", `logits ${shapeStr(logits)} are not rows of ${V}`);
  const rows = logits.numel / V;
  need(
    targets.dtype === "u32" && targets.numel === rows,
    "token_nll",
    `need ${rows} u32 targets, got ${shapeStr(targets)}`,
  );
  const out = empty(b.gpu, [rows], "f32", "token_nll.out");
  if ((variant ?? tokenNllVariant(b.gpu, V)) === "texture") {
    need(texFits(b.gpu, V), "token_nll", `texture variant cannot take V=${V}`);
    const cap = Math.min(b.gpu.maxBinding, b.gpu.maxTexture2D * 4);
    for (const w of rowWindows(rows, [4], cap, b.gpu.offsetAlign)) {
      const lt = b.texture(
        { buffer: logits.buffer, offset: w.row0 * V * 4 },
        V / 4,
        w.rows,
        "rgba32float",
        V * 4,
      );
      b.dispatch(
        { name: "token_nll_tex", defines: texCode() },
        [lt, windowBinding(targets, w, 1), windowBinding(out, w, 1), b.uniform([w.rows, V])],
        [Math.ceil(w.rows / 8), 1, 1],
        `rows=${rows} V=${V}`,
      );
    }
    return out;
  }
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
