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

/** Every decoder linear of the model: full name, out, in. */
export function modelLinears(c: ModelConfig, has: (name: string) => boolean): [string, number, number][] {
  const shapes = c.family === "llama" ? llamaLinearShapes(c) : optLinearShapes(c);
  const out: [string, number, number][] = [];
  for (let i = 0; i < c.layers; i++) {
    const p = blockPrefix(c, has, i);
    for (const [n, o, inp] of shapes) out.push([`${p}.${n}`, o, inp]);
  }
  return out;
}
