// Launcher for shaders/matmul.wgsl and matmul_wg.wgsl (the buffer GEMMs: "tiled" and "workgroup"),
// and the entry for every variant: y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]).
// Splits w by output rows and x/y by token rows when they exceed one storage binding.

import type { Batch } from "../gpu/kernel.ts";
import type { Gpu } from "../gpu/device.ts";
import { BYTES, type DType, empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import {
  checkLoopBudget,
  dummy,
  FP_WEIGHT_DTYPES,
  need,
  rowAccessDefines,
  shapeStr,
  windows,
} from "./common.ts";
import { chosen, gemmKey } from "./choice.ts";
import { matmulTexture, textureMatmulFits } from "./matmul_tex.ts";

// Outputs per thread [rows of y, columns of y]; a workgroup is 8×8 threads. On a CPU adapter
// (llvmpipe) 16×16 measured 2.6–2.8× the 4×4 tile at the fixture's shapes (M = 512 and 16; N, K
// = 256…4096; 8×16 2.0×, 8×32 2.2×) with the same sum order per output, so the same bits; on a
// real GPU 256 accumulators per thread would cost occupancy, so 4×4 there.
export function matmulTile(gpu: { isFallback: boolean }): { TM: number; TN: number } {
  return gpu.isFallback ? { TM: 16, TN: 16 } : { TM: 4, TN: 4 };
}

/**
 * "texture" (matmul_tex.wgsl) on a CPU adapter: on llvmpipe its 16×16 tile ran 16.6 GFLOP/s at
 * 1024³ and 11.5 at 512×4096×4096 against 2.35 and 2.2 for this file's 16×16 buffer tile
 * (bench:kernels, one run), same bits. Real GPUs, and rows a texture copy cannot take as they are
 * (K·bytes not a multiple of 256), keep "tiled". "workgroup" (matmul_wg.wgsl: 64×64 tiles staged
 * in workgroup memory, same bits as "tiled") is what discrete GPUs are known to want; no rule picks
 * it: the tuner measures it on each adapter (on llvmpipe its barriers make it the slowest).
 */
export type MatmulVariant = "tiled" | "texture" | "workgroup";

/** The workgroup-tiled GEMM reads x and w as vec4s only. */
export function workgroupMatmulFits(K: number): boolean {
  return K % 4 === 0;
}

export function matmulVariant(gpu: Gpu, K: number, wdtype: DType): MatmulVariant {
  return gpu.isFallback && textureMatmulFits(gpu, K, wdtype) ? "texture" : "tiled";
}

export function matmul(
  b: Batch,
  x: Tensor,
  w: Tensor,
  bias?: Tensor,
  out?: Tensor,
  variant?: MatmulVariant,
): Tensor {
  const sizes = shapeStr(x, w);
  need(w.shape.length === 2, "matmul", `weight must be [N, K], got ${sizes}`);
  const [N, K] = w.shape;
  need(x.numel % K === 0 && x.dtype === "f32", "matmul", `x must be f32 [M, ${K}], got ${sizes}`);
  need(
    FP_WEIGHT_DTYPES.includes(w.dtype),
    "matmul",
    `weight dtype ${w.dtype} unsupported`,
  );
  need(!bias || bias.numel === N, "matmul", `bias must have ${N} values, got ${bias?.numel}`);
  const M = x.numel / K;
  const y = out ?? empty(b.gpu, [M, N], "f32", "matmul.out");
  need(y.numel === M * N, "matmul", `out must be [${M}, ${N}], got [${y.shape}]`);
  checkLoopBudget(b.gpu, "matmul", Math.ceil(K / 4) + 4, `K=${K}`);
  const v = variant ?? (chosen(b.gpu, gemmKey("matmul", M, N, K, w.dtype)) as MatmulVariant | undefined) ??
    matmulVariant(b.gpu, K, w.dtype);
  if (v === "texture") {
    need(textureMatmulFits(b.gpu, K, w.dtype), "matmul", `texture variant cannot take K=${K} ${w.dtype}`);
    matmulTexture(b, x, w, bias, y, `${sizes} M=${M} N=${N} K=${K}`);
    return y;
  }
  // The buffer variants share bindings and windows: "tiled" (matmul.wgsl, TM×TN outputs a thread,
  // 8×8 threads) and "workgroup" (matmul_wg.wgsl, 64×64 outputs a workgroup).
  if (v === "workgroup") {
    need(workgroupMatmulFits(K), "matmul", `workgroup variant needs K % 4 == 0, got K=${K}`);
  }
  const { TM, TN } = matmulTile(b.gpu);
  const [name, defines, rowsPerGroup, colsPerGroup] = v === "workgroup"
    ? ["matmul_wg", rowAccessDefines(K, w.dtype), 64, 64]
    : ["matmul", { ...rowAccessDefines(K, w.dtype), TM, TN }, 8 * TM, 8 * TN];
  for (const mw of windows(b.gpu, M, [K * 4, N * 4])) {
    for (const nw of windows(b.gpu, N, [K * BYTES[w.dtype]])) {
      const params = b.uniform([mw.rows, nw.rows, K, N, nw.row0, bias ? 1 : 0]);
      b.dispatch(
        { name, defines },
        [
          windowBinding(x, mw, K),
          windowBinding(w, nw, K),
          bias ?? dummy(b.gpu),
          windowBinding(y, mw, N),
          params,
        ],
        [Math.ceil(nw.rows / colsPerGroup), Math.ceil(mw.rows / rowsPerGroup), 1],
        `${sizes} M=${M} N=${N} K=${K}`,
      );
    }
  }
  return y;
}
