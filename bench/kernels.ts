// Kernel speed on this adapter, each figure beside its yardstick measured in the same run:
//   copy bandwidth (copy engine and shader copy) for bandwidth-bound kernels (GEMV),
//   the naive one-output-per-thread matmul and torch's CPU matmul for the matmul variants.
// Each benchmarked kernel is also validated against the CPU reference (sampled rows).
//
//   deno task bench:kernels [--size 1024] [--gemv 4096] [--reps 3] [--out results/kernels]

import { parseArgs } from "node:util";
import { runCrossCheck } from "./python.ts";
import { z } from "zod";
import * as ref from "../lib/cpu/ref.ts";
import { randn } from "../lib/cpu/random.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { empty, readF32, type Tensor, upload } from "../lib/gpu/tensor.ts";
import { copy } from "../lib/kernels/copy.ts";
import { gemv } from "../lib/kernels/gemv.ts";
import { matmul } from "../lib/kernels/matmul.ts";
import { textureMatmulFits } from "../lib/kernels/matmul_tex.ts";
import type { Batch } from "../lib/gpu/kernel.ts";
import { matmulNaive } from "../lib/kernels/matmul_naive.ts";
import { provenance, writeJsonAtomic } from "../lib/provenance.ts";
import { time } from "../lib/bench/timing.ts";

const Options = z.object({
  size: z.coerce.number().int().min(16).max(16384).default(1024),
  gemv: z.coerce.number().int().min(16).max(32768).default(4096),
  reps: z.coerce.number().int().min(1).max(100).default(3),
  out: z.string().default("results/kernels"),
  help: z.boolean().default(false),
});

const HELP = `deno task bench:kernels — kernel speed beside the adapter's measured bandwidth
  --size N   matmul M=N=K (default 1024)
  --gemv N   GEMV N×N (default 4096)
  --reps N   timed repetitions per kernel (default 3; the median is reported)
  --out DIR  where kernels.json goes (default results/kernels)`;

interface Row {
  kernel: string;
  shape: string;
  ms_wall: number;
  ms_gpu: number | null;
  gflops: number | null;
  gbps: number | null;
  max_rel_err: number | null;
}

function maxRelErrRows(got: Float32Array, want: Float64Array, rows: number[], N: number): number {
  let num = 0, den = 0;
  rows.forEach((r, i) => {
    for (let n = 0; n < N; n++) {
      num = Math.max(num, Math.abs(got[r * N + n] - want[i * N + n]));
      den = Math.max(den, Math.abs(want[i * N + n]));
    }
  });
  return num / den;
}

/**
 * Median ms of torch's f32 x·wᵀ on this CPU (all cores), or null without a Python that has torch
 * (QUANTLAB_PYTHON, .venv, python3 — the cross-check interpreter; quantlab itself never needs it).
 */
async function torchMatmulMs(M: number, N: number, K: number, reps: number): Promise<number | null> {
  const script = `import sys, time, torch
M, N, K, reps = map(int, sys.argv[1:])
x, w = torch.randn(M, K), torch.randn(N, K)
x @ w.T
ts = []
for _ in range(reps):
    t = time.perf_counter(); x @ w.T; ts.append(time.perf_counter() - t)
print(sorted(ts)[len(ts) // 2] * 1000)`;
  const out = await runCrossCheck(script, [String(M), String(N), String(K), String(reps)]);
  return out === null ? null : Number(out.trim());
}

async function main() {
  const { values } = parseArgs({
    options: {
      size: { type: "string" },
      gemv: { type: "string" },
      reps: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const opt = Options.parse(values);
  if (opt.help) return console.log(HELP);
  const gpu = await getGpu();
  console.error(`adapter: ${gpu.name}${gpu.hasF16 ? " (shader-f16)" : ""}`);
  const rows: Row[] = [];
  const add = (r: Row) => {
    rows.push(r);
    console.error(
      `  ${r.kernel} ${r.shape}: ${r.ms_wall.toFixed(2)} ms wall` +
        (r.ms_gpu !== null ? `, ${r.ms_gpu.toFixed(2)} ms gpu` : "") +
        (r.gflops !== null ? `, ${r.gflops.toFixed(2)} GFLOP/s` : "") +
        (r.gbps !== null ? `, ${r.gbps.toFixed(2)} GB/s` : ""),
    );
  };

  // Copy bandwidth: 64 MiB read + 64 MiB written.
  const n = 16 << 20;
  const src = upload(gpu, randn(n, 1), [n], "src"), dst = empty(gpu, [n], "f32", "dst");
  const bytes = 2 * n * 4;
  // Copies are not in a compute pass, so no timestamps: 8 per submit amortise the wait instead.
  const ce = await time(gpu, opt.reps, (b) => b.copy(src.buffer, 0, dst.buffer, 0, n * 4), 8);
  add({
    kernel: "copyBufferToBuffer",
    shape: "64 MiB ×8",
    ms_wall: ce.wall,
    ms_gpu: null,
    gflops: null,
    gbps: bytes / ce.wall / 1e6,
    max_rel_err: null,
  });
  const sc = await time(gpu, opt.reps, (b) => copy(b, src, dst));
  const scMs = sc.gpu ?? sc.wall;
  add({
    kernel: "copy (shader)",
    shape: "64 MiB",
    ms_wall: sc.wall,
    ms_gpu: sc.gpu,
    gflops: null,
    gbps: bytes / scMs / 1e6,
    max_rel_err: null,
  });
  src.release();
  dst.release();

  // Matmul: every variant (buffer-tiled, texture-read, workgroup-tiled) and the naive baseline at N³, the variants
  // also at Llama-2-7B's q_proj shape for a 512-token prefill; each validated on 8 sampled rows;
  // torch's CPU matmul on the same cores beside them when the cross-check Python has torch.
  const S = opt.size;
  const shapes: [number, number, number][] = [[S, S, S], [512, 4096, 4096]];
  for (const [M, N, K] of shapes) {
    const x = randn(M * K, 2), w = randn(N * K, 3);
    const X = upload(gpu, x, [M, K]), W = upload(gpu, w, [N, K]);
    const sample = [0, 1, M >> 3, M >> 2, M >> 1, M - 3, M - 2, M - 1];
    const want = ref.matmul(
      sample.flatMap((r) => [...x.subarray(r * K, (r + 1) * K)]),
      w,
      sample.length,
      N,
      K,
    );
    const runs: [string, (b: Batch) => Tensor, number][] = [
      ["matmul tiled (buffer, 16×16)", (b) => matmul(b, X, W, undefined, undefined, "tiled"), opt.reps],
      ["matmul texture (16×16)", (b) => matmul(b, X, W, undefined, undefined, "texture"), opt.reps],
    ];
    // The workgroup-memory tiling is the hardware adapters' candidate; on a CPU adapter its barriers
    // make it slow (measured once, at N³ only).
    if (!gpu.isFallback || M === S) {
      runs.push([
        "matmul workgroup (64×64 tiles)",
        (b) => matmul(b, X, W, undefined, undefined, "workgroup"),
        gpu.isFallback ? 1 : opt.reps,
      ]);
    }
    if (M === S) runs.push(["matmul_naive", (b) => matmulNaive(b, X, W), 1]);
    for (const [name, f, reps] of runs) {
      if (name.includes("texture") && !textureMatmulFits(gpu, K, "f32")) continue;
      let y: Tensor | null = null;
      const t = await time(gpu, reps, (b) => {
        y?.release();
        y = f(b);
      });
      const ms = t.gpu ?? t.wall;
      add({
        kernel: name,
        shape: `${M}×${N}×${K}`,
        ms_wall: t.wall,
        ms_gpu: t.gpu,
        gflops: (2 * M * N * K) / ms / 1e6,
        gbps: null,
        max_rel_err: maxRelErrRows(await readF32(y!), want, sample, N),
      });
      (y as Tensor | null)?.release();
    }
    X.release();
    W.release();
    const torchMs = await torchMatmulMs(M, N, K, opt.reps);
    if (torchMs !== null) {
      add({
        kernel: `torch.matmul (CPU, ${navigator.hardwareConcurrency} threads)`,
        shape: `${M}×${N}×${K}`,
        ms_wall: torchMs,
        ms_gpu: null,
        gflops: (2 * M * N * K) / torchMs / 1e6,
        gbps: null,
        max_rel_err: null,
      });
    }
  }

  // GEMV N×N: bandwidth-bound, judged against the shader copy rate.
  const G = opt.gemv;
  const gw = randn(G * G, 4), gx = randn(G, 5);
  const GW = upload(gpu, gw, [G, G]), GX = upload(gpu, gx, [G]);
  let gy: Tensor | null = null;
  const gt = await time(gpu, opt.reps, (b) => {
    gy?.release();
    gy = gemv(b, GX, GW);
  });
  const gwant = ref.matmul(gx, gw.subarray(0, 64 * G), 1, 64, G);
  const gerr = maxRelErrRows((await readF32(gy!)).subarray(0, 64), gwant, [0], 64);
  const gms = gt.gpu ?? gt.wall;
  add({
    kernel: "gemv",
    shape: `${G}×${G}`,
    ms_wall: gt.wall,
    ms_gpu: gt.gpu,
    gflops: (2 * G * G) / gms / 1e6,
    gbps: (G * G * 4 + 2 * G * 4) / gms / 1e6,
    max_rel_err: gerr,
  });

  const at = (kernel: string, shape: string) =>
    rows.find((r) => r.kernel.startsWith(kernel) && r.shape === shape)?.gflops ?? null;
  const ratio = (a: number | null, b: number | null) => (a !== null && b !== null ? a / b : null);
  const cube = `${S}×${S}×${S}`, llama = "512×4096×4096";
  const shaderCopy = rows.find((r) => r.kernel === "copy (shader)")!, gemvRow = rows.at(-1)!;
  const summary = {
    tiled_over_naive: ratio(at("matmul tiled", cube), at("matmul_naive", cube)),
    texture_over_tiled: ratio(at("matmul texture", cube), at("matmul tiled", cube)),
    texture_over_tiled_llama2_q_proj: ratio(at("matmul texture", llama), at("matmul tiled", llama)),
    texture_fraction_of_torch: ratio(at("matmul texture", cube), at("torch.matmul", cube)),
    workgroup_over_tiled: ratio(at("matmul workgroup", cube), at("matmul tiled", cube)),
    texture_fraction_of_torch_llama2_q_proj: ratio(at("matmul texture", llama), at("torch.matmul", llama)),
    gemv_fraction_of_shader_copy: gemvRow.gbps! / shaderCopy.gbps!,
  };
  const table = [
    "| kernel | shape | wall ms | gpu ms | GFLOP/s | GB/s | max rel err |",
    "|---|---|---|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.kernel} | ${r.shape} | ${r.ms_wall.toFixed(2)} | ${r.ms_gpu?.toFixed(2) ?? "—"} | ` +
      `${r.gflops?.toFixed(2) ?? "—"} | ${r.gbps?.toFixed(2) ?? "—"} | ${
        r.max_rel_err?.toExponential(1) ?? "—"
      } |`
    ),
  ].join("\n");
  const f = (v: number | null, d = 2) => (v === null ? "—" : v.toFixed(d));
  console.log(
    `adapter: ${gpu.name}\n\n${table}\n\ntexture/tiled ${f(summary.texture_over_tiled)}× at ${cube}, ` +
      `${f(summary.texture_over_tiled_llama2_q_proj)}× at ${llama}; texture at ` +
      `${f(summary.texture_fraction_of_torch, 3)} of torch's CPU matmul (${cube}); ` +
      `GEMV at ${(100 * summary.gemv_fraction_of_shader_copy).toFixed(0)}% of shader-copy bandwidth`,
  );
  const file = `${opt.out}/kernels.json`;
  await writeJsonAtomic(file, { provenance: await provenance(gpu), options: opt, rows, summary });
  console.error(`wrote ${file}`);
}

if (import.meta.main) await main();
