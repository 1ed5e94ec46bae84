// The uniform quantizer and the record: hand-computed vectors for both range conventions, torch's
// rounding, bits-per-weight accounting, and the errors for shapes a setting cannot take.

import assert from "node:assert";
import { bitsPerWeight, dequantize, validateRecord } from "../../lib/quant/record.ts";
import { groupParams, quantizeUniform, roundHalfEven } from "../../lib/quant/uniform.ts";

Deno.test("round half to even, as torch.round", () => {
  assert.deepStrictEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6, -2.6].map(roundHalfEven), [
    0,
    2,
    2,
    -0,
    -2,
    2,
    3,
    -3,
  ]);
});

Deno.test("GPTQ convention (range widened to include 0): hand-computed codes", () => {
  // Row [0.5, 1.0, 1.5, 3.0], 2 bits: range [0, 3] → s = 1, z = 0, q = round(w) = [0, 1, 2, 3] (0.5 → 0, 1.5 → 2).
  const r = quantizeUniform("l", Float32Array.from([0.5, 1, 1.5, 3]), [1, 4], {
    bits: 2,
    groupSize: -1,
    sym: false,
    range: "include-zero",
  });
  assert.deepStrictEqual([...r.codes], [0, 1, 2, 3]);
  assert.deepStrictEqual([r.scales[0], r.zeros![0]], [1, 0]);
  // Row [-1, 2] at 4 bits: s = 3/15 = 0.2, z = round(1/0.2) = 5; q = [round(-5)+5, round(10)+5] = [0, 15].
  const p = groupParams(-1, 2, { bits: 4, groupSize: -1, sym: false, range: "include-zero" });
  assert.deepStrictEqual([p.scale, p.zero], [Math.fround(0.2), 5]);
  // Symmetric: zero is (maxq + 1) / 2 = 8 at 4 bits, scale 2·max|w| / 15.
  const s = groupParams(-0.3, 0.6, { bits: 4, groupSize: -1, sym: true, range: "include-zero" });
  assert.deepStrictEqual([s.scale, s.zero], [Math.fround(Math.fround(1.2) / 15), 8]);
  // An all-zero group gets the unit range [-1, 1].
  assert.deepStrictEqual(groupParams(0, 0, { bits: 2, groupSize: -1, sym: false, range: "include-zero" }), {
    scale: Math.fround(2 / 3),
    zero: 2,
  });
});

Deno.test("AWQ convention (raw min/max): positive groups keep their range, zero clamps to 0", () => {
  const o = { bits: 4, groupSize: -1, sym: false, range: "minmax" } as const;
  const p = groupParams(1, 4, o); // s = 3/15 = 0.2, z = clamp(-round(1/0.2), 0, 15) = 0
  assert.deepStrictEqual([p.scale, p.zero], [Math.fround(0.2), 0]);
  assert.strictEqual(groupParams(2, 2, o).scale, Math.fround(1e-5 / 15), "scale clamped at 1e-5 / maxq");
  const r = quantizeUniform("l", Float32Array.from([1, 2.5, 4]), [1, 3], o);
  assert.deepStrictEqual([...r.codes], [5, 12, 15]); // round(w / 0.2): 5, 12.5 → 12, 20 → clamp 15
});

Deno.test("groups run along the input dimension; dequantize is s·(q − z)", () => {
  const w = Float32Array.from([0, 1, 2, 3, 10, 20, 30, 40]); // [1, 8], two groups of 4
  const r = quantizeUniform("l", w, [1, 8], { bits: 2, groupSize: 4, sym: false, range: "include-zero" });
  assert.deepStrictEqual([...r.scales], [1, Math.fround(40 / 3)]);
  assert.deepStrictEqual([...r.codes], [0, 1, 2, 3, 1, 2, 2, 3]);
  assert.deepStrictEqual([...dequantize(r)], [
    0,
    1,
    2,
    3,
    Math.fround(40 / 3),
    Math.fround(80 / 3),
    Math.fround(80 / 3),
    40,
  ]);
});

Deno.test("bits per weight counts codes, fp16 scales and packed zeros", () => {
  const r = quantizeUniform("l", new Float32Array(2 * 256).fill(1), [2, 256], {
    bits: 4,
    groupSize: 128,
    sym: false,
    range: "include-zero",
  });
  assert.strictEqual(bitsPerWeight(r), 4 + (16 + 4) / 128);
  r.gIdx = new Int32Array(256).map((_, k) => Math.floor(k / 128));
  assert.strictEqual(bitsPerWeight(r), 4 + (16 + 4) / 128 + 32 / 2);
});

Deno.test("settings a layer cannot take are refused before any work; bad records name the layer", () => {
  const w = new Float32Array(3 * 100);
  assert.throws(
    () =>
      quantizeUniform("model.layers.0.mlp.up_proj", w, [3, 100], {
        bits: 4,
        groupSize: 128,
        sym: false,
        range: "include-zero",
      }),
    /model.layers.0.mlp.up_proj: in-features 100 are not divisible by group size 128/,
  );
  assert.throws(
    () => quantizeUniform("x", w, [3, 100], { bits: 5, groupSize: -1, sym: false, range: "include-zero" }),
    /bits 2, 3, 4 or 8, got 5/,
  );
  const r = quantizeUniform("x", w, [3, 100], { bits: 4, groupSize: 50, sym: false, range: "include-zero" });
  r.scales = new Float32Array(5);
  assert.throws(() => validateRecord(r), /quantized layer x: scales hold 5 values, expected 3×2/);
  r.scales = new Float32Array(6);
  r.codes[7] = 16;
  assert.throws(() => validateRecord(r), /quantized layer x: code 16 at 7 exceeds 15/);
});
