// LLM.int8() on the GPU against a float64 CPU version of bitsandbytes' decomposition, the outlier
// count, and the fixture against bitsandbytes' own number.

import assert from "node:assert";
import { randn } from "../../lib/cpu/random.ts";
import { perplexity } from "../../lib/eval/perplexity.ts";
import { readEvalText } from "../../lib/eval/text.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { readF32, upload } from "../../lib/gpu/tensor.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { loadModel } from "../../lib/load.ts";
import { Int8Linear, quantizeInt8, quantizeInt8Rows } from "../../lib/quant/llm_int8.ts";
import { int8Matmul, type Int8Weight } from "../../lib/kernels/int8_matmul.ts";
import { roundHalfEven } from "../../lib/quant/uniform.ts";
import { getGpu, withBindingLimit } from "../helpers.ts";
import { FIXTURES } from "../python.ts";

const gpu = await getGpu();

/** bitsandbytes' int8 linear, written out in float64. */
function int8Ref(
  x: Float32Array,
  T: number,
  K: number,
  cb: Int8Array,
  scb: Float32Array,
  N: number,
  thr: number,
) {
  // Quantization sees the activations cast to float16 (MatMul8bitLt's A.to(torch.float16)); the
  // outlier columns' FP product uses them as they are.
  const xh = Float32Array.from(x, Math.f16round);
  const out = (v: number) => thr > 0 && Math.abs(v) >= thr;
  const flag = Array.from(
    { length: K },
    (_, k) => Array.from({ length: T }, (_, t) => out(xh[t * K + k])).some(Boolean),
  );
  const y = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    let m = 0;
    for (let k = 0; k < K; k++) if (!out(xh[t * K + k])) m = Math.max(m, Math.abs(xh[t * K + k]));
    const inv = Math.fround(127 / m); // torch: 127.0 / row_stats in float32, then A · inv
    const ca = Array.from(
      { length: K },
      (_, k) => (flag[k] || out(xh[t * K + k]) ? 0 : roundHalfEven(Math.fround(xh[t * K + k] * inv))),
    );
    for (let n = 0; n < N; n++) {
      let acc = 0, fp = 0;
      for (let k = 0; k < K; k++) {
        if (flag[k]) fp += x[t * K + k] * cb[n * K + k];
        else acc += ca[k] * cb[n * K + k];
      }
      // bitsandbytes' int8_mm_dequant multiplies by the literal 6.200124e-05, not 1/127² =
      // 6.2000124e-05 (1.8e-5 relative apart): the reference's constant, kept.
      y[t * N + n] = acc * m * scb[n] * 6.200124e-05 + (fp * scb[n]) / 127;
    }
  }
  return { y, outliers: flag.filter(Boolean).length };
}

for (const [T, thr] of [[37, 6], [37, 0], [1, 6]]) {
  Deno.test(`int8 mixed decomposition = float64 reference (T=${T}, threshold ${thr})`, async () => {
    const K = 96, N = 50;
    const x = randn(T * K, T + thr), w = randn(N * K, 2, 0.05);
    for (const k of [5, 40, 41]) x[(k % T) * K + k] = k === 40 ? -9 : 7.5; // outliers in 3 columns
    const { cb, scb } = quantizeInt8Rows(w, N, K);
    const layer = Int8Linear.fromWeight(gpu, "l", cb, scb, [N, K], thr);
    const b = new Batch(gpu);
    const y = layer.forward(b, upload(gpu, x, [T, K]));
    await b.submit();
    const got = await readF32(y), want = int8Ref(x, T, K, cb, scb, N, thr);
    let err = 0, scale = 0;
    for (let i = 0; i < got.length; i++) {
      (err = Math.max(err, Math.abs(got[i] - want.y[i]))), (scale = Math.max(scale, Math.abs(want.y[i])));
    }
    assert.ok(err / scale < 1e-5, `max error ${err} of ${scale}`);
    assert.strictEqual(await layer.outlierColumns(), want.outliers);
    assert.strictEqual(want.outliers, thr > 0 ? 3 : 0);
    layer.release();
  });
}

Deno.test("int8 decomposition split over a lowered binding limit equals the unsplit result bit for bit", async () => {
  // 128 KiB: x, ca [150, 512] in 3 windows of token rows, cb [400, 512] in 2 windows of rows.
  const T = 150, K = 512, N = 400;
  const x = randn(T * K, 11), w = randn(N * K, 12, 0.05);
  for (const k of [3, 200, 511]) x[(k % T) * K + k] = 8; // outlier columns, one in each token window
  x[140 * K + 7] = -9;
  const { cb, scb } = quantizeInt8Rows(w, N, K);
  const run = async () => {
    const layer = Int8Linear.fromWeight(gpu, "l", cb, scb, [N, K], 6, randn(N, 13));
    const b = new Batch(gpu);
    const y = layer.forward(b, upload(gpu, x, [T, K]));
    await b.submit();
    const out = { y: await readF32(y), outliers: await layer.outlierColumns() };
    layer.release();
    return out;
  };
  const whole = await run();
  const split = await withBindingLimit(gpu, 128 << 10, run);
  assert.strictEqual(split.outliers, 4);
  assert.strictEqual(whole.outliers, 4);
  assert.deepStrictEqual(split.y, whole.y);
  const want = int8Ref(x, T, K, cb, scb, N, 6);
  assert.strictEqual(want.outliers, 4);
});

// bitsandbytes' own MatMul8bitLt (default backend, float32 model, threshold 6; SOURCES.md via
// issue 22) on the first 32 windows of 512: 171.6365. Ours, a window per forward: 171.6793
// (0.025% off; 171.6808 before the activations' float16 cast, which bnb does). The rest is the
// outlier-column set, which is per forward call: with all 32 windows in one call ours is 171.6503
// (0.008%), so the peer's batching (not recorded) decides it. FP (171.6299) is closer to bnb's
// number than that, so the test also demands that the int8 path ran: ppl moved off FP's.
const BNB_INT8 = 171.6365, FP = 171.6299;

Deno.test("LLM.int8 on the fixture: within 0.05% of bitsandbytes' own, off FP; outlier columns counted", async () => {
  const LLAMA = `${FIXTURES}/tiny-llama`;
  const ids = (await loadTokenizer(LLAMA)).encode(
    (await readEvalText(`${FIXTURES}/text/wiki.test.raw`)).text,
  );
  const model = await loadModel(gpu, LLAMA);
  const r = await quantizeInt8(model, 6.0);
  const q = (await perplexity(model, ids, { seqlen: 512, maxWindows: 32 })).ppl;
  const outliers = await Promise.all(r.layers.map((l) => l.outlierColumns()));
  model.release();
  assert.ok(Math.abs(q - BNB_INT8) / BNB_INT8 < 5e-4, `int8 ${q} vs bitsandbytes' ${BNB_INT8}`);
  assert.ok(Math.abs(q - FP) / FP > 1e-4, `int8 ${q} is FP's ${FP}: nothing was quantized`);
  assert.ok(outliers.some((n) => n > 0), "no layer saw an outlier column: the decomposition is untested");
  console.log(`ppl ${q}; outlier columns per layer: ${outliers.join(",")}`);
});

// Both variants, whichever this adapter picks: the texture one (x, CA, CB through textures, an 8×16
// or 1×16 tile) must give the buffer one's bits and flags — outliers, bias, sizes off the tile,
// T = 1, and token/output windows under a lowered binding limit.
Deno.test("int8 variants (buffer, texture) give the same bits and the same outlier columns", async () => {
  for (const [T, N, thr, limit] of [[37, 50, 6, 0], [1, 21, 6, 0], [9, 70, 0, 0], [150, 90, 6, 64 << 10]]) {
    const K = 256;
    const x = randn(T * K, T + N), w = randn(N * K, N, 0.05);
    for (const k of [5, 40, 255]) x[(k % T) * K + k] = k === 40 ? -9 : 7.5;
    const { cb, scb } = quantizeInt8Rows(w, N, K), bias = randn(N, 3);
    const got: Float32Array[] = [], seen: number[] = [];
    for (const v of ["buffer", "texture"] as const) {
      const layer = Int8Linear.fromWeight(gpu, "l", cb, scb, [N, K], thr, bias);
      await withBindingLimit(gpu, limit || gpu.maxBinding, async () => {
        const b = new Batch(gpu);
        const y = int8Matmul(b, upload(gpu, x, [T, K]), (layer as unknown as { w: Int8Weight }).w, v);
        await b.submit();
        got.push(await readF32(y));
        seen.push(await layer.outlierColumns());
      });
      layer.release();
    }
    assert.deepStrictEqual(got[1], got[0], `T=${T} N=${N} threshold ${thr}`);
    assert.deepStrictEqual(seen, thr > 0 ? [3, 3] : [0, 0]);
    const want = int8Ref(x, T, K, cb, scb, N, thr).y;
    let err = 0, scale = 0;
    for (let i = 0; i < want.length; i++) {
      (err = Math.max(err, Math.abs(got[1][i] - want[i] - bias[i % N]))),
        (scale = Math.max(scale, Math.abs(want[i])));
    }
    assert.ok(err / scale < 1e-5, `texture variant: max error ${err} of ${scale}`);
  }
});
