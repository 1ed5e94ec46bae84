// Launchers for shaders/awq.wgsl and awq_clip.wgsl: the scale search's fake quantization, activation statistics and
// output error, the clipping search's Gram blocks and errors, and the scale folding. Weights
// larger than one storage binding are processed in row windows.

import type { Gpu } from "../gpu/device.ts";
import type { Batch } from "../gpu/kernel.ts";
import { grid } from "../gpu/kernel.ts";
import { empty, rowWindows, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { checkLoopBudget, need, shapeStr, windows } from "./common.ts";

const K = "awq";
/** Workgroups of sq_err: `part` holds this many partial sums per slot. */
export const SQ_ERR_PARTS = 64;

type Bind =
  | Tensor
  | { buffer: GPUBuffer; offset?: number; size?: number }
  | GPUBuffer
  | GPUTextureView
  | null;

function bindings(b: Batch, at: Record<number, Bind>, params: number[]): Bind[] {
  const out: Bind[] = Array(11).fill(null);
  for (const [i, t] of Object.entries(at)) out[Number(i)] = t;
  out[10] = b.uniform(params);
  return out;
}

function shape2(t: Tensor, what: string): [number, number] {
  need(t.shape.length === 2, K, `${what} ${shapeStr(t)} is not 2-D`);
  return [t.shape[0], t.shape[1]];
}

/** Q(W·diag s)·diag(s)⁻¹ for W [rows, cols], groups of g along cols (a new tensor). */
export function fakeQuantScaled(b: Batch, w: Tensor, s: Tensor, g: number, bits: number): Tensor {
  const [rows, cols] = shape2(w, "W");
  need(s.numel === cols && cols % g === 0, K, `W ${shapeStr(w)}, s ${shapeStr(s)}, group ${g}`);
  checkLoopBudget(b.gpu, K, 2 * g, `group size ${g}`);
  const out = empty(b.gpu, [rows, cols], "f32", "awq.fake");
  for (const win of windows(b.gpu, rows, [cols * 4])) {
    b.dispatch(
      { name: K, entry: "fake_quant" },
      bindings(b, { 0: windowBinding(w, win, cols), 1: s, 2: windowBinding(out, win, cols) }, [
        win.rows,
        cols,
        g,
        (1 << bits) - 1,
        0,
        0,
        0,
        0,
      ]),
      grid(b.gpu, win.rows * (cols / g), 64),
      `rows=${win.rows} cols=${cols} g=${g}`,
    );
  }
  return out;
}

/** acc[c] += Σ_t |x[t, c]| for x [T, cols]. */
export function colAbsSum(b: Batch, x: Tensor, acc: Tensor): void {
  const cols = acc.numel, T = x.numel / cols;
  need(Number.isInteger(T), K, `x ${shapeStr(x)} against ${cols} columns`);
  checkLoopBudget(b.gpu, K, T, `${T} rows`);
  b.dispatch(
    { name: K, entry: "col_abs_sum" },
    bindings(b, { 3: x, 4: acc }, [T, cols, 1, 0, 0, 0, 0, 0]),
    grid(b.gpu, cols, 64),
    `T=${T} cols=${cols}`,
  );
}

/** part[slot, :] += partial sums of (y − y0)² (sum all SQ_ERR_PARTS of a slot for the total). */
export function sqErrAccumulate(b: Batch, y: Tensor, y0: Tensor, part: Tensor, slot: number): void {
  need(y.numel === y0.numel, K, `y ${shapeStr(y)} against y0 ${shapeStr(y0)}`);
  need((slot + 1) * SQ_ERR_PARTS <= part.numel, K, `slot ${slot} outside part ${shapeStr(part)}`);
  checkLoopBudget(b.gpu, K, Math.ceil(y.numel / (SQ_ERR_PARTS * 256)), `${y.numel} elements`);
  b.dispatch(
    { name: K, entry: "sq_err" },
    bindings(b, { 5: y, 6: y0, 7: part }, [0, 0, 0, 0, y.numel, slot, 0, 0]),
    [SQ_ERR_PARTS, 1, 1],
    `n=${y.numel} slot=${slot}`,
  );
}

/**
 * The clipping search's variant: "texture" (awq_clip_tex.wgsl, x, W and the Gram blocks through
 * textures, same bits) on a CPU adapter when rows copy into textures as they are (cols and the
 * group size multiples of 64, f32 weights); else "buffer" (awq_clip.wgsl).
 */
export function awqClipVariant(gpu: Gpu, cols: number, g: number): "buffer" | "texture" {
  return gpu.isFallback && clipTexFits(gpu, cols, g) ? "texture" : "buffer";
}

const clipTexFits = (gpu: Gpu, cols: number, g: number) =>
  cols % 64 === 0 && g % 64 === 0 && cols / 4 <= gpu.maxTexture2D && cols <= gpu.maxTexture2D;

/** clip_err's unrolled group: w texels, |w| max, clamped min/max, d per weight, inner sums. */
function clipCode(g: number, CH: number): Record<string, string | number> {
  const Q = Array.from({ length: g / 4 }, (_, q) => q), C = "xyzw".split("");
  const each = (f: (v: string, k: number) => string) =>
    Q.map((q) => C.map((c, i) => f(`w${q}.${c}`, 4 * q + i)).join(" ")).join("\n  ");
  return {
    GS: g,
    CH,
    LOADW: Q.map((q) => `let w${q} = textureLoad(wt, vec2<u32>(jb + ${q}u, r), 0);`).join("\n  "),
    AMAX: each((v) => `amax = max(amax, abs(${v}));`),
    LOHI: each((v) => `{ let v = clamp(${v}, -mv, mv); lo = min(lo, v); hi = max(hi, v); }`),
    D: each((v, k) =>
      `let d${k} = (clamp(round(clamp(${v}, -mv, mv) / scale) + zero, 0.0, maxq) - zero) * scale - ${v};`
    ),
    INNER: Q.map((q) =>
      `{ let t = textureLoad(gt, vec2<u32>(${q}u, row), 0); ` +
      C.map((c, i) => `inner += t.${c} * d${4 * q + i};`).join(" ") + " }"
    ).join("\n    "),
  };
}

/** Gram blocks [G, g, g] of x [N, cols] / s, one per group of g columns. */
export function gramBlocks(
  b: Batch,
  x: Tensor,
  s: Tensor,
  g: number,
  variant = awqClipVariant(b.gpu, x.shape[1] ?? 0, g),
): Tensor {
  const [N, cols] = shape2(x, "x");
  need(s.numel === cols && cols % g === 0, K, `x ${shapeStr(x)}, s ${shapeStr(s)}, group ${g}`);
  checkLoopBudget(b.gpu, K, N, `${N} sampled tokens`);
  const out = empty(b.gpu, [cols / g, g, g], "f32", "awq.gram");
  if (variant === "texture" && N <= b.gpu.maxTexture2D) {
    need(clipTexFits(b.gpu, cols, g), K, `texture variant cannot take cols=${cols} g=${g}`);
    const xt = b.texture({ buffer: x.buffer, offset: 0 }, cols / 4, N, "rgba32float", cols * 4);
    b.dispatch(
      { name: "awq_clip_tex", entry: "gram", defines: clipCode(g, clipChunk(g)) },
      bindings(b, { 3: xt, 1: s, 8: out }, [N, cols, g, 0, 0, 0, 0, 0]),
      grid(b.gpu, (cols / g) * g * g, 64),
      `N=${N} cols=${cols} g=${g}`,
    );
    return out;
  }
  b.dispatch(
    { name: "awq_clip", entry: "gram", defines: { GS: g, CH: clipChunk(g) } },
    bindings(b, { 3: x, 1: s, 8: out }, [N, cols, g, 0, 0, 0, 0, 0]),
    grid(b.gpu, (cols / g) * g * g, 64),
    `N=${N} cols=${cols} g=${g}`,
  );
  return out;
}

/** Rows of G per clip_err thread, keeping its loops under the fallback adapter's cap. */
export function clipChunk(g: number): number {
  return Math.max(1, Math.min(g, Math.floor((60000 - 3 * g) / g)));
}

/**
 * err [rows, G, nshrink, chunks] (sum over chunks for dᵀ·G_j·d) for W [rows, cols] and the Gram
 * blocks `gm` [G, g, g]; shrink i clamps each group to ±(1 − i/ngrid)·max|w|.
 */
export function clipErrors(
  b: Batch,
  w: Tensor,
  gm: Tensor,
  g: number,
  bits: number,
  ngrid: number,
  nshrink: number,
  variant = awqClipVariant(b.gpu, w.shape[1] ?? 0, g),
): { err: Tensor; chunks: number } {
  const [rows, cols] = shape2(w, "W");
  const G = cols / g, CH = clipChunk(g), chunks = Math.ceil(g / CH);
  need(gm.numel === G * g * g, K, `Gram ${shapeStr(gm)} against W ${shapeStr(w)}, group ${g}`);
  checkLoopBudget(b.gpu, K, 3 * g + CH * g, `group size ${g}`);
  const per = G * nshrink * chunks;
  const err = empty(b.gpu, [rows, G, nshrink, chunks], "f32", "awq.clip_err");
  if (variant === "texture" && w.dtype === "f32") {
    need(clipTexFits(b.gpu, cols, g), K, `texture variant cannot take cols=${cols} g=${g}`);
    const gt = b.texture({ buffer: gm.buffer, offset: 0 }, g / 4, cols, "rgba32float", g * 4);
    const cap = Math.min(b.gpu.maxBinding, b.gpu.maxTexture2D * per * 4);
    for (const win of rowWindows(rows, [per * 4], cap, b.gpu.offsetAlign)) {
      const wt = b.texture(
        { buffer: w.buffer, offset: win.row0 * cols * 4 },
        cols / 4,
        win.rows,
        "rgba32float",
        cols * 4,
      );
      b.dispatch(
        { name: "awq_clip_tex", entry: "clip_err", defines: clipCode(g, CH) },
        bindings(b, { 4: wt, 5: gt, 9: windowBinding(err, win, per) }, [
          win.rows,
          cols,
          g,
          (1 << bits) - 1,
          0,
          0,
          ngrid,
          nshrink,
        ]),
        [Math.ceil((win.rows * per) / 8), 1, 1],
        `rows=${win.rows} cols=${cols} g=${g} shrinks=${nshrink}`,
      );
    }
    return { err, chunks };
  }
  for (const win of windows(b.gpu, rows, [cols * 4, per * 4])) {
    b.dispatch(
      { name: "awq_clip", entry: "clip_err", defines: { GS: g, CH } },
      bindings(b, { 0: windowBinding(w, win, cols), 8: gm, 9: windowBinding(err, win, per) }, [
        win.rows,
        cols,
        g,
        (1 << bits) - 1,
        0,
        0,
        ngrid,
        nshrink,
      ]),
      grid(b.gpu, win.rows * per, 64),
      `rows=${win.rows} cols=${cols} g=${g} shrinks=${nshrink}`,
    );
  }
  return { err, chunks };
}

/** In place on t [rows, cols] (a 1-D t is one row): W·diag(s), t / s by column, or diag(s)⁻¹·W. */
export function foldScale(b: Batch, t: Tensor, s: Tensor, how: "mul_cols" | "div_cols" | "div_rows"): void {
  const cols = t.shape.length === 1 ? t.numel : t.shape[1], rows = t.numel / cols;
  need(
    s.numel === (how === "div_rows" ? rows : cols),
    K,
    `${how}: ${t.label} ${shapeStr(t)} against s ${shapeStr(s)}`,
  );
  for (const win of windows(b.gpu, rows, [cols * 4])) {
    b.dispatch(
      { name: K, entry: how },
      bindings(b, { 1: s, 2: windowBinding(t, win, cols) }, [win.rows, cols, 0, 0, win.row0, 0, 0, 0]),
      grid(b.gpu, win.rows * cols, 64),
      `${how} rows=${win.rows} cols=${cols}`,
    );
  }
}
