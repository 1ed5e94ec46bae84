// The linears of one decoder block, [name suffix, out, in, has bias], per family: what the loaders
// load, and what the bench checks group sizes and checkpoints against before any work.

import type { LlamaConfig, ModelConfig, OptConfig } from "../io/config.ts";

export type LinearShape = [suffix: string, out: number, inp: number, bias: boolean];

export function llamaLinearShapes(c: LlamaConfig): LinearShape[] {
  const q = c.heads * c.headDim, kv = c.kvHeads * c.headDim;
  return [
    ["self_attn.q_proj", q, c.hidden, c.qkvBias],
    ["self_attn.k_proj", kv, c.hidden, c.qkvBias],
    ["self_attn.v_proj", kv, c.hidden, c.qkvBias],
    ["self_attn.o_proj", c.hidden, q, c.oBias],
    ["mlp.gate_proj", c.intermediate, c.hidden, c.mlpBias],
    ["mlp.up_proj", c.intermediate, c.hidden, c.mlpBias],
    ["mlp.down_proj", c.hidden, c.intermediate, c.mlpBias],
  ];
}

export function optLinearShapes(c: OptConfig): LinearShape[] {
  return [
    ["self_attn.q_proj", c.hidden, c.hidden, c.bias],
    ["self_attn.k_proj", c.hidden, c.hidden, c.bias],
    ["self_attn.v_proj", c.hidden, c.hidden, c.bias],
    ["self_attn.out_proj", c.hidden, c.hidden, c.bias],
    ["fc1", c.ffn, c.hidden, c.bias],
    ["fc2", c.hidden, c.ffn, c.bias],
  ];
}

/** Block i's prefix in a checkpoint (OPT files may drop "model."). */
export function blockPrefix(c: ModelConfig, has: (name: string) => boolean, i: number): string {
  if (c.family === "llama") return `model.layers.${i}`;
  return has("model.decoder.embed_tokens.weight") ? `model.decoder.layers.${i}` : `decoder.layers.${i}`;
}

/** Every decoder linear of the model: full name, out, in, has bias. */
export function modelLinears(c: ModelConfig, has: (name: string) => boolean): LinearShape[] {
  const shapes = c.family === "llama" ? llamaLinearShapes(c) : optLinearShapes(c);
  const out: LinearShape[] = [];
  for (let i = 0; i < c.layers; i++) {
    const p = blockPrefix(c, has, i);
    for (const [n, o, inp, bias] of shapes) out.push([`${p}.${n}`, o, inp, bias]);
  }
  return out;
}

/**
 * Every tensor config.json implies besides the decoder linears — embeddings, norms, OPT's
 * positions and projections, an untied head — with its shape: the loaders read exactly these.
 */
export function otherTensors(c: ModelConfig, has: (name: string) => boolean): [string, number[]][] {
  const out: [string, number[]][] = [];
  if (c.family === "llama") {
    out.push(["model.embed_tokens.weight", [c.vocab, c.hidden]], ["model.norm.weight", [c.hidden]]);
    for (let i = 0; i < c.layers; i++) {
      for (const n of ["input_layernorm", "post_attention_layernorm"]) {
        out.push([`model.layers.${i}.${n}.weight`, [c.hidden]]);
      }
    }
    return out;
  }
  const p = has("model.decoder.embed_tokens.weight") ? "model.decoder" : "decoder";
  const norm = (n: string) => out.push([`${n}.weight`, [c.hidden]], [`${n}.bias`, [c.hidden]]);
  out.push([`${p}.embed_tokens.weight`, [c.vocab, c.wordEmbedDim]]);
  out.push([`${p}.embed_positions.weight`, [c.maxPositions + 2, c.hidden]]);
  if (c.wordEmbedDim !== c.hidden) {
    out.push([`${p}.project_in.weight`, [c.hidden, c.wordEmbedDim]]);
    out.push([`${p}.project_out.weight`, [c.wordEmbedDim, c.hidden]]);
  }
  if (c.finalLayerNorm) norm(`${p}.final_layer_norm`);
  for (let i = 0; i < c.layers; i++) {
    norm(`${p}.layers.${i}.self_attn_layer_norm`);
    norm(`${p}.layers.${i}.final_layer_norm`);
  }
  return out;
}
