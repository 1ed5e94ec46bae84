// Triangular inverse on the GPU: L · X = I in float64 terms, across block boundaries.

import { randn } from "../../lib/cpu/random.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { readF32, upload } from "../../lib/gpu/tensor.ts";
import { trtri } from "../../lib/kernels/trtri.ts";
import { assertClose, getGpu } from "../helpers.ts";

const gpu = await getGpu();

/** Float64 inverse of a lower-triangular matrix by forward substitution. */
function invertLower(l: ArrayLike<number>, n: number): Float64Array {
  const inv = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    for (let i = j; i < n; i++) {
      let s = i === j ? 1 : 0;
      for (let k = j; k < i; k++) s -= l[i * n + k] * inv[k * n + j];
      inv[i * n + j] = s / l[i * n + i];
    }
  }
  return inv;
}

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
    assertClose(await readF32(X), invertLower(l, n), 1e-5, `trtri n=${n}`);
  }
});
