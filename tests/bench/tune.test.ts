// Kernel variants by measurement: every variant of each GEMM a model runs is timed and checked
// against the adapter's rule variant, the fastest is used and cached per adapter and Deno version;
// a cached choice is used without measuring; a measured choice is what the launchers then run.

import assert from "node:assert";
import { adapterKey, pickVariant, tuneModel } from "../../lib/bench/tune.ts";
import { Batch, kernelsUsed } from "../../lib/gpu/kernel.ts";
import { readF32, upload } from "../../lib/gpu/tensor.ts";
import { choose, clearChoices, gemmKey } from "../../lib/kernels/choice.ts";
import { matmul } from "../../lib/kernels/matmul.ts";
import { loadModel } from "../../lib/load.ts";
import { quantizeRtn } from "../../lib/quant/rtn.ts";
import { randn } from "../../lib/cpu/random.ts";
import { qgemmFormat } from "../../lib/kernels/qmatmul.ts";
import { QuantLinear } from "../../lib/quant/quant_linear.ts";
import { quantizeUniform } from "../../lib/quant/uniform.ts";
import { assertClose, assertSameBits, getGpu } from "../helpers.ts";
import { FIXTURES } from "../python.ts";

const gpu = await getGpu();
const LLAMA = `${FIXTURES}/tiny-llama`;

Deno.test("tuneModel times every variant of each distinct GEMM, caches the choice, reuses it", async () => {
  const dir = await Deno.makeTempDir();
  const cachePath = `${dir}/quantlab/kernel-choices.json`;
  const model = await loadModel(gpu, LLAMA);
  await quantizeRtn(model, { bits: 4, groupSize: 128 });
  const logs: string[] = [];
  const first = await tuneModel(model, { rows: 32, cachePath, reps: 1, log: (m) => logs.push(m) });
  // Quantized block linears (qgemm) and the FP head (matmul), each distinct shape once.
  assert.ok(
    first.some((e) => e.key.startsWith("qgemm prefill")) && first.some((e) => e.key.startsWith("matmul")),
  );
  // …and the one-row GEMV of each quantized shape (what decoding runs), timed at one row.
  const gemvs = first.filter((e) => e.key.startsWith("qgemm gemv"));
  assert.ok(gemvs.length > 0 && gemvs.every((e) => e.rows === 1 && "texture" in e.us && "fused" in e.us));
  assert.strictEqual(new Set(first.map((e) => e.key)).size, first.length);
  for (const e of first) {
    assert.ok(!e.cached && Object.keys(e.us).length >= 2, `${e.key}: ${JSON.stringify(e.us)}`);
    assert.ok(e.variant in e.us);
    // The fastest of the variants that agreed (every one does here).
    assert.strictEqual(e.us[e.variant], Math.min(...Object.values(e.us)), e.key);
  }
  assert.ok(logs.some((l) => /kernel choices 1\/\d+: .* ETA/.test(l)), "progress lines");
  const file = JSON.parse(await Deno.readTextFile(cachePath));
  assert.deepStrictEqual(Object.keys(file), [adapterKey(gpu)]);
  const again = await tuneModel(model, { rows: 32, cachePath, reps: 1 });
  assert.ok(again.every((e) => e.cached));
  assert.deepStrictEqual(again.map((e) => e.variant), first.map((e) => e.variant));
  const re = await tuneModel(model, { rows: 32, cachePath, reps: 1, retune: true });
  assert.ok(re.every((e) => !e.cached));
  model.release();
  clearChoices(gpu);
});

Deno.test("a measured choice is the variant the launcher runs (same bits either way for matmul)", async () => {
  const [M, N, K] = [32, 64, 256];
  const w = upload(gpu, randn(N * K, 1), [N, K]), x = upload(gpu, randn(M * K, 2), [M, K]);
  const run = async (variant: string) => {
    choose(gpu, gemmKey("matmul", M, N, K, "f32"), variant);
    kernelsUsed.clear();
    const b = new Batch(gpu);
    const y = matmul(b, x, w);
    await b.submit();
    return { y: await readF32(y), used: [...kernelsUsed] };
  };
  const tiled = await run("tiled"), tex = await run("texture");
  assert.deepStrictEqual(tiled.used, ["matmul"]);
  assert.deepStrictEqual(tex.used, ["matmul_tex"]);
  assertSameBits(tex.y, tiled.y, "matmul texture vs tiled");
  // The quantized GEMV: the measured choice decides which kernel runs (same sums, other order).
  const r = quantizeUniform("t", randn(N * K, 3, 0.05), [N, K], {
    bits: 4,
    groupSize: 64,
    sym: false,
    range: "include-zero",
  });
  const q = QuantLinear.fromRecord(gpu, r);
  const x1 = upload(gpu, randn(K, 4), [1, K]);
  const gemv = async (variant: string) => {
    choose(gpu, gemmKey("qgemm", 1, N, K, qgemmFormat(q.packed)), variant);
    kernelsUsed.clear();
    const b = new Batch(gpu);
    const y = q.forward(b, x1);
    await b.submit();
    return { y: await readF32(y), used: [...kernelsUsed] };
  };
  const fused = await gemv("fused"), texGemv = await gemv("texture");
  assert.deepStrictEqual(fused.used, ["qmatmul:gemv"]);
  assert.deepStrictEqual(texGemv.used, ["qgemv_tex"]);
  assertClose(texGemv.y, fused.y, 1e-6, "qgemv texture vs fused");
  q.release();
  clearChoices(gpu);
});

Deno.test("a variant whose output disagrees with the rule variant's is never chosen, however fast", () => {
  const a = Float32Array.from([1, 2, 3]),
    bad = Float32Array.from([1, 2, 3.01]),
    nan = Float32Array.from([1, NaN, 3]);
  const logs: string[] = [];
  const us = { tiled: 10, texture: 5, broken: 1, nan: 0.5 };
  const pick = pickVariant("tiled", us, { tiled: a, texture: a, broken: bad, nan }, (m) => logs.push(m));
  assert.strictEqual(pick, "texture");
  assert.strictEqual(logs.length, 2);
  assert.strictEqual(pickVariant("tiled", { tiled: 10, broken: 1 }, { tiled: a, broken: bad }), "tiled");
});
