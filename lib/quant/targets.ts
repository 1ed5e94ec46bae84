// Which linears a data-free method quantizes: every linear of the decoder blocks, and lm_head too
// when asked (embeddings always stay FP, even when the head is tied to them: the quantized head
// gets its own tensor). Calibrated methods (GPTQ, AWQ, AutoRound) see only the blocks: they need
// the inputs of a layer, and the bench refuses --quantize-head for them.

import { Batch } from "../gpu/kernel.ts";
import { empty, type Tensor } from "../gpu/tensor.ts";
import { expandToF32 } from "../kernels/expand.ts";
import { DenseLinear, type Linear } from "../model/linear.ts";
import type { CausalLM } from "../model/model.ts";

export interface Target {
  linear: DenseLinear;
  /** Its decoder block (null: lm_head). */
  block: number | null;
  /** Put the quantized layer in its place. */
  replace(layer: Linear): void;
}

/** The FP linears to quantize, checked to be unquantized before any work. */
export function quantTargets(model: CausalLM, quantizeHead = false): Target[] {
  const out: Target[] = [];
  const take = (l: Linear, block: number | null, replace: (x: Linear) => void) => {
    if (!(l instanceof DenseLinear)) throw new Error(`${l.name} is already quantized`);
    out.push({ linear: l, block, replace });
  };
  for (let i = 0; i < model.numBlocks; i++) {
    for (const l of model.blockLinears(i)) take(l, i, (x) => model.setLinear(l.name, x));
  }
  if (quantizeHead) take(model.headLinear(), null, (x) => model.setHead(x));
  return out;
}

/**
 * The targets in order, with each one's block on the GPU while it is visited: a streamed model
 * takes a block in before its first target and sends it (quantized) back after its last.
 */
export async function* visitTargets(model: CausalLM, targets: Target[]): AsyncGenerator<Target> {
  let cur: number | null = null;
  for (const t of targets) {
    if (t.block !== cur) {
      if (cur !== null) await model.leaveBlock(cur, true);
      cur = t.block;
      if (cur !== null) await model.enterBlock(cur);
    }
    yield t;
  }
  if (cur !== null) await model.leaveBlock(cur, true);
}

/**
 * Block i's FP linears with f32 weights: a 16-bit weight (f16/bf16 as loaded) is expanded to an
 * f32 copy in its place — exact, and what the in-place algorithms (AWQ folds scales into weights,
 * AutoRound trains on them) need. f32 layers are left as they are.
 */
export async function f32Block(model: CausalLM, i: number): Promise<void> {
  const b = new Batch(model.gpu);
  const fresh: DenseLinear[] = [];
  for (const l of model.blockLinears(i)) {
    if (!(l instanceof DenseLinear) || l.weight.dtype === "f32") continue;
    let bias: Tensor | undefined;
    if (l.bias) {
      bias = empty(model.gpu, l.bias.shape, l.bias.dtype, l.bias.label);
      b.copy(l.bias.buffer, 0, bias.buffer, 0, l.bias.byteLength);
    }
    fresh.push(new DenseLinear(l.name, expandToF32(b, l.weight), bias));
  }
  if (!fresh.length) return;
  await b.submit(); // the copies are made before the 16-bit layers are released
  for (const l of fresh) model.setLinear(l.name, l);
}
