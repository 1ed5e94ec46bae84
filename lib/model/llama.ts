// The Llama family (Llama, Mistral, Qwen2) as transformers computes it, in f32:
//   h = embed(ids)
//   per block: h += o_proj(attn(rope(q), rope(k), v)) of rmsnorm(h);  h += down(silu(gate)·up) of rmsnorm(h)
//   logits = lm_head(rmsnorm(h))   (lm_head = embed_tokens when tied)
// GQA: Hkv key/value heads shared by Hq/Hkv query heads each. Qwen2 adds q/k/v biases.

import type { Gpu } from "../gpu/device.ts";
import type { Batch } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { GradLinear, Tape } from "../grad/tape.ts";
import type { Checkpoint } from "../io/checkpoint.ts";
import type { LlamaConfig } from "../io/config.ts";
import type { LayerFormat } from "./format.ts";
import { addInPlace } from "../kernels/add.ts";
import { attention } from "../kernels/attention.ts";
import { embedding } from "../kernels/embedding.ts";
import { rmsnorm } from "../kernels/rmsnorm.ts";
import { rope, type RopeTable, ropeTable } from "../kernels/rope.ts";
import { siluMul } from "../kernels/silu_mul.ts";
import { llamaLinearShapes } from "./shapes.ts";
import { DenseLinear, type Linear } from "./linear.ts";
import {
  allocCache,
  type AwqGroup,
  BlockModel,
  cacheKV,
  type CacheStep,
  type Capture,
  type CausalLM,
  type KVCache,
  type LinearOverride,
  offer,
  WeightLoader,
} from "./model.ts";

interface Block {
  inputNorm: Tensor;
  postNorm: Tensor;
  lin: Map<string, Linear>; // full checkpoint name (model.layers.0.self_attn.q_proj) → layer
}

export class LlamaModel extends BlockModel implements CausalLM {
  readonly numBlocks: number;
  readonly vocab: number;
  private constructor(
    gpu: Gpu,
    readonly config: LlamaConfig,
    private embedTokens: Tensor,
    private blocks: Block[],
    private finalNorm: Tensor,
    lmHead: Linear,
    private rope: RopeTable,
    others: Map<string, Tensor>,
  ) {
    super(gpu, blocks.map((blk) => blk.lin), lmHead, others);
    this.numBlocks = config.layers;
    this.vocab = config.vocab;
  }

  static async load(
    gpu: Gpu,
    ckpt: Checkpoint,
    c: LlamaConfig,
    stream = false,
    formats: readonly LayerFormat[] = [],
  ): Promise<LlamaModel> {
    const w = new WeightLoader(gpu, ckpt, c.quant, stream, formats);
    const embed = await w.matrix("model.embed_tokens.weight", [c.vocab, c.hidden]);
    const blocks: Block[] = [];
    const shapes = llamaLinearShapes(c);
    for (let i = 0; i < c.layers; i++) {
      const p = `model.layers.${i}`;
      const lin = new Map<string, Linear>();
      w.beginBlock();
      for (const [n, out, inp, bias] of shapes) {
        lin.set(`${p}.${n}`, await w.linear(`${p}.${n}`, out, inp, bias));
      }
      blocks.push({
        inputNorm: await w.tensor(`${p}.input_layernorm.weight`, [c.hidden]),
        postNorm: await w.tensor(`${p}.post_attention_layernorm.weight`, [c.hidden]),
        lin,
      });
      await w.endBlock(lin.values());
    }
    const norm = await w.tensor("model.norm.weight", [c.hidden]);
    const head = c.tied
      ? new DenseLinear("lm_head", embed, undefined, true)
      : await w.linear("lm_head", c.vocab, c.hidden, false);
    const table = ropeTable(gpu, c.headDim, c.maxPositions, c.ropeTheta, c.rope);
    const m = new LlamaModel(gpu, c, embed, blocks, norm, head, table, w.others);
    await m.setStreamed(stream);
    return m;
  }

  embed(b: Batch, ids: Tensor, _seq: number, _pos0 = 0): Tensor {
    return embedding(b, ids, this.embedTokens);
  }

  newCache(maxLen: number): KVCache {
    const c = this.config;
    return allocCache(this.gpu, c.layers, maxLen, c.kvHeads * c.headDim, c.maxPositions);
  }

  block(b: Batch, i: number, h: Tensor, seq: number, capture?: Capture, step?: CacheStep): Tensor | null {
    const c = this.config, blk = this.blocks[i];
    if (c.slidingWindow !== null && seq > c.slidingWindow) {
      throw new Error(
        `${c.arch}: sequence length ${seq} exceeds the sliding window ${c.slidingWindow} (not implemented)`,
      );
    }
    const n1 = rmsnorm(b, h, blk.inputNorm, c.rmsEps);
    const r = this.#attn(b, i, n1, seq, undefined, capture, step); // the residual stream after attention
    n1.release();
    if (!r) return null;
    addInPlace(b, r, h);
    const n2 = rmsnorm(b, r, blk.postNorm, c.rmsEps);
    const out = this.#mlp(b, i, n2, undefined, capture);
    n2.release();
    if (!out) return r.release(), null;
    addInPlace(b, out, r);
    r.release();
    return out;
  }

  inspect(b: Batch, i: number, part: "attn" | "mlp", x: Tensor, seq: number, use?: LinearOverride): Tensor {
    return (part === "attn" ? this.#attn(b, i, x, seq, use) : this.#mlp(b, i, x, use))!;
  }

  gradBlock(t: Tape, b: Batch, i: number, h: Tensor, seq: number, lin: (name: string) => GradLinear): Tensor {
    const c = this.config, blk = this.blocks[i];
    if (c.slidingWindow !== null && seq > c.slidingWindow) {
      throw new Error(`${c.arch}: sequence length ${seq} exceeds the sliding window ${c.slidingWindow}`);
    }
    const L = (n: string) => lin(`model.layers.${i}.${n}`);
    const n1 = t.rmsnorm(b, h, blk.inputNorm, c.rmsEps);
    const q = t.linear(b, n1, L("self_attn.q_proj"));
    const k = t.linear(b, n1, L("self_attn.k_proj"));
    const v = t.linear(b, n1, L("self_attn.v_proj"));
    t.rope(b, q, this.rope, c.heads, seq);
    t.rope(b, k, this.rope, c.kvHeads, seq);
    const a = t.attention(b, q, k, v, { seq, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim });
    const r = t.add(b, t.linear(b, a, L("self_attn.o_proj")), h);
    const n2 = t.rmsnorm(b, r, blk.postNorm, c.rmsEps);
    const m = t.siluMul(b, t.linear(b, n2, L("mlp.gate_proj")), t.linear(b, n2, L("mlp.up_proj")));
    return t.add(b, t.linear(b, m, L("mlp.down_proj")), r);
  }

  /** o_proj(attention(rope(q), rope(k), v)) of the normed input n1 [T, hidden]. */
  #attn(
    b: Batch,
    i: number,
    n1: Tensor,
    seq: number,
    use?: LinearOverride,
    capture?: Capture,
    step?: CacheStep,
  ) {
    const c = this.config;
    const p = `model.layers.${i}`;
    const L = this.#lookup(i, use);
    if (offer(capture, ["q_proj", "k_proj", "v_proj"].map((n) => `${p}.self_attn.${n}`), n1)) return null;
    const q = L("self_attn.q_proj").forward(b, n1);
    const k = L("self_attn.k_proj").forward(b, n1);
    const v = L("self_attn.v_proj").forward(b, n1);
    const pos0 = step?.pos0 ?? 0;
    rope(b, q, this.rope, c.heads, seq, pos0);
    rope(b, k, this.rope, c.kvHeads, seq, pos0);
    const kv = cacheKV(b, step, i, k, v);
    const a = attention(b, q, kv.k, kv.v, {
      seq,
      heads: c.heads,
      kvHeads: c.kvHeads,
      headDim: c.headDim,
      pos0,
    });
    q.release(), k.release(), v.release();
    if (offer(capture, [`${p}.self_attn.o_proj`], a)) return a.release(), null;
    const o = L("self_attn.o_proj").forward(b, a);
    a.release();
    return o;
  }

  /** down(silu(gate(n2))·up(n2)) of the normed input n2 [T, hidden]. */
  #mlp(b: Batch, i: number, n2: Tensor, use?: LinearOverride, capture?: Capture) {
    const p = `model.layers.${i}`;
    const L = this.#lookup(i, use);
    if (offer(capture, [`${p}.mlp.gate_proj`, `${p}.mlp.up_proj`], n2)) return null;
    const g = L("mlp.gate_proj").forward(b, n2);
    const u = L("mlp.up_proj").forward(b, n2);
    const m = siluMul(b, g, u);
    g.release(), u.release();
    if (offer(capture, [`${p}.mlp.down_proj`], m)) return m.release(), null;
    const out = L("mlp.down_proj").forward(b, m);
    m.release();
    return out;
  }

  #lookup(i: number, use?: LinearOverride) {
    const p = `model.layers.${i}`, lin = this.blocks[i].lin;
    return (n: string) => use?.(`${p}.${n}`) ?? lin.get(`${p}.${n}`)!;
  }

  awqGroups(i: number): AwqGroup[] {
    const p = `model.layers.${i}`;
    const lin = this.blocks[i].lin;
    const v = lin.get(`${p}.self_attn.v_proj`)!, o = lin.get(`${p}.self_attn.o_proj`)!;
    const groups: AwqGroup[] = [{
      prev: { kind: "norm", name: `${p}.input_layernorm` },
      linears: ["q_proj", "k_proj", "v_proj"].map((n) => `${p}.self_attn.${n}`),
      inspect: "attn",
    }];
    // o_proj's scales fold into v_proj's rows; AutoAWQ does so only when the two weights have the
    // same shape, so with grouped KV heads (fewer v rows than o inputs) this group is skipped.
    if (v.outFeatures === o.outFeatures && v.inFeatures === o.inFeatures) {
      groups.push({ prev: { kind: "linear", name: v.name }, linears: [o.name], inspect: null });
    }
    groups.push(
      {
        prev: { kind: "norm", name: `${p}.post_attention_layernorm` },
        linears: [`${p}.mlp.gate_proj`, `${p}.mlp.up_proj`],
        inspect: "mlp",
      },
      { prev: { kind: "linear", name: `${p}.mlp.up_proj` }, linears: [`${p}.mlp.down_proj`], inspect: null },
    );
    return groups;
  }

  sequentialGroups(i: number): string[][] {
    const p = `model.layers.${i}`;
    return [
      ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
      ["self_attn.o_proj"],
      ["mlp.gate_proj", "mlp.up_proj"],
      ["mlp.down_proj"],
    ].map((g) => g.map((n) => `${p}.${n}`));
  }

  head(b: Batch, h: Tensor): Tensor {
    const n = rmsnorm(b, h, this.finalNorm, this.config.rmsEps);
    const logits = this.lmHead.forward(b, n);
    n.release();
    return logits;
  }

  override release(): void {
    super.release();
    this.rope.cos.release();
    this.rope.sin.release();
  }
}
