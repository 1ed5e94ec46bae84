// HQQ's solver on the GPU against the float64 CPU version (hqq_ref.ts) on a random 64×256 matrix:
// zero-points within 1e-4, reconstruction error within 1e-5 relative; and the solver's lp error
// below round-to-nearest's with the same scale on heavy-tailed weights.

import assert from "node:assert";
import { randn } from "../../lib/cpu/random.ts";
import { HQQ_SLOW, hqqLayer, type HqqOptions, metaQuantize } from "../../lib/quant/hqq.ts";
import { bitsPerWeight, dequantize } from "../../lib/quant/record.ts";
import { getGpu, withBindingLimit } from "../helpers.ts";
import { hqqRef } from "./hqq_ref.ts";

const gpu = await getGpu();
const OUT = 64, IN = 256;
const DEFAULTS = { lpNorm: 0.7, beta: 10, kappa: 1.01, iters: 20, earlyStop: true };

/** Heavy-tailed weights: Laplace-distributed with a few large outliers. */
function heavyTailed(n: number, seed: number): Float32Array<ArrayBuffer> {
  const u = randn(n, seed);
  return Float32Array.from(u, (x, i) => 0.02 * Math.sign(x) * Math.log1p(x * x) * (i % 97 === 0 ? 8 : 1));
}

for (
  const [bits, groupSize, axis, slow] of [[4, 64, 1, false], [3, 64, 0, false], [2, 32, 1, false], [
    4,
    128,
    1,
    true,
  ]] as const
) {
  Deno.test(`HQQ solver = float64 reference: W${bits} g${groupSize} axis ${axis}${slow ? " (slow)" : ""}`, async () => {
    const w = heavyTailed(OUT * IN, bits * 7 + axis);
    const o: HqqOptions = { bits, groupSize, axis, ...(slow ? HQQ_SLOW : {}) };
    const got = await hqqLayer(gpu, "layer", w, [OUT, IN], o);
    const want = hqqRef(w, { bits, groupSize, axis, ...DEFAULTS, ...(slow ? HQQ_SLOW : {}) });
    let dz = 0;
    for (let j = 0; j < want.z.length; j++) dz = Math.max(dz, Math.abs(got.record.zeros![j] - want.z[j]));
    assert.ok(dz < 1e-4, `zero-points differ by up to ${dz}`);
    const deq = dequantize(got.record);
    let eGot = 0, eRef = 0;
    const nG = want.z.length;
    for (let i = 0; i < w.length; i++) {
      const j = axis === 1 ? Math.floor(i / groupSize) : i % nG;
      eGot += (w[i] - deq[i]) ** 2;
      eRef += (w[i] - (want.codes[i] - want.z[j]) / want.s[j]) ** 2;
    }
    assert.ok(Math.abs(eGot - eRef) / eRef < 1e-5, `reconstruction error ${eGot} vs ${eRef}`);
    if (!slow) assert.ok(got.steps >= 2 && got.steps <= 20, `${got.steps} steps`);
  });
}

Deno.test("HQQ lowers the lp error (p = 0.7) below round-to-nearest with the same scale", async () => {
  const w = heavyTailed(OUT * IN, 3);
  const lp = (r: Awaited<ReturnType<typeof hqqLayer>>) => {
    const d = dequantize(r.record);
    return w.reduce((acc, v, i) => acc + Math.abs(v - d[i]) ** 0.7, 0);
  };
  for (const bits of [4, 3, 2]) {
    const opt = lp(await hqqLayer(gpu, "l", w, [OUT, IN], { bits, groupSize: 64 }));
    const rtn = lp(await hqqLayer(gpu, "l", w, [OUT, IN], { bits, groupSize: 64, optimize: false }));
    assert.ok(opt < rtn, `W${bits}: HQQ lp error ${opt} vs RTN ${rtn}`);
  }
});

Deno.test("HQQ trackErrors: the error of every step without early stopping, same result", async () => {
  const w = heavyTailed(OUT * IN, 4);
  const o = { bits: 3, groupSize: 64, iters: 7, earlyStop: false };
  const plain = await hqqLayer(gpu, "l", w, [OUT, IN], o);
  const tracked = await hqqLayer(gpu, "l", w, [OUT, IN], { ...o, trackErrors: true });
  assert.deepStrictEqual([plain.errors.length, tracked.errors.length], [0, 7]);
  assert.deepStrictEqual(tracked.record.codes, plain.record.codes);
  assert.deepStrictEqual(tracked.record.zeros, plain.record.zeros);
  // The first step's error is the early-stopping run's first error.
  const early = await hqqLayer(gpu, "l", w, [OUT, IN], { bits: 3, groupSize: 64 });
  assert.strictEqual(tracked.errors[0], early.errors[0]);
});

Deno.test("HQQ bad input: bits, a group size that does not divide, and constant groups", async () => {
  const w = randn(OUT * IN, 1);
  await assert.rejects(hqqLayer(gpu, "l", w, [OUT, IN], { bits: 7 }), /1–6 or 8 bits/);
  await assert.rejects(hqqLayer(gpu, "l", w, [OUT, IN], { bits: 0 }), /1–6 or 8 bits/);
  await assert.rejects(
    hqqLayer(gpu, "blk.up", w, [OUT, IN], { bits: 4, groupSize: 96 }),
    /blk\.up: group size 96 does not divide the tensor \[64,256\] along axis 1/,
  );
  // A constant group (max = min): the reference sets the inverse scale to 1 and reproduces it exactly.
  const c = Float32Array.from(w);
  c.fill(0.25, 0, 64);
  const r = await hqqLayer(gpu, "l", c, [OUT, IN], { bits: 4, groupSize: 64 });
  assert.strictEqual(r.record.scales[0], 1);
  const d = dequantize(r.record);
  for (let i = 0; i < 64; i++) assert.ok(Math.abs(d[i] - 0.25) < 1e-6, `${d[i]}`);
});

Deno.test("HQQ meta-quantization: 8-bit scales (groups of 128) and zeros within half a step; fewer bits", async () => {
  const x = randn(1024, 4).map((v) => 0.01 + Math.abs(v) * 1e-3);
  const q = metaQuantize(x, 128), cols = 1024 / 128;
  for (let c = 0; c < cols; c++) {
    let min = Infinity, max = -Infinity;
    for (let e = 0; e < 128; e++) {
      (min = Math.min(min, x[e * cols + c])), (max = Math.max(max, x[e * cols + c]));
    }
    for (let e = 0; e < 128; e++) {
      const i = e * cols + c;
      // The step is the range / 255, or 1 / 2e4 where the reference's clamp of the inverse scale bites.
      const step = Math.max((max - min) / 255, 1 / 2e4);
      assert.ok(Math.abs(q[i] - x[i]) <= step * 0.5001, `column ${c}: ${q[i]} vs ${x[i]}`);
    }
  }
  const w = heavyTailed(OUT * IN, 8);
  const plain = await hqqLayer(gpu, "l", w, [OUT, IN], { bits: 2, groupSize: 16 });
  const meta = await hqqLayer(gpu, "l", w, [OUT, IN], { bits: 2, groupSize: 16, metaQuant: true });
  assert.deepStrictEqual(meta.record.codes, plain.record.codes, "codes come from the unquantized meta");
  assert.ok(Math.abs(bitsPerWeight(plain.record) - 4) < 1e-9 && bitsPerWeight(meta.record) < 3.1);
});

Deno.test("HQQ's solver kernel split into windows of groups (a lowered binding limit) equals the whole", async () => {
  const w = heavyTailed(OUT * IN, 11);
  for (const axis of [1, 0] as const) {
    const o: HqqOptions = { bits: 3, groupSize: 64, axis };
    const whole = await hqqLayer(gpu, "l", w, [OUT, IN], o);
    // 4 KiB bindings: W (64 KiB of f32 here) goes in 16 windows of 16 groups.
    const split = await withBindingLimit(gpu, 4096, () => hqqLayer(gpu, "l", w, [OUT, IN], o));
    assert.deepStrictEqual(split.record.zeros, whole.record.zeros, `axis ${axis} zeros`);
    assert.deepStrictEqual(split.record.codes, whole.record.codes, `axis ${axis} codes`);
    assert.strictEqual(split.steps, whole.steps);
  }
});
