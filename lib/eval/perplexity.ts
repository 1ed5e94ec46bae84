// Perplexity with the GPTQ/AWQ protocol (methods.md §2): the text tokenized once (special tokens
// on, so BOS appears once at the start of the stream), cut into non-overlapping windows of
// `seqlen` tokens with the tail dropped; each window predicts its seqlen − 1 next tokens;
// ppl = exp(mean NLL over all predicted tokens). `maxWindows` K keeps windows 0..K−1.

import { Batch } from "../gpu/kernel.ts";
import { empty, readF32, type Tensor, upload } from "../gpu/tensor.ts";
import { tokenNll } from "../kernels/token_nll.ts";
import { encodeForward, encodeHidden } from "../model/forward.ts";
import type { CausalLM } from "../model/model.ts";
import { blocksLayerMajor, embedAll } from "../model/stream.ts";

export interface PplOptions {
  seqlen: number;
  maxWindows?: number;
  /**
   * A streamed model: windows per pass through the blocks (each block is uploaded once per pass;
   * their hidden states [windows·seqlen, hidden] stay on the GPU meanwhile). Default 8.
   */
  windowsPerPass?: number;
  /**
   * Rows of a window whose logits [rows, vocab] exist at once: the head and the NLL run over row
   * chunks of the hidden states when a window's logits alone would not fit the memory budget
   * (2048 × 128256 f32 is 1 GiB). Default: the whole window. Rows are independent, so any
   * chunking gives the same bits.
   */
  logitRows?: number;
  onWindow?: (done: number, total: number, runningPpl: number) => void;
}

export interface PplResult {
  ppl: number;
  seqlen: number;
  windows: number;
  /** Tokens in the evaluated windows (windows × seqlen). */
  tokens: number;
  /** Tokens in the whole tokenized text (with BOS). */
  textTokens: number;
  /** Mean NLL per predicted token (nats). */
  meanNll: number;
  seconds: number;
}

export function windowCount(tokens: number, seqlen: number, maxWindows?: number): number {
  const n = Math.floor(tokens / seqlen);
  return maxWindows === undefined ? n : Math.min(n, maxWindows);
}

export async function perplexity(model: CausalLM, ids: ArrayLike<number>, o: PplOptions): Promise<PplResult> {
  const { seqlen } = o;
  if (!(Number.isInteger(seqlen) && seqlen >= 2)) {
    throw new Error(`seqlen must be an integer ≥ 2, got ${seqlen}`);
  }
  const windows = windowCount(ids.length, seqlen, o.maxWindows);
  if (windows < 1) {
    throw new Error(`the text has ${ids.length} tokens, fewer than one window of seqlen ${seqlen}`);
  }
  const t0 = performance.now();
  let nllSum = 0; // float64 accumulation across windows
  const window = (w: number) => Array.from({ length: seqlen }, (_, i) => ids[w * seqlen + i]);
  // Row r predicts token r + 1; the last row has no target (its NLL, against a dummy 0, is dropped).
  const targets = (win: number[]) =>
    upload(model.gpu, Uint32Array.from({ length: seqlen }, (_, r) => (r + 1 < seqlen ? win[r + 1] : 0)), [
      seqlen,
    ], "targets");
  const add = (w: number, host: Float32Array) => {
    for (let r = 0; r < seqlen - 1; r++) {
      if (!Number.isFinite(host[r])) {
        throw new Error(`window ${w}, position ${r}: NLL is ${host[r]} (NaN/Inf in activations)`);
      }
      nllSum += host[r];
    }
    o.onWindow?.(w + 1, windows, Math.exp(nllSum / ((w + 1) * (seqlen - 1))));
  };
  const per = model.streamed ? Math.max(1, o.windowsPerPass ?? 8) : 1;
  const chunk = Math.min(seqlen, Math.max(1, Math.floor(o.logitRows ?? seqlen)));
  for (let w0 = 0; w0 < windows; w0 += per) {
    const ws = Array.from({ length: Math.min(per, windows - w0) }, (_, k) => window(w0 + k));
    let hs: Tensor[] | null = null;
    if (model.streamed) hs = await blocksLayerMajor(model, await embedAll(model, ws, seqlen), seqlen);
    for (const [k, win] of ws.entries()) {
      const b = new Batch(model.gpu);
      const T = targets(win);
      let nll: Tensor;
      if (chunk < seqlen) {
        const h = hs ? hs[k] : encodeHidden(b, model, win, seqlen);
        nll = chunkedNll(b, model, h, T, seqlen, chunk);
        h.release();
      } else {
        let logits: Tensor;
        if (hs) {
          logits = model.head(b, hs[k]);
          hs[k].release();
        } else logits = encodeForward(b, model, win, seqlen);
        nll = tokenNll(b, logits, T, model.vocab);
        logits.release();
      }
      T.release();
      await b.submit();
      const host = await readF32(nll);
      nll.release();
      add(w0 + k, host);
    }
  }
  const meanNll = nllSum / (windows * (seqlen - 1));
  return {
    ppl: Math.exp(meanNll),
    seqlen,
    windows,
    tokens: windows * seqlen,
    textTokens: ids.length,
    meanNll,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** NLL [rows] of hidden states h [rows, hidden] through the head, `chunk` rows of logits at a time. */
function chunkedNll(
  b: Batch,
  model: CausalLM,
  h: Tensor,
  targets: Tensor,
  rows: number,
  chunk: number,
): Tensor {
  const D = h.numel / rows;
  const nll = empty(model.gpu, [rows], "f32", "nll");
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const n = Math.min(chunk, rows - r0);
    const hc = empty(model.gpu, [n, D], "f32", "hidden.chunk");
    const tc = empty(model.gpu, [n], "u32", "targets.chunk");
    b.copy(h.buffer, r0 * D * 4, hc.buffer, 0, n * D * 4);
    b.copy(targets.buffer, r0 * 4, tc.buffer, 0, n * 4);
    const logits = model.head(b, hc);
    const part = tokenNll(b, logits, tc, model.vocab);
    b.copy(part.buffer, 0, nll.buffer, r0 * 4, n * 4);
    for (const t of [hc, tc, logits, part]) t.release();
  }
  return nll;
}
