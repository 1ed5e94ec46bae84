// Launcher for shaders/attention.wgsl: causal attention with grouped KV heads.

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, type Tensor } from "../gpu/tensor.ts";
import { need, shapeStr } from "./common.ts";

export interface AttentionShape {
  seq: number; // tokens per sequence; rows hold T / seq sequences back to back
  heads: number; // query heads
  kvHeads: number;
  headDim: number;
  /** KV-cache use (one sequence): q holds positions pos0 …, k/v hold positions 0 … pos0 + T − 1 (or more rows). */
  pos0?: number;
}

export function attention(b: Batch, q: Tensor, k: Tensor, v: Tensor, s: AttentionShape): Tensor {
  const { seq, heads, kvHeads, headDim } = s;
  const T = q.numel / (heads * headDim);
  const sizes = `${shapeStr(q, k, v)} seq=${seq} Hq=${heads} Hkv=${kvHeads} Dh=${headDim}`;
  need(Number.isInteger(T) && T % seq === 0, "attention", `q is not [B·seq, Hq·Dh]: ${sizes}`);
  need(heads % kvHeads === 0, "attention", `query heads must be a multiple of KV heads: ${sizes}`);
  const pos0 = s.pos0 ?? 0;
  if (pos0 === 0) {
    need(
      k.numel === T * kvHeads * headDim && v.numel === k.numel,
      "attention",
      `k/v are not [T, Hkv·Dh]: ${sizes}`,
    );
  } else {
    need(seq === T, "attention", `a KV cache serves one sequence: ${sizes}`);
    need(
      k.numel >= (pos0 + T) * kvHeads * headDim && v.numel === k.numel,
      "attention",
      `k/v cache holds fewer than ${pos0 + T} positions: ${sizes}`,
    );
  }
  need(
    headDim <= 256 && headDim % 4 === 0,
    "attention",
    `head_dim ${headDim} must be a multiple of 4, at most 256`,
  );
  const out = empty(b.gpu, q.shape, "f32", "attention.out");
  // Private arrays sized to the head dim (in vec4, rounded to 8) keep registers small on real GPUs.
  const D4MAX = Math.ceil(headDim / 32) * 8;
  b.dispatch(
    { name: "attention", defines: { D4MAX } },
    [q, k, v, out, b.uniform([T, seq, heads, kvHeads, headDim, pos0], [1 / Math.sqrt(headDim)])],
    grid(b.gpu, T * heads, 1),
    sizes,
  );
  return out;
}
