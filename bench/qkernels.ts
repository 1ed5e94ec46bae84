// Quantized GEMV/GEMM speed against f32 (and f16 where the adapter has shader-f16) on the same
// adapter in the same run, beside the measured shader-copy bandwidth.
//
//   deno task bench:qkernels [--shapes 4096x4096,11008x4096,4096x11008,256x256,768x256,256x768]
//                            [--bits 2,3,4,8] [--group-size 128] [--m 16] [--reps 3] [--out results/kernels]
//                            [--model DIR [--decode-tokens 128]]
// With --model, also the decode speed of that model (greedy, KV cache), FP against each W<bits>.
// Shapes are N×K (out × in). Codes are random: speed does not depend on their values, and the
// kernels' correctness is the job of tests/quant/qmatmul.test.ts.

import { parseArgs } from "node:util";
import { z } from "zod";
import { randInts, randn } from "../lib/cpu/random.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { f32ToF16, readF32, type Tensor, upload } from "../lib/gpu/tensor.ts";
import { gemv } from "../lib/kernels/gemv.ts";
import { matmul } from "../lib/kernels/matmul.ts";
import { provenance, writeJsonAtomic } from "../lib/provenance.ts";
import { generate } from "../lib/model/generate.ts";
import { loadModel } from "../lib/load.ts";
import { QuantLinear } from "../lib/quant/quant_linear.ts";
import { bnb4Linear, quantize4bit } from "../lib/quant/bnb.ts";
import { Int8Linear, quantizeInt8Rows } from "../lib/quant/llm_int8.ts";
import { quantizeRtn } from "../lib/quant/rtn.ts";
import type { QuantRecord } from "../lib/quant/record.ts";
import type { Linear } from "../lib/model/linear.ts";
import { time } from "../lib/bench/timing.ts";
import { copyBandwidth } from "../lib/bench/speed.ts";

const Options = z.object({
  shapes: z.string().default("4096x4096,11008x4096,4096x11008,256x256,768x256,256x768"),
  bits: z.string().default("2,3,4,8"),
  "group-size": z.coerce.number().int().positive().default(128),
  m: z.coerce.number().int().min(2).default(16),
  reps: z.coerce.number().int().min(1).default(3),
  out: z.string().default("results/kernels"),
  model: z.string().optional(),
  "decode-tokens": z.coerce.number().int().min(2).default(128),
});

interface Row {
  shape: string;
  kernel: string;
  weights: string;
  us: number;
  gbps: number | null;
  gflops: number | null;
  speedup: number;
}

function randomRecord(N: number, K: number, bits: number, gs: number): QuantRecord {
  const G = K / gs;
  return {
    name: `bench ${N}x${K} W${bits}`,
    shape: [N, K],
    dtype: "float32",
    bits,
    groupSize: gs,
    axis: 1,
    codes: Uint8Array.from(randInts(N * K, 1 << bits, N + K + bits)),
    scales: randn(N * G, 1).map((v) => Math.abs(v) * 0.01 + 1e-3),
    zeros: Float32Array.from(randInts(N * G, 1 << bits, 2)),
    zeroKind: "int",
    method: "rtn",
  };
}

/** max |y − ref| / max |ref| over 64 sampled outputs, the reference from the dequantized rows. */
function sampledError(r: QuantRecord, x: Float32Array, y: Float32Array): number {
  const [N, K] = r.shape, G = K / r.groupSize;
  let num = 0, den = 0;
  for (let s = 0; s < 64; s++) {
    const n = Math.floor((s * N) / 64);
    let acc = 0;
    for (let k = 0; k < K; k++) {
      const g = Math.floor(k / r.groupSize);
      const q = r.codes[n * K + k];
      acc += x[k] * r.scales[n * G + g] * (r.codebook ? r.codebook[q] : q - r.zeros![n * G + g]);
    }
    num = Math.max(num, Math.abs(y[n] - acc));
    den = Math.max(den, Math.abs(acc));
  }
  return num / den;
}

async function main() {
  const { values } = parseArgs({
    options: {
      shapes: { type: "string" },
      bits: { type: "string" },
      "group-size": { type: "string" },
      m: { type: "string" },
      reps: { type: "string" },
      out: { type: "string" },
      model: { type: "string" },
      "decode-tokens": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    return console.log(
      "deno task bench:qkernels [--shapes NxK,...] [--bits 2,3,4,8] [--group-size 128] [--m 16] [--reps 3] [--out DIR]",
    );
  }
  const o = Options.parse(values);
  const gpu = await getGpu();
  console.error(`adapter: ${gpu.name}${gpu.hasF16 ? " (shader-f16)" : ""}`);
  const us = (t: { wall: number; gpu: number | null }) => 1000 * (t.gpu ?? t.wall);

  const copyGBps = await copyBandwidth(gpu, o.reps); // 64 MiB, as before
  console.error(`shader copy: ${copyGBps.toFixed(2)} GB/s`);

  const rows: Row[] = [];
  for (const shape of o.shapes.split(",")) {
    const [N, K] = shape.split("x").map(Number);
    const x1 = upload(gpu, randn(K, 3), [1, K]), xm = upload(gpu, randn(o.m * K, 4), [o.m, K]);
    const w32 = randn(N * K, 5, 0.02);
    const dense: { name: string; w: Tensor; bytes: number }[] = [{
      name: "f32",
      w: upload(gpu, w32, [N, K]),
      bytes: N * K * 4,
    }];
    if (gpu.hasF16) dense.push({ name: "f16", w: upload(gpu, f32ToF16(w32), [N, K]), bytes: N * K * 2 });
    let baseGemv = 0, baseGemm = 0;
    for (const d of dense) {
      let y: Tensor | null = null;
      const tv = us(await time(gpu, o.reps, (b) => (y?.release(), (y = gemv(b, x1, d.w)))));
      const tm = us(await time(gpu, o.reps, (b) => (y?.release(), (y = matmul(b, xm, d.w)))));
      if (d.name === "f32") (baseGemv = tv), (baseGemm = tm);
      rows.push({
        shape,
        kernel: "gemv",
        weights: d.name,
        us: tv,
        gbps: d.bytes / tv / 1e3,
        gflops: null,
        speedup: baseGemv / tv,
      });
      rows.push({
        shape,
        kernel: `gemm M=${o.m}`,
        weights: d.name,
        us: tm,
        gbps: null,
        gflops: (2 * o.m * N * K) / tm / 1e3,
        speedup: baseGemm / tm,
      });
      d.w.release();
    }
    // Quantized layers: our W<bits> layouts, and bitsandbytes' NF4 (codebook dequant, double-quantized
    // absmax) and LLM.int8 (int8 activations; at threshold 6 random inputs have no outlier column).
    // A speed figure only counts if the kernel computed the right thing: sampled outputs are checked
    // against the dequantized weight (int8 at 2%, its activations being 8-bit; the rest at 1e-4).
    const quantized: [string, Linear, QuantRecord, number][] = o.bits.split(",").map(Number).map((bits) => {
      const rec = randomRecord(N, K, bits, o["group-size"]);
      return [`W${bits} g${o["group-size"]}`, QuantLinear.fromRecord(gpu, rec), rec, 1e-4];
    });
    const nf4 = quantize4bit("nf4", w32, [N, K], { type: "nf4", doubleQuant: true });
    const { cb, scb } = quantizeInt8Rows(w32, N, K);
    const i8 = Int8Linear.fromWeight(gpu, "int8", cb, scb, [N, K], 6);
    quantized.push(["nf4+dq g64", bnb4Linear(gpu, nf4), nf4, 1e-4], ["bnb-int8", i8, i8.record, 2e-2]);
    for (const [name, layer, rec, tol] of quantized) {
      let y: Tensor | null = null;
      const tv = us(await time(gpu, o.reps, (b) => (y?.release(), (y = layer.forward(b, x1)))));
      const err = sampledError(rec, await readF32(x1), await readF32(y!));
      if (!(err < tol)) throw new Error(`${shape} ${name}: GEMV result is wrong (relative error ${err})`);
      const tm = us(await time(gpu, o.reps, (b) => (y?.release(), (y = layer.forward(b, xm)))));
      rows.push({
        shape,
        kernel: "gemv",
        weights: name,
        us: tv,
        gbps: layer.bytes() / tv / 1e3,
        gflops: null,
        speedup: baseGemv / tv,
      });
      rows.push({
        shape,
        kernel: `gemm M=${o.m}`,
        weights: name,
        us: tm,
        gbps: null,
        gflops: (2 * o.m * N * K) / tm / 1e3,
        speedup: baseGemm / tm,
      });
      layer.release();
    }
    for (const r of rows.filter((r) => r.shape === shape)) {
      console.error(
        `  ${shape} ${r.kernel} ${r.weights}: ${r.us.toFixed(0)} µs` +
          (r.gbps ? `, ${r.gbps.toFixed(2)} GB/s` : "") +
          (r.gflops ? `, ${r.gflops.toFixed(2)} GFLOP/s` : "") +
          `, ${r.speedup.toFixed(2)}× f32`,
      );
    }
    x1.release(), xm.release();
  }
  const decode: { weights: string; tokens_per_second: number }[] = [];
  if (o.model) {
    for (const bits of [0, ...o.bits.split(",").map(Number)]) {
      const model = await loadModel(gpu, o.model);
      if (bits) await quantizeRtn(model, { bits, groupSize: o["group-size"] });
      const maxNew = Math.min(o["decode-tokens"], model.config.maxPositions - 1);
      await generate(model, [0], { maxNewTokens: 8 }); // warm-up: pipelines compiled
      const g = await generate(model, [0], { maxNewTokens: maxNew, stepsPerSubmit: 16 });
      const weights = bits ? `W${bits} g${o["group-size"]}` : "fp32";
      decode.push({ weights, tokens_per_second: g.decodeTokensPerSecond });
      console.error(`  decode ${o.model} ${weights}: ${g.decodeTokensPerSecond.toFixed(1)} tokens/s`);
      model.release();
    }
  }
  const table = [
    `adapter: ${gpu.name}; shader copy ${copyGBps.toFixed(2)} GB/s (read + write)`,
    "",
    "| N×K | kernel | weights | µs | GB/s | GFLOP/s | × f32 |",
    "|---|---|---|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.shape} | ${r.kernel} | ${r.weights} | ${r.us.toFixed(0)} | ${r.gbps?.toFixed(2) ?? "—"} | ` +
      `${r.gflops?.toFixed(2) ?? "—"} | ${r.speedup.toFixed(2)} |`
    ),
    ...(decode.length
      ? [
        "",
        `decode (greedy, KV cache) of ${o.model}:`,
        "",
        "| weights | tokens/s |",
        "|---|---|",
        ...decode.map((d) => `| ${d.weights} | ${d.tokens_per_second.toFixed(1)} |`),
      ]
      : []),
  ].join("\n");
  console.log(table);
  await writeJsonAtomic(`${o.out}/qkernels.json`, {
    provenance: await provenance(gpu),
    options: o,
    copy_gbps: copyGBps,
    rows,
  });
}

if (import.meta.main) await main();
