// Launcher for shaders/attention_backward.wgsl: dq, dk, dv of causal attention with grouped KV
// heads, given q (after RoPE), k, v, the forward output o and dL/do. Three dispatches: the row
// statistics (lse, D = dO·o), then dq per query row and dk/dv per key row; split by whole
// sequences past the adapter's max storage binding.

import { type Batch, grid } from "../gpu/kernel.ts";
import { empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import type { AttentionShape } from "./attention.ts";
import { checkLoopBudget, dummy, need, shapeStr, windows } from "./common.ts";
import { attentionBackwardRows, backwardRowsFit } from "./attention_backward_rows.ts";

/** "keys" (attention_backward.wgsl: 32 threads split a row's keys or queries) or, on CPU adapters,
 * "rows" (attention_backward_rows.ts: a thread per R rows). llvmpipe, tiny-llama's block at 8 × 512
 * tokens (AutoRound's batch): stats + dq + dkv 1490 → 121 ms of GPU time, the whole iteration
 * (forward, backward, step) 2380 → 1012 ms. */
export type AttentionBackwardVariant = "keys" | "rows";

export function attentionBackwardVariant(
  gpu: { isFallback: boolean; maxTexture2D: number },
  rows: number,
  s: AttentionShape,
): AttentionBackwardVariant {
  return gpu.isFallback && backwardRowsFit(gpu, rows, s) ? "rows" : "keys";
}

export function attentionBackward(
  b: Batch,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: Tensor,
  dout: Tensor,
  s: AttentionShape & { backward?: AttentionBackwardVariant },
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const { seq, heads, kvHeads, headDim } = s;
  const T = q.numel / (heads * headDim);
  const sizes = `${shapeStr(q, k, v, o, dout)} seq=${seq} Hq=${heads} Hkv=${kvHeads} Dh=${headDim}`;
  need(Number.isInteger(T) && T % seq === 0, "attention_backward", `q is not [B·seq, Hq·Dh]: ${sizes}`);
  need(heads % kvHeads === 0, "attention_backward", `query heads must be a multiple of KV heads: ${sizes}`);
  need(
    k.numel === T * kvHeads * headDim && v.numel === k.numel && o.numel === q.numel &&
      dout.numel === q.numel,
    "attention_backward",
    `shapes disagree: ${sizes}`,
  );
  need(!s.pos0, "attention_backward", "a KV-cache step has no backward pass");
  need(
    headDim <= 256 && headDim % 4 === 0,
    "attention_backward",
    `head_dim ${headDim}: multiple of 4, ≤ 256`,
  );
  const d4 = headDim / 4, G = heads / kvHeads;
  // Per thread: ⌈keys/32⌉ keys × (2 dot products + 1 axpy) over d4, or ⌈seq·G/32⌉ queries × 3 d4 loops.
  checkLoopBudget(b.gpu, "attention_backward", Math.ceil((seq * G) / 32) * (3 * d4 + 1), sizes);
  const D4MAX = Math.ceil(headDim / 32) * 8;
  const defines = { D4MAX };
  const lse = empty(b.gpu, [T * heads], "f32", "attention.lse");
  const dd = empty(b.gpu, [T * heads], "f32", "attention.D");
  const dq = empty(b.gpu, q.shape, "f32", "attention.dq");
  const dk = empty(b.gpu, k.shape, "f32", "attention.dk");
  const dv = empty(b.gpu, v.shape, "f32", "attention.dv");
  const dum = dummy(b.gpu);
  // Past the max storage binding, whole sequences at a time (rows of q/o/dq, k/v/dk/dv, lse/D).
  const qE = heads * headDim, kE = kvHeads * headDim;
  need(
    seq * Math.max(qE, kE) * 4 <= b.gpu.maxBinding,
    "attention_backward",
    `one sequence (${seq} rows × ${qE * 4} bytes) exceeds the max storage binding: ${sizes}`,
  );
  for (const w of windows(b.gpu, T / seq, [seq * qE * 4, seq * kE * 4, seq * heads * 4])) {
    const rows = { row0: w.row0 * seq, rows: w.rows * seq }, n = rows.rows;
    const [wq, wo, wdo, wdq] = [q, o, dout, dq].map((t) => windowBinding(t, rows, qE));
    const [wk, wv, wdk, wdv] = [k, v, dk, dv].map((t) => windowBinding(t, rows, kE));
    const [wl, wd] = [lse, dd].map((t) => windowBinding(t, rows, heads));
    const u = b.uniform([n, seq, heads, kvHeads, headDim], [1 / Math.sqrt(headDim)]);
    const variant = s.backward ?? attentionBackwardVariant(b.gpu, n, s);
    if (variant === "rows") {
      need(backwardRowsFit(b.gpu, n, s), "attention_backward", `the rows variant cannot take ${sizes}`);
      const at = (t: Tensor, e: number): [GPUBuffer, number] => [t.buffer, rows.row0 * e * 4];
      attentionBackwardRows(
        b,
        {
          q: wq,
          k: wk,
          v: wv,
          o: wo,
          dout: wdo,
          lse: wl,
          dd: wd,
          dq: wdq,
          dk: wdk,
          dv: wdv,
          src: { q: at(q, qE), k: at(k, kE), v: at(v, kE), dout: at(dout, qE) },
          rows: n,
        },
        s,
        u,
        sizes,
      );
      continue;
    }
    b.dispatch(
      { name: "attention_backward", entry: "stats", defines },
      [wq, wk, null, wo, wdo, wl, wd, null, null, u],
      grid(b.gpu, n * heads, 1),
      sizes,
    );
    b.dispatch(
      { name: "attention_backward", entry: "dq", defines },
      [wq, wk, wv, null, wdo, wl, wd, wdq, dum, u],
      grid(b.gpu, n * heads, 1),
      sizes,
    );
    b.dispatch(
      { name: "attention_backward", entry: "dkv", defines },
      [wq, wk, wv, null, wdo, wl, wd, wdk, wdv, u],
      grid(b.gpu, n * kvHeads, 1),
      sizes,
    );
  }
  lse.release(), dd.release();
  return { dq, dk, dv };
}
