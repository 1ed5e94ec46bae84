// GPU blocked Cholesky against a float64 TypeScript Cholesky on the CPU, same matrix, same run.
//   deno task bench:cholesky [--n 1024,2048] [--out results/kernels]

import { parseArgs } from "node:util";
import * as ref from "../lib/cpu/ref.ts";
import { randn } from "../lib/cpu/random.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { Batch } from "../lib/gpu/kernel.ts";
import { read, readF32, upload } from "../lib/gpu/tensor.ts";
import { cholesky } from "../lib/kernels/cholesky.ts";
import { provenance, writeJsonAtomic } from "../lib/provenance.ts";

const { values } = parseArgs({ options: { n: { type: "string" }, out: { type: "string" } } });
const sizes = (values.n ?? "1024,2048").split(",").map(Number);
const gpu = await getGpu();
const rows = [];
for (const n of sizes) {
  // A = diag(n) + small symmetric noise: positive definite by diagonal dominance.
  const noise = randn(n * n, n, 0.5);
  const a = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      a[i * n + j] = (i === j ? n : 0) + noise[Math.min(i, j) * n + Math.max(i, j)];
    }
  }
  const A = upload(gpu, a, [n, n]), status = upload(gpu, new Uint32Array([0]), [1]);
  const warm = new Batch(gpu);
  cholesky(warm, upload(gpu, a, [n, n]), upload(gpu, new Uint32Array([0]), [1]));
  await warm.done();
  const t0 = performance.now();
  const b = new Batch(gpu);
  cholesky(b, A, status);
  await b.done();
  const gpuMs = performance.now() - t0;
  if ((await read(status))[0] !== 0) throw new Error(`n=${n}: GPU reports a non-positive pivot`);
  const t1 = performance.now();
  const l = ref.cholesky(a, n);
  const cpuMs = performance.now() - t1;
  const got = await readF32(A);
  let err = 0, scale = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      (err = Math.max(err, Math.abs(got[i * n + j] - l[i * n + j]))),
        (scale = Math.max(scale, Math.abs(l[i * n + j])));
    }
  }
  const row = { n, gpu_ms: gpuMs, cpu_f64_ms: cpuMs, speedup: cpuMs / gpuMs, max_rel_err: err / scale };
  rows.push(row);
  console.log(
    `n=${n}: GPU ${gpuMs.toFixed(0)} ms, CPU float64 ${cpuMs.toFixed(0)} ms (${
      row.speedup.toFixed(1)
    }×), max rel err ${row.max_rel_err.toExponential(1)}`,
  );
}
await writeJsonAtomic(`${values.out ?? "results/kernels"}/cholesky.json`, {
  provenance: await provenance(gpu),
  rows,
});
