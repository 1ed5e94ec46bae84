// Launcher for shaders/sample.wgsl: choose the next token on the GPU (greedy or top-p sampling).

import type { Batch } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { need } from "./common.ts";

export interface SampleOptions {
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  seed: number;
  /** Which decode step this is (feeds the random stream). */
  step: number;
  /** Where the chosen id goes in `tokens`. */
  outIndex: number;
}

/** logits: f32 [V] (one position); tokens: u32 history; cur: u32 [1]. */
export function sample(b: Batch, logits: Tensor, tokens: Tensor, cur: Tensor, o: SampleOptions): void {
  const V = logits.numel;
  need(
    tokens.dtype === "u32" && cur.dtype === "u32" && o.outIndex < tokens.numel,
    "sample",
    `bad token buffers`,
  );
  need(
    o.temperature >= 0 && o.topP > 0 && o.topP <= 1,
    "sample",
    `temperature ${o.temperature} / top-p ${o.topP} out of range`,
  );
  const greedy = o.temperature === 0 ? 1 : 0;
  b.dispatch(
    { name: "sample" },
    [
      logits,
      tokens,
      cur,
      b.uniform([V, o.step, o.outIndex, o.seed >>> 0, greedy], [o.temperature || 1, o.topP]),
    ],
    [1, 1, 1],
    `V=${V} step=${o.step}`,
  );
}
