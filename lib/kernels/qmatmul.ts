// Launcher for shaders/qmatmul.wgsl: y = x · Ŵᵀ from packed codes (GEMV for one row, GEMM for
// more). Split-K for GEMV on hardware adapters, where one thread per 4 words is too few threads.

import { type Batch, type Binding, grid } from "../gpu/kernel.ts";
import type { Gpu } from "../gpu/device.ts";
import { empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { checkLoopBudget, dummy, need, shapeStr, windows } from "./common.ts";
import { chosen, gemmKey } from "./choice.ts";
import { matmul } from "./matmul.ts";
import { qmatmulTexture, textureQgemmFits } from "./qmatmul_tex.ts";
import { qgemvTexture, textureQgemvFits } from "./qgemv_tex.ts";

/** GEMM variants for M > 1: codes decoded per product ("fused"); Ŵ decoded once into an f32
 * [N, K] scratch tensor then the FP GEMM ("dequant"); or, on CPU adapters, x and the words read
 * through textures with each code decoded once for 16 token rows ("texture", qmatmul_tex.ts). */
export type QGemmVariant = "fused" | "dequant" | "texture";

/** GEMV variants (one row): "fused" (storage words, K-split on hardware adapters) or, on CPU
 * adapters, "texture" (qgemv_tex.ts: x and the words' kept texture, unrolled decode; codebooks
 * through a table texture) and, for codebooks, "select" (the same kernel, each code decoded by a
 * tree of selects over the codebook baked into the shader: no fetch per code). */
export type QGemvVariant = "fused" | "texture" | "select";

/** Whether the layer can run the "select" GEMV (a codebook of at most 16 entries, values on the host). */
export function selectQgemvFits(gpu: Gpu, w: PackedWeight): boolean {
  return !!w.codebook && !!w.codebookValues && w.bits <= 4 && textureQgemvFits(gpu, w);
}

/** llvmpipe, 4096² and 11008×4096: "texture" 3.6–5× "fused" for 2/3/4/8-bit, 1.5–1.8× for NF4;
 * for NF4 "select" beats the table (scratch kernel, 4096²: 3.4 against 6.4 ms). */
export function qgemvVariant(gpu: Gpu, w: PackedWeight): QGemvVariant {
  if (gpu.isFallback && selectQgemvFits(gpu, w)) return "select";
  return gpu.isFallback && textureQgemvFits(gpu, w) ? "texture" : "fused";
}

/**
 * On llvmpipe (bench:qkernels, 4096² W4 g128, one run): "texture" 42 ms at M = 16 (0.92× the f32
 * GEMM) against 272 ms for "dequant" (0.14×: it writes and re-reads Ŵ as f32), which had been
 * 1.5–3× "fused" at M = 512; at M = 256 "texture" is 1.10× f32.
 */
export function qgemmVariant(gpu: Gpu, M: number, w: PackedWeight): QGemmVariant {
  if (gpu.isFallback && M >= 2 && textureQgemmFits(gpu, w)) return "texture";
  return gpu.isFallback && M >= 16 && w.N * w.K * 4 <= gpu.maxBinding ? "dequant" : "fused";
}

/** The weight format in a measured choice's key (lib/kernels/choice.ts). */
export function qgemmFormat(w: PackedDims & { codebook: unknown }): string {
  return w.codebook ? `codebook${w.bits} g${w.groupSize}` : `W${w.bits} g${w.groupSize}`;
}

/** Sizes of the run-time layout (see shaders/qmatmul.wgsl): shared by host arrays and GPU tensors. */
export interface PackedDims {
  bits: number;
  /** Outputs per u32 word: ⌊32 / bits⌋. */
  per: number;
  /** Word columns (a multiple of 4). */
  W: number;
  K: number;
  N: number;
  G: number;
  groupSize: number;
}

export interface PackedWeight extends PackedDims {
  words: Tensor; // u32 [K, W], or strip-major [W / wordsPerThread, K, wordsPerThread]
  /** Word order: see `stripMajor()`. */
  stripMajor: boolean;
  scale: Tensor; // f32 [G, W·per]
  shift: Tensor | null; // f32 [G, W·per] (uniform formats)
  codebook: Tensor | null; // f32 [2^bits]
  /** The codebook as a 2^bits × 1 r32float texture (CPU adapters: a per-lane storage load is a
   * branchy loop on llvmpipe, a texel fetch a gather). */
  codebookTex?: GPUTextureView | null;
  /** 4-bit codebooks on CPU adapters: the four codes of every 16-bit value, a 256 × 256 rgba32float
   * texture, for the texture GEMV (one fetch per four codes; the fetch is what NF4 costs there). */
  codebookQuadTex?: GPUTextureView | null;
  /** The codebook's values on the host (CPU adapters): the "select" GEMV bakes them into its
   * shader as exact constants and decodes a code by a tree of selects, no table at all. */
  codebookValues?: Float32Array | null;
  bias: Tensor | null;
}

const TM = 4;

/**
 * On CPU rasterisers (llvmpipe) each GEMV thread should walk a contiguous strip of words: with the
 * k-major order the 4096² W4 GEMV ran either ~4 ms or ~9 ms from process to process (TLB/huge-page
 * luck). GPUs want the k-major order, where a warp reads neighbouring words at one k.
 */
export function stripMajor(isFallbackAdapter: boolean): boolean {
  return isFallbackAdapter;
}

/** Strip-major windows split by strips and bind the scales whole: when those exceed one binding
 * (G·N·4 bytes over the limit), the layer is laid out k-major, which splits by input rows. */
export function stripMajorFits(gpu: Gpu, d: PackedDims): boolean {
  return d.G * d.W * d.per * 4 <= gpu.maxBinding;
}

/** Reorder k-major words [K, W] into strips [W / wpt, K, wpt]. */
export function toStrips(
  words: Uint32Array<ArrayBuffer>,
  K: number,
  W: number,
  wpt: number,
): Uint32Array<ArrayBuffer> {
  const out = new Uint32Array(words.length);
  for (let s = 0; s < W / wpt; s++) {
    for (let k = 0; k < K; k++) {
      for (let c = 0; c < wpt; c++) out[(s * K + k) * wpt + c] = words[k * W + s * wpt + c];
    }
  }
  return out;
}

/** GEMV workgroup size (64 measured best on llvmpipe among 8/16/32/64). */
const GEMV_WG = 64;
/**
 * Words per GEMV thread, so a thread owns about 16 outputs: one word at 2-bit, two otherwise.
 * Measured on llvmpipe at 4096² (with the strip-major order): W4 3.3–5.2× the f32 GEMV, against
 * 2.3–2.7× with four words per thread.
 */
export function wordsPerThread(bits: number): number {
  return bits === 2 ? 1 : 2;
}

function defines(w: PackedWeight) {
  // Codebooks (NF4/FP4) need a table lookup per code, so they take the scalar decode.
  const lanes = !w.codebook && (w.bits === 2 || w.bits === 4 || w.bits === 8);
  const sub = lanes ? 8 / w.bits : 1;
  const wpt = wordsPerThread(w.bits);
  return {
    BITS: w.bits,
    PER: w.per,
    CODEBOOK: w.codebook ? "true" : "false",
    CB_DECL: w.codebookTex
      ? "@group(0) @binding(4) var cbt: texture_2d<f32>;"
      : "@group(0) @binding(4) var<storage, read> cb: array<f32>;",
    CB_LOOKUP: w.codebookTex ? "textureLoad(cbt, vec2<u32>(q, 0u), 0).x" : "cb[q]",
    BYTE_LANES: lanes ? "true" : "false",
    SUB: sub,
    GEMV_WG,
    WPT: wpt,
    WVEC: wpt === 1 ? "u32" : `vec${wpt}<u32>`,
    WSEL: wpt === 1 ? "v" : "v[c]",
    STRIP_MAJOR: w.stripMajor ? "true" : "false",
  };
}

/** Threads a hardware adapter wants busy in a GEMV before splitting K is not worth it. */
const TARGET_THREADS = 16384;

/**
 * One dispatch's share of a weight over the binding limit: inputs [k0, k1), strips [s0, s0 + sn)
 * (a strip = wordsPerThread words), scale/shift bound from group sg0. k-major words split by
 * input rows — on group boundaries when one group fits (then the windowed sums are the unsplit
 * sums, the same bits), else mid-group; strip-major words split by strips.
 */
interface WeightWindow {
  k0: number;
  k1: number;
  s0: number;
  sn: number;
  sg0: number;
  words: Binding;
  scale: Binding;
  shift: Binding | null;
}

export function weightWindows(gpu: Gpu, w: PackedWeight): WeightWindow[] {
  const { K, W, G, groupSize: gs } = w;
  const wpt = wordsPerThread(w.bits);
  const S = W / wpt, NP = W * w.per;
  const whole = { k0: 0, k1: K, s0: 0, sn: S, sg0: 0, scale: w.scale, shift: w.shift };
  const scalesFit = stripMajorFits(gpu, w);
  if (w.stripMajor) {
    need(
      scalesFit,
      "qmatmul",
      `strip-major ${w.words.label}: scales [${G}×${NP}] exceed the max storage binding (load it k-major)`,
    );
    return windows(gpu, S, [K * wpt * 4]).map((r) => ({
      ...whole,
      s0: r.row0,
      sn: r.rows,
      words: windowBinding(w.words, r, K * wpt),
    }));
  }
  if (gs * W * 4 <= gpu.maxBinding) {
    return windows(gpu, G, [gs * W * 4, NP * 4]).map((r) => ({
      ...whole,
      k0: r.row0 * gs,
      k1: (r.row0 + r.rows) * gs,
      sg0: r.row0,
      words: windowBinding(w.words, { row0: r.row0 * gs, rows: r.rows * gs }, W),
      scale: windowBinding(w.scale, r, NP),
      shift: w.shift && windowBinding(w.shift, r, NP),
    }));
  }
  need(scalesFit, "qmatmul", `${w.words.label}: scales [${G}×${NP}] exceed the max storage binding`);
  return windows(gpu, K, [W * 4]).map((r) => ({
    ...whole,
    k0: r.row0,
    k1: r.row0 + r.rows,
    words: windowBinding(w.words, r, W),
  }));
}

export function qmatmul(
  b: Batch,
  x: Tensor,
  w: PackedWeight,
  opts: { ksplit?: number; gemm?: QGemmVariant; gemv?: QGemvVariant } = {},
): Tensor {
  const { K, N, W, G } = w;
  need(x.dtype === "f32" && x.numel % K === 0, "qmatmul", `x ${shapeStr(x)} is not rows of ${K}`);
  const M = x.numel / K;
  const d = dummy(b.gpu);
  const variant = M > 1
    ? opts.gemm ?? (chosen(b.gpu, gemmKey("qgemm", M, N, K, qgemmFormat(w))) as QGemmVariant | undefined) ??
      qgemmVariant(b.gpu, M, w)
    : null;
  if (variant === "texture") {
    need(
      textureQgemmFits(b.gpu, w),
      "qmatmul",
      `texture variant cannot take ${w.words.label} (K=${K}, ${w.bits}-bit)`,
    );
    const y = empty(b.gpu, [M, N], "f32", "qmatmul.out");
    qmatmulTexture(b, x, w, y, `gemm M=${M} N=${N} K=${K} bits=${w.bits}`);
    return y;
  }
  const gemv = M === 1
    ? opts.gemv ?? (chosen(b.gpu, gemmKey("qgemm", 1, N, K, qgemmFormat(w))) as QGemvVariant | undefined) ??
      qgemvVariant(b.gpu, w)
    : null;
  if (gemv === "texture" && opts.ksplit === undefined) {
    need(
      textureQgemvFits(b.gpu, w),
      "qmatmul",
      `texture GEMV cannot take ${w.words.label} (K=${K}, ${w.bits}-bit)`,
    );
    const y = empty(b.gpu, [1, N], "f32", "qmatmul.out");
    qgemvTexture(b, x, w, y, `gemv N=${N} K=${K} bits=${w.bits}`);
    return y;
  }
  if (gemv === "select" && opts.ksplit === undefined) {
    need(
      selectQgemvFits(b.gpu, w),
      "qmatmul",
      `select GEMV cannot take ${w.words.label} (K=${K}, ${w.bits}-bit${w.codebook ? "" : ", no codebook"})`,
    );
    const y = empty(b.gpu, [1, N], "f32", "qmatmul.out");
    qgemvTexture(b, x, w, y, `gemv N=${N} K=${K} bits=${w.bits} select`, true);
    return y;
  }
  if (variant === "dequant") {
    need(N * K * 4 <= b.gpu.maxBinding, "qmatmul", `dequant variant: Ŵ [${N}×${K}] f32 exceeds one binding`);
    const wf = dequantPacked(b, w);
    const y = matmul(b, x, wf, w.bias ?? undefined);
    wf.release();
    return y;
  }
  const y = empty(b.gpu, [M, N], "f32", "qmatmul.out");
  const wins = weightWindows(b.gpu, w);
  // Params: sizes, then the window (see the shader's header). A window past input 0 continues
  // the sums in y; the bias comes with the window that ends at input K.
  const params = (rows: number, ksplit: number, v: WeightWindow) =>
    b.uniform([
      rows,
      N,
      K,
      W,
      G,
      w.groupSize,
      ksplit,
      w.bias && v.k1 === K ? 1 : 0,
      v.k0,
      v.k1,
      v.s0,
      v.sn,
      v.sg0,
      v.k0 > 0 ? 1 : 0,
      0,
      0,
    ]);
  const binds = (
    v: WeightWindow,
  ) => [v.words, v.scale, v.shift ?? d, w.codebookTex ?? w.codebook ?? d, w.bias ?? d];
  if (M === 1) {
    const threads = W / wordsPerThread(w.bits);
    const ks = wins.length > 1 ? 1 : opts.ksplit ??
      (b.gpu.isFallback ? 1 : Math.max(1, Math.min(G, Math.floor(TARGET_THREADS / threads))));
    checkLoopBudget(b.gpu, "qmatmul", Math.ceil(G / ks) * w.groupSize + G, `K=${K}`);
    const sizes = `gemv N=${N} K=${K} bits=${w.bits} ksplit=${ks}`;
    if (ks === 1) {
      for (const v of wins) {
        b.dispatch(
          { name: "qmatmul", entry: "gemv", defines: defines(w) },
          [x, ...binds(v), y, params(1, 1, v)],
          grid(b.gpu, v.sn, GEMV_WG),
          sizes,
        );
      }
    } else {
      const partial = empty(b.gpu, [ks, N], "f32", "qmatmul.partial");
      const v = wins[0];
      b.dispatch(
        { name: "qmatmul", entry: "gemv", defines: defines(w) },
        [x, ...binds(v), partial, params(1, ks, v)],
        grid(b.gpu, threads * ks, GEMV_WG),
        sizes,
      );
      b.dispatch(
        { name: "qmatmul", entry: "reduce", defines: defines(w) },
        [partial, null, null, null, null, w.bias ?? d, y, params(1, ks, v)],
        grid(b.gpu, N, 64),
        sizes,
      );
      partial.release();
    }
    return y;
  }
  checkLoopBudget(b.gpu, "qmatmul", K + G, `K=${K}`);
  for (const mw of windows(b.gpu, M, [K * 4, N * 4])) {
    for (const v of wins) {
      b.dispatch(
        { name: "qmatmul", entry: "gemm", defines: defines(w) },
        [windowBinding(x, mw, K), ...binds(v), windowBinding(y, mw, N), params(mw.rows, 1, v)],
        [Math.ceil((v.sn * wordsPerThread(w.bits)) / 8), Math.ceil(mw.rows / (8 * TM)), 1],
        `gemm M=${M} N=${N} K=${K} bits=${w.bits}`,
      );
    }
  }
  return y;
}

/** Ŵ as f32 [N, K] (one binding: the caller checks N·K·4 against the limit). */
export function dequantPacked(b: Batch, w: PackedWeight): Tensor {
  const { K, N, W, G } = w;
  const wf = empty(b.gpu, [N, K], "f32", "qmatmul.dequant");
  const d = dummy(b.gpu);
  b.dispatch(
    { name: "qmatmul", entry: "dequant", defines: defines(w) },
    [
      null,
      w.words,
      w.scale,
      w.shift ?? d,
      w.codebookTex ?? w.codebook ?? d,
      null,
      wf,
      b.uniform([1, N, K, W, G, w.groupSize, 1, 0, 0, K, 0, W / wordsPerThread(w.bits), 0, 0, 0, 0]),
    ],
    [Math.ceil(K / 64), W, 1],
    `dequant N=${N} K=${K} bits=${w.bits}`,
  );
  return wf;
}
