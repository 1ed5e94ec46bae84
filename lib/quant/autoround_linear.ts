// One linear layer under AutoRound training (auto_round/wrapper.py's WrapperLinear): the FP
// weight W [out, in] stays as it is; the trainables are V [out, in] (rounding offset, starts at 0)
// and the min/max scale factors [out, G] (start at 1, kept in [0, 1]). Forward uses the
// fake-quantized ŵ = qdq(W, V, ms, Ms); backward gives dx and the trainables' gradients:
//   dŴ = dYᵀ·X,  dX = dY·Ŵ,  (dV, dms, dMs) = qdq_backward(dŴ)   (straight-through round)
// The parameters of the forward that had the best loss are kept (stash → best).

import type { Batch } from "../gpu/kernel.ts";
import { empty, type Tensor, upload } from "../gpu/tensor.ts";
import { arCodes, type ArGrid, arQdq, arQdqBackward } from "../kernels/autoround.ts";
import { matmul } from "../kernels/matmul.ts";
import { signSgdStep } from "../kernels/sign_sgd.ts";
import { transpose } from "../kernels/transpose.ts";
import type { GradLinear } from "../grad/tape.ts";
import type { DenseLinear } from "../model/linear.ts";

interface Params {
  v: Tensor; // [out, in]
  ms: Tensor; // [out, G]
  Ms: Tensor; // [out, G]
}

export class ArLinear implements GradLinear {
  readonly name: string;
  readonly out: number;
  readonly inp: number;
  readonly groups: number;
  #p: Params;
  #stash: Params;
  #best: Params | null = null;
  #wq: Tensor | null = null;
  #grads: { gv: Tensor; gms: Tensor; gMs: Tensor } | null = null;

  /** `fp` borrows the FP layer's weight and bias; `minmax` false freezes the scale factors at 1. */
  constructor(readonly fp: DenseLinear, readonly grid: ArGrid, readonly minmax = true) {
    this.name = fp.name;
    [this.out, this.inp] = fp.weight.shape;
    this.groups = this.inp / grid.groupSize;
    const gpu = fp.weight.gpu;
    const make = (): Params => ({
      v: upload(gpu, new Float32Array(this.out * this.inp), [this.out, this.inp], `${this.name}.V`),
      ms: upload(gpu, new Float32Array(this.out * this.groups).fill(1), [this.out, this.groups], "ms"),
      Ms: upload(gpu, new Float32Array(this.out * this.groups).fill(1), [this.out, this.groups], "Ms"),
    });
    this.#p = make();
    this.#stash = make();
  }

  /** The current trainables (tests and notebooks read V's distribution from here). */
  get params(): Readonly<Params> {
    return this.#p;
  }

  forward(b: Batch, x: Tensor): Tensor {
    this.#wq?.release();
    const p = this.#p;
    this.#wq = arQdq(b, this.fp.weight, p.v, p.ms, p.Ms, this.grid);
    return matmul(b, x, this.#wq, this.fp.bias);
  }

  backward(b: Batch, x: Tensor, dy: Tensor, needDx: boolean): Tensor | null {
    if (!this.#wq) throw new Error(`${this.name}: backward before forward`);
    const T = x.numel / this.inp;
    const dyT = transpose(b, dy, T, this.out); // [out, T]
    const xT = transpose(b, x, T, this.inp); // [in, T]
    const dwq = matmul(b, dyT, xT); // [out, in]
    xT.release(), dyT.release();
    let dx: Tensor | null = null;
    if (needDx) {
      const wqT = transpose(b, this.#wq, this.out, this.inp); // [in, out]
      dx = matmul(b, dy, wqT); // [T, in]
      wqT.release();
    }
    const p = this.#p;
    this.#releaseGrads();
    this.#grads = arQdqBackward(b, this.fp.weight, p.v, p.ms, p.Ms, dwq, this.grid);
    dwq.release();
    return dx;
  }

  /** The last backward's gradients (tests compare them with a CPU reference). */
  get grads() {
    return this.#grads;
  }

  /** Copy the parameters of this forward aside, then take a signed step. */
  step(b: Batch, lr: number, minmaxLr: number): void {
    const g = this.#grads;
    if (!g) throw new Error(`${this.name}: step before backward`);
    const p = this.#p, s = this.#stash;
    for (const k of ["v", "ms", "Ms"] as const) b.copy(p[k].buffer, 0, s[k].buffer, 0, p[k].byteLength);
    signSgdStep(b, p.v, g.gv, lr, false);
    if (this.minmax) {
      signSgdStep(b, p.ms, g.gms, minmaxLr, true);
      signSgdStep(b, p.Ms, g.gMs, minmaxLr, true);
    }
  }

  /** The stashed parameters (those of the last forward) become the best so far. */
  keepStashAsBest(): void {
    const gpu = this.fp.weight.gpu;
    const old = this.#best;
    this.#best = this.#stash;
    this.#stash = old ?? {
      v: empty(gpu, [this.out, this.inp], "f32", `${this.name}.V`),
      ms: empty(gpu, [this.out, this.groups], "f32", "ms"),
      Ms: empty(gpu, [this.out, this.groups], "f32", "Ms"),
    };
  }

  /** Codes, scales and zeros of the best parameters (the current ones when no step was kept). */
  codes(b: Batch) {
    const p = this.#best ?? this.#p;
    return arCodes(b, this.fp.weight, p.v, p.ms, p.Ms, this.grid);
  }

  /** The best parameters (or the current ones). */
  get best(): Readonly<Params> {
    return this.#best ?? this.#p;
  }

  #releaseGrads() {
    if (!this.#grads) return;
    for (const t of Object.values(this.#grads)) t.release();
    this.#grads = null;
  }

  release(): void {
    this.#releaseGrads();
    this.#wq?.release();
    for (const p of [this.#p, this.#stash, this.#best]) {
      if (p) p.v.release(), p.ms.release(), p.Ms.release();
    }
  }
}
