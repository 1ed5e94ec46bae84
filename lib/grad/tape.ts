// Reverse-mode gradients through a decoder block on the GPU, for AutoRound's block-wise training.
// Each op runs its forward kernel (the same kernels inference uses) and records a closure that,
// run in reverse order, turns dL/d(output) into dL/d(inputs) with the backward kernels. Only input
// gradients flow: norms and biases are frozen; trainable parameters live in the linears
// (GradLinear), which keep their own gradients. Only values downstream of a trainable (or of an
// input marked with requireGrad) get gradients: AutoRound needs none for the block's input, so
// the backward pass skips dX of q/k/v, the first norm's backward and the residual's copy.
// Forward tensors stay alive until release(): the backward pass needs them (one block, one batch).

import type { Gpu } from "../gpu/device.ts";
import type { Batch } from "../gpu/kernel.ts";
import { empty, type Tensor } from "../gpu/tensor.ts";
import { reluBackward, siluMulBackward } from "../kernels/elementwise_backward.ts";
import { addInPlace } from "../kernels/add.ts";
import { attention, type AttentionShape } from "../kernels/attention.ts";
import { attentionBackward } from "../kernels/attention_backward.ts";
import { relu } from "../kernels/activation.ts";
import { layernorm } from "../kernels/layernorm.ts";
import { layernormBackward, rmsnormBackward } from "../kernels/norm_backward.ts";
import { rmsnorm } from "../kernels/rmsnorm.ts";
import { rope, type RopeTable } from "../kernels/rope.ts";
import { siluMul } from "../kernels/silu_mul.ts";

/** A linear layer that can pass gradients back (and keep its parameters' own). */
export interface GradLinear {
  readonly name: string;
  forward(b: Batch, x: Tensor): Tensor;
  /** Accumulates the layer's parameter gradients; returns dL/dx when `needDx`, else null. */
  backward(b: Batch, x: Tensor, dy: Tensor, needDx: boolean): Tensor | null;
}

export class Tape {
  #back: ((b: Batch) => void)[] = [];
  #grads = new Map<Tensor, Tensor>();
  #keep: Tensor[] = [];
  /** Values whose gradient is wanted: linear outputs, what depends on them, marked inputs. */
  #needs = new Set<Tensor>();

  constructor(readonly gpu: Gpu) {}

  /** Ask for dL/dx of an input the ops will read (tests check the block's input gradient). */
  requireGrad(x: Tensor): void {
    this.#needs.add(x);
  }

  /** y needs a gradient when any of its inputs does. */
  #derive(y: Tensor, ...inputs: Tensor[]): void {
    if (inputs.some((t) => this.#needs.has(t))) this.#needs.add(y);
  }

  /** Keep t alive until release (a forward value the backward pass reads). */
  #own<T extends Tensor>(t: T): T {
    this.#keep.push(t);
    return t;
  }

  /** dL/dt accumulated so far (the tape keeps ownership). */
  grad(t: Tensor): Tensor | undefined {
    return this.#grads.get(t);
  }

  /** Add g to dL/dt, taking ownership of g (released when t needs no gradient). */
  #acc(b: Batch, t: Tensor, g: Tensor): void {
    if (!this.#needs.has(t)) return g.release();
    const cur = this.#grads.get(t);
    if (!cur) return void this.#grads.set(t, g);
    addInPlace(b, cur, g);
    g.release();
  }

  /** Take dL/dt out of the tape (null when nothing flowed into t). */
  #take(t: Tensor): Tensor | null {
    const g = this.#grads.get(t) ?? null;
    this.#grads.delete(t);
    return g;
  }

  linear(b: Batch, x: Tensor, l: GradLinear): Tensor {
    const y = this.#own(l.forward(b, x));
    this.#needs.add(y); // the layer's parameters are trained
    this.#back.push((b) => {
      const dy = this.#take(y);
      if (!dy) return;
      const dx = l.backward(b, x, dy, this.#needs.has(x));
      if (dx) this.#acc(b, x, dx);
      dy.release();
    });
    return y;
  }

  rmsnorm(b: Batch, x: Tensor, w: Tensor, eps: number): Tensor {
    const y = this.#own(rmsnorm(b, x, w, eps));
    this.#derive(y, x);
    this.#back.push((b) => {
      const dy = this.#take(y);
      if (dy) this.#acc(b, x, rmsnormBackward(b, x, w, dy, eps)), dy.release();
    });
    return y;
  }

  layernorm(b: Batch, x: Tensor, w: Tensor, bias: Tensor, eps: number): Tensor {
    const y = this.#own(layernorm(b, x, w, bias, eps));
    this.#derive(y, x);
    this.#back.push((b) => {
      const dy = this.#take(y);
      if (dy) this.#acc(b, x, layernormBackward(b, x, w, dy, eps)), dy.release();
    });
    return y;
  }

  /** RoPE in place on x (a tape value): its gradient is rotated back in place, under the same key. */
  rope(b: Batch, x: Tensor, table: RopeTable, heads: number, seq: number): void {
    rope(b, x, table, heads, seq);
    this.#back.push((b) => {
      const dy = this.grad(x);
      if (dy) rope(b, dy, table, heads, seq, 0, true);
    });
  }

  attention(b: Batch, q: Tensor, k: Tensor, v: Tensor, s: AttentionShape): Tensor {
    const o = this.#own(attention(b, q, k, v, s));
    this.#derive(o, q, k, v);
    this.#back.push((b) => {
      const dO = this.#take(o);
      if (!dO) return;
      const g = attentionBackward(b, q, k, v, o, dO, s);
      dO.release();
      this.#acc(b, q, g.dq), this.#acc(b, k, g.dk), this.#acc(b, v, g.dv);
    });
    return o;
  }

  siluMul(b: Batch, gate: Tensor, up: Tensor): Tensor {
    const h = this.#own(siluMul(b, gate, up));
    this.#derive(h, gate, up);
    this.#back.push((b) => {
      const dh = this.#take(h);
      if (!dh) return;
      const [dg, du] = siluMulBackward(b, gate, up, dh);
      dh.release();
      this.#acc(b, gate, dg), this.#acc(b, up, du);
    });
    return h;
  }

  /** relu(x) as a new tensor (x is left as it was). */
  relu(b: Batch, x: Tensor): Tensor {
    const y = this.#own(empty(b.gpu, x.shape, "f32", "relu.out"));
    b.copy(x.buffer, 0, y.buffer, 0, x.byteLength);
    relu(b, y);
    this.#derive(y, x);
    this.#back.push((b) => {
      const dy = this.#take(y);
      if (dy) this.#acc(b, x, reluBackward(b, y, dy)), dy.release();
    });
    return y;
  }

  /** The residual sum a + c as a new tensor. */
  add(b: Batch, a: Tensor, c: Tensor): Tensor {
    const y = this.#own(empty(b.gpu, a.shape, "f32", "residual"));
    b.copy(a.buffer, 0, y.buffer, 0, a.byteLength);
    addInPlace(b, y, c);
    this.#derive(y, a, c);
    this.#back.push((b) => {
      const dy = this.#take(y);
      if (!dy) return;
      if (this.#needs.has(a) && this.#needs.has(c)) {
        const da = empty(b.gpu, dy.shape, "f32", "residual.grad");
        b.copy(dy.buffer, 0, da.buffer, 0, dy.byteLength);
        this.#acc(b, a, da);
      }
      this.#acc(b, this.#needs.has(c) ? c : a, dy);
    });
    return y;
  }

  /**
   * Run the recorded ops backwards from dL/dy (ownership taken). Afterwards `grad(x)` holds
   * dL/dx for every input x marked with requireGrad that influenced y.
   */
  backward(b: Batch, y: Tensor, dy: Tensor): void {
    this.#acc(b, y, dy);
    for (let i = this.#back.length - 1; i >= 0; i--) this.#back[i](b);
    this.#back = [];
  }

  /** Release every forward value and gradient the tape holds (inputs given to it stay). */
  release(): void {
    for (const t of this.#keep) t.release();
    for (const g of this.#grads.values()) g.release();
    this.#keep = [];
    this.#grads.clear();
    this.#needs.clear();
    this.#back = [];
  }
}
