// Launcher for causal attention with grouped KV heads, two variants of one contract:
//   "keys" (shaders/attention.wgsl): a 32-thread workgroup per (row, head) splits the keys — any
//          length, and the parallelism a single decode row needs;
//   "rows" (shaders/attention_rows.wgsl): a thread per (row, head) — on a CPU adapter 2–5× faster
//          for prefill, used there while a thread's loop stays under llvmpipe's iteration cap.

import { type Batch, grid } from "../gpu/kernel.ts";
import type { Gpu } from "../gpu/device.ts";
import { empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { LLVMPIPE_LOOP_CAP, need, shapeStr, windows } from "./common.ts";

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
  /** "rows" only: read K/V through textures (default: on a CPU adapter, when their rows fit). */
  kvTexture?: boolean;
}

/** Whether a "rows" thread's loop over `keys` keys stays under llvmpipe's iteration cap. */
function rowsFit(keys: number): boolean {
  return keys + 1 < LLVMPIPE_LOOP_CAP;
}

/** The variant `attention` runs for T query rows attending to at most `keys` keys. */
export function attentionVariant(isFallback: boolean, T: number, keys: number): AttentionVariant {
  return isFallback && T > 1 && rowsFit(keys) ? "rows" : "keys";
}

/** Query rows per thread of the "rows" variant: registers hold R·2·Dh floats. */
export function rowsPerThread(headDim: number): number {
  return headDim <= 64 ? 16 : headDim <= 128 ? 8 : 4;
}

/**
 * The unrolled per-row code of attention_rows.wgsl for R rows of D4 vec4s: q and the output
 * accumulators as named variables; per key, each row's score, online-softmax update and
 * accumulation, in the order of the one-row kernel (a row skips keys past its position).
 */
function rowsCode(R: number, D4: number, tex: boolean): { DECL: string; KEY: string; STORE: string } {
  const kv = (t: "k" | "v", d: number) =>
    tex ? `textureLoad(${t}, kt + vec2<u32>(${d}u, 0u), 0)` : `${t}[ko + ${d}u]`;
  const decl: string[] = [], key: string[] = [], store: string[] = [];
  const d4 = Array.from({ length: D4 }, (_, d) => d);
  for (let i = 0; i < R; i++) {
    decl.push(`let r${i} = g0 + ${i}u; let qo${i} = ((t0 + min(r${i}, p.seq - 1u)) * p.Hq + h) * D4;`);
    decl.push(d4.map((d) => `let q${i}_${d} = q[qo${i} + ${d}u] * p.scale;`).join(" "));
    decl.push(d4.map((d) => `var a${i}_${d} = vec4<f32>(0.0);`).join(" "));
    decl.push(`var m${i} = -3.0e38; var l${i} = 0.0; var c${i} = 1.0; var e${i} = 0.0;`);
  }
  key.push(d4.map((d) => `let k${d} = ${kv("k", d)};`).join(" "));
  for (let i = 0; i < R; i++) {
    key.push(
      `if (j <= r${i} + p.pos0) { var s4 = vec4<f32>(0.0); ` +
        d4.map((d) => `s4 += q${i}_${d} * k${d};`).join(" ") +
        ` let s = s4.x + s4.y + s4.z + s4.w; let mn = max(m${i}, s); c${i} = exp(m${i} - mn);` +
        ` e${i} = exp(s - mn); l${i} = l${i} * c${i} + e${i}; m${i} = mn; } else { c${i} = 1.0; e${i} = 0.0; }`,
    );
  }
  for (const d of d4) {
    key.push(
      `{ let vv = ${kv("v", d)}; ` +
        Array.from({ length: R }, (_, i) => `a${i}_${d} = a${i}_${d} * c${i} + e${i} * vv;`).join(" ") + " }",
    );
  }
  for (let i = 0; i < R; i++) {
    store.push(
      `if (r${i} < p.seq) { ` + d4.map((d) => `out[qo${i} + ${d}u] = a${i}_${d} / l${i};`).join(" ") + " }",
    );
  }
  return { DECL: decl.join("\n  "), KEY: key.join("\n    "), STORE: store.join("\n  ") };
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
  for (const part of parts(b.gpu, T, k.numel / (kvHeads * headDim), s, sizes)) {
    launch(b, q, k, v, out, s, part, sizes);
  }
  return out;
}

/** One dispatch's share: query rows [q0, q0 + rows) (sequences of `seq`, from position pos0)
 * attending to K/V rows [k0, k0 + kRows). */
interface Part {
  q0: number;
  rows: number;
  k0: number;
  kRows: number;
  seq: number;
  pos0: number;
}

/**
 * Past the adapter's max storage binding, the batch splits by whole sequences; one sequence too
 * long for that splits its query rows, each window attending to the keys before it as a KV-cache
 * call does (pos0 = its first row). K/V of one sequence must fit one binding.
 */
function parts(gpu: Gpu, T: number, kvRows: number, s: AttentionShape, sizes: string): Part[] {
  const { seq, heads, kvHeads, headDim } = s;
  const pos0 = s.pos0 ?? 0;
  const qRow = heads * headDim * 4, kvRow = kvHeads * headDim * 4;
  if (T * qRow <= gpu.maxBinding && kvRows * kvRow <= gpu.maxBinding) {
    return [{ q0: 0, rows: T, k0: 0, kRows: kvRows, seq, pos0 }];
  }
  if (pos0 === 0 && seq * Math.max(qRow, kvRow) <= gpu.maxBinding) {
    return windows(gpu, T / seq, [seq * qRow, seq * kvRow]).map((w) => ({
      q0: w.row0 * seq,
      rows: w.rows * seq,
      k0: w.row0 * seq,
      kRows: w.rows * seq,
      seq,
      pos0: 0,
    }));
  }
  need(
    T === seq && (pos0 + T) * kvRow <= gpu.maxBinding,
    "attention",
    `K/V of one sequence (${pos0 + seq} positions × ${kvRow} bytes) exceed the max storage binding: ${sizes}`,
  );
  return windows(gpu, T, [qRow]).map((w) => ({
    q0: w.row0,
    rows: w.rows,
    k0: 0,
    kRows: pos0 + w.row0 + w.rows,
    seq: w.rows,
    pos0: pos0 + w.row0,
  }));
}

function launch(
  b: Batch,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  s: AttentionShape,
  part: Part,
  sizes: string,
) {
  const { heads, kvHeads, headDim } = s;
  const { rows: T, seq, pos0 } = part;
  const qw = { row0: part.q0, rows: T }, kw = { row0: part.k0, rows: part.kRows };
  const qB = windowBinding(q, qw, heads * headDim), oB = windowBinding(out, qw, heads * headDim);
  const kB = windowBinding(k, kw, kvHeads * headDim), vB = windowBinding(v, kw, kvHeads * headDim);
  const params = b.uniform([T, seq, heads, kvHeads, headDim, pos0], [1 / Math.sqrt(headDim)]);
  const variant = s.variant ?? attentionVariant(b.gpu.isFallback, T, seq + pos0);
  if (variant === "rows") {
    need(
      !b.gpu.isFallback || rowsFit(seq + pos0),
      "attention",
      `variant rows: ${seq + pos0} keys exceed llvmpipe's loop cap`,
    );
    need(heads <= b.gpu.maxWorkgroupsPerDim, "attention", `too many heads for one launch: ${sizes}`);
    const R = rowsPerThread(headDim), D4 = headDim / 4;
    const threads = (T / seq) * Math.ceil(seq / R);
    need(
      Math.ceil(threads / 8) <= b.gpu.maxWorkgroupsPerDim,
      "attention",
      `too many rows for one launch: ${sizes}`,
    );
    // K/V through textures on a CPU adapter when their rows copy as they are (256-byte rows).
    const kvRow = kvHeads * headDim * 4, kvRows = part.kRows;
    const fits = kvRow % 256 === 0 && kvRow / 16 <= b.gpu.maxTexture2D && kvRows <= b.gpu.maxTexture2D;
    need(!s.kvTexture || fits, "attention", `K/V rows of ${kvRow} bytes cannot be textures: ${sizes}`);
    const tex = s.kvTexture ?? (b.gpu.isFallback && fits);
    const kvTex = (t: { buffer: GPUBuffer; offset: number }) =>
      b.texture(t, kvRow / 16, kvRows, "rgba32float", kvRow);
    const KV_DECL = tex
      ? "@group(0) @binding(1) var k: texture_2d<f32>;\n@group(0) @binding(2) var v: texture_2d<f32>;"
      : "@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;\n" +
        "@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;";
    b.dispatch(
      { name: "attention_rows", defines: { R, D4, KV_DECL, ...rowsCode(R, D4, tex) } },
      [qB, tex ? kvTex(kB) : kB, tex ? kvTex(vB) : vB, oB, params],
      [Math.ceil(threads / 8), heads, 1],
      sizes,
    );
    return;
  }
  // Private arrays sized to the head dim (in vec4, rounded to 8) keep registers small on real GPUs.
  const D4MAX = Math.ceil(headDim / 32) * 8;
  b.dispatch(
    { name: "attention", defines: { D4MAX } },
    [qB, kB, vB, oB, params],
    grid(b.gpu, T * heads, 1),
    sizes,
  );
}
