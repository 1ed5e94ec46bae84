// Launchers for shaders/autoround.wgsl: AutoRound's fake-quantized weight from W, V and the
// groups' min/max scale factors, its codes/scales/zeros, and the backward pass to V and the factors.
// Rows of W are split across bindings when W exceeds one (groups never straddle rows).

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, f32ToF16, halfToFloat, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { dummy, need, shapeStr, windows } from "./common.ts";

export interface ArGrid {
  bits: number;
  groupSize: number;
  sym: boolean;
}

/** The scale clamp 1e-5 as the reference applies it to a float16 scale. */
export const SCALE_THRESH = halfToFloat(f32ToF16(new Float32Array([1e-5]))[0]);

/** maxq of the grid: 2^(b−1) for full-range symmetric, 2^b − 1 for asymmetric. */
export const arMaxq = (g: ArGrid) => (g.sym ? 1 << (g.bits - 1) : (1 << g.bits) - 1);

function run(
  b: Batch,
  entry: "qdq" | "qdq_backward",
  mode: number,
  w: Tensor,
  v: Tensor,
  ms: Tensor,
  Ms: Tensor,
  io: Tensor,
  outs: [Tensor | null, Tensor | null, Tensor | null],
  g: ArGrid,
) {
  need(w.shape.length === 2, "autoround", `W must be [out, in], got ${shapeStr(w)}`);
  const [rows, cols] = w.shape;
  need(cols % g.groupSize === 0, "autoround", `in-features ${cols} not divisible by group ${g.groupSize}`);
  const G = cols / g.groupSize;
  need(
    v.numel === w.numel && io.numel === w.numel && ms.numel === rows * G && Ms.numel === rows * G,
    "autoround",
    `shapes disagree: ${shapeStr(w, v, ms, Ms, io)} (groups of ${g.groupSize})`,
  );
  for (const win of windows(b.gpu, rows, [cols * 4, G * 4])) {
    const wide = (t: Tensor) => windowBinding(t, win, cols);
    const narrow = (t: Tensor) => windowBinding(t, win, G);
    b.dispatch(
      { name: "autoround", entry },
      [
        wide(w),
        wide(v),
        narrow(ms),
        narrow(Ms),
        wide(io),
        outs[0] ? wide(outs[0]) : null, // qdq does not use dL/dV
        outs[1] ? narrow(outs[1]) : dummy(b.gpu),
        outs[2] ? narrow(outs[2]) : dummy(b.gpu),
        b.uniform([win.rows, cols, g.groupSize, G, g.sym ? 1 : 0, arMaxq(g), mode], [SCALE_THRESH]),
      ],
      grid(b.gpu, win.rows * G, 1),
      `${shapeStr(w)} g=${g.groupSize} b=${g.bits} ${g.sym ? "sym" : "asym"}`,
    );
  }
}

/** ŵ [out, in]: the fake-quantized weight the block trains through. */
export function arQdq(b: Batch, w: Tensor, v: Tensor, ms: Tensor, Ms: Tensor, g: ArGrid, out?: Tensor) {
  const wq = out ?? empty(b.gpu, w.shape, "f32", "autoround.wq");
  run(b, "qdq", 0, w, v, ms, Ms, wq, [null, null, null], g);
  return wq;
}

/** Codes (as f32, 0 … 2^b − 1) [out, in] and each group's scale and zero [out, G]: the record. */
export function arCodes(b: Batch, w: Tensor, v: Tensor, ms: Tensor, Ms: Tensor, g: ArGrid) {
  const codes = empty(b.gpu, w.shape, "f32", "autoround.codes");
  const scales = empty(b.gpu, ms.shape, "f32", "autoround.scales");
  const zeros = empty(b.gpu, ms.shape, "f32", "autoround.zeros");
  run(b, "qdq", 1, w, v, ms, Ms, codes, [null, scales, zeros], g);
  return { codes, scales, zeros };
}

/** dL/dV [out, in], dL/dms and dL/dMs [out, G] from dL/dŵ. */
export function arQdqBackward(
  b: Batch,
  w: Tensor,
  v: Tensor,
  ms: Tensor,
  Ms: Tensor,
  dwq: Tensor,
  g: ArGrid,
) {
  const gv = empty(b.gpu, w.shape, "f32", "autoround.gv");
  const gms = empty(b.gpu, ms.shape, "f32", "autoround.gms");
  const gMs = empty(b.gpu, Ms.shape, "f32", "autoround.gMs");
  run(b, "qdq_backward", 0, w, v, ms, Ms, dwq, [gv, gms, gMs], g);
  return { gv, gms, gMs };
}
