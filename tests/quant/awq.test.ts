// AWQ's kernels and searches against the float64 CPU definitions (awq_ref.ts): the fake
// quantization of W·diag(s), the activation statistics and squared-error sums, the clipping search
// (Gram form on the GPU vs the direct token sum), and the scale search on a synthetic layer with a
// few high-activation channels — where AWQ's premise says scaling must help.

import assert from "node:assert";
import { randn } from "../../lib/cpu/random.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { readF32, type Tensor, upload } from "../../lib/gpu/tensor.ts";
import {
  clipErrors,
  colAbsSum,
  fakeQuantScaled,
  gramBlocks,
  SQ_ERR_PARTS,
  sqErrAccumulate,
} from "../../lib/kernels/awq.ts";
import { DenseLinear } from "../../lib/model/linear.ts";
import { searchScale } from "../../lib/quant/awq_search.ts";
import { chooseClip } from "../../lib/quant/awq_search.ts";
import { getGpu, withBindingLimit } from "../helpers.ts";
import { clipRef, fakeQuantScaledRef, scaleLossesRef } from "./awq_ref.ts";

const gpu = await getGpu();
const up = (a: Float32Array<ArrayBuffer>, shape: number[]) => upload(gpu, a, shape, "test");

async function run<T>(f: (b: Batch) => T): Promise<T> {
  const b = new Batch(gpu);
  const r = f(b);
  await b.done();
  return r;
}

/** Inputs with a few channels far larger than the rest (AWQ's salient channels). */
function salient(T: number, inp: number, seed: number, big: number[], factor: number) {
  const x = randn(T * inp, seed);
  for (let t = 0; t < T; t++) for (const c of big) x[t * inp + c] *= factor;
  return x;
}

Deno.test("AWQ fake quantization Q(W·diag s)/s equals the CPU definition; row windows change nothing", async () => {
  const rows = 48, cols = 256;
  const w = randn(rows * cols, 1, 0.05);
  const s = Float32Array.from(randn(cols, 2), (v) => Math.exp(0.7 * v));
  for (const [bits, g] of [[4, 128], [3, 64], [2, 32]]) {
    const [wt, st] = [up(w, [rows, cols]), up(s, [cols])];
    const got = await readF32(await run((b) => fakeQuantScaled(b, wt, st, g, bits)));
    const ref = fakeQuantScaledRef(w, s, cols, g, bits);
    let off = 0, worst = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(got[i] - ref[i]);
      // NaN-safe: a NaN output counts as differing (d > tol would skip it).
      if (!(d <= 1e-6 * Math.abs(ref[i]) + 1e-9)) off++, (worst = Math.max(worst, d * s[i % cols]));
    }
    // Only float32 rounding at exact .5 ties may move a code by one step.
    assert.ok(off <= ref.length * 0.002, `W${bits} g${g}: ${off} of ${ref.length} values differ`);
    const windowed = await withBindingLimit(
      gpu,
      8 * cols * 4,
      async () => await readF32(await run((b) => fakeQuantScaled(b, wt, st, g, bits))),
    );
    assert.deepStrictEqual(windowed, got, "row windows give other values");
    wt.release(), st.release();
  }
});

Deno.test("AWQ activation statistics: Σ|x| per channel accumulates; squared-error partial sums land in their slot", async () => {
  const T = 300, C = 96;
  const x = randn(T * C, 3), xt = up(x, [T, C]);
  const acc = up(new Float32Array(C), [C]);
  await run((b) => (colAbsSum(b, xt, acc), colAbsSum(b, xt, acc)));
  const got = await readF32(acc);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let t = 0; t < T; t++) s += 2 * Math.abs(x[t * C + c]);
    assert.ok(Math.abs(got[c] - s) < 1e-4 * s, `channel ${c}: ${got[c]} vs ${s}`);
  }
  const y = randn(5000, 4), y0 = randn(5000, 5);
  const part = up(new Float32Array(3 * SQ_ERR_PARTS), [3 * SQ_ERR_PARTS]);
  await run((b) => sqErrAccumulate(b, up(y, [5000]), up(y0, [5000]), part, 1));
  const parts = await readF32(part);
  const slot = (k: number) =>
    parts.slice(k * SQ_ERR_PARTS, (k + 1) * SQ_ERR_PARTS).reduce((a, v) => a + v, 0);
  let want = 0;
  for (let i = 0; i < y.length; i++) want += (y[i] - y0[i]) ** 2;
  assert.ok(Math.abs(slot(1) - want) < 1e-5 * want, `slot 1: ${slot(1)} vs ${want}`);
  assert.strictEqual(slot(0) + slot(2), 0);
});

// g 256 splits each quadratic form into two chunks (the fallback adapter's loop cap).
for (const [bits, g] of [[4, 64], [3, 128], [4, 256]]) {
  Deno.test(`AWQ clipping search (Gram form, GPU) = direct float64 token sums: W${bits} g${g}`, async () => {
    const out = 32, inp = 256, N = 520, nShrink = 10;
    const w = Float32Array.from(randn(out * inp, 6 + bits), (v, i) => 0.02 * v * (i % 53 === 0 ? 6 : 1));
    const x = salient(N, inp, 7, [5, 99, 180], 8);
    const s = Float32Array.from(randn(inp, 8), (v) => Math.exp(0.5 * v));
    const [wt, xt, st] = [up(w, [out, inp]), up(x, [N, inp]), up(s, [inp])];
    const { err, chunks } = await run((b) =>
      clipErrors(b, wt, gramBlocks(b, xt, st, g), g, bits, 20, nShrink)
    );
    const e = await readF32(err);
    const clipped = Float32Array.from(w);
    const chosen = chooseClip(clipped, [out, inp], g, e, chunks, nShrink, 20, N);
    const ref = clipRef(w, Float64Array.from(x, (v, i) => v / s[i % inp]), [out, inp], g, bits, 20, nShrink);
    // Where no rounding met a tie, the GPU's error equals the direct sum and the choice is the same.
    // A group clamped on both sides has min = −max and so a zero-point of exactly (2^b − 1)/2:
    // float32 (GPU, torch) and float64 may round it apart — there the choice may differ.
    let differ = 0, compared = 0;
    for (let k = 0; k < chosen.length; k++) {
      for (let i = 0; i < nShrink; i++) {
        if (ref.tie[k * nShrink + i]) continue;
        compared++;
        const want = ref.err[k * nShrink + i];
        let got = 0;
        for (let c = 0; c < chunks; c++) got += e[(k * nShrink + i) * chunks + c] / N;
        assert.ok(Math.abs(got - want) <= 1e-3 * want + 1e-12, `group ${k} step ${i}: ${got} vs ${want}`);
      }
      if (chosen[k] === ref.chosen[k]) continue;
      differ++;
      const tied = ref.tie[k * nShrink + chosen[k]] || ref.tie[k * nShrink + ref.chosen[k]];
      assert.ok(tied, `group ${k}: step ${chosen[k]} chosen, float64 picks ${ref.chosen[k]}, with no tie`);
    }
    assert.ok(compared > chosen.length * 2, `only ${compared} tie-free (group, step) pairs to compare`);
    console.log(`${differ} of ${chosen.length} groups chose another step, all at float32/float64 ties`);
    assert.ok(chosen.some((c) => c > 0), "no group was clipped at all");
    wt.release(), xt.release(), st.release(), err.release();
  });
}

Deno.test("AWQ scale search on a layer with four high-activation channels: α > 0 beats α = 0; losses = float64 CPU", async () => {
  const out = 64, inp = 256, T = 512;
  const w = randn(out * inp, 11, 0.02);
  const x = salient(T, inp, 12, [3, 77, 150, 201], 40);
  let xt: Tensor | null = null, wt: Tensor | null = null;
  try {
    xt = up(x, [T, inp]);
    wt = up(w, [out, inp]);
    const lin = new DenseLinear("synthetic", wt);
    for (const duo of [false, true]) {
      const r = await searchScale(lin, xt, { bits: 3, groupSize: 64, duoScaling: duo });
      const ref = scaleLossesRef(w, x, [out, inp], 64, 3, duo);
      r.losses.forEach((l, a) =>
        assert.ok(Math.abs(l - ref[a]) < 0.02 * ref[a], `α=${a / 20}: ${l} vs ${ref[a]}`)
      );
      const bestRef = ref.indexOf(Math.min(...ref)) / 20;
      assert.ok(r.best > 0, `duo=${duo}: the search kept α = 0`);
      assert.ok(r.losses[r.best * 20] < 0.9 * r.losses[0], `duo=${duo}: α=${r.best} barely helps`);
      assert.ok(
        Math.abs(r.best - bestRef) <= 0.05 + 1e-9,
        `duo=${duo}: α=${r.best}, float64 picks ${bestRef}`,
      );
    }
  } finally {
    xt?.release(), wt?.release();
  }
});

// Both clipping-search variants, whichever this adapter picks: the texture one (x, W, Gram
// through textures, the group unrolled) must give the buffer one's bits — g 256 has two chunks,
// and W's rows in windows under a lowered binding limit.
for (const g of [64, 128, 256]) {
  Deno.test(`AWQ clipping search variants (buffer, texture) give the same bits: g${g}`, async () => {
    const out = 24, inp = 256, N = 96, nShrink = 10;
    const w = Float32Array.from(randn(out * inp, g), (v, i) => 0.02 * v * (i % 53 === 0 ? 6 : 1));
    const x = salient(N, inp, g + 1, [5, 99, 180], 8);
    const s = Float32Array.from(randn(inp, g + 2), (v) => Math.exp(0.5 * v));
    const [wt, xt, st] = [up(w, [out, inp]), up(x, [N, inp]), up(s, [inp])];
    const got: Float32Array[] = [];
    for (const v of ["buffer", "texture"] as const) {
      const gm = await run((b) => gramBlocks(b, xt, st, g, v));
      got.push(await readF32(gm));
      got.push(await readF32((await run((b) => clipErrors(b, wt, gm, g, 4, 20, nShrink, v))).err));
    }
    assert.deepStrictEqual(got[2], got[0], "Gram blocks");
    assert.deepStrictEqual(got[3], got[1], "clip errors");
    const gm = up(Float32Array.from(got[2]), [inp / g, g, g]);
    const windowed = await withBindingLimit(gpu, 2048, async () => {
      return await readF32((await run((b) => clipErrors(b, wt, gm, g, 4, 20, nShrink, "texture"))).err);
    });
    assert.deepStrictEqual(windowed, got[1], "clip errors, W in row windows");
  });
}
