// Launcher for shaders/gptq.wgsl: one block of GPTQ's column sweep plus the lazy update of the
// columns after it. Row-indexed tensors are bound in row windows, U's block rows as one window of X,
// so neither W nor X has to fit one storage binding.

import type { Batch } from "../gpu/kernel.ts";
import { type Tensor, windowBinding } from "../gpu/tensor.ts";
import { checkLoopBudget, need, windows } from "./common.ts";

export interface SweepTensors {
  w: Tensor; // f32 [rows, cols], columns in quantization order
  x: Tensor; // f32 [cols, cols]: the inverse of L′, chol(J·H·J) = L′L′ᵀ; U = J·X·J
  codes: Tensor; // u32 [rows, cols / 4]
  qp: Tensor; // f32 [rows, G, 2]: scale, zero (filled by the caller unless `dynamic`)
  err: Tensor; // f32 [rows, bs]
  loss: Tensor; // f32 [rows], zeroed by the caller
  groupOf: Tensor; // u32 [cols]
}

export interface SweepParams {
  rows: number;
  cols: number;
  G: number;
  /** Group size in quantization order; with `dynamic`, params are computed at multiples of it. */
  g: number;
  dynamic: boolean;
  bits: number;
  sym: boolean;
  blocksize: number;
}

export const MAX_BLOCKSIZE = 256;

/** Quantize columns [i1, i1 + bs) and push their error into the columns after them. */
export function gptqBlock(b: Batch, t: SweepTensors, p: SweepParams, i1: number): void {
  const { rows, cols, G } = p;
  const bs = Math.min(p.blocksize, cols - i1);
  need(
    t.w.numel === rows * cols && t.x.numel === cols * cols && t.codes.numel * 4 === rows * cols &&
      t.qp.numel === rows * G * 2 && t.err.numel >= rows * bs && t.loss.numel === rows &&
      t.groupOf.numel === cols,
    "gptq",
    `tensors disagree with rows=${rows} cols=${cols} G=${G}`,
  );
  need(cols % 4 === 0 && i1 % 4 === 0 && bs <= MAX_BLOCKSIZE, "gptq", `cols ${cols}, i1 ${i1}, bs ${bs}`);
  const gw = p.dynamic ? (Math.ceil(bs / p.g) + 1) * Math.min(p.g, cols) : 0;
  checkLoopBudget(b.gpu, "gptq", (bs * (bs + 1)) / 2 + 2 * bs + gw, `blocksize ${bs}, group ${p.g}`);
  const x = xRows(b, t.x, cols, cols - i1 - bs, bs);
  const sizes = `rows=${rows} cols=${cols} i1=${i1} bs=${bs}`;
  const defines = { MAXBS: p.blocksize };
  for (const win of windows(b.gpu, rows, [cols * 4, cols, G * 8, bs * 4, 4])) {
    const params = b.uniform([
      win.rows,
      cols,
      i1,
      bs,
      p.g,
      p.dynamic ? 1 : 0,
      (1 << p.bits) - 1,
      p.sym ? 1 : 0,
      G,
      x.off,
      0,
      0,
    ]);
    const rowsOf = (tt: Tensor, per: number) => windowBinding(tt, win, per);
    const bind = [
      rowsOf(t.w, cols),
      x.binding,
      rowsOf(t.codes, cols / 4),
      rowsOf(t.qp, G * 2),
      rowsOf(t.err, bs),
      rowsOf(t.loss, 1),
      t.groupOf,
      params,
    ];
    b.dispatch({ name: "gptq", entry: "sweep", defines }, bind, [Math.ceil(win.rows / 64), 1, 1], sizes);
    const rest = cols - i1 - bs;
    if (rest > 0) {
      b.dispatch(
        { name: "gptq", entry: "update", defines },
        [bind[0], bind[1], null, null, bind[4], null, null, params],
        [Math.ceil(rest / 16), Math.ceil(win.rows / 16), 1],
        sizes,
      );
    }
  }
}

/** Rows [row0, row0 + n) of X [*, cols], bound from an aligned offset; `off` is where row0 starts. */
function xRows(b: Batch, x: Tensor, cols: number, row0: number, n: number) {
  const start = row0 * cols * 4, align = b.gpu.offsetAlign;
  const offset = Math.floor(start / align) * align;
  const size = start - offset + n * cols * 4;
  return { binding: { buffer: x.buffer, offset, size }, off: (start - offset) / 4 };
}
