// Load a model directory (config.json + weights) onto the GPU with the given checkpoint formats,
// and run whole forward passes. lib/load.ts binds the loading to the registry's formats.

import type { Gpu } from "../gpu/device.ts";
import { Batch } from "../gpu/kernel.ts";
import { readF32, type Tensor, upload } from "../gpu/tensor.ts";
import { Checkpoint } from "../io/checkpoint.ts";
import { type ModelConfig, readConfig } from "../io/config.ts";
import type { LayerFormat } from "./format.ts";
import { LlamaModel } from "./llama.ts";
import { type CausalLM, checkIds } from "./model.ts";
import { OptModel } from "./opt.ts";

/**
 * config.json and the checkpoint of a model folder. A checkpoint without quantization_config may
 * still be one a format recognises by its tensors (hqq's own files carry per-layer meta records).
 */
export async function openModelWith(
  dir: string,
  formats: readonly LayerFormat[],
): Promise<{ config: ModelConfig; ckpt: Checkpoint }> {
  const config = await readConfig(dir);
  const ckpt = await Checkpoint.open(dir);
  let quant = config.quant;
  for (const f of formats) quant ??= (await f.detect?.(ckpt)) ?? null;
  return { config: quant === config.quant ? config : { ...config, quant }, ckpt };
}

/** `stream`: decoder blocks stay in host memory and visit the GPU one at a time (lib/model/stream.ts). */
export async function loadModelWith(
  gpu: Gpu,
  dir: string,
  formats: readonly LayerFormat[],
  stream = false,
): Promise<CausalLM> {
  const { config, ckpt } = await openModelWith(dir, formats);
  return config.family === "opt"
    ? await OptModel.load(gpu, ckpt, config, stream, formats)
    : await LlamaModel.load(gpu, ckpt, config, stream, formats);
}

/** Encode embed → all blocks → head for ids (B sequences of `seq` tokens) into `b`; logits [T, V]. */
export function encodeForward(b: Batch, model: CausalLM, ids: ArrayLike<number>, seq: number): Tensor {
  const h = encodeHidden(b, model, ids, seq);
  const logits = model.head(b, h);
  h.release();
  return logits;
}

/** Encode embed → all blocks into `b`: the last hidden states [T, hidden], before the head. */
export function encodeHidden(b: Batch, model: CausalLM, ids: ArrayLike<number>, seq: number): Tensor {
  if (model.streamed) {
    throw new Error("a streamed model runs block by block (lib/model/stream.ts), not in one encoded forward");
  }
  checkIds(ids, model.vocab);
  if (ids.length % seq !== 0) throw new Error(`${ids.length} tokens are not whole sequences of ${seq}`);
  const idsT = upload(model.gpu, Uint32Array.from(ids), [ids.length], "ids");
  let h = model.embed(b, idsT, seq);
  idsT.release();
  for (let i = 0; i < model.numBlocks; i++) {
    const next = model.block(b, i, h, seq)!; // no capture: never null
    h.release();
    h = next;
  }
  return h;
}

/** Logits for one or more sequences, read back to the host ([T, V] row-major). */
export async function logits(
  model: CausalLM,
  ids: ArrayLike<number>,
  seq = ids.length,
): Promise<Float32Array> {
  const b = new Batch(model.gpu);
  const out = encodeForward(b, model, ids, seq);
  await b.submit();
  const host = await readF32(out);
  out.release();
  return host;
}
