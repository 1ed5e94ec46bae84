// Time to GPTQ-quantize one layer, by phase: Hessian accumulation over the calibration tokens,
// U (damped H → Cholesky → triangular inverse, with the host-side permutation and transfers),
// and the column sweep with lazy updates. Validated: on sampled rows the layer error tr(ΔHΔᵀ)
// must be below round-to-nearest's on the same grid.
//   deno task bench:gptq [--dim 4096] [--tokens 262144] [--chunk 4096] [--out results/kernels]
// --tokens defaults to the reference's 128 × 2048; a slow adapter can time fewer and the row
// gives the per-token rate next to it.

import { parseArgs } from "node:util";
import { randn } from "../lib/cpu/random.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { Batch } from "../lib/gpu/kernel.ts";
import { readF32, upload } from "../lib/gpu/tensor.ts";
import { HessianAccumulator } from "../lib/kernels/hessian.ts";
import { provenance, writeJsonAtomic } from "../lib/provenance.ts";
import { gptqLayer } from "../lib/quant/gptq.ts";
import { dequantize } from "../lib/quant/record.ts";
import { quantizeUniform } from "../lib/quant/uniform.ts";

const { values } = parseArgs({
  options: {
    dim: { type: "string" },
    tokens: { type: "string" },
    chunk: { type: "string" },
    out: { type: "string" },
  },
});
const n = Number(values.dim ?? 4096), tokens = Number(values.tokens ?? 128 * 2048);
const chunk = Math.min(Number(values.chunk ?? 4096), tokens);
const gpu = await getGpu();
console.log(`adapter: ${gpu.name}; layer ${n}×${n}, ${tokens} calibration tokens`);

// Inputs with correlated neighbouring features (so GPTQ has something to exploit); one chunk is
// generated and fed repeatedly — the timing is the kernel's, the content does not matter.
const z = randn(chunk * n, 1);
const x = new Float32Array(chunk * n);
for (let t = 0; t < chunk; t++) {
  for (let j = 0; j < n; j++) x[t * n + j] = z[t * n + j] + (j ? 0.7 * z[t * n + j - 1] : 0);
}
const X = upload(gpu, x, [chunk, n], "X");
const acc = new HessianAccumulator(gpu, n, "bench");
{
  const warm = new HessianAccumulator(gpu, n, "warm");
  const b = new Batch(gpu);
  warm.add(b, X, 1);
  await b.done();
  warm.release();
}
const t0 = performance.now();
for (let done = 0; done < tokens; done += chunk) {
  const b = new Batch(gpu);
  acc.add(b, X, 1);
  await b.done();
}
const hessianS = (performance.now() - t0) / 1000;
console.log(`H accumulation: ${hessianS.toFixed(2)} s (${((tokens / hessianS) | 0)} tokens/s)`);

const w = randn(n * n, 2, 0.02);
const r = await gptqLayer(gpu, "bench", w, [n, n], acc.h, { bits: 4, groupSize: 128 }, console.warn, true);
console.log(
  `U (damp, Cholesky, inverse): ${r.seconds.factor!.toFixed(2)} s; sweep: ${r.seconds.sweep!.toFixed(2)} s`,
);

// Validate on 8 rows: GPTQ's error through H below RTN's.
const H = await readF32(acc.h);
const rtn = quantizeUniform("bench", w, [n, n], {
  bits: 4,
  groupSize: 128,
  sym: false,
  range: "include-zero",
});
const wq = dequantize(r.record), wr = dequantize(rtn);
let eG = 0, eR = 0;
for (let row = 0; row < n; row += Math.ceil(n / 8)) {
  const dG = Float64Array.from({ length: n }, (_, k) => w[row * n + k] - wq[row * n + k]);
  const dR = Float64Array.from({ length: n }, (_, k) => w[row * n + k] - wr[row * n + k]);
  for (let i = 0; i < n; i++) {
    let sG = 0, sR = 0;
    for (let j = 0; j < n; j++) (sG += H[i * n + j] * dG[j]), (sR += H[i * n + j] * dR[j]);
    (eG += dG[i] * sG), (eR += dR[i] * sR);
  }
}
if (!(eG < eR)) throw new Error(`GPTQ layer error ${eG} is not below RTN's ${eR}: wrong result`);
console.log(`layer error on sampled rows: GPTQ ${eG.toExponential(3)} vs RTN ${eR.toExponential(3)}`);

const row = {
  dim: n,
  tokens,
  hessian_s: hessianS,
  hessian_tokens_per_s: tokens / hessianS,
  factor_s: r.seconds.factor!,
  sweep_s: r.seconds.sweep!,
  total_s: hessianS + r.seconds.total,
  percdamp: r.percdamp,
  gptq_over_rtn_error: eG / eR,
};
await writeJsonAtomic(`${values.out ?? "results/kernels"}/gptq_${n}.json`, {
  provenance: await provenance(gpu),
  row,
});
