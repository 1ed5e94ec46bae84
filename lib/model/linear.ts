// A linear layer as the models see it: y[T, out] = x[T, in] · Wᵀ (+ b). The FP layer holds a
// dense [out, in] weight; quantized layers (later) implement the same interface, so a quantizer
// swaps modules without the model knowing.

import type { Batch } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { gemv } from "../kernels/gemv.ts";
import { matmul } from "../kernels/matmul.ts";

export interface Linear {
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  forward(b: Batch, x: Tensor): Tensor;
  /** Bytes this layer's parameters occupy on the GPU. */
  bytes(): number;
  /**
   * Its own parameter tensors whose contents kernels only read (what a streamed block moves
   * between host and GPU); state a kernel writes stays out of the list and on the GPU.
   */
  tensors(): Tensor[];
  release(): void;
}

export class DenseLinear implements Linear {
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** `shared`: the weight belongs to someone else (a tied lm_head borrows the embedding table). */
  constructor(
    readonly name: string,
    readonly weight: Tensor,
    readonly bias?: Tensor,
    readonly shared = false,
  ) {
    [this.outFeatures, this.inFeatures] = weight.shape;
  }
  forward(b: Batch, x: Tensor): Tensor {
    // One row (decode): the bandwidth-bound GEMV; more rows: the register-blocked matmul.
    if (x.numel === this.inFeatures) return gemv(b, x, this.weight, this.bias);
    return matmul(b, x, this.weight, this.bias);
  }
  bytes(): number {
    return (this.shared ? 0 : this.weight.byteLength) + (this.bias?.byteLength ?? 0);
  }
  tensors(): Tensor[] {
    return [...(this.shared ? [] : [this.weight]), ...(this.bias ? [this.bias] : [])];
  }
  release(): void {
    if (!this.shared) this.weight.release();
    this.bias?.release();
  }
}
