// What every causal LM exposes: embed → blocks → head, one decoder block at a time, so that
// quantizers can run block i on a batch of hidden states and see the inputs of every linear.

import type { Gpu } from "../gpu/device.ts";
import type { Batch } from "../gpu/kernel.ts";
import type { GradLinear, Tape } from "../grad/tape.ts";
import { empty, Tensor, upload } from "../gpu/tensor.ts";
import type { Checkpoint, NativeFloat } from "../io/checkpoint.ts";
import type { ModelConfig } from "../io/config.ts";
import type { QuantConfig } from "../io/config.ts";
import { formatOf, type LayerFormat } from "./format.ts";
import { DenseLinear, type Linear } from "./linear.ts";

/**
 * Called with (linear name, its input [T, in]) while a block is encoded; encode uses into `b`.
 * Returning true ends the block there (a calibration pass that has seen what it needs).
 */
export type Capture = (name: string, input: Tensor) => boolean | void;

/** Offer `input` of every linear in `names` to the capture; true when any asks to stop. */
export function offer(capture: Capture | undefined, names: string[], input: Tensor): boolean {
  let stop = false;
  for (const n of names) stop = capture?.(n, input) === true || stop;
  return stop;
}

/**
 * One AWQ scaling group of a block (AutoAWQ's get_layers_for_scaling): the linears sharing an
 * input, the op before them that absorbs 1/s (a norm's weight — and bias — or a linear's rows),
 * and the module whose output judges a scale: "attn"/"mlp" (the whole module) or null (the one
 * linear itself).
 */
export interface AwqGroup {
  prev: { kind: "norm" | "linear"; name: string };
  linears: string[];
  inspect: "attn" | "mlp" | null;
}

/** Substitutes linears by name while a module runs (a quantizer's trial weights). */
export type LinearOverride = (name: string) => Linear | undefined;

/** Keys and values of every position so far, per layer [maxLen, kvHeads·headDim]. */
export interface KVCache {
  k: Tensor[];
  v: Tensor[];
  maxLen: number;
  kvDim: number;
}

/** Decoding with a cache: the block's rows are positions pos0 … pos0 + T − 1 of one sequence. */
export interface CacheStep {
  cache: KVCache;
  pos0: number;
}

export interface CausalLM {
  readonly config: ModelConfig;
  readonly gpu: Gpu;
  readonly numBlocks: number;
  readonly vocab: number;
  /** Token ids (u32 [T], T = B·seq) → hidden states [T, hidden]; positions start at pos0. */
  embed(b: Batch, ids: Tensor, seq: number, pos0?: number): Tensor;
  /**
   * Decoder block i on hidden [T, hidden] → new hidden (the input is left untouched). With `step`,
   * this block's keys/values are written to the cache and attention reads all cached positions.
   * Null only when `capture` asked to stop.
   */
  block(b: Batch, i: number, h: Tensor, seq: number, capture?: Capture, step?: CacheStep): Tensor | null;
  /** A KV cache for `maxLen` positions (bounded by the model's max positions). */
  newCache(maxLen: number): KVCache;
  /** Final norm and LM head: hidden [T, hidden] → logits [T, vocab]. */
  head(b: Batch, h: Tensor): Tensor;
  /** The linear layers of block i, by their checkpoint names (e.g. `model.layers.0.self_attn.q_proj`). */
  blockLinears(i: number): Linear[];
  /**
   * Block i's linears in the true-sequential order of the GPTQ reference, grouped by shared input
   * (one Hessian each): [[q, k, v], [o], [gate, up], [down]] for Llama.
   */
  sequentialGroups(i: number): string[][];
  /** AWQ's scaling groups of block i, in order. Throws for a layout AWQ cannot fold into. */
  awqGroups(i: number): AwqGroup[];
  /**
   * Block i's attention ("attn": from the normed input to the output projection) or MLP ("mlp":
   * from the normed input to the down projection), without residual; `use` substitutes linears.
   */
  inspect(b: Batch, i: number, part: "attn" | "mlp", x: Tensor, seq: number, use?: LinearOverride): Tensor;
  /**
   * Block i on hidden [T, hidden] recorded on `t` for a backward pass, with every linear taken
   * from `lin` (AutoRound's trainable layers); norms and biases frozen. Same math as block().
   */
  gradBlock(t: Tape, b: Batch, i: number, h: Tensor, seq: number, lin: (name: string) => GradLinear): Tensor;
  /** A parameter tensor that is not part of a linear (a norm's weight or bias), by checkpoint name. */
  param(name: string): Tensor | undefined;
  /** Replace a linear (a quantizer's output) by name. */
  setLinear(name: string, layer: Linear): void;
  /** The LM head as a linear [vocab, hidden] (borrowing the embedding table when tied). */
  headLinear(): Linear;
  /** Replace the LM head (e.g. to quantize it; embeddings stay FP even when tied). */
  setHead(layer: Linear): void;
  /** Bytes of parameters (on the GPU, or in host memory for a streamed model's blocks). */
  bytes(): number;
  /** Block i's parameter tensors: its norms and its linears' (what streaming moves). */
  blockTensors(i: number): Tensor[];
  /** Blocks live in host memory and enter the GPU one at a time (see lib/model/stream.ts). */
  readonly streamed: boolean;
  /** Streamed: offload every block (true) or bring them all back (false). */
  setStreamed(on: boolean): Promise<void>;
  /** Streamed: upload block i before encoding it; a no-op for a resident model. */
  enterBlock(i: number): Promise<void>;
  /**
   * Streamed: move block i back to host memory once the work that reads it is submitted.
   * `changed`: its tensors were written or replaced since it entered (a quantizer ran on it).
   */
  leaveBlock(i: number, changed?: boolean): Promise<void>;
  release(): void;
}

/** Loads named tensors from a checkpoint to the GPU, checking each shape against the config. */
export class WeightLoader {
  /** Tensors that are not part of a linear layer (embeddings, norms, an untied head). */
  readonly others = new Map<string, Tensor>();
  #block: Tensor[] = [];
  #inBlock = false;
  /**
   * `stream`: every block goes to host memory once loaded (a streamed model; GPU peak ≈ one
   * block). `formats`: the readers of quantized layers (the registry's, lib/methods/registry.ts).
   */
  constructor(
    readonly gpu: Gpu,
    readonly ckpt: Checkpoint,
    readonly quant: QuantConfig | null = null,
    readonly stream = false,
    readonly formats: readonly LayerFormat[] = [],
  ) {}

  async tensor(name: string, shape: number[]): Promise<Tensor> {
    const t = await this.#load(name, shape);
    this.others.set(name, t);
    this.#block.push(t);
    return t;
  }

  /** The tensors loaded from here on (until endBlock) belong to one decoder block. */
  beginBlock(): void {
    this.#block = [];
    this.#inBlock = true;
  }

  /** Streaming: move the block's tensors (those loaded since beginBlock, and `lin`'s) to host memory. */
  async endBlock(lin: Iterable<Linear>): Promise<void> {
    const ts = [...this.#block, ...[...lin].flatMap((l) => l.tensors())];
    this.#block = [];
    this.#inBlock = false;
    if (this.stream) await Promise.all(ts.map((t) => t.offload()));
  }

  /** A weight matrix (the embedding table) kept in the checkpoint's dtype: f16/bf16 stay 2 bytes. */
  async matrix(name: string, shape: number[]): Promise<Tensor> {
    const t = await this.#load(name, shape, true);
    this.others.set(name, t);
    return t;
  }

  /** A quantized checkpoint's packed layers load through their format; the rest as FP. */
  async linear(name: string, out: number, inp: number, bias: boolean): Promise<Linear> {
    const q = this.quant;
    const f = q ? formatOf(this.formats, q) : null;
    if (q && f?.packed(this.ckpt, name, q)) {
      const b = bias ? await this.ckpt.readF32(`${name}.bias`, [out]) : undefined;
      return await f.read(this.gpu, this.ckpt, name, [out, inp], q, b);
    }
    const w = await this.#load(`${name}.weight`, [out, inp], true);
    const b = bias ? await this.#load(`${name}.bias`, [out]) : undefined;
    return new DenseLinear(name, w, b);
  }

  /**
   * `native`: keep F16/BF16 as 16-bit on the GPU (weights); otherwise f32 (norms, biases). In a
   * streamed model's block the tensor is read (and checked) once now, then left in the file: it
   * is read again by offset each time its block enters the GPU.
   */
  async #load(name: string, shape: number[], native = false): Promise<Tensor> {
    if (!this.ckpt.has(name)) {
      throw new Error(
        `${this.ckpt.dir}: checkpoint has no tensor ${name} (expected [${shape}] from config.json)`,
      );
    }
    const read = async (): Promise<NativeFloat> => {
      if (!native) return { dtype: "f32", data: await this.ckpt.readF32(name, shape) };
      return await this.ckpt.readNative(name, shape);
    };
    const t = await read();
    if (this.stream && this.#inBlock) {
      return Tensor.fromSource(this.gpu, shape, t.dtype, name, async () => (await read()).data);
    }
    return t.dtype === "f32"
      ? upload(this.gpu, t.data, shape, name)
      : upload(this.gpu, t.data, shape, name, t.dtype);
  }
}

/** Parameter bytes and release for a model made of linears plus other tensors. */
export function paramBytes(others: Iterable<Tensor>, linears: Iterable<Linear>): number {
  let n = 0;
  for (const t of others) n += t.byteLength;
  for (const l of linears) n += l.bytes();
  return n;
}

export function releaseAll(others: Iterable<Tensor>, linears: Iterable<Linear>): void {
  for (const t of others) t.release();
  for (const l of linears) l.release();
}

/** Check token ids against the vocabulary before they reach a gather kernel. */
export function checkIds(ids: ArrayLike<number>, vocab: number): void {
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < vocab)) {
      throw new Error(`token id ${ids[i]} at position ${i} is outside the vocabulary of ${vocab}`);
    }
  }
}

/**
 * Replace the linear called `name` in whichever block map holds it (maps are keyed by full
 * checkpoint names). The replacement must have the same shape; the old layer is released.
 */
export function replaceLinear(blocks: Map<string, Linear>[], name: string, layer: Linear): void {
  const map = blocks.find((m) => m.has(name));
  if (!map) throw new Error(`no linear layer named ${name}`);
  const old = map.get(name)!;
  if (old.inFeatures !== layer.inFeatures || old.outFeatures !== layer.outFeatures) {
    throw new Error(
      `${name}: replacement is [${layer.outFeatures}, ${layer.inFeatures}], expected [${old.outFeatures}, ${old.inFeatures}]`,
    );
  }
  if (old !== layer) old.release();
  map.set(name, layer);
}

/** Store rows [pos0, pos0 + T) of layer i's cache from k, v [T, kvDim], then pick what attention reads. */
export function cacheKV(b: Batch, step: CacheStep | undefined, i: number, k: Tensor, v: Tensor) {
  if (!step) return { k, v, pos0: 0 };
  const { cache, pos0 } = step;
  const T = k.numel / cache.kvDim;
  if (pos0 + T > cache.maxLen) {
    throw new Error(`KV cache of ${cache.maxLen} positions is full (need ${pos0 + T})`);
  }
  const bytes = T * cache.kvDim * 4, off = pos0 * cache.kvDim * 4;
  b.copy(k.buffer, 0, cache.k[i].buffer, off, bytes);
  b.copy(v.buffer, 0, cache.v[i].buffer, off, bytes);
  // Prefill (pos0 = 0) attends within the fresh k, v; later steps read the whole cache.
  return pos0 === 0 ? { k, v, pos0 } : { k: cache.k[i], v: cache.v[i], pos0 };
}

export function allocCache(
  gpu: Gpu,
  layers: number,
  maxLen: number,
  kvDim: number,
  maxPositions: number,
): KVCache {
  if (maxLen > maxPositions) {
    throw new Error(`a cache of ${maxLen} positions exceeds the model's ${maxPositions}`);
  }
  const mk = (what: string) =>
    Array.from({ length: layers }, (_, i) => empty(gpu, [maxLen, kvDim], "f32", `cache.${what}${i}`));
  return { k: mk("k"), v: mk("v"), maxLen, kvDim };
}

export function releaseCache(c: KVCache): void {
  for (const t of [...c.k, ...c.v]) t.release();
}

/** Swap a model's head, checking the shape; the old one is released (a tied one only borrows). */
export function swapHead(old: Linear, layer: Linear): Linear {
  if (old.inFeatures !== layer.inFeatures || old.outFeatures !== layer.outFeatures) {
    throw new Error(
      `lm_head: replacement is [${layer.outFeatures}, ${layer.inFeatures}], expected [${old.outFeatures}, ${old.inFeatures}]`,
    );
  }
  if (old !== layer) old.release();
  return layer;
}

/**
 * What both families share: the linears of each block (keyed by checkpoint name), the LM head,
 * and the other parameter tensors — listing, replacing, counting and releasing them.
 */
export abstract class BlockModel {
  constructor(
    readonly gpu: Gpu,
    protected linears: Map<string, Linear>[],
    protected lmHead: Linear,
    protected others: Map<string, Tensor>,
  ) {}

  blockLinears(i: number): Linear[] {
    return [...this.linears[i].values()];
  }

  param(name: string): Tensor | undefined {
    return this.others.get(name);
  }

  headLinear(): Linear {
    return this.lmHead;
  }

  setHead(layer: Linear): void {
    this.lmHead = swapHead(this.lmHead, layer);
  }

  setLinear(name: string, layer: Linear): void {
    replaceLinear(this.linears, name, layer);
  }

  #all(): Linear[] {
    return [...this.linears.flatMap((m) => [...m.values()]), this.lmHead];
  }

  bytes(): number {
    return paramBytes(this.others.values(), this.#all());
  }

  blockTensors(i: number): Tensor[] {
    const lin = [...this.linears[i].values()];
    // Block tensors share the prefix of its linears' names, up to "layers.<i>.".
    const mark = `layers.${i}.`, name = lin[0].name;
    const prefix = name.slice(0, name.indexOf(mark) + mark.length);
    const norms = [...this.others].filter(([n]) => n.startsWith(prefix)).map(([, t]) => t);
    return [...norms, ...lin.flatMap((l) => l.tensors())];
  }

  #streamed = false;
  get streamed(): boolean {
    return this.#streamed;
  }

  async setStreamed(on: boolean): Promise<void> {
    if (on === this.#streamed) return;
    this.#streamed = true;
    for (let i = 0; i < this.linears.length; i++) {
      if (on) await this.leaveBlock(i, true);
      else await this.enterBlock(i);
    }
    this.#streamed = on;
  }

  async enterBlock(i: number): Promise<void> {
    if (this.#streamed) await Promise.all(this.blockTensors(i).map((t) => t.reload()));
  }

  async leaveBlock(i: number, changed = false): Promise<void> {
    if (this.#streamed) await Promise.all(this.blockTensors(i).map((t) => t.offload(changed)));
  }

  release(): void {
    releaseAll(this.others.values(), this.#all());
  }
}
