// Which linears a data-free method quantizes: every linear of the decoder blocks, and lm_head too
// when asked (embeddings always stay FP, even when the head is tied to them: the quantized head
// gets its own tensor). Calibrated methods (GPTQ, AWQ, AutoRound) see only the blocks: they need
// the inputs of a layer, and the bench refuses --quantize-head for them.

import { DenseLinear, type Linear } from "../model/linear.ts";
import type { CausalLM } from "../model/model.ts";

/** Methods that can quantize lm_head (--quantize-head); the others refuse the flag. */
export const HEAD_METHODS = ["rtn", "hqq", "nf4", "fp4", "bnb-int8"];

export interface Target {
  linear: DenseLinear;
  /** Put the quantized layer in its place. */
  replace(layer: Linear): void;
}

/** The FP linears to quantize, checked to be unquantized before any work. */
export function quantTargets(model: CausalLM, quantizeHead = false): Target[] {
  const out: Target[] = [];
  const take = (l: Linear, replace: (x: Linear) => void) => {
    if (!(l instanceof DenseLinear)) throw new Error(`${l.name} is already quantized`);
    out.push({ linear: l, replace });
  };
  for (let i = 0; i < model.numBlocks; i++) {
    for (const l of model.blockLinears(i)) take(l, (x) => model.setLinear(l.name, x));
  }
  if (quantizeHead) take(model.headLinear(), (x) => model.setHead(x));
  return out;
}
