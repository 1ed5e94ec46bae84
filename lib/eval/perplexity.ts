// Perplexity with the GPTQ/AWQ protocol (methods.md §2): the text tokenized once (special tokens
// on, so BOS appears once at the start of the stream), cut into non-overlapping windows of
// `seqlen` tokens with the tail dropped; each window predicts its seqlen − 1 next tokens;
// ppl = exp(mean NLL over all predicted tokens). `maxWindows` K keeps windows 0..K−1.

import { Batch } from "../gpu/kernel.ts";
import { readF32, type Tensor, upload } from "../gpu/tensor.ts";
import { tokenNll } from "../kernels/token_nll.ts";
import { encodeForward } from "../model/load.ts";
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
  for (let w0 = 0; w0 < windows; w0 += per) {
    const ws = Array.from({ length: Math.min(per, windows - w0) }, (_, k) => window(w0 + k));
    let hs: Tensor[] | null = null;
    if (model.streamed) hs = await blocksLayerMajor(model, await embedAll(model, ws, seqlen), seqlen);
    for (const [k, win] of ws.entries()) {
      const b = new Batch(model.gpu);
      let logits: Tensor;
      if (hs) {
        logits = model.head(b, hs[k]);
        hs[k].release();
      } else logits = encodeForward(b, model, win, seqlen);
      const T = targets(win);
      const nll = tokenNll(b, logits, T, model.vocab);
      logits.release();
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
