// Text generation with a KV cache, for FP and quantized models alike. The decode loop stays on
// the GPU: the sampler writes each next id where the following step's embedding gather reads it,
// and `stepsPerSubmit` steps are encoded per submit, with one readback at the end (every readback
// costs ≥ 11 ms in Deno). A streamed model (blocks in host memory) runs too, a block at a time.

import { Batch } from "../gpu/kernel.ts";
import { empty, read, type Tensor, upload } from "../gpu/tensor.ts";
import { sample } from "../kernels/sample.ts";
import { type CausalLM, checkIds, releaseCache } from "./model.ts";

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy (default). */
  temperature?: number;
  topP?: number;
  seed?: number;
  stepsPerSubmit?: number;
  /** Stop at this id (the output is cut after it; the GPU may have run a few steps past it). */
  eosId?: number | null;
}

export interface GenerateResult {
  ids: number[]; // prompt + new tokens
  newIds: number[];
  prefillMs: number;
  decodeMs: number;
  /** New tokens after the first, per second of decode (the first comes from the prefill). */
  decodeTokensPerSecond: number;
}

export async function generate(
  model: CausalLM,
  prompt: number[],
  o: GenerateOptions,
): Promise<GenerateResult> {
  const gpu = model.gpu;
  const P = prompt.length, N = o.maxNewTokens;
  if (P < 1) throw new Error("generate: the prompt is empty");
  if (!(Number.isInteger(N) && N >= 1)) throw new Error(`generate: max new tokens must be ≥ 1, got ${N}`);
  checkIds(prompt, model.vocab);
  const L = P + N;
  if (L > model.config.maxPositions) {
    throw new Error(
      `generate: prompt ${P} + ${N} new tokens exceed the model's ${model.config.maxPositions} positions`,
    );
  }
  const H = model.config.hidden;
  const so = { temperature: o.temperature ?? 0, topP: o.topP ?? 1, seed: o.seed ?? 0 };
  const cache = model.newCache(L);
  const tokens = upload(
    gpu,
    Uint32Array.from({ length: L }, (_, i) => (i < P ? prompt[i] : 0)),
    [L],
    "tokens",
  );
  const cur = empty(gpu, [1], "u32", "cur");
  /** All blocks on x (T rows from position pos0) into the KV cache. A streamed model's blocks
   * visit the GPU one at a time: a submit per block, so each step reads every block once. */
  const blocks = async (b: Batch, x: Tensor, T: number, pos0: number) => {
    for (let i = 0; i < model.numBlocks; i++) {
      if (model.streamed) {
        await b.submit();
        await model.enterBlock(i);
        b = new Batch(gpu);
      }
      const next = model.block(b, i, x, T, undefined, { cache, pos0 })!;
      x.release();
      x = next;
      if (model.streamed) {
        await b.submit();
        await model.leaveBlock(i);
        b = new Batch(gpu);
      }
    }
    return { b, x };
  };

  // Prefill: the whole prompt, keys/values into the cache, logits of the last position only.
  const t0 = performance.now();
  let b = new Batch(gpu);
  const idsT = upload(gpu, Uint32Array.from(prompt), [P], "prompt");
  let h = model.embed(b, idsT, P, 0);
  idsT.release();
  ({ b, x: h } = await blocks(b, h, P, 0));
  const last = empty(gpu, [1, H], "f32", "last");
  b.copy(h.buffer, (P - 1) * H * 4, last.buffer, 0, H * 4);
  h.release();
  let logits = model.head(b, last);
  last.release();
  sample(b, logits, tokens, cur, { ...so, step: 0, outIndex: P });
  logits.release();
  await b.done();
  const t1 = performance.now();

  // Decode: step s embeds the id chosen at step s − 1 (position P + s − 1).
  const per = o.stepsPerSubmit ?? 16;
  b = new Batch(gpu);
  for (let s = 1; s < N; s++) {
    const pos = P + s - 1;
    let x = model.embed(b, cur, 1, pos);
    ({ b, x } = await blocks(b, x, 1, pos));
    logits = model.head(b, x);
    x.release();
    sample(b, logits, tokens, cur, { ...so, step: s, outIndex: P + s });
    logits.release();
    if (s % per === 0 || s === N - 1 || model.streamed) {
      await b.submit();
      b = new Batch(gpu);
    }
  }
  await b.submit();
  const all = [...(await read(tokens))];
  const t2 = performance.now();
  tokens.release();
  cur.release();
  releaseCache(cache);
  let newIds = all.slice(P);
  if (o.eosId !== undefined && o.eosId !== null) {
    const at = newIds.indexOf(o.eosId);
    if (at >= 0) newIds = newIds.slice(0, at + 1);
  }
  return {
    ids: [...prompt, ...newIds],
    newIds,
    prefillMs: t1 - t0,
    decodeMs: t2 - t1,
    decodeTokensPerSecond: N > 1 ? (N - 1) / ((t2 - t1) / 1000) : 0,
  };
}
