// The dequant-fused kernels (and the "dequant + FP GEMM" prefill variant) against the fake-quant
// path (dequantize once to f32, float64 matmul):
// 2/3/4/8-bit, grouped and per-channel, with and without g_idx, 16-entry codebooks, GEMV with a
// K-split, and odd output counts that do not fill a packed word.

import assert from "node:assert";
import * as ref from "../../lib/cpu/ref.ts";
import { randInts, randn } from "../../lib/cpu/random.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { readF32, upload } from "../../lib/gpu/tensor.ts";
import {
  type QGemmVariant,
  type QGemvVariant,
  qmatmul,
  selectQgemvFits,
  weightWindows,
} from "../../lib/kernels/qmatmul.ts";
import { textureQgemvFits } from "../../lib/kernels/qgemv_tex.ts";
import { textureQgemmFits } from "../../lib/kernels/qmatmul_tex.ts";
import { QuantLinear } from "../../lib/quant/quant_linear.ts";
import { dequantize, type QuantRecord } from "../../lib/quant/record.ts";
import { quantizeUniform } from "../../lib/quant/uniform.ts";
import { assertClose, assertSameBits, getGpu, poisonNext, withBindingLimit } from "../helpers.ts";

const gpu = await getGpu();
const TOL = 1e-5;

async function check(
  r: QuantRecord,
  Ms: number[],
  what: string,
  stripMajor?: boolean,
  codebookTexture?: boolean,
) {
  const layer = QuantLinear.fromRecord(gpu, r, { stripMajor, codebookTexture });
  const w = dequantize(r);
  const [N, K] = r.shape;
  for (const M of Ms) {
    const x = randn(M * K, M + K);
    const want = ref.matmul(x, w, M, N, K, r.bias);
    const tex = M > 1 ? textureQgemmFits(gpu, layer.packed) : textureQgemvFits(gpu, layer.packed);
    const variants = M > 1
      ? ["fused", "dequant", "texture"] as const
      : ["fused", "texture", "select"] as const;
    const sel = selectQgemvFits(gpu, layer.packed), outs = new Map<string, Float32Array>();
    for (const v of variants.filter((v) => (v !== "texture" || tex) && (v !== "select" || sel))) {
      const b = new Batch(gpu);
      const xt = upload(gpu, x, [M, K]);
      poisonNext(gpu, M * N); // the output's buffer starts as NaN: every element must be written
      const y = M > 1
        ? layer.forward(b, xt, v as QGemmVariant)
        : layer.forward(b, xt, undefined, v as QGemvVariant);
      await b.submit();
      const got = await readF32(y);
      assertClose(got, want, TOL, `${what} M=${M} ${v}`);
      outs.set(v, got);
    }
    // The select tree decodes exactly what the table holds, in the same sum order.
    if (outs.has("select")) {
      assertSameBits(outs.get("select")!, outs.get("texture")!, `${what} select = texture`);
    }
  }
  layer.release();
}

Deno.test("uniform 2/3/4/8-bit, grouped and per-channel: GEMV and GEMM equal the fake-quant path", async () => {
  const [N, K] = [37, 256]; // 37 outputs fill no packed word exactly
  const w = randn(N * K, 1, 0.05);
  for (const bits of [2, 3, 4, 8]) {
    for (const groupSize of [32, 128, -1]) {
      const r = quantizeUniform("t", w, [N, K], { bits, groupSize, sym: false, range: "include-zero" });
      await check(r, [1, 5, 33], `W${bits} g${groupSize}`);
    }
  }
});

Deno.test("both word orders (k-major for GPUs, strip-major for CPU rasterisers) compute the same", async () => {
  const [N, K] = [45, 128];
  const w = randn(N * K, 11, 0.05);
  for (const bits of [2, 3, 4, 8]) {
    const r = quantizeUniform("t", w, [N, K], { bits, groupSize: 64, sym: false, range: "include-zero" });
    for (const strip of [false, true]) await check(r, [1, 6], `W${bits} strip-major ${strip}`, strip);
  }
});

Deno.test("bias, symmetric codes and a large layer (K past one llvmpipe loop of 4096)", async () => {
  const [N, K] = [64, 11008];
  const r = quantizeUniform("big", randn(N * K, 2, 0.02), [N, K], {
    bits: 4,
    groupSize: 128,
    sym: true,
    range: "include-zero",
  });
  r.bias = randn(N, 3);
  await check(r, [1, 4], "W4 sym g128 11008");
});

Deno.test("act-order g_idx: columns sorted by group at load, x permuted at run time", async () => {
  const [N, K, gs] = [40, 192, 64];
  const r = quantizeUniform("ao", randn(N * K, 4, 0.05), [N, K], {
    bits: 4,
    groupSize: gs,
    sym: false,
    range: "include-zero",
  });
  // A random column order, as act-order produces: the column at sorted position j is in group j / gs.
  const order = Array.from({ length: K }, (_, k) => k).sort((a, b) => ((a * 7919) % K) - ((b * 7919) % K));
  r.gIdx = new Int32Array(K);
  order.forEach((k, j) => (r.gIdx![k] = Math.floor(j / gs)));
  await check(r, [1, 3], "g_idx");
  r.gIdx[0] = (r.gIdx[0] + 1) % 3; // now one group has gs + 1 columns
  assert.throws(
    () => QuantLinear.fromRecord(gpu, r),
    /quantized layer ao: g_idx groups are not all of size 64/,
  );
});

Deno.test("16-entry codebook (NF4 table, blockwise absmax as scales), from storage and from a texture", async () => {
  const [N, K, bs] = [21, 128, 64];
  const nf4 = Float32Array.from([
    -1,
    -0.6961928,
    -0.5250731,
    -0.3949175,
    -0.2844414,
    -0.1847734,
    -0.0910500,
    0,
    0.0795803,
    0.1609302,
    0.2461123,
    0.3379152,
    0.4407098,
    0.5626170,
    0.7229568,
    1,
  ]);
  const r: QuantRecord = {
    name: "nf4",
    shape: [N, K],
    dtype: "float32",
    bits: 4,
    groupSize: bs,
    axis: 1,
    codes: Uint8Array.from(randInts(N * K, 16, 5)),
    scales: randn(N * (K / bs), 6).map(Math.abs),
    zeros: null,
    codebook: nf4,
    method: "nf4",
  };
  for (const tex of [false, true]) {
    for (const strip of [false, true]) {
      await check(r, [1, 6], `nf4 texture ${tex} strip ${strip}`, strip, tex);
    }
  }
});

Deno.test("GEMV with a K-split sums the slices", async () => {
  const [N, K] = [50, 512];
  const r = quantizeUniform("ks", randn(N * K, 7, 0.05), [N, K], {
    bits: 3,
    groupSize: 64,
    sym: false,
    range: "include-zero",
  });
  r.bias = randn(N, 8);
  const layer = QuantLinear.fromRecord(gpu, r);
  const x = randn(K, 9);
  for (const ksplit of [2, 3, 8]) {
    const b = new Batch(gpu);
    const y = qmatmul(b, upload(gpu, x, [1, K]), layer.packed, { ksplit });
    await b.submit();
    assertClose(await readF32(y), ref.matmul(x, dequantize(r), 1, N, K, r.bias), TOL, `ksplit ${ksplit}`);
  }
});

Deno.test("past the binding limit: words, scales, x and y split into windows, same bits as unsplit", async () => {
  // 516 outputs fill no packed word at 3/4-bit; K = 256 in 8 groups of 32 (or one, per-channel).
  const [N, K] = [516, 256];
  const w = randn(N * K, 12, 0.05);
  const bias = randn(N, 13);
  const run = async (layer: QuantLinear, x: Float32Array<ArrayBuffer>, M: number) => {
    poisonNext(gpu, M * N);
    const b = new Batch(gpu);
    const y = layer.forward(b, upload(gpu, x, [M, K]), "fused", "fused");
    await b.submit();
    return await readF32(y);
  };
  const records: [string, QuantRecord][] = [];
  for (const bits of [2, 3, 4, 8]) {
    for (const groupSize of [32, -1]) {
      const r = quantizeUniform("win", w, [N, K], { bits, groupSize, sym: false, range: "include-zero" });
      r.bias = bias;
      records.push([`W${bits} g${groupSize}`, r]);
    }
  }
  const nf4 = quantizeUniform("win", w, [N, K], { bits: 4, groupSize: 32, sym: true, range: "include-zero" });
  nf4.codebook = Float32Array.from({ length: 16 }, (_, i) => (i - 8) / 8);
  nf4.zeros = null;
  records.push(["codebook", nf4]);
  for (const [what, r] of records) {
    for (const strip of [false, true]) {
      const layer = QuantLinear.fromRecord(gpu, r, { stripMajor: strip });
      for (const M of [1, 5]) {
        const x = randn(M * K, 14 + M);
        const whole = await run(layer, x, M);
        const split = await withBindingLimit(gpu, 20000, async () => {
          assert.ok(weightWindows(gpu, layer.packed).length > 1, `${what}: words fit one binding`);
          return await run(layer, x, M);
        });
        const label = `${what} ${strip ? "strip" : "k"}-major M=${M}`;
        // Windows end on group boundaries (or split strips): the unsplit sums. Per-channel
        // k-major words split inside the one group: same math, other rounding.
        if (r.groupSize === K && !strip) {
          assertClose(split, whole, TOL, label);
          assertClose(split, ref.matmul(x, dequantize(r), M, N, K, r.bias), TOL, label);
        } else assertSameBits(split, whole, label);
      }
      layer.release();
    }
  }
  // 130 token rows (x is 133 KB, y 268 KB) at a 64 KiB limit: x, y and the act-order gather split.
  const r = records[4][1]; // W4 g32
  const order = Array.from({ length: K }, (_, k) => (k * 37) % K);
  r.gIdx = new Int32Array(K);
  order.forEach((k, j) => (r.gIdx![k] = Math.floor(j / 32)));
  const layer = QuantLinear.fromRecord(gpu, r, { stripMajor: false });
  const x = randn(130 * K, 20);
  const whole = await run(layer, x, 130);
  const split = await withBindingLimit(gpu, 65536, () => run(layer, x, 130));
  assertSameBits(split, whole, "M=130 windows");
  assertClose(split, ref.matmul(x, dequantize(r), 130, N, K, r.bias), TOL, "M=130 vs fake-quant");
  // The dequant prefill variant needs Ŵ in one binding: forced past it, it says so.
  await withBindingLimit(gpu, 65536, () => {
    const b = new Batch(gpu);
    assert.throws(
      () => layer.forward(b, upload(gpu, x, [130, K]), "dequant"),
      /dequant variant: Ŵ \[516×256\]/,
    );
    return Promise.resolve();
  });
  layer.release();
});
