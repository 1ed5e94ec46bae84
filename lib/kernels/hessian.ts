// Launcher for shaders/hessian.wgsl, and the running average GPTQ keeps:
// after n samples, H = (2/n) Σ_samples XᵀX (tokens of every sample summed), exactly as the
// reference's add_batch updates it (H·n/(n+m) + (2/(n+m))·XᵀX for a batch of m samples).

import type { Gpu } from "../gpu/device.ts";
import type { Batch } from "../gpu/kernel.ts";
import { type Tensor, upload, windowBinding } from "../gpu/tensor.ts";
import { checkLoopBudget, need, shapeStr, windows } from "./common.ts";

/** H ← a·H + b·XᵀX, with X [T, D] and H [D, D]. */
export function hessianUpdate(b: Batch, h: Tensor, x: Tensor, a: number, bScale: number): void {
  const D = h.shape[0];
  need(h.numel === D * D && x.numel % D === 0, "hessian", `H ${shapeStr(h)} and X ${shapeStr(x)} disagree`);
  const T = x.numel / D;
  checkLoopBudget(b.gpu, "hessian", T, `T=${T}`);
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
