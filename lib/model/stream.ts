// Streamed execution: a model whose decoder blocks live in host memory (loadModel(…, true)) runs
// layer-major — every hidden state of a batch of sequences goes through block i while block i is
// on the GPU, then block i goes back to host memory and block i + 1 comes in. So the GPU holds
// the embeddings, the head, two blocks (one leaving, one entering: the pool reuses the buffers of
// the block before) and the batch's hidden states [B·seq, hidden]; each block is uploaded once
// per batch, not once per sequence. The kernels and their inputs are those of the resident
// forward, so the results are bit-identical.

import { Batch } from "../gpu/kernel.ts";
import { type Tensor, upload } from "../gpu/tensor.ts";
import { type CausalLM, checkIds } from "./model.ts";

/** Embed each sequence of `seqs` (token ids, `seq` each) → hidden states [seq, hidden] per sequence. */
export async function embedAll(model: CausalLM, seqs: ArrayLike<number>[], seq: number): Promise<Tensor[]> {
  const b = new Batch(model.gpu);
  const hs = seqs.map((ids) => {
    checkIds(ids, model.vocab);
    if (ids.length !== seq) throw new Error(`a sequence of ${ids.length} tokens, expected ${seq}`);
    const idsT = upload(model.gpu, Uint32Array.from(ids), [ids.length], "ids");
    const h = model.embed(b, idsT, seq);
    idsT.release();
    return h;
  });
  await b.submit();
  return hs;
}

/**
 * Every decoder block over every hidden state of `hs` (released as they are consumed), one block
 * on the GPU at a time when the model is streamed (resident models run the same loop).
 */
export async function blocksLayerMajor(model: CausalLM, hs: Tensor[], seq: number): Promise<Tensor[]> {
  for (let i = 0; i < model.numBlocks; i++) {
    await model.enterBlock(i);
    const b = new Batch(model.gpu);
    hs = hs.map((h) => {
      const next = model.block(b, i, h, seq)!; // no capture: never null
      h.release();
      return next;
    });
    await b.submit();
    await model.leaveBlock(i);
  }
  return hs;
}
