// config.json → a validated model config, for the architectures quantlab runs:
// LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM (the Llama family) and OPTForCausalLM.
// Both dialects found in the wild are accepted: rope settings at top level (`rope_theta`,
// `rope_scaling`) or inside `rope_parameters` (transformers 5), and `torch_dtype` or `dtype`.

import { z } from "zod";

export const SUPPORTED_ARCHITECTURES = [
  "LlamaForCausalLM",
  "MistralForCausalLM",
  "Qwen2ForCausalLM",
  "OPTForCausalLM",
] as const;
export type Architecture = typeof SUPPORTED_ARCHITECTURES[number];

/** The model_type transformers writes beside each architecture. */
const MODEL_TYPES: Record<Architecture, string> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
  OPTForCausalLM: "opt",
};

const pos = z.number().int().positive();

const RopeParams = z.object({
  rope_theta: z.number().positive().optional(),
  rope_type: z.string().optional(),
  type: z.string().optional(),
  factor: z.number().positive().optional(),
  low_freq_factor: z.number().positive().optional(),
  high_freq_factor: z.number().positive().optional(),
  original_max_position_embeddings: pos.optional(),
}).passthrough();

/** How RoPE's inverse frequencies are rescaled (transformers' ROPE_INIT_FUNCTIONS of the same name). */
export type RopeScaling =
  | { type: "default" }
  | { type: "linear"; factor: number }
  | {
    type: "llama3";
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositions: number;
  };

const LlamaRaw = z.object({
  hidden_size: pos,
  intermediate_size: pos,
  num_hidden_layers: pos,
  num_attention_heads: pos,
  num_key_value_heads: pos.optional(),
  head_dim: pos.nullish(),
  vocab_size: pos,
  max_position_embeddings: pos,
  rms_norm_eps: z.number().positive(),
  rope_theta: z.number().positive().optional(),
  rope_scaling: RopeParams.nullish(),
  rope_parameters: RopeParams.nullish(),
  tie_word_embeddings: z.boolean().optional(),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  hidden_act: z.literal("silu", { message: 'only hidden_act "silu" (SwiGLU) is supported' }).default("silu"),
  sliding_window: z.number().int().positive().nullish(),
  use_sliding_window: z.boolean().optional(),
  torch_dtype: z.string().nullish(),
  dtype: z.string().nullish(),
}).passthrough();

const OptRaw = z.object({
  hidden_size: pos,
  ffn_dim: pos,
  num_hidden_layers: pos,
  num_attention_heads: pos,
  vocab_size: pos,
  max_position_embeddings: pos,
  word_embed_proj_dim: pos.optional(),
  do_layer_norm_before: z.boolean().default(true),
  _remove_final_layer_norm: z.boolean().default(false),
  activation_function: z.enum(["relu", "gelu"], { message: "activation_function must be relu or gelu" })
    .default("relu"),
  enable_bias: z.boolean().default(true),
  layer_norm_elementwise_affine: z.literal(true, { message: "only affine LayerNorm is supported" }).default(
    true,
  ),
  tie_word_embeddings: z.boolean().default(true),
  torch_dtype: z.string().nullish(),
  dtype: z.string().nullish(),
}).passthrough();

export interface LlamaConfig {
  arch: "LlamaForCausalLM" | "MistralForCausalLM" | "Qwen2ForCausalLM";
  family: "llama";
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  maxPositions: number;
  rmsEps: number;
  ropeTheta: number;
  rope: RopeScaling;
  tied: boolean;
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  /** Mistral/Qwen2 sliding-window attention span, when enabled; windows longer than it are refused. */
  slidingWindow: number | null;
  dtype: string;
  /** Set for a quantized checkpoint. */
  quant: QuantConfig | null;
}

export interface OptConfig {
  arch: "OPTForCausalLM";
  family: "opt";
  hidden: number;
  ffn: number;
  layers: number;
  heads: number;
  headDim: number;
  vocab: number;
  maxPositions: number;
  wordEmbedDim: number;
  preLayerNorm: boolean;
  finalLayerNorm: boolean;
  activation: "relu" | "gelu";
  bias: boolean;
  tied: boolean;
  dtype: string;
  quant: QuantConfig | null;
}

export type ModelConfig = LlamaConfig | OptConfig;

export class ConfigError extends Error {
  constructor(file: string, what: string) {
    super(`${file}: ${what}`);
    this.name = "ConfigError";
  }
}

function zodMessage(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join(".") || "config"}: ${i.message}`).join("; ");
}

/** Parse a config.json object. `file` names the source in errors. */
export function parseConfig(raw: unknown, file = "config.json"): ModelConfig {
  const archs = (raw as { architectures?: unknown })?.architectures;
  const arch = Array.isArray(archs) ? archs[0] : undefined;
  if (SUPPORTED_ARCHITECTURES.includes(arch)) {
    // transformers builds the model from model_type: one that names another family is a clash.
    const mt = (raw as { model_type?: unknown }).model_type;
    if (mt !== undefined && mt !== MODEL_TYPES[arch as Architecture]) {
      throw new ConfigError(
        file,
        `model_type ${JSON.stringify(mt)} disagrees with architectures ["${arch}"] ` +
          `(model_type "${MODEL_TYPES[arch as Architecture]}" expected): fix one of them`,
      );
    }
  }
  if (!SUPPORTED_ARCHITECTURES.includes(arch)) {
    throw new ConfigError(
      file,
      `unsupported architecture ${JSON.stringify(arch ?? null)}; supported: ${
        SUPPORTED_ARCHITECTURES.join(", ")
      }`,
    );
  }
  if (arch === "OPTForCausalLM") {
    const r = OptRaw.safeParse(raw);
    if (!r.success) throw new ConfigError(file, zodMessage(r.error));
    const c = r.data;
    if (c.hidden_size % c.num_attention_heads) {
      throw new ConfigError(
        file,
        `hidden_size ${c.hidden_size} is not divisible by ${c.num_attention_heads} heads`,
      );
    }
    return {
      arch,
      family: "opt",
      hidden: c.hidden_size,
      ffn: c.ffn_dim,
      layers: c.num_hidden_layers,
      heads: c.num_attention_heads,
      headDim: c.hidden_size / c.num_attention_heads,
      vocab: c.vocab_size,
      maxPositions: c.max_position_embeddings,
      wordEmbedDim: c.word_embed_proj_dim ?? c.hidden_size,
      preLayerNorm: c.do_layer_norm_before,
      finalLayerNorm: c.do_layer_norm_before && !c._remove_final_layer_norm,
      activation: c.activation_function,
      bias: c.enable_bias,
      tied: c.tie_word_embeddings,
      dtype: c.dtype ?? c.torch_dtype ?? "float32",
      quant: parseQuantization(raw, file),
    };
  }
  const r = LlamaRaw.safeParse(raw);
  if (!r.success) throw new ConfigError(file, zodMessage(r.error));
  const c = r.data;
  // transformers' precedence: a non-empty rope_scaling replaces rope_parameters whole (its
  // rope_theta then comes from rope_scaling, else the top-level rope_theta, else 10000).
  const legacy = c.rope_scaling && Object.keys(c.rope_scaling).length ? c.rope_scaling : null;
  const rope = legacy ?? c.rope_parameters ?? null;
  const ropeScaling = parseRopeScaling(rope, file, legacy ? "rope_scaling" : "rope_parameters");
  const kvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % kvHeads) {
    throw new ConfigError(
      file,
      `num_attention_heads ${c.num_attention_heads} is not a multiple of num_key_value_heads ${kvHeads}`,
    );
  }
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (!Number.isInteger(headDim) || headDim % 2) {
    throw new ConfigError(file, `head_dim ${headDim} must be an even integer`);
  }
  const qwen = arch === "Qwen2ForCausalLM";
  // Mistral's window applies whenever set; Qwen2's only with use_sliding_window.
  const sliding = arch === "MistralForCausalLM" || (qwen && c.use_sliding_window)
    ? c.sliding_window ?? null
    : null;
  return {
    arch,
    family: "llama",
    hidden: c.hidden_size,
    intermediate: c.intermediate_size,
    layers: c.num_hidden_layers,
    heads: c.num_attention_heads,
    kvHeads,
    headDim,
    vocab: c.vocab_size,
    maxPositions: c.max_position_embeddings,
    rmsEps: c.rms_norm_eps,
    ropeTheta: rope?.rope_theta ?? c.rope_theta ?? 10000,
    rope: ropeScaling,
    tied: c.tie_word_embeddings ?? false,
    // Qwen2 always has q/k/v biases and no o bias; Llama and Mistral follow attention_bias.
    qkvBias: qwen ? true : c.attention_bias ?? false,
    oBias: qwen ? false : c.attention_bias ?? false,
    mlpBias: c.mlp_bias ?? false,
    slidingWindow: sliding,
    dtype: c.dtype ?? c.torch_dtype ?? "float32",
    quant: parseQuantization(raw, file),
  };
}

/** rope_parameters (transformers 5) or rope_scaling (transformers 4) → the scaling to apply. */
function parseRopeScaling(rope: z.infer<typeof RopeParams> | null, file: string, key: string): RopeScaling {
  const type = rope?.rope_type ?? rope?.type ?? "default";
  const need = (v: number | undefined, field: string): number => {
    if (v === undefined) throw new ConfigError(file, `${key}: rope type "${type}" needs ${field}`);
    return v;
  };
  if (type === "default") return { type };
  if (type === "linear") return { type, factor: need(rope!.factor, "factor") };
  if (type === "llama3") {
    const s = {
      type,
      factor: need(rope!.factor, "factor"),
      lowFreqFactor: need(rope!.low_freq_factor, "low_freq_factor"),
      highFreqFactor: need(rope!.high_freq_factor, "high_freq_factor"),
      originalMaxPositions: need(rope!.original_max_position_embeddings, "original_max_position_embeddings"),
    } as const;
    if (!(s.highFreqFactor > s.lowFreqFactor)) {
      throw new ConfigError(file, `${key}: high_freq_factor must exceed low_freq_factor`);
    }
    return s;
  }
  throw new ConfigError(
    file,
    `${key}: rope type ${JSON.stringify(type)} is not supported (only "default", "linear", "llama3")`,
  );
}

/**
 * quantization_config of a GPTQ checkpoint (AutoGPTQ v1 layout: qweight, qzeros stored minus
 * one, scales, g_idx). Other methods' checkpoints are refused by name.
 */
export const GptqQuantConfig = z.object({
  quant_method: z.literal("gptq"),
  bits: z.union([z.literal(2), z.literal(3), z.literal(4), z.literal(8)]),
  group_size: z.number().int().refine((g) => g === -1 || g > 0, "must be -1 or positive"),
  sym: z.boolean().default(true),
  desc_act: z.boolean().default(false),
  checkpoint_format: z.literal("gptq", { message: 'only checkpoint_format "gptq" (v1) is read' }).default(
    "gptq",
  ),
}).passthrough();
export type GptqQuantConfig = z.infer<typeof GptqQuantConfig>;

/**
 * quantization_config of an HQQ checkpoint (per layer W_q planar-packed, scale and zero): our
 * export's, or (layout "hqq") derived from the per-layer meta of a checkpoint hqq itself wrote.
 */
export const HqqQuantConfig = z.object({
  quant_method: z.literal("hqq"),
  nbits: z.number().int().refine((b) => [1, 2, 3, 4, 5, 6, 8].includes(b), "must be 1–6 or 8"),
  group_size: z.number().int().positive(),
  axis: z.union([z.literal(0), z.literal(1)]),
  compute_dtype: z.enum(["float32", "float16", "bfloat16"], {
    message: 'compute_dtype must be "float32", "float16" or "bfloat16"',
  }),
  layout: z.literal("hqq").optional(),
}).passthrough();
export type HqqQuantConfig = z.infer<typeof HqqQuantConfig>;

/** bitsandbytes' quantization_config (transformers BitsAndBytesConfig): 4-bit or LLM.int8. */
export const BnbQuantConfig = z.object({
  quant_method: z.literal("bitsandbytes"),
  load_in_4bit: z.boolean().default(false),
  load_in_8bit: z.boolean().default(false),
  bnb_4bit_quant_type: z.enum(["nf4", "fp4"]).optional(),
  llm_int8_threshold: z.number().min(0).optional(),
}).passthrough().refine(
  (c) => c.load_in_4bit !== c.load_in_8bit,
  "exactly one of load_in_4bit, load_in_8bit",
);
export type BnbQuantConfig = z.infer<typeof BnbQuantConfig>;

/** quantization_config of an AutoAWQ GEMM checkpoint (transformers' AwqConfig). */
export const AwqQuantConfig = z.object({
  quant_method: z.literal("awq"),
  bits: z.literal(4, { message: "only 4-bit AWQ GEMM checkpoints are read" }),
  group_size: z.number().int().refine((g) => g === -1 || g > 0, "must be -1 or positive"),
  zero_point: z.literal(true, { message: "only zero_point true is read" }).default(true),
  version: z.string().transform((v) => v.toLowerCase()).pipe(
    z.literal("gemm", { message: 'only version "gemm" is read' }),
  ).default("gemm"),
}).passthrough();
export type AwqQuantConfig = z.infer<typeof AwqQuantConfig>;

/** quantization_config of auto-round's own format with GPTQ packing (packing_format auto_round:auto_gptq). */
export const AutoRoundQuantConfig = z.object({
  quant_method: z.literal("auto-round"),
  packing_format: z.literal("auto_round:auto_gptq", {
    message: 'only packing_format "auto_round:auto_gptq" is read',
  }).default("auto_round:auto_gptq"),
  bits: z.union([z.literal(2), z.literal(3), z.literal(4), z.literal(8)]),
  group_size: z.number().int().refine((g) => g === -1 || g > 0, "must be -1 or positive"),
  sym: z.boolean().default(true),
  data_type: z.literal("int", { message: 'only data_type "int" is read' }).default("int"),
}).passthrough();
export type AutoRoundQuantConfig = z.infer<typeof AutoRoundQuantConfig>;

export type QuantConfig =
  | GptqQuantConfig
  | HqqQuantConfig
  | BnbQuantConfig
  | AwqQuantConfig
  | AutoRoundQuantConfig;

function parseQuantization(raw: unknown, file: string): QuantConfig | null {
  const q = (raw as { quantization_config?: unknown }).quantization_config;
  if (q === undefined || q === null) return null;
  const method = (q as { quant_method?: unknown }).quant_method;
  const schemas = {
    gptq: GptqQuantConfig,
    hqq: HqqQuantConfig,
    bitsandbytes: BnbQuantConfig,
    awq: AwqQuantConfig,
    "auto-round": AutoRoundQuantConfig,
  };
  if (!(typeof method === "string" && method in schemas)) {
    throw new ConfigError(
      file,
      `quantization_config: method ${JSON.stringify(method)} is not read (only ${
        Object.keys(schemas).join(", ")
      })`,
    );
  }
  const r = schemas[method as keyof typeof schemas].safeParse(q);
  if (!r.success) throw new ConfigError(file, `quantization_config.${zodMessage(r.error)}`);
  return r.data;
}

export async function readConfig(dir: string): Promise<ModelConfig> {
  const file = `${dir}/config.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new ConfigError(file, `cannot read: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(file, `not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(raw, file);
}
