// The dequant-fused kernels (and the "dequant + FP GEMM" prefill variant) against the fake-quant
// path (dequantize once to f32, float64 matmul):
// 2/3/4/8-bit, grouped and per-channel, with and without g_idx, 16-entry codebooks, GEMV with a
// K-split, and odd output counts that do not fill a packed word.

import assert from "node:assert";
import * as ref from "../../lib/cpu/ref.ts";
import { randInts, randn } from "../../lib/cpu/random.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { readF32, upload } from "../../lib/gpu/tensor.ts";
import { qmatmul } from "../../lib/kernels/qmatmul.ts";
import { QuantLinear } from "../../lib/quant/quant_linear.ts";
import { dequantize, type QuantRecord } from "../../lib/quant/record.ts";
import { quantizeUniform } from "../../lib/quant/uniform.ts";
import { assertClose, getGpu } from "../helpers.ts";

const gpu = await getGpu();
const TOL = 1e-5;

async function check(r: QuantRecord, Ms: number[], what: string, stripMajor?: boolean) {
  const layer = QuantLinear.fromRecord(gpu, r, { stripMajor });
  const w = dequantize(r);
  const [N, K] = r.shape;
  for (const M of Ms) {
    const x = randn(M * K, M + K);
    const want = ref.matmul(x, w, M, N, K, r.bias);
    for (const gemm of M > 1 ? (["fused", "dequant"] as const) : [undefined]) {
      const b = new Batch(gpu);
      const y = layer.forward(b, upload(gpu, x, [M, K]), gemm);
      await b.submit();
      assertClose(await readF32(y), want, TOL, `${what} M=${M}${gemm ? " " + gemm : ""}`);
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

Deno.test("16-entry codebook (NF4 table, blockwise absmax as scales)", async () => {
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
  await check(r, [1, 6], "nf4");
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
