// Triangular inverse on the GPU: L · X = I in float64 terms, across block boundaries.

import assert from "node:assert";
import * as ref from "../../lib/cpu/ref.ts";
import { randn } from "../../lib/cpu/random.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { readF32, upload } from "../../lib/gpu/tensor.ts";
import { trtri } from "../../lib/kernels/trtri.ts";
import { assertClose, assertSameBits, getGpu, withBindingLimit } from "../helpers.ts";

const gpu = await getGpu();

function lower(n: number): Float32Array<ArrayBuffer> {
  const r = randn(n * n, n, 0.3);
  const l = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      l[i * n + j] = i === j ? 1 + Math.abs(r[i * n + j]) : r[i * n + j] / Math.sqrt(n);
    }
  }
  return l;
}

Deno.test("both variants (buffer, texture) match float64 and each other bit for bit (n = 64, 192)", async () => {
  for (const n of [64, 192]) {
    const l = lower(n);
    const got: Float32Array[] = [];
    for (const v of ["buffer", "texture"] as const) {
      const X = upload(gpu, new Float32Array(n * n), [n, n]);
      const b = new Batch(gpu);
      trtri(b, upload(gpu, l, [n, n]), X, v);
      await b.submit();
      got.push(await readF32(X));
      assertClose(got.at(-1)!, ref.trtri(l, n), 1e-5, `trtri ${v} n=${n}`);
    }
    assert.deepStrictEqual(got[1], got[0], `n=${n}: texture variant changed bits`);
  }
});

Deno.test("blocked triangular inverse matches float64 (n = 1, 7, 16, 33, 90)", async () => {
  for (const n of [1, 7, 16, 33, 90]) {
    const r = randn(n * n, n, 0.3);
    const l = new Float32Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        l[i * n + j] = i === j ? 1 + Math.abs(r[i * n + j]) : r[i * n + j] / Math.sqrt(n);
      }
    }
    const X = upload(gpu, new Float32Array(n * n), [n, n]);
    const b = new Batch(gpu);
    trtri(b, upload(gpu, l, [n, n]), X);
    await b.submit();
    assertClose(await readF32(X), ref.trtri(l, n), 1e-5, `trtri n=${n}`);
  }
});

Deno.test("triangular inverse over the binding limit (x in windows of 16-row blocks) gives the unsplit bits", async () => {
  for (const n of [90, 128]) {
    const l = lower(n);
    const run = async () => {
      const L = upload(gpu, l, [n, n]), X = upload(gpu, new Float32Array(n * n), [n, n]);
      const b = new Batch(gpu);
      trtri(b, L, X, "buffer");
      await b.submit();
      const out = await readF32(X);
      L.release(), X.release();
      return out;
    };
    const whole = await run();
    assertClose(whole, ref.trtri(l, n), 1e-5, `trtri n=${n}`);
    const split = await withBindingLimit(gpu, 32 * n * 4, run); // windows of 32 rows
    assertSameBits(split, whole, `trtri n=${n} in windows`);
  }
});
