// OPT as transformers computes it, in f32:
//   h = project_in(embed(ids)) + pos_embed(t + 2)          (learned positions, offset 2)
//   pre-LN block:  h += out_proj(attn(q, k, v)) of LN1(h);  h += fc2(act(fc1(LN2(h))))
//   post-LN block (do_layer_norm_before = false, OPT-350m): LN after each residual add
//   logits = lm_head · project_out(final_LN(h))            (lm_head = embed_tokens when tied)

import type { Gpu } from "../gpu/device.ts";
import type { Batch } from "../gpu/kernel.ts";
import type { LayerFormat } from "./format.ts";
import { type Tensor, upload } from "../gpu/tensor.ts";
import type { GradLinear, Tape } from "../grad/tape.ts";
import type { Checkpoint } from "../io/checkpoint.ts";
import type { OptConfig } from "../io/config.ts";
import { gelu, relu } from "../kernels/activation.ts";
import { addInPlace } from "../kernels/add.ts";
import { attention } from "../kernels/attention.ts";
import { embedding } from "../kernels/embedding.ts";
import { layernorm } from "../kernels/layernorm.ts";
import { matmul } from "../kernels/matmul.ts";
import { optLinearShapes } from "./shapes.ts";
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

const POSITION_OFFSET = 2; // OPTLearnedPositionalEmbedding
const LN_EPS = 1e-5;

interface Norm {
  w: Tensor;
  b: Tensor;
}
interface Block {
  attnNorm: Norm;
  ffnNorm: Norm;
  lin: Map<string, Linear>;
}

export class OptModel extends BlockModel implements CausalLM {
  readonly numBlocks: number;
  readonly vocab: number;
  private constructor(
    gpu: Gpu,
    readonly config: OptConfig,
    private embedTokens: Tensor,
    lmHead: Linear,
    private embedPositions: Tensor,
    private projectIn: Tensor | null,
    private projectOut: Tensor | null,
    private finalNorm: Norm | null,
    private blocks: Block[],
    others: Map<string, Tensor>,
  ) {
    super(gpu, blocks.map((blk) => blk.lin), lmHead, others);
    this.numBlocks = config.layers;
    this.vocab = config.vocab;
  }

  static async load(
    gpu: Gpu,
    ckpt: Checkpoint,
    c: OptConfig,
    stream = false,
    formats: readonly LayerFormat[] = [],
  ): Promise<OptModel> {
    const w = new WeightLoader(gpu, ckpt, c.quant, stream, formats);
    const d = "model.decoder";
    // Some OPT checkpoints drop the "model." prefix (decoder.*); accept both.
    const prefix = ckpt.has(`${d}.embed_tokens.weight`) ? d : "decoder";
    const norm = async (n: string): Promise<Norm> => ({
      w: await w.tensor(`${n}.weight`, [c.hidden]),
      b: await w.tensor(`${n}.bias`, [c.hidden]),
    });
    const embed = await w.matrix(`${prefix}.embed_tokens.weight`, [c.vocab, c.wordEmbedDim]);
    const pos = await w.tensor(`${prefix}.embed_positions.weight`, [
      c.maxPositions + POSITION_OFFSET,
      c.hidden,
    ]);
    const proj = c.wordEmbedDim !== c.hidden;
    const projectIn = proj ? await w.matrix(`${prefix}.project_in.weight`, [c.hidden, c.wordEmbedDim]) : null;
    const projectOut = proj
      ? await w.matrix(`${prefix}.project_out.weight`, [c.wordEmbedDim, c.hidden])
      : null;
    const finalNorm = c.finalLayerNorm ? await norm(`${prefix}.final_layer_norm`) : null;
    const blocks: Block[] = [];
    for (let i = 0; i < c.layers; i++) {
      const p = `${prefix}.layers.${i}`;
      const lin = new Map<string, Linear>();
      w.beginBlock();
      for (const [n, out, inp, bias] of optLinearShapes(c)) {
        lin.set(`${p}.${n}`, await w.linear(`${p}.${n}`, out, inp, bias));
      }
      blocks.push({
        attnNorm: await norm(`${p}.self_attn_layer_norm`),
        ffnNorm: await norm(`${p}.final_layer_norm`),
        lin,
      });
      await w.endBlock(lin.values());
    }
    const head = c.tied
      ? new DenseLinear("lm_head", embed, undefined, true)
      : await w.linear("lm_head", c.vocab, c.wordEmbedDim, false);
    const m = new OptModel(gpu, c, embed, head, pos, projectIn, projectOut, finalNorm, blocks, w.others);
    await m.setStreamed(stream);
    return m;
  }

  embed(b: Batch, ids: Tensor, seq: number, pos0 = 0): Tensor {
    const c = this.config;
    const T = ids.numel;
    if (pos0 + seq > c.maxPositions) {
      throw new Error(`OPT: positions up to ${pos0 + seq} exceed max_position_embeddings ${c.maxPositions}`);
    }
    let h = embedding(b, ids, this.embedTokens);
    if (this.projectIn) {
      const p = matmul(b, h, this.projectIn);
      h.release();
      h = p;
    }
    const posIds = upload(
      this.gpu,
      Uint32Array.from({ length: T }, (_, t) => pos0 + (t % seq) + POSITION_OFFSET),
      [
        T,
      ],
      "opt.positions",
    );
    const pe = embedding(b, posIds, this.embedPositions);
    posIds.release();
    addInPlace(b, h, pe);
    pe.release();
    return h;
  }

  newCache(maxLen: number): KVCache {
    const c = this.config;
    return allocCache(this.gpu, c.layers, maxLen, c.hidden, c.maxPositions);
  }

  block(b: Batch, i: number, h: Tensor, seq: number, capture?: Capture, step?: CacheStep): Tensor | null {
    const c = this.config, blk = this.blocks[i];
    const ln = (x: Tensor, n: Norm) => layernorm(b, x, n.w, n.b, LN_EPS);
    const n1 = c.preLayerNorm ? ln(h, blk.attnNorm) : h;
    let r = this.#attn(b, i, n1, seq, undefined, capture, step);
    if (n1 !== h) n1.release();
    if (!r) return null;
    addInPlace(b, r, h);
    if (!c.preLayerNorm) r = this.swap(r, ln(r, blk.attnNorm));
    const n2 = c.preLayerNorm ? ln(r, blk.ffnNorm) : r;
    let out = this.#mlp(b, i, n2, undefined, capture);
    if (n2 !== r) n2.release();
    if (!out) return r.release(), null;
    addInPlace(b, out, r);
    r.release();
    if (!c.preLayerNorm) out = this.swap(out, ln(out, blk.ffnNorm));
    return out;
  }

  inspect(b: Batch, i: number, part: "attn" | "mlp", x: Tensor, seq: number, use?: LinearOverride): Tensor {
    return (part === "attn" ? this.#attn(b, i, x, seq, use) : this.#mlp(b, i, x, use))!;
  }

  gradBlock(t: Tape, b: Batch, i: number, h: Tensor, seq: number, lin: (name: string) => GradLinear): Tensor {
    const c = this.config, blk = this.blocks[i];
    if (c.activation !== "relu") {
      throw new Error(`OPT activation ${c.activation}: only relu has a backward kernel here`);
    }
    const L = (n: string) => lin(`${this.prefix()}.layers.${i}.${n}`);
    const ln = (x: Tensor, n: Norm) => t.layernorm(b, x, n.w, n.b, LN_EPS);
    const n1 = c.preLayerNorm ? ln(h, blk.attnNorm) : h;
    const q = t.linear(b, n1, L("self_attn.q_proj"));
    const k = t.linear(b, n1, L("self_attn.k_proj"));
    const v = t.linear(b, n1, L("self_attn.v_proj"));
    const a = t.attention(b, q, k, v, { seq, heads: c.heads, kvHeads: c.heads, headDim: c.headDim });
    let r = t.add(b, t.linear(b, a, L("self_attn.out_proj")), h);
    if (!c.preLayerNorm) r = ln(r, blk.attnNorm);
    const n2 = c.preLayerNorm ? ln(r, blk.ffnNorm) : r;
    const f = t.relu(b, t.linear(b, n2, L("fc1")));
    const out = t.add(b, t.linear(b, f, L("fc2")), r);
    return c.preLayerNorm ? out : ln(out, blk.ffnNorm);
  }

  /** out_proj(attention(q, k, v)) of the block's attention input n1 [T, hidden]. */
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
    const p = `${this.prefix()}.layers.${i}`;
    const L = this.#lookup(i, use);
    if (offer(capture, ["q_proj", "k_proj", "v_proj"].map((n) => `${p}.self_attn.${n}`), n1)) return null;
    const q = L("self_attn.q_proj").forward(b, n1);
    const k = L("self_attn.k_proj").forward(b, n1);
    const v = L("self_attn.v_proj").forward(b, n1);
    const kv = cacheKV(b, step, i, k, v);
    const a = attention(b, q, kv.k, kv.v, {
      seq,
      heads: c.heads,
      kvHeads: c.heads,
      headDim: c.headDim,
      pos0: kv.pos0,
    });
    q.release(), k.release(), v.release();
    if (offer(capture, [`${p}.self_attn.out_proj`], a)) return a.release(), null;
    const o = L("self_attn.out_proj").forward(b, a);
    a.release();
    return o;
  }

  /** fc2(act(fc1(n2))) of the MLP input n2 [T, hidden]. */
  #mlp(b: Batch, i: number, n2: Tensor, use?: LinearOverride, capture?: Capture) {
    const p = `${this.prefix()}.layers.${i}`;
    const L = this.#lookup(i, use);
    if (offer(capture, [`${p}.fc1`], n2)) return null;
    const f = L("fc1").forward(b, n2);
    (this.config.activation === "relu" ? relu : gelu)(b, f);
    if (offer(capture, [`${p}.fc2`], f)) return f.release(), null;
    const out = L("fc2").forward(b, f);
    f.release();
    return out;
  }

  #lookup(i: number, use?: LinearOverride) {
    const p = `${this.prefix()}.layers.${i}`, lin = this.blocks[i].lin;
    return (n: string) => use?.(`${p}.${n}`) ?? lin.get(`${p}.${n}`)!;
  }

  /** AutoAWQ's OPT groups: fc1 is judged on its own output, not the whole MLP. */
  awqGroups(i: number): AwqGroup[] {
    const p = `${this.prefix()}.layers.${i}`;
    if (!this.config.preLayerNorm) {
      throw new Error(
        `AWQ: ${p} is a post-LayerNorm OPT block (do_layer_norm_before = false, as OPT-350m): no norm ` +
          `sits before q/k/v or fc1 to absorb the scales`,
      );
    }
    return [
      {
        prev: { kind: "norm", name: `${p}.self_attn_layer_norm` },
        linears: ["q_proj", "k_proj", "v_proj"].map((n) => `${p}.self_attn.${n}`),
        inspect: "attn",
      },
      {
        prev: { kind: "linear", name: `${p}.self_attn.v_proj` },
        linears: [`${p}.self_attn.out_proj`],
        inspect: null,
      },
      { prev: { kind: "norm", name: `${p}.final_layer_norm` }, linears: [`${p}.fc1`], inspect: null },
      { prev: { kind: "linear", name: `${p}.fc1` }, linears: [`${p}.fc2`], inspect: null },
    ];
  }

  sequentialGroups(i: number): string[][] {
    const p = `${this.prefix()}.layers.${i}`;
    return [["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], ["self_attn.out_proj"], ["fc1"], [
      "fc2",
    ]]
      .map((g) => g.map((n) => `${p}.${n}`));
  }

  head(b: Batch, h: Tensor): Tensor {
    let x = h;
    if (this.finalNorm) x = layernorm(b, x, this.finalNorm.w, this.finalNorm.b, LN_EPS);
    if (this.projectOut) {
      const p = matmul(b, x, this.projectOut);
      if (x !== h) x.release();
      x = p;
    }
    const logits = this.lmHead.forward(b, x);
    if (x !== h) x.release();
    return logits;
  }

  private swap(old: Tensor, next: Tensor): Tensor {
    old.release();
    return next;
  }

  private prefix(): string {
    const first = this.blocks[0].lin.keys().next().value as string;
    return first.slice(0, first.indexOf(".layers."));
  }
}
