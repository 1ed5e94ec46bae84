// Time to AWQ-quantize one decoder block of Llama-2-7B's shape (hidden 4096, 32 heads without
// grouped KV — so the o_proj/v_proj group runs too — MLP 11008) with random weights, by phase:
// FP pass and statistics, scale search (20 α × the inspected modules, per calibration token),
// folding, clipping search + quantization (independent of the token count). Also the peak GPU
// bytes, model included. The checkpoint is written to a temporary directory and removed.
//   deno task bench:awq [--hidden 4096] [--intermediate 11008] [--tokens 128] [--out results/kernels]
// A slow adapter times few tokens; the row extrapolates the search to the reference's 128 × 512.

import { parseArgs } from "node:util";
import { getGpu } from "../lib/gpu/device.ts";
import { f32ToF16 } from "../lib/gpu/tensor.ts";
import { type TensorToWrite, writeSafetensors } from "../lib/io/safetensors.ts";
import { loadModel } from "../lib/load.ts";
import { provenance, writeJsonAtomic } from "../lib/provenance.ts";
import { quantizeAwq } from "../lib/quant/awq.ts";

const { values } = parseArgs({
  options: {
    hidden: { type: "string" },
    intermediate: { type: "string" },
    tokens: { type: "string" },
    out: { type: "string" },
  },
});
const H = Number(values.hidden ?? 4096), I = Number(values.intermediate ?? 11008);
const T = Number(values.tokens ?? 128), V = 4096, heads = H / 128;
const gpu = await getGpu();
console.log(`adapter: ${gpu.name}; one block, hidden ${H}, MLP ${I}, ${T} calibration tokens`);

// Cheap N(0, σ²)-like weights (sum of four uniforms): the timing does not depend on the values.
let state = 0x9e3779b9;
function rand(n: number, std: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < 4; k++) {
      state ^= state << 13, state ^= state >>> 17, state ^= state << 5;
      s += (state >>> 0) / 4294967296;
    }
    out[i] = (s - 2) * std * 1.732;
  }
  return out;
}
const f16 = (name: string, shape: number[], std: number, mean = 0): TensorToWrite => ({
  name,
  dtype: "F16",
  shape,
  data: f32ToF16(rand(shape.reduce((a, b) => a * b, 1), std).map((v) => v + mean)),
});

const dir = await Deno.makeTempDir({ prefix: "awq-block-" });
try {
  const p = "model.layers.0";
  await writeSafetensors(
    `${dir}/model.safetensors`,
    [
      f16("model.embed_tokens.weight", [V, H], 0.02),
      f16("lm_head.weight", [V, H], 0.02),
      f16("model.norm.weight", [H], 0.05, 1),
      f16(`${p}.input_layernorm.weight`, [H], 0.05, 1),
      f16(`${p}.post_attention_layernorm.weight`, [H], 0.05, 1),
      ...["q_proj", "k_proj", "v_proj", "o_proj"].map((n) => f16(`${p}.self_attn.${n}`, [H, H], 0.02)),
      f16(`${p}.mlp.gate_proj.weight`, [I, H], 0.02),
      f16(`${p}.mlp.up_proj.weight`, [I, H], 0.02),
      f16(`${p}.mlp.down_proj.weight`, [H, I], 0.02),
    ].map((t) => t.name.endsWith("_proj") ? { ...t, name: `${t.name}.weight` } : t),
  );
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      hidden_size: H,
      intermediate_size: I,
      num_attention_heads: heads,
      num_key_value_heads: heads,
      num_hidden_layers: 1,
      max_position_embeddings: 512,
      vocab_size: V,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      tie_word_embeddings: false,
      dtype: "float16",
    }),
  );
  const model = await loadModel(gpu, dir);
  const windows = [Array.from({ length: T }, (_, t) => (t * 7919) % V)];
  const r = await quantizeAwq(model, windows, { bits: 4, groupSize: 128 }, console.log);
  const refTokens = 128 * 512;
  const row = {
    shape: { hidden: H, intermediate: I, heads, kv_heads: heads },
    calibration_tokens: T,
    quant_seconds: r.seconds,
    phases: r.phases,
    search_seconds_per_token: r.phases.search / T,
    extrapolated_seconds_at_128x512: r.phases.stats * refTokens / T + r.phases.search * refTokens / T +
      r.phases.fold + r.phases.clipQuantize,
    peak_gpu_bytes: r.peakBytes,
    model_gpu_bytes: model.bytes(),
    groups: r.searches.map((s) => ({ prev: s.prev, best_alpha: s.best })),
  };
  model.release();
  console.log(JSON.stringify(row, null, 1));
  await writeJsonAtomic(`${values.out ?? "results/kernels"}/awq_block_${H}.json`, {
    provenance: await provenance(gpu),
    ...row,
  });
} finally {
  await Deno.remove(dir, { recursive: true });
}
