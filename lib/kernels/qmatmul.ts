// Launcher for shaders/qmatmul.wgsl: y = x · Ŵᵀ from packed codes (GEMV for one row, GEMM for
// more). Split-K for GEMV on hardware adapters, where one thread per 4 words is too few threads.

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, type Tensor } from "../gpu/tensor.ts";
import { checkLoopBudget, dummy, need, shapeStr } from "./common.ts";
import { matmul } from "./matmul.ts";

/** GEMM variants for M > 1: codes decoded per product ("fused"), or Ŵ decoded once into an f32
 * [N, K] scratch tensor then the FP GEMM ("dequant"; 1.5–3× faster on llvmpipe at M = 512, where
 * the register-blocked FP kernel is the fastest code there is). */
export type QGemmVariant = "fused" | "dequant";

export function qgemmVariant(isFallback: boolean, M: number, N: number, K: number, maxBinding: number) {
  return isFallback && M >= 16 && N * K * 4 <= maxBinding ? "dequant" : "fused";
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

export function qmatmul(
  b: Batch,
  x: Tensor,
  w: PackedWeight,
  opts: { ksplit?: number; gemm?: QGemmVariant } = {},
): Tensor {
  const { K, N, W, G } = w;
  need(x.dtype === "f32" && x.numel % K === 0, "qmatmul", `x ${shapeStr(x)} is not rows of ${K}`);
  const M = x.numel / K;
  const d = dummy(b.gpu);
  if (M > 1 && (opts.gemm ?? qgemmVariant(b.gpu.isFallback, M, N, K, b.gpu.maxBinding)) === "dequant") {
    const wf = dequantPacked(b, w);
    const y = matmul(b, x, wf, w.bias ?? undefined);
    wf.release();
    return y;
  }
  const y = empty(b.gpu, [M, N], "f32", "qmatmul.out");
  const common = [w.words, w.scale, w.shift ?? d, w.codebook ?? d, w.bias ?? d];
  if (M === 1) {
    const threads = W / wordsPerThread(w.bits);
    const ks = opts.ksplit ??
      (b.gpu.isFallback ? 1 : Math.max(1, Math.min(G, Math.floor(TARGET_THREADS / threads))));
    checkLoopBudget(b.gpu, "qmatmul", Math.ceil(G / ks) * w.groupSize + G, `K=${K}`);
    const sizes = `gemv N=${N} K=${K} bits=${w.bits} ksplit=${ks}`;
    const params = (ksplit: number) => b.uniform([1, N, K, W, G, w.groupSize, ksplit, w.bias ? 1 : 0]);
    if (ks === 1) {
      b.dispatch(
        { name: "qmatmul", entry: "gemv", defines: defines(w) },
        [x, ...common, y, params(1)],
        grid(b.gpu, threads, GEMV_WG),
        sizes,
      );
    } else {
      const partial = empty(b.gpu, [ks, N], "f32", "qmatmul.partial");
      b.dispatch(
        { name: "qmatmul", entry: "gemv", defines: defines(w) },
        [x, ...common, partial, params(ks)],
        grid(b.gpu, threads * ks, GEMV_WG),
        sizes,
      );
      b.dispatch(
        { name: "qmatmul", entry: "reduce", defines: defines(w) },
        [partial, null, null, null, null, w.bias ?? d, y, params(ks)],
        grid(b.gpu, N, 64),
        sizes,
      );
      partial.release();
    }
    return y;
  }
  checkLoopBudget(b.gpu, "qmatmul", K + G, `K=${K}`);
  b.dispatch(
    { name: "qmatmul", entry: "gemm", defines: defines(w) },
    [x, ...common, y, b.uniform([M, N, K, W, G, w.groupSize, 1, w.bias ? 1 : 0])],
    [Math.ceil(W / 8), Math.ceil(M / (8 * TM)), 1],
    `gemm M=${M} N=${N} K=${K} bits=${w.bits}`,
  );
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
      w.codebook ?? d,
      null,
      wf,
      b.uniform([1, N, K, W, G, w.groupSize, 1, 0]),
    ],
    [Math.ceil(K / 64), W, 1],
    `dequant N=${N} K=${K} bits=${w.bits}`,
  );
  return wf;
}
