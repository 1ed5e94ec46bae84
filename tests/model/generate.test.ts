// Generation with a KV cache: greedy output equals transformers' generate() token for token on
// the three fixtures; the GPU sampler equals its CPU reference; sampling is reproducible per
// seed; a quantized model generates through the same path.

import assert from "node:assert";
import { randn } from "../../lib/cpu/random.ts";
import { sampleRef } from "../../lib/cpu/sample.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { empty, read, upload } from "../../lib/gpu/tensor.ts";
import { sample } from "../../lib/kernels/sample.ts";
import { SafetensorsFile } from "../../lib/io/safetensors.ts";
import { generate } from "../../lib/model/generate.ts";
import { loadModel } from "../../lib/load.ts";
import { quantizeRtn } from "../../lib/quant/rtn.ts";
import { FIXTURES } from "../python.ts";

const gpu = await getGpu();

// transformers 5.18 / torch 2.13 (CPU, float32): model.generate(ids, attention_mask=ones,
// max_new_tokens=40, do_sample=False). (With pad_token_id = BOS id, transformers would mask the
// BOS; the mask of ones avoids that.)
const GREEDY: [string, number[], string][] = [
  [
    "stories260K",
    [1, 403, 407, 261, 378],
    "432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352 266 268 388 426",
  ],
  [
    "tiny-llama",
    [0, 1499, 490, 15, 813],
    "361 69 15 200 309 301 422 342 363 13 302 516 260 376 13 260 419 271 463 1017 13 269 260 419 271 463 1017 15 200 309 260 376 422 342 371 13 1376 271 421 13",
  ],
  [
    "tiny-opt",
    [5, 6, 7],
    "1343 1284 2573 2573 3386 2582 2160 190 998 2582 1135 2160 190 2573 2852 2852 2573 3266 2852 1343 1343 1343 1343 3813 2852 3813 3813 3386 2796 3033 2160 3109 3576 313 2852 1923 3109 1590 3109 1787",
  ],
];

for (const [name, prompt, want] of GREEDY) {
  Deno.test(`greedy generation with a KV cache equals transformers on ${name}`, async () => {
    const model = await loadModel(gpu, `${FIXTURES}/${name}`);
    const r = await generate(model, prompt, { maxNewTokens: 40, stepsPerSubmit: 7 });
    assert.strictEqual(r.newIds.join(" "), want);
    assert.deepStrictEqual(r.ids.slice(0, prompt.length), prompt);
    model.release();
  });
}

// tiny-llama3 (rope_type llama3, original_max_position_embeddings 64): the first 60 tokens of its
// reference input_ids, 40 greedy tokens by transformers 5.18 generate() as above — decoding crosses
// position 64, where the scaled frequencies matter, so the cache path must use them too.
Deno.test("greedy generation with a KV cache equals transformers on tiny-llama3 past the original 64 positions", async () => {
  const ref = await SafetensorsFile.open(`${FIXTURES}/tiny-llama3/reference_logits.safetensors`);
  const prompt = [...new Int32Array((await ref.readBytes("input_ids")).buffer)].slice(0, 60);
  const model = await loadModel(gpu, `${FIXTURES}/tiny-llama3`);
  const r = await generate(model, prompt, { maxNewTokens: 40, stepsPerSubmit: 9 });
  assert.strictEqual(
    r.newIds.join(" "),
    "112 3256 2799 3417 3944 800 1273 2118 2248 3116 2255 2991 1048 682 3959 3272 288 4047 3437 2634 331 3434 4007 3182 868 2468 2632 960 44 2826 33 3366 196 135 1977 3426 15 960 44 2826",
  );
  model.release();
});

Deno.test("the GPU sampler equals its CPU reference (greedy, temperature, top-p)", async () => {
  const V = 1000;
  for (const [temperature, topP] of [[0, 1], [1, 1], [0.7, 0.9], [1.3, 0.5], [0.5, 0.05]]) {
    for (const seed of [0, 1, 12345]) {
      const logits = randn(V, seed + 17, 3);
      const tokens = empty(gpu, [4], "u32"), cur = empty(gpu, [1], "u32");
      const b = new Batch(gpu);
      sample(b, upload(gpu, logits, [V]), tokens, cur, { temperature, topP, seed, step: 3, outIndex: 2 });
      await b.submit();
      const got = (await read(tokens))[2];
      assert.strictEqual(
        got,
        sampleRef(logits, temperature, topP, seed, 3),
        `T=${temperature} p=${topP} seed=${seed}`,
      );
      assert.strictEqual((await read(cur))[0], got);
    }
  }
});

Deno.test("sampling is reproducible for a seed and differs across seeds; quantized models generate too", async () => {
  const model = await loadModel(gpu, `${FIXTURES}/stories260K`);
  const o = { maxNewTokens: 24, temperature: 1, topP: 0.9 };
  const a = await generate(model, [1], { ...o, seed: 7 });
  const b = await generate(model, [1], { ...o, seed: 7 });
  const c = await generate(model, [1], { ...o, seed: 8 });
  assert.deepStrictEqual(a.newIds, b.newIds);
  assert.notDeepStrictEqual(a.newIds, c.newIds);
  await quantizeRtn(model, { bits: 8, groupSize: -1 });
  const q = await generate(model, [1, 403, 407, 261, 378], { maxNewTokens: 12, eosId: 2 });
  assert.ok(q.newIds.length >= 1 && q.newIds.length <= 12);
  assert.ok(q.newIds.every((id) => id >= 0 && id < model.vocab));
  await assert.rejects(generate(model, [1], { maxNewTokens: 600 }), /exceed the model's 512 positions/);
  model.release();
});
