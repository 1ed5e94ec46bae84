// Matmul, GEMV and the naive baseline against float64 CPU math, on sizes that are not multiples
// of the tiles; the split-across-bindings path; f16 and bf16 weights (packed, on every adapter).

import assert from "node:assert";
import * as ref from "../../lib/cpu/ref.ts";
import { randn } from "../../lib/cpu/random.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, readF32, upload } from "../../lib/gpu/tensor.ts";
import { embedding } from "../../lib/kernels/embedding.ts";
import { gemv } from "../../lib/kernels/gemv.ts";
import { matmul, type MatmulVariant } from "../../lib/kernels/matmul.ts";
import { textureMatmulFits } from "../../lib/kernels/matmul_tex.ts";
import { matmulNaive } from "../../lib/kernels/matmul_naive.ts";
import { assertClose, assertSameBits, getGpu, poisoned, poisonNext, withBindingLimit } from "../helpers.ts";

const TOL = 1e-5;

async function checkMatmul(
  M: number,
  N: number,
  K: number,
  withBias: boolean,
  seed: number,
  variant?: MatmulVariant,
) {
  const gpu = await getGpu();
  const x = randn(M * K, seed), w = randn(N * K, seed + 1), bias = randn(N, seed + 2);
  const b = new Batch(gpu);
  const out = poisoned(gpu, [M, N]);
  const X = upload(gpu, x, [M, K]), W = upload(gpu, w, [N, K]), B = upload(gpu, bias, [N]);
  matmul(b, X, W, withBias ? B : undefined, out, variant);
  await b.submit();
  const got = await readF32(out);
  const what = `matmul ${variant ?? "chosen"} ${M}×${N}×${K}`;
  assertClose(got, ref.matmul(x, w, M, N, K, withBias ? bias : undefined), TOL, what);
  for (const t of [X, W, B, out]) t.release();
}

Deno.test("matmul matches float64 on awkward sizes, with and without bias", async () => {
  await checkMatmul(1, 1, 1, false, 1);
  await checkMatmul(37, 29, 53, true, 2); // K not a multiple of 4: scalar tail
  await checkMatmul(70, 33, 128, false, 3);
  await checkMatmul(5, 130, 67, true, 4);
});

// Every variant, not only the one this adapter picks: the texture variant on sizes that are not
// multiples of its 16×16 tile (K must give 256-byte rows: 64 f32), with windows of both operands.
Deno.test("matmul variants (tiled, texture, workgroup) match float64 on sizes off their tiles", async () => {
  const gpu = await getGpu();
  for (const v of ["tiled", "texture", "workgroup"] as const) {
    await checkMatmul(1, 1, 64, true, 21, v);
    await checkMatmul(37, 29, 128, true, 22, v);
    await checkMatmul(70, 33, 64, false, 23, v);
    await checkMatmul(17, 130, 192, true, 24, v);
  }
  // The workgroup tile (64×64, 16 k a step) with a partial last step, and windows of both operands;
  // its sums run in the tiled kernel's order: the same bits.
  await checkMatmul(67, 70, 36, true, 26, "workgroup");
  await withBindingLimit(gpu, 8192, () => checkMatmul(61, 90, 52, true, 5, "workgroup"));
  {
    const [M, N, K] = [65, 66, 100];
    const X = upload(gpu, randn(M * K, 27), [M, K]), W = upload(gpu, randn(N * K, 28), [N, K]);
    const run = async (v: MatmulVariant) => {
      const b = new Batch(gpu);
      const y = matmul(b, X, W, undefined, undefined, v);
      await b.submit();
      return await readF32(y);
    };
    assertSameBits(await run("workgroup"), await run("tiled"), "workgroup vs tiled");
  }
  assert(!textureMatmulFits(gpu, 52, "f32") && !textureMatmulFits(gpu, 64, "f16"));
  assert.throws(
    () =>
      matmul(
        new Batch(gpu),
        upload(gpu, new Float32Array(52), [1, 52]),
        upload(gpu, new Float32Array(52), [1, 52]),
        undefined,
        undefined,
        "texture",
      ),
    /texture variant cannot take K=52 f32/,
  );
  // Row windows: textures capped to 24 rows split x (and y) into 3 windows and w into 4.
  const maxTexture2D = gpu.maxTexture2D;
  gpu.maxTexture2D = 24;
  try {
    await withBindingLimit(gpu, 16384, () => checkMatmul(61, 90, 64, true, 25, "texture"));
  } finally {
    gpu.maxTexture2D = maxTexture2D;
  }
});

Deno.test("matmul splits weights and activations larger than one binding", async () => {
  const gpu = await getGpu();
  // 8 KiB bindings: w [90, 52] f32 is 18.7 KB → 3 windows; x/y rows also windowed.
  await withBindingLimit(gpu, 8192, () => checkMatmul(61, 90, 52, true, 5));
});

Deno.test("naive matmul matches float64", async () => {
  const gpu = await getGpu();
  const [M, N, K] = [19, 23, 31];
  const x = randn(M * K, 7), w = randn(N * K, 8);
  const b = new Batch(gpu);
  const y = matmulNaive(b, upload(gpu, x, [M, K]), upload(gpu, w, [N, K]));
  await b.submit();
  assertClose(await readF32(y), ref.matmul(x, w, M, N, K), TOL, "matmul_naive");
});

Deno.test("gemv matches float64, including a split weight", async () => {
  const gpu = await getGpu();
  for (const [N, K, limit] of [[5, 3, 0], [77, 45, 0], [300, 64, 4096]]) {
    const x = randn(K, N), w = randn(N * K, K), bias = randn(N, 9);
    await withBindingLimit(gpu, limit || gpu.maxBinding, async () => {
      const b = new Batch(gpu);
      const out = poisoned(gpu, [N]);
      gemv(b, upload(gpu, x, [K]), upload(gpu, w, [N, K]), upload(gpu, bias, [N]), out);
      await b.submit();
      assertClose(await readF32(out), ref.gemv(x, w, N, K, bias), TOL, `gemv ${N}×${K}`);
    });
  }
});

// 16-bit FP weights stay 2 bytes on the GPU (packed pairs, expanded in the shader on any adapter).
// The reference uses the same rounded weights in float64: the kernels must add nothing beyond f32
// math; K = 35 (scalar gathers), 36 (vec accessors) and 128 (the texture variant, where the adapter
// takes it; checked below on every adapter, with the workgroup variant); a lowered binding limit splits the rows.
for (const dt of ["f16", "bf16"] as const) {
  for (const K of [35, 36, 128]) {
    Deno.test(`matmul, gemv and embedding read ${dt} weights, K=${K}, whole and split into windows`, async () => {
      const gpu = await getGpu();
      const [M, N] = [13, 21];
      const x = randn(M * K, 11), w = randn(N * K, 12);
      const bits = dt === "f16" ? f32ToF16(w) : f32ToBf16(w);
      const wr = dt === "f16" ? f16ToF32(bits) : bf16ToF32(bits);
      const W = upload(gpu, bits, [N, K], "w", dt);
      assert(W.dtype === dt && W.byteLength === N * K * 2);
      const ids = [3, 0, 20, 7, 7, 19];
      const wantEmb = Float32Array.from(ids.flatMap((id) => [...wr.subarray(id * K, (id + 1) * K)]));
      for (const limit of [gpu.maxBinding, K === 128 ? 4096 : 1200]) {
        await withBindingLimit(gpu, limit, async () => {
          poisonNext(gpu, M * N);
          poisonNext(gpu, N);
          const b = new Batch(gpu);
          const y = matmul(b, upload(gpu, x, [M, K]), W);
          const v = gemv(b, upload(gpu, x.slice(0, K), [K]), W);
          const e = embedding(b, upload(gpu, Uint32Array.from(ids), [ids.length]), W);
          await b.submit();
          assertClose(await readF32(y), ref.matmul(x, wr, M, N, K), TOL, `matmul ${dt} limit ${limit}`);
          assertClose(await readF32(v), ref.gemv(x.slice(0, K), wr, N, K), TOL, `gemv ${dt} limit ${limit}`);
          assertClose(await readF32(e), wantEmb, 1e-7, `embedding ${dt} limit ${limit}`);
        });
      }
      assert.deepStrictEqual(await readF32(W), wr, "readF32 expands the stored bits exactly");
      const vs = K === 128 ? ["texture", "workgroup"] as const : K % 4 === 0 ? ["workgroup"] as const : [];
      for (const v of vs) {
        const b = new Batch(gpu);
        const out = poisoned(gpu, [M, N]);
        matmul(b, upload(gpu, x, [M, K]), W, undefined, out, v);
        await b.submit();
        assertClose(await readF32(out), ref.matmul(x, wr, M, N, K), TOL, `matmul ${v} ${dt}`);
      }
    });
  }
}

Deno.test("on llvmpipe, a K past the loop-iteration cap is refused instead of computed wrong", async () => {
  const gpu = await getGpu();
  const K = 262_160; // K/4 = 65540 iterations per thread
  const b = new Batch(gpu);
  const x = upload(gpu, new Float32Array(K), [1, K]), w = upload(gpu, new Float32Array(K), [1, K]);
  if (gpu.isFallback) {
    assert.throws(() => matmul(b, x, w), /kernel matmul: K=262160 needs 65544 loop iterations/);
  } else matmul(b, x, w); // hardware adapters have no such cap
});
