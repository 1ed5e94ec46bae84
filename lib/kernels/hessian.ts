// Launcher for shaders/hessian.wgsl, and the running average GPTQ keeps:
// after n samples, H = (2/n) Σ_samples XᵀX (tokens of every sample summed), exactly as the
// reference's add_batch updates it (H·n/(n+m) + (2/(n+m))·XᵀX for a batch of m samples).

import type { Gpu } from "../gpu/device.ts";
import type { Batch } from "../gpu/kernel.ts";
import { type Tensor, upload, windowBinding } from "../gpu/tensor.ts";
import { checkLoopBudget, need, shapeStr, windows } from "./common.ts";

/** Tile edge of the texture-read variant (a thread owns TI×TI entries of H). */
const TEX_TI = 8;

/**
 * The texture-read variant on a CPU adapter (llvmpipe: 6.8× the buffer kernel at T 2048, D 256
 * and 768) when x's rows can be copied into a texture as they are (256-byte rows) and H fits one
 * binding; otherwise the buffer kernel. `variant` forces one (tests check both).
 */
export function hessianVariant(gpu: Gpu, D: number): "buffer" | "texture" {
  return gpu.isFallback && texFits(gpu, D) ? "texture" : "buffer";
}

const texFits = (gpu: Gpu, D: number) =>
  D % 64 === 0 && D / 4 <= gpu.maxTexture2D && D * D * 4 <= gpu.maxBinding;

/** Unrolled TI×TI tile: i-texels xi{q}, j-texels xj{q}, accumulators s{r}_{c}, guarded stores. */
function texTileCode(TI: number): { DECL: string; BODY: string; STORE: string } {
  const Q = Array.from({ length: TI / 4 }, (_, q) => q), R = Array.from({ length: TI }, (_, r) => r);
  const L = "xyzw";
  const decl = R.map((r) => R.map((c) => `var s${r}_${c} = 0.0;`).join(" "));
  const body = [
    Q.map((q) => `let xi${q} = textureLoad(xt, vec2<u32>(min(i0 / 4u + ${q}u, c_last), t), 0);`).join(" "),
    Q.map((q) => `let xj${q} = textureLoad(xt, vec2<u32>(min(j0 / 4u + ${q}u, c_last), t), 0);`).join(" "),
    ...R.map((r) =>
      R.map((c) => `s${r}_${c} += xi${r >> 2}.${L[r & 3]} * xj${c >> 2}.${L[c & 3]};`).join(" ")
    ),
  ];
  const store = R.map((r) =>
    `if (i0 + ${r}u < p.D) { ` + R.map((c) =>
      `if (j0 + ${c}u < p.D) { upd((i0 + ${r}u) * p.D + j0 + ${c}u, s${r}_${c}); ` +
      `if (i0 != j0) { upd((j0 + ${c}u) * p.D + i0 + ${r}u, s${r}_${c}); } }`
    ).join(" ") + " }"
  );
  return { DECL: decl.join("\n  "), BODY: body.join("\n    "), STORE: store.join("\n  ") };
}

/** H ← a·H + b·XᵀX, with X [T, D] and H [D, D]. */
export function hessianUpdate(
  b: Batch,
  h: Tensor,
  x: Tensor,
  a: number,
  bScale: number,
  variant = hessianVariant(b.gpu, h.shape[0]),
): void {
  const D = h.shape[0];
  need(h.numel === D * D && x.numel % D === 0, "hessian", `H ${shapeStr(h)} and X ${shapeStr(x)} disagree`);
  const T = x.numel / D;
  checkLoopBudget(b.gpu, "hessian", T, `T=${T}`);
  if (variant === "texture") {
    need(D % 64 === 0 && D * D * 4 <= b.gpu.maxBinding, "hessian", `texture variant cannot take D=${D}`);
    // Token windows of at most maxTexture2D rows; the first scales H by a, the rest add to it.
    const defines = { TI: TEX_TI, ...texTileCode(TEX_TI) };
    for (let t0 = 0, first = true; t0 < T; t0 += b.gpu.maxTexture2D, first = false) {
      const rows = Math.min(b.gpu.maxTexture2D, T - t0);
      const xt = b.texture({ buffer: x.buffer, offset: t0 * D * 4 }, D / 4, rows, "rgba32float", D * 4);
      const g = Math.ceil(D / TEX_TI);
      b.dispatch(
        { name: "hessian_tex", defines },
        [xt, h, b.uniform([rows, D], [first ? a : 1, bScale])],
        [Math.ceil(g / 8), g, 1],
        `T=${rows} D=${D}`,
      );
    }
    return;
  }
  const wins = windows(b.gpu, D, [D * 4]);
  const defines = {
    SYM: wins.length === 1 ? 1 : 0,
    ...(D % 4 === 0 ? { XT: "vec4<f32>", LOAD4: "x[(o + c) / 4u]" } : {
      XT: "f32",
      LOAD4: "vec4<f32>(x[o + min(c, p.D - 1u)], x[o + min(c + 1u, p.D - 1u)], " +
        "x[o + min(c + 2u, p.D - 1u)], x[o + min(c + 3u, p.D - 1u)])",
    }),
  };
  for (const w of wins) {
    b.dispatch(
      { name: "hessian", defines },
      [x, windowBinding(h, w, D), b.uniform([T, D, w.row0, w.rows], [a, bScale])],
      [Math.ceil(D / 32), Math.ceil(w.rows / 32), 1],
      `T=${T} D=${D}`,
    );
  }
}

export class HessianAccumulator {
  readonly h: Tensor;
  samples = 0;
  constructor(gpu: Gpu, readonly dim: number, readonly name: string) {
    this.h = upload(gpu, new Float32Array(dim * dim), [dim, dim], `${name}.H`);
  }
  /** Add `samples` sequences whose tokens are the rows of x [T, dim]. */
  add(b: Batch, x: Tensor, samples: number): void {
    const n = this.samples + samples;
    hessianUpdate(b, this.h, x, this.samples / n, 2 / n);
    this.samples = n;
  }
  release(): void {
    this.h.release();
  }
}
