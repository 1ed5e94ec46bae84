// Launcher for shaders/matmul_tex.wgsl: y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]), x and w read
// through textures (the CPU adapter's fast gather). Each row window of x and of w is copied into a
// texture once per call; texture copies need rows 256-byte aligned, hence `textureMatmulFits`.

import type { Batch } from "../gpu/kernel.ts";
import { BYTES, type DType, rowWindows, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { pair16 } from "./common.ts";

/** Outputs per thread [rows of y, columns of y] (8 threads per workgroup). */
export const TEX_TILE = { TM: 16, TN: 16 };

/** Whether x [.., K] f32 and w [.., K] of `dtype` can be copied into textures as they are. */
export function textureMatmulFits(gpu: { maxTexture2D: number }, K: number, dtype: DType): boolean {
  return K % 4 === 0 && K / 4 <= gpu.maxTexture2D && (K * 4) % 256 === 0 && (K * BYTES[dtype]) % 256 === 0;
}

/** Unrolled tile code: accumulators a{i}_{j}, clamped row/column indices, guarded stores. */
function tileCode(TM: number, TN: number, bias: boolean): { DECL: string; BODY: string; STORE: string } {
  const decl: string[] = [], body: string[] = [], store: string[] = [];
  const I = Array.from({ length: TM }, (_, i) => i), J = Array.from({ length: TN }, (_, j) => j);
  decl.push(I.map((i) => `let r${i} = min(m_base + ${i}u, m_last);`).join(" "));
  decl.push(J.map((j) => `let c${j} = min(n_base + ${j}u, n_last);`).join(" "));
  for (const i of I) decl.push(J.map((j) => `var a${i}_${j} = 0.0;`).join(" "));
  body.push(I.map((i) => `let x${i} = xload(k, r${i});`).join(" "));
  for (const j of J) {
    body.push(`let w${j} = wload(k, c${j}); ` + I.map((i) => `a${i}_${j} += dot(x${i}, w${j});`).join(" "));
  }
  if (bias) store.push(J.map((j) => `let b${j} = bias[p.n0 + c${j}];`).join(" "));
  for (const i of I) {
    const row = J.map((j) =>
      `if (n_base + ${j}u < p.N) { y[o${i} + ${j}u] = a${i}_${j}${bias ? ` + b${j}` : ""}; }`
    );
    store.push(
      `if (m_base + ${i}u < p.M) { let o${i} = (m_base + ${i}u) * p.ldy + p.n0 + n_base; ${row.join(" ")} }`,
    );
  }
  return { DECL: decl.join("\n  "), BODY: body.join("\n    "), STORE: store.join("\n  ") };
}

export function matmulTexture(
  b: Batch,
  x: Tensor,
  w: Tensor,
  bias: Tensor | undefined,
  y: Tensor,
  sizes: string,
): void {
  const [N, K] = w.shape;
  const M = x.numel / K;
  const gpu = b.gpu;
  const packed = w.dtype !== "f32";
  const { TM, TN } = TEX_TILE;
  const defines = {
    WTT: packed ? "u32" : "f32",
    W4: packed
      ? `vec4<f32>(${pair16(w.dtype as "f16" | "bf16", "t.x")}, ${pair16(w.dtype as "f16" | "bf16", "t.y")})`
      : "t",
    TM,
    TN,
    ...tileCode(TM, TN, !!bias),
  };
  // Row windows: a texture is at most maxTexture2D rows, and y's window is one storage binding.
  // x and w are copied, not bound, so only the texture height limits their windows.
  const rowBytes = K * BYTES[w.dtype];
  const mws = rowWindows(M, [N * 4], Math.min(gpu.maxBinding, gpu.maxTexture2D * N * 4), gpu.offsetAlign);
  const nws = rowWindows(N, [rowBytes], gpu.maxTexture2D * rowBytes, 256);
  const xTex = mws.map((mw) =>
    b.texture({ buffer: x.buffer, offset: mw.row0 * K * 4 }, K / 4, mw.rows, "rgba32float", K * 4)
  );
  for (const nw of nws) {
    const wTex = b.texture(
      { buffer: w.buffer, offset: nw.row0 * rowBytes },
      K / 4,
      nw.rows,
      packed ? "rg32uint" : "rgba32float",
      rowBytes,
    );
    mws.forEach((mw, i) => {
      b.dispatch(
        { name: "matmul_tex", defines },
        [
          xTex[i],
          wTex,
          bias ?? null,
          windowBinding(y, mw, N),
          b.uniform([mw.rows, nw.rows, K / 4, N, nw.row0]),
        ],
        [Math.ceil(nw.rows / (8 * TN)), Math.ceil(mw.rows / TM), 1],
        sizes,
      );
    });
  }
}
