// Loglikelihood requests that share a context (a multiple-choice question's choices): the context
// runs once into a KV cache and every continuation runs after it from that cache, instead of
// recomputing the context per choice as lm-eval does. Same numbers as lib/eval/loglikelihood.ts
// (up to float rounding of differently shaped GEMMs): lm-eval's scored input is
// context_enc + continuation_enc, so choices with equal context strings share the context tokens
// exactly. A group is eligible when nothing is left-truncated (context + continuation − 1 ≤ the
// model's positions) and it has at least two requests; every other request takes the
// right-padded chunks of scoreRequests.
//
// Per group (context P tokens, continuation k of c_k tokens), into one cache of P + max c_k − 1:
//   prefill  the context's P tokens; keep the hidden row P − 1 (predicts every first token)
//   choice k its first c_k − 1 tokens from position P (they overwrite the previous choice's rows,
//            which no later position reads); keep those c_k − 1 rows
// Several groups share one submit (they reuse the cache in turn; the queue orders them), the
// kept rows go through the head together and come back in one readback.
//
// Choices of one token each (mmlu's " A"…" D") need no cache: the context's last row scores them
// all, so such a question is one row of the batched chunks (lm-eval does the same) — on every
// adapter, truncated or not. Choices of several tokens use the cache on a GPU; on a CPU adapter a
// forward of a few tokens costs about as much as one of a hundred (llvmpipe: ~27 ms for 12 tokens
// of tiny-llama, 2.2 ms a token against 0.25 batched), so there they are recomputed (reuse
// "single-token", the default on a CPU adapter; "all" forces the cache, "none" recomputes all).

import { Batch } from "../gpu/kernel.ts";
import { empty, type Tensor, upload } from "../gpu/tensor.ts";
import type { CausalLM, KVCache } from "../model/model.ts";
import { releaseCache } from "../model/model.ts";
import {
  type EncodedRequest,
  headRows,
  type LlOptions,
  type LlResult,
  runChunks,
  scoreRequests,
  scoreRows,
} from "./loglikelihood.ts";

interface Group {
  context: number[];
  /** Indices into the requests. */
  members: number[];
}

/** Requests grouped by equal context tokens, in first-seen order. */
function groupByContext(reqs: EncodedRequest[]): Group[] {
  const by = new Map<string, Group>();
  reqs.forEach((r, i) => {
    const k = r.context.join(",");
    const g = by.get(k) ?? { context: r.context, members: [] };
    g.members.push(i);
    by.set(k, g);
  });
  return [...by.values()];
}

/** Score requests, running each shared context once (lm-eval's results, fewer FLOPs). */
export async function scoreReusingContexts(
  model: CausalLM,
  reqs: EncodedRequest[],
  o: LlOptions,
): Promise<LlResult[]> {
  if (model.streamed) throw new Error("loglikelihood: a streamed model is not supported yet");
  const out: LlResult[] = new Array(reqs.length);
  const fits = (r: EncodedRequest) =>
    r.context.length >= 1 && r.continuation.length >= 1 &&
    r.context.length + r.continuation.length - 1 <= o.maxLength;
  const reuse = o.reuse ?? (model.gpu.isFallback ? "single-token" : "all");
  const shared = reuse === "none" ? [] : groupByContext(reqs).filter((g) => g.members.length > 1);
  const oneToken = (g: Group) => g.members.every((i) => reqs[i].continuation.length === 1);
  // One-token choices: the context's last row scores them all (left-truncated or not: their
  // input is the same context cut to maxLength), contexts batched as other requests are.
  const lastRow = shared.filter(oneToken);
  const groups = reuse === "all"
    ? shared.filter((g) => !oneToken(g) && g.members.every((i) => fits(reqs[i])))
    : [];
  const inGroup = new Set([...lastRow, ...groups].flatMap((g) => g.members));
  const rest = reqs.map((_, i) => i).filter((i) => !inGroup.has(i));
  let done = 0;
  const progress = (n: number) => o.onProgress?.(done += n, reqs.length);
  if (rest.length) {
    // Its chunks report as they finish, counted among all the requests.
    const onProgress = (d: number) => o.onProgress?.(done + d, reqs.length);
    const rs = await scoreRequests(model, rest.map((i) => reqs[i]), { ...o, onProgress });
    rest.forEach((i, k) => (out[i] = rs[k]));
    done += rest.length;
  }
  if (lastRow.length) {
    const inputs = lastRow.map((g, i) => ({ i, ids: g.context.slice(-o.maxLength), cont: [0] }));
    await runChunks(model, inputs, { ...o, onProgress: undefined }, (x, rows, at) => {
      for (const m of lastRow[x.i].members) out[m] = scoreRows(rows, at, reqs[m].continuation, model.vocab);
    });
    progress(lastRow.reduce((s, g) => s + g.members.length, 0));
  }
  // Chunks of groups of at most batchTokens tokens run (context + continuations − 1 each).
  const budget = Math.max(1, o.batchTokens ?? 4096);
  const cost = (g: Group) =>
    g.context.length + g.members.reduce((s, i) => s + reqs[i].continuation.length - 1, 0);
  for (let g0 = 0; g0 < groups.length;) {
    const part = [groups[g0++]];
    let tokens = cost(part[0]);
    while (g0 < groups.length && tokens + cost(groups[g0]) <= budget) {
      tokens += cost(groups[g0]), part.push(groups[g0++]);
    }
    await scoreGroups(model, reqs, part, out);
    progress(part.reduce((s, g) => s + g.members.length, 0));
  }
  return out;
}

/** All blocks on x (T rows from position pos0) with the cache; returns the last hidden states. */
function blocks(b: Batch, model: CausalLM, x: Tensor, T: number, cache: KVCache, pos0: number): Tensor {
  for (let i = 0; i < model.numBlocks; i++) {
    const next = model.block(b, i, x, T, undefined, { cache, pos0 })!;
    x.release();
    x = next;
  }
  return x;
}

async function scoreGroups(model: CausalLM, reqs: EncodedRequest[], part: Group[], out: LlResult[]) {
  const gpu = model.gpu, D = model.config.hidden;
  const maxLen = Math.max(
    ...part.map((g) => g.context.length + Math.max(...g.members.map((i) => reqs[i].continuation.length)) - 1),
  );
  const cache = model.newCache(maxLen);
  const rowsOf = part.map((g) => 1 + g.members.reduce((s, i) => s + reqs[i].continuation.length - 1, 0));
  const n = rowsOf.reduce((a, b) => a + b, 0);
  const hc = empty(gpu, [n, D], "f32", "ll.prefix.hidden");
  const b = new Batch(gpu);
  // Row indices (into hc) of each request's continuation logits.
  const at = new Map<number, number[]>();
  let r = 0;
  for (const g of part) {
    const P = g.context.length, shared = r;
    const run = (ids: number[], pos0: number) => {
      const t = upload(gpu, Uint32Array.from(ids), [ids.length], "ll.prefix.ids");
      const h = blocks(b, model, model.embed(b, t, ids.length, pos0), ids.length, cache, pos0);
      t.release();
      return h;
    };
    const h = run(g.context, 0);
    b.copy(h.buffer, (P - 1) * D * 4, hc.buffer, r * D * 4, D * 4);
    h.release();
    r++;
    for (const i of g.members) {
      const c = reqs[i].continuation;
      const rows = [shared];
      if (c.length > 1) {
        const hk = run(c.slice(0, -1), P);
        b.copy(hk.buffer, 0, hc.buffer, r * D * 4, (c.length - 1) * D * 4);
        hk.release();
        for (let j = 0; j < c.length - 1; j++) rows.push(r + j);
        r += c.length - 1;
      }
      at.set(i, rows);
    }
  }
  const logits = await headRows(model, b, hc, n);
  releaseCache(cache);
  for (const [i, rows] of at) out[i] = scoreRows(logits, rows, reqs[i].continuation, model.vocab);
}
