// Seconds for HQQ to quantize one matrix (default 4096×4096 at 4-bit g64, axis 1) on this adapter,
// validated: its lp error (p = 0.7) must be below round-to-nearest's with the same scale. The
// per-weight time extrapolates to a whole model (the arithmetic is printed).
//   deno task bench:hqq [--dim 4096] [--bits 4] [--group-size 64] [--out results/kernels]

import { parseArgs } from "node:util";
import { randn } from "../lib/cpu/random.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { provenance, writeJsonAtomic } from "../lib/provenance.ts";
import { hqqLayer } from "../lib/quant/hqq.ts";
import { dequantize } from "../lib/quant/record.ts";

const { values } = parseArgs({
  options: {
    dim: { type: "string" },
    bits: { type: "string" },
    "group-size": { type: "string" },
    out: { type: "string" },
  },
});
const n = Number(values.dim ?? 4096), bits = Number(values.bits ?? 4), g = Number(values["group-size"] ?? 64);
const gpu = await getGpu();
const w = randn(n * n, 5, 0.02);
await hqqLayer(gpu, "warm", w.subarray(0, 64 * n), [64, n], { bits, groupSize: g });
const t0 = performance.now();
const r = await hqqLayer(gpu, "bench", w, [n, n], { bits, groupSize: g });
const seconds = (performance.now() - t0) / 1000;
const rtn = await hqqLayer(gpu, "rtn", w, [n, n], { bits, groupSize: g, optimize: false });
const lp = (deq: Float32Array) => w.reduce((acc, v, i) => acc + Math.abs(v - deq[i]) ** 0.7, 0);
const eH = lp(dequantize(r.record)), eR = lp(dequantize(rtn.record));
if (!(eH < eR)) throw new Error(`HQQ lp error ${eH} is not below RTN's ${eR}: wrong result`);
const perWeight = seconds / (n * n);
const LLAMA2_70B_LINEAR_WEIGHTS = 80 * (8192 * 8192 * 2 + 8192 * 1024 * 2 + 3 * 8192 * 28672); // 68.45e9
console.log(`adapter: ${gpu.name}`);
console.log(
  `${n}×${n} W${bits} g${g}: ${seconds.toFixed(2)} s, ${r.steps} solver steps, lp error ${
    (eH / eR).toFixed(4)
  }× RTN's`,
);
console.log(
  `Llama-2-70B linears: ${LLAMA2_70B_LINEAR_WEIGHTS.toExponential(3)} weights × ${
    perWeight.toExponential(3)
  } s = ${(LLAMA2_70B_LINEAR_WEIGHTS * perWeight / 60).toFixed(1)} min`,
);
await writeJsonAtomic(`${values.out ?? "results/kernels"}/hqq_${n}.json`, {
  provenance: await provenance(gpu),
  row: {
    dim: n,
    bits,
    group_size: g,
    seconds,
    steps: r.steps,
    lp_error_vs_rtn: eH / eR,
    seconds_per_weight: perWeight,
    llama2_70b_minutes: (LLAMA2_70B_LINEAR_WEIGHTS * perWeight) / 60,
  },
});
