// config.json parsing: the fixtures in both dialects, each supported architecture, and clear
// errors for unknown architectures and bad values.

import assert from "node:assert";
import { parseConfig, readConfig } from "../../lib/io/config.ts";
import { FIXTURES } from "../python.ts";

const llamaBase = {
  architectures: ["LlamaForCausalLM"],
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  vocab_size: 100,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-6,
};

Deno.test("fixture configs parse, in both rope dialects", async () => {
  const tiny = await readConfig(`${FIXTURES}/tiny-llama`); // rope_parameters, dtype
  assert.strictEqual(tiny.family, "llama");
  if (tiny.family !== "llama") return;
  assert.deepStrictEqual(
    [tiny.heads, tiny.kvHeads, tiny.headDim, tiny.ropeTheta, tiny.tied, tiny.dtype],
    [4, 2, 64, 10000, false, "float16"],
  );
  const stories = await readConfig(`${FIXTURES}/stories260K`); // top-level rope_theta, torch_dtype
  assert.ok(
    stories.family === "llama" && stories.tied && stories.headDim === 8 && stories.dtype === "float32",
  );
  const opt = await readConfig(`${FIXTURES}/tiny-opt`);
  assert.ok(opt.family === "opt");
  if (opt.family !== "opt") return;
  assert.deepStrictEqual([opt.wordEmbedDim, opt.preLayerNorm, opt.finalLayerNorm, opt.tied], [
    64,
    true,
    true,
    true,
  ]);
});

Deno.test("rope theta comes from either place; torch_dtype or dtype", () => {
  const a = parseConfig({ ...llamaBase, rope_theta: 500000, torch_dtype: "bfloat16" });
  const b = parseConfig({
    ...llamaBase,
    rope_parameters: { rope_theta: 1e6, rope_type: "default" },
    dtype: "float16",
  });
  assert.ok(a.family === "llama" && a.ropeTheta === 500000 && a.dtype === "bfloat16");
  assert.ok(b.family === "llama" && b.ropeTheta === 1e6 && b.dtype === "float16");
});

Deno.test("Mistral and Qwen2 specifics: sliding window, q/k/v biases", () => {
  const m = parseConfig({
    ...llamaBase,
    architectures: ["MistralForCausalLM"],
    num_key_value_heads: 2,
    sliding_window: 4096,
  });
  assert.ok(m.family === "llama" && m.slidingWindow === 4096 && m.kvHeads === 2 && !m.qkvBias);
  const q = parseConfig({
    ...llamaBase,
    architectures: ["Qwen2ForCausalLM"],
    sliding_window: 4096,
    tie_word_embeddings: true,
  });
  assert.ok(q.family === "llama" && q.qkvBias && !q.oBias && q.slidingWindow === null && q.tied);
});

Deno.test("unknown architectures and bad values are named", () => {
  assert.throws(
    () => parseConfig({ ...llamaBase, architectures: ["GPTNeoXForCausalLM"] }, "m/config.json"),
    /m\/config.json: unsupported architecture "GPTNeoXForCausalLM"; supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, OPTForCausalLM/,
  );
  assert.throws(() => parseConfig({ hidden_size: 3 }), /unsupported architecture null/);
  assert.throws(() => parseConfig({ ...llamaBase, hidden_size: -64 }), /hidden_size: Too small/);
  assert.throws(
    () => parseConfig({ ...llamaBase, num_key_value_heads: 3 }),
    /not a multiple of num_key_value_heads 3/,
  );
  assert.throws(
    () => parseConfig({ ...llamaBase, hidden_act: "gelu" }),
    /hidden_act: only hidden_act "silu"/,
  );
  assert.throws(
    () => parseConfig({ ...llamaBase, rope_scaling: { rope_type: "llama3", factor: 8 } }),
    /rope_scaling: rope type "llama3" needs low_freq_factor/,
  );
  assert.throws(
    () => parseConfig({ ...llamaBase, rope_scaling: { rope_type: "dynamic", factor: 2 } }),
    /rope_scaling: rope type "dynamic" is not supported \(only "default", "linear", "llama3"\)/,
  );
  assert.throws(
    () => parseConfig({ ...llamaBase, rope_parameters: { rope_type: "yarn", factor: 4, rope_theta: 1e4 } }),
    /rope_parameters: rope type "yarn" is not supported/,
  );
});

Deno.test("rope scaling in both dialects: transformers-4 rope_scaling + rope_theta, transformers-5 rope_parameters", () => {
  const llama3 = {
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  };
  const want = { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 };
  const v4 = parseConfig({ ...llamaBase, rope_theta: 5e5, rope_scaling: { ...llama3, rope_type: "llama3" } });
  const v5 = parseConfig({
    ...llamaBase,
    rope_parameters: { ...llama3, rope_type: "llama3", rope_theta: 5e5 },
  });
  for (const c of [v4, v5]) {
    assert.ok(c.family === "llama");
    assert.deepStrictEqual([c.rope, c.ropeTheta], [want, 5e5]);
  }
  const lin = parseConfig({ ...llamaBase, rope_scaling: { type: "linear", factor: 4 } });
  assert.ok(lin.family === "llama" && lin.rope.type === "linear" && lin.rope.factor === 4);
  const none = parseConfig({ ...llamaBase, rope_scaling: null });
  assert.ok(none.family === "llama" && none.rope.type === "default");
});

Deno.test("a config.json that is not JSON names the file", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/config.json`, "{ nope");
  await assert.rejects(readConfig(dir), new RegExp(`${dir}/config.json: not valid JSON`));
  await assert.rejects(readConfig(`${dir}/missing`), /missing\/config.json: cannot read/);
});

Deno.test("model_type must agree with architectures; rope_scaling beside rope_parameters follows transformers", () => {
  assert.throws(
    () => parseConfig({ ...llamaBase, model_type: "gpt_neox" }),
    /model_type "gpt_neox" disagrees with architectures \["LlamaForCausalLM"\] \(model_type "llama" expected\)/,
  );
  assert.ok(parseConfig({ ...llamaBase, model_type: "llama" }).family === "llama");
  // transformers 5.18 (LlamaConfig): a non-empty rope_scaling replaces rope_parameters whole, and
  // its theta falls back to the top-level rope_theta, then 10000 — rope_parameters' theta is lost.
  const both = {
    rope_parameters: { rope_type: "default", rope_theta: 5e5 },
    rope_scaling: { rope_type: "linear", factor: 2 },
  };
  const a = parseConfig({ ...llamaBase, ...both });
  assert.ok(a.family === "llama");
  assert.deepStrictEqual([a.rope, a.ropeTheta], [{ type: "linear", factor: 2 }, 10000]);
  const b = parseConfig({ ...llamaBase, ...both, rope_theta: 1e6 });
  assert.ok(b.family === "llama" && b.ropeTheta === 1e6 && b.rope.type === "linear");
  const c = parseConfig({ ...llamaBase, ...both, rope_scaling: null });
  assert.ok(c.family === "llama" && c.ropeTheta === 5e5 && c.rope.type === "default");
});
