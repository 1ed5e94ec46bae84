// The blocked GPU Cholesky against float64, on sizes that straddle the 16-column blocks, and the
// status it reports for a matrix that is not positive definite.

import assert from "node:assert";
import * as ref from "../../lib/cpu/ref.ts";
import { randn } from "../../lib/cpu/random.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { read, readF32, upload } from "../../lib/gpu/tensor.ts";
import { cholesky } from "../../lib/kernels/cholesky.ts";
import { assertClose, assertSameBits, getGpu, withBindingLimit } from "../helpers.ts";

const gpu = await getGpu();

/** A = XᵀX/m + I for a random X [m, n]: symmetric positive definite, moderately conditioned. */
function spd(n: number, seed: number): Float32Array<ArrayBuffer> {
  const m = n + 8, x = randn(m * n, seed);
  const a = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = i === j ? 1 : 0;
      for (let t = 0; t < m; t++) s += (x[t * n + i] * x[t * n + j]) / m;
      a[i * n + j] = s;
    }
  }
  return a;
}

Deno.test("blocked Cholesky matches float64 (n = 1, 5, 16, 37, 100)", async () => {
  for (const n of [1, 5, 16, 37, 100]) {
    const a = spd(n, n);
    const A = upload(gpu, a, [n, n]), status = upload(gpu, new Uint32Array([0]), [1]);
    const b = new Batch(gpu);
    cholesky(b, A, status);
    await b.submit();
    assert.strictEqual((await read(status))[0], 0, `n=${n}: status`);
    const got = await readF32(A), want = ref.cholesky(a, n);
    const lower = (m: ArrayLike<number>) =>
      Float64Array.from({ length: n * n }, (_, e) => (e % n <= Math.floor(e / n) ? m[e] : 0));
    assertClose(lower(got), want, 1e-5, `cholesky n=${n}`);
  }
});

Deno.test("a matrix that is not positive definite is reported with its column", async () => {
  const n = 40;
  const a = spd(n, 3);
  a[21 * n + 21] = -5; // breaks positive definiteness at column 21 (or soon after)
  const A = upload(gpu, a, [n, n]), status = upload(gpu, new Uint32Array([0]), [1]);
  const b = new Batch(gpu);
  cholesky(b, A, status);
  await b.submit();
  const col = (await read(status))[0] - 1;
  assert.throws(() => ref.cholesky(a, n), new RegExp(`at column ${col}$`));
});

Deno.test("Cholesky over the binding limit (row windows of 16-row blocks) gives the unsplit bits", async () => {
  for (const n of [100, 130]) {
    const a = spd(n, 7 + n);
    const run = async () => {
      const A = upload(gpu, a, [n, n]), status = upload(gpu, new Uint32Array([0]), [1]);
      const b = new Batch(gpu);
      cholesky(b, A, status);
      await b.submit();
      assert.strictEqual((await read(status))[0], 0);
      const out = await readF32(A);
      A.release(), status.release();
      return out;
    };
    const whole = await run();
    // 32 rows of n floats per binding: several windows, the diagonal block in one of them.
    const split = await withBindingLimit(gpu, 32 * n * 4, run);
    assertSameBits(split, whole, `cholesky n=${n} in windows`);
  }
});
