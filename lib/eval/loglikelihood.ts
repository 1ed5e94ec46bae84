// The loglikelihood request as lm-eval's Hugging Face backend computes it (lm_eval 0.4.13:
// api/model.py loglikelihood + _encode_pair, models/huggingface.py _loglikelihood_tokens):
//   encoding  trailing whitespace of the context moves to the continuation; whole =
//             encode(context + continuation), context = encode(context) (both with the
//             tokenizer's special tokens, e.g. BOS), continuation tokens = whole[len(context):].
//             An empty context: the continuation without special tokens after the BOS (else EOS)
//             id — or, when it already starts with that id, its first token as the context.
//   scoring   input = (context + continuation)[-(maxLength + 1):][:-1] (left-truncated to the
//             model's positions); the last len(continuation) positions' log-softmax gives the
//             continuation's summed log-probability, and is_greedy = every argmax (first index
//             of the maximum, as torch) equals its token.
// Requests run longest first in right-padded chunks (one forward each); only the continuation
// rows go through the head and back to the host, where log-softmax runs in float64.

import type { TextTokenizer } from "../io/tokenizer.ts";
import { pyTrailingSpaces } from "../data/pystr.ts";
import { Batch } from "../gpu/kernel.ts";
import { empty, readF32, type Tensor } from "../gpu/tensor.ts";
import { encodeHidden } from "../model/forward.ts";
import type { CausalLM } from "../model/model.ts";

export interface LlRequest {
  context: string;
  continuation: string;
}

export interface EncodedRequest {
  context: number[];
  continuation: number[];
}

export interface LlResult {
  /** Σ log p(continuation token | prefix), natural log. */
  logprob: number;
  /** Every continuation token is the argmax at its position. */
  greedy: boolean;
  /** Continuation tokens scored. */
  tokens: number;
}

type Tok = Pick<TextTokenizer, "encode" | "encodePlain" | "bosId" | "eosId" | "decode">;

/** lm-eval's tok_encode: special tokens unless the text already starts with the BOS text. */
function tokEncode(tok: Tok, text: string): number[] {
  const prefix = tok.bosId ?? tok.eosId;
  const bosText = prefix === null ? "" : tok.decode([prefix]);
  return bosText && text.startsWith(bosText) ? tok.encodePlain(text) : tok.encode(text);
}

export function encodeRequest(tok: Tok, r: LlRequest): EncodedRequest {
  if (r.context === "") {
    const cont = tok.encodePlain(r.continuation);
    const prefix = tok.bosId ?? tok.eosId;
    if (prefix === null) {
      throw new Error("an empty context needs a BOS or EOS token in tokenizer_config.json");
    }
    return prefix !== cont[0]
      ? { context: [prefix], continuation: cont }
      : { context: cont.slice(0, 1), continuation: cont.slice(1) };
  }
  let { context, continuation } = r;
  const n = pyTrailingSpaces(context);
  if (n > 0) (continuation = context.slice(-n) + continuation), (context = context.slice(0, -n));
  const whole = tokEncode(tok, context + continuation);
  const ctx = tokEncode(tok, context);
  return { context: ctx, continuation: whole.slice(ctx.length) };
}

export interface LlOptions {
  /** The model's positions (lm-eval's max_length). */
  maxLength: number;
  /** At most this many tokens in one forward (default 4096). */
  batchTokens?: number;
  /**
   * Prefix-KV reuse (lib/eval/prefix_kv.ts): for every shared context, only for those whose
   * continuations are single tokens, or never. Default: all on a GPU, single-token on a CPU adapter.
   */
  reuse?: "all" | "single-token" | "none";
  /** After each group: requests done, total. */
  onProgress?: (done: number, total: number) => void;
}

/** Score encoded requests; results in the requests' order. */
export async function scoreRequests(
  model: CausalLM,
  reqs: EncodedRequest[],
  o: LlOptions,
): Promise<LlResult[]> {
  if (model.streamed) throw new Error("loglikelihood: a streamed model is not supported yet");
  const inputs = reqs.map((r, i) => {
    if (!r.context.length) throw new Error(`request ${i}: empty context encoding`);
    if (!r.continuation.length) throw new Error(`request ${i}: the continuation encodes to no tokens`);
    if (r.continuation.length > o.maxLength) {
      throw new Error(
        `request ${i}: ${r.continuation.length} continuation tokens exceed the model's ${o.maxLength}`,
      );
    }
    const all = [...r.context, ...r.continuation].slice(-(o.maxLength + 1));
    return { i, ids: all.slice(0, -1), cont: r.continuation };
  });
  const out: LlResult[] = new Array(reqs.length);
  await runChunks(model, inputs, o, (x, rows, at) => (out[x.i] = scoreRows(rows, at, x.cont, model.vocab)));
  return out;
}

/** One row of a chunked forward: the input ids and the continuation whose positions are kept. */
export interface RowInput {
  i: number;
  ids: number[];
  cont: number[];
}

/**
 * Inputs longest first (lm-eval's order), in chunks of at most batchTokens padded tokens: each
 * chunk is one forward, its rows right-padded to the chunk's longest input (a causal model's
 * positions before the padding do not see it, as in lm-eval's right-padded batches). `onRows`
 * gets each input with the chunk's continuation logits and the input's first row among them.
 */
export async function runChunks(
  model: CausalLM,
  inputs: RowInput[],
  o: LlOptions,
  onRows: (x: RowInput, rows: Float32Array, at: number) => void,
): Promise<void> {
  const order = inputs.slice().sort((a, b) => b.ids.length - a.ids.length);
  const budget = Math.max(1, o.batchTokens ?? 4096);
  let done = 0;
  for (let g0 = 0; g0 < order.length;) {
    const L = order[g0].ids.length, per = Math.max(1, Math.floor(budget / L));
    const part = order.slice(g0, g0 + per);
    g0 += part.length;
    const rows = await continuationLogits(model, part, L);
    let at = 0;
    for (const x of part) {
      onRows(x, rows, at);
      at += x.cont.length;
    }
    done += part.length;
    o.onProgress?.(done, inputs.length);
  }
}

/** The logits of each request's continuation positions, [Σ cont, V] on the host; inputs padded to L. */
function continuationLogits(
  model: CausalLM,
  part: { ids: number[]; cont: number[] }[],
  L: number,
): Promise<Float32Array> {
  const b = new Batch(model.gpu);
  const padded = part.flatMap((x) => [...x.ids, ...new Array(L - x.ids.length).fill(x.ids[0])]);
  const h = encodeHidden(b, model, padded, L);
  const D = h.numel / (part.length * L), n = part.reduce((s, x) => s + x.cont.length, 0);
  const hc = empty(model.gpu, [n, D], "f32", "ll.hidden");
  let r = 0;
  for (const [k, x] of part.entries()) {
    const c = x.cont.length;
    b.copy(h.buffer, (k * L + x.ids.length - c) * D * 4, hc.buffer, r * D * 4, c * D * 4);
    r += c;
  }
  h.release();
  return headRows(model, b, hc, n);
}

/**
 * The head over hidden rows hc [n, D] (released here), submitted with `b`, read back as [n, V].
 * The head's output must fit one binding: it runs over row chunks when it would not.
 */
export async function headRows(model: CausalLM, b: Batch, hc: Tensor, n: number): Promise<Float32Array> {
  const D = hc.numel / n;
  const chunk = Math.max(1, Math.floor(model.gpu.maxBinding / (model.vocab * 4)));
  const parts: Tensor[] = [];
  for (let r0 = 0; r0 < n; r0 += chunk) {
    const m = Math.min(chunk, n - r0);
    if (m === n) {
      parts.push(model.head(b, hc));
      break;
    }
    const hp = empty(model.gpu, [m, D], "f32", "ll.hidden.chunk");
    b.copy(hc.buffer, r0 * D * 4, hp.buffer, 0, m * D * 4);
    parts.push(model.head(b, hp));
    hp.release();
  }
  hc.release();
  await b.submit();
  const host = new Float32Array(n * model.vocab);
  let off = 0;
  for (const p of parts) {
    const v = await readF32(p);
    p.release();
    host.set(v, off);
    off += v.length;
  }
  return host;
}

/**
 * Σ log-softmax at the continuation tokens (float64) and whether each is the first argmax; the
 * logits of token j are row `at + j` of `rows`, or row `at[j]` when given the rows' indices.
 */
export function scoreRows(rows: Float32Array, at: number | number[], cont: number[], V: number): LlResult {
  let logprob = 0, greedy = true;
  for (let j = 0; j < cont.length; j++) {
    const base = (typeof at === "number" ? at + j : at[j]) * V;
    let mx = -Infinity, arg = 0;
    for (let v = 0; v < V; v++) if (rows[base + v] > mx) (mx = rows[base + v]), (arg = v);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(rows[base + v] - mx);
    logprob += rows[base + cont[j]] - mx - Math.log(s);
    if (arg !== cont[j]) greedy = false;
  }
  return { logprob, greedy, tokens: cont.length };
}

/** Encode and score (context, continuation) pairs as lm-eval's HF backend does. */
export function loglikelihood(
  model: CausalLM,
  tok: Tok,
  requests: LlRequest[],
  o: LlOptions,
): Promise<LlResult[]> {
  return scoreRequests(model, requests.map((r) => encodeRequest(tok, r)), o);
}
