// Launcher for causal attention with grouped KV heads, two variants of one contract:
//   "keys" (shaders/attention.wgsl): a 32-thread workgroup per (row, head) splits the keys — any
//          length, and the parallelism a single decode row needs;
//   "rows" (shaders/attention_rows.wgsl): a thread per (row, head) — on a CPU adapter 2–5× faster
//          for prefill, used there while a thread's loop stays under llvmpipe's iteration cap.

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, type Tensor } from "../gpu/tensor.ts";
import { LLVMPIPE_LOOP_CAP, need, shapeStr } from "./common.ts";

export type AttentionVariant = "keys" | "rows";

export interface AttentionShape {
  seq: number; // tokens per sequence; rows hold T / seq sequences back to back
  heads: number; // query heads
  kvHeads: number;
  headDim: number;
  /** KV-cache use (one sequence): q holds positions pos0 …, k/v hold positions 0 … pos0 + T − 1 (or more rows). */
  pos0?: number;
  /** Force a variant (tests check both); by default chosen per adapter and size. */
  variant?: AttentionVariant;
}

/** The variant `attention` runs for T query rows attending to at most `keys` keys. */
export function attentionVariant(
  isFallback: boolean,
  T: number,
  keys: number,
  headDim: number,
): AttentionVariant {
  const d4 = Math.ceil(headDim / 4);
  const rowsFit = keys * (1 + 2 * d4) + 2 * d4 < LLVMPIPE_LOOP_CAP;
  return isFallback && T > 1 && rowsFit ? "rows" : "keys";
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
  const params = b.uniform([T, seq, heads, kvHeads, headDim, pos0], [1 / Math.sqrt(headDim)]);
  const variant = s.variant ?? attentionVariant(b.gpu.isFallback, T, seq + pos0, headDim);
  if (variant === "rows") {
    need(
      !b.gpu.isFallback || attentionVariant(true, 2, seq + pos0, headDim) === "rows",
      "attention",
      `variant rows: ${seq + pos0} keys exceed llvmpipe's loop cap at head_dim ${headDim}`,
    );
    need(heads <= b.gpu.maxWorkgroupsPerDim, "attention", `too many heads for one launch: ${sizes}`);
    b.dispatch(
      { name: "attention_rows", defines: { D4: headDim / 4 } },
      [q, k, v, out, params],
      [Math.ceil(T / 64), heads, 1],
      sizes,
    );
    return out;
  }
  // Private arrays sized to the head dim (in vec4, rounded to 8) keep registers small on real GPUs.
  const D4MAX = Math.ceil(headDim / 32) * 8;
  b.dispatch(
    { name: "attention", defines: { D4MAX } },
    [q, k, v, out, params],
    grid(b.gpu, T * heads, 1),
    sizes,
  );
  return out;
}
