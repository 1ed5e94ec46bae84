// The Llama-2 family's config.json shapes (meta-llama/Llama-2-{7b,13b,70b}-hf), for the scale
// benchmarks: bench/scale.ts writes a 7B-shaped model from them and extrapolates to all three,
// bench/what_fits.ts prints what fits where. Parsed by the same parser as a real checkpoint's.

import { type LlamaConfig, parseConfig } from "../lib/io/config.ts";

const COMMON = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  max_position_embeddings: 4096,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  vocab_size: 32000,
  tie_word_embeddings: false,
  torch_dtype: "float16",
};

export const LLAMA2 = {
  "Llama-2-7B": {
    hidden_size: 4096,
    intermediate_size: 11008,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    num_hidden_layers: 32,
  },
  "Llama-2-13B": {
    hidden_size: 5120,
    intermediate_size: 13824,
    num_attention_heads: 40,
    num_key_value_heads: 40,
    num_hidden_layers: 40,
  },
  "Llama-2-70B": {
    hidden_size: 8192,
    intermediate_size: 28672,
    num_attention_heads: 64,
    num_key_value_heads: 8,
    num_hidden_layers: 80,
  },
};
export type Llama2 = keyof typeof LLAMA2;

/** The config.json of `name`, with `layers` decoder layers when given (default: the model's). */
export function llama2Json(name: Llama2, layers?: number): Record<string, unknown> {
  return { ...COMMON, ...LLAMA2[name], ...(layers === undefined ? {} : { num_hidden_layers: layers }) };
}

export function llama2Config(name: Llama2, layers?: number): LlamaConfig {
  return parseConfig(llama2Json(name, layers), `${name} config.json`) as LlamaConfig;
}
