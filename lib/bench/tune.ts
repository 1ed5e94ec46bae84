// Selection by measurement (issue 25): the first time a model runs on an adapter, each distinct
// GEMM of its linears is timed in every variant that can take it — on the layer's own weights, at
// `rows` token rows (and, for quantized layers, the one-row GEMV that decoding runs) — each
// variant's output is checked against the adapter rule's variant (within 1e-4 relative; one that
// disagrees is never chosen), and the fastest is kept. Choices are cached
// in HF_HOME/quantlab/kernel-choices.json under the adapter (vendor, architecture, device,
// driver) and Deno version, so later runs skip the sweep; --retune measures again.
// Every variant gives the same contract, so a choice changes speed, never what is computed
// beyond float rounding (the texture GEMMs give their buffer twins' bits).

import { z } from "zod";
import { randn } from "../cpu/random.ts";
import { relErr } from "../cpu/ref.ts";
import type { Gpu } from "../gpu/device.ts";
import type { Batch } from "../gpu/kernel.ts";
import { readF32, type Tensor, upload } from "../gpu/tensor.ts";
import { choose, gemmKey } from "../kernels/choice.ts";
import { matmul, type MatmulVariant, matmulVariant, workgroupMatmulFits } from "../kernels/matmul.ts";
import { textureMatmulFits } from "../kernels/matmul_tex.ts";
import {
  qgemmFormat,
  type QGemmVariant,
  qgemmVariant,
  type QGemvVariant,
  qgemvVariant,
  qmatmul,
  selectQgemvFits,
} from "../kernels/qmatmul.ts";
import { textureQgemvFits } from "../kernels/qgemv_tex.ts";
import { textureQgemmFits } from "../kernels/qmatmul_tex.ts";
import type { CausalLM } from "../model/model.ts";
import { DenseLinear } from "../model/linear.ts";
import { QuantLinear } from "../quant/quant_linear.ts";
import { writeJsonAtomic } from "../provenance.ts";
import { hfHome } from "../hub/hub.ts";
import { time } from "./timing.ts";

const Entry = z.object({ variant: z.string(), us: z.record(z.string(), z.number()), rows: z.number().int() });
const CacheFile = z.record(z.string(), z.record(z.string(), Entry));
export type TuneEntry = z.infer<typeof Entry> & { key: string; cached: boolean };

export function tuneCachePath(env = (k: string) => Deno.env.get(k)): string {
  return `${hfHome(env)}/quantlab/kernel-choices.json`;
}

/** What identifies an adapter's kernels' speed: its description (vendor, device, driver) and Deno. */
export function adapterKey(gpu: Gpu): string {
  return `${gpu.name} | deno ${Deno.version.deno}`;
}

interface Candidate {
  key: string;
  rule: string;
  variants: string[];
  run: (b: Batch, x: Tensor, variant: string) => Tensor;
  K: number;
  /** Token rows of x: the evaluation's, or 1 for the GEMV that decoding runs. */
  rows: number;
}

function candidates(model: CausalLM, rows: number): Candidate[] {
  const gpu = model.gpu, out = new Map<string, Candidate>();
  const layers = [...Array(model.numBlocks).keys()].flatMap((i) => model.blockLinears(i));
  for (const l of [...layers, model.headLinear()]) {
    if (l instanceof DenseLinear && l.weight.resident) {
      const [N, K] = l.weight.shape, w = l.weight;
      const key = gemmKey("matmul", rows, N, K, w.dtype);
      const variants: MatmulVariant[] = [
        "tiled",
        ...(textureMatmulFits(gpu, K, w.dtype) ? ["texture" as const] : []),
        ...(workgroupMatmulFits(K) ? ["workgroup" as const] : []),
      ];
      if (variants.length > 1 && !out.has(key)) {
        out.set(key, {
          key,
          K,
          rows,
          rule: matmulVariant(gpu, K, w.dtype),
          variants,
          run: (b, x, v) => matmul(b, x, w, undefined, undefined, v as MatmulVariant),
        });
      }
    } else if (l instanceof QuantLinear && l.packed.words.resident) {
      const p = l.packed;
      const key = gemmKey("qgemm", rows, p.N, p.K, qgemmFormat(p));
      const variants: QGemmVariant[] = ["fused"];
      if (p.N * p.K * 4 <= gpu.maxBinding) variants.push("dequant");
      if (textureQgemmFits(gpu, p)) variants.push("texture");
      if (variants.length > 1 && !out.has(key)) {
        out.set(key, {
          key,
          K: p.K,
          rows,
          rule: qgemmVariant(gpu, rows, p),
          variants,
          run: (b, x, v) => qmatmul(b, x, p, { gemm: v as QGemmVariant }),
        });
      }
      const vkey = gemmKey("qgemm", 1, p.N, p.K, qgemmFormat(p));
      if (textureQgemvFits(gpu, p) && !out.has(vkey)) {
        out.set(vkey, {
          key: vkey,
          K: p.K,
          rows: 1,
          rule: qgemvVariant(gpu, p),
          variants: selectQgemvFits(gpu, p) ? ["fused", "texture", "select"] : ["fused", "texture"],
          run: (b, x, v) => qmatmul(b, x, p, { gemv: v as QGemvVariant }),
        });
      }
    }
  }
  return [...out.values()];
}

export interface TuneOptions {
  /** Token rows of the timed GEMMs (the evaluation's window, capped to keep the sweep short). */
  rows: number;
  retune?: boolean;
  cachePath?: string;
  reps?: number;
  log?: (msg: string) => void;
}

/** Time, validate and choose; returns one entry per distinct GEMM (cached ones marked). */
export async function tuneModel(model: CausalLM, o: TuneOptions): Promise<TuneEntry[]> {
  const gpu = model.gpu, path = o.cachePath ?? tuneCachePath(), akey = adapterKey(gpu);
  let cache: z.infer<typeof CacheFile> = {};
  try {
    cache = CacheFile.parse(JSON.parse(await Deno.readTextFile(path)));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      o.log?.(`kernel choices: ${path} unreadable, measuring again (${e})`);
    }
  }
  const mine = cache[akey] ??= {};
  const todo = candidates(model, o.rows);
  const out: TuneEntry[] = [];
  const t0 = performance.now();
  let measured = 0;
  for (const [i, c] of todo.entries()) {
    const hit = !o.retune ? mine[c.key] : undefined;
    if (hit && c.variants.includes(hit.variant)) {
      choose(gpu, c.key, hit.variant);
      out.push({ ...hit, key: c.key, cached: true });
      continue;
    }
    const x = upload(gpu, randn(c.rows * c.K, i + 1), [c.rows, c.K], "tune.x");
    const results: Record<string, Float32Array> = {}, us: Record<string, number> = {};
    for (const v of c.variants) {
      let y: Tensor | null = null;
      const t = await time(gpu, o.reps ?? 3, (b) => {
        y?.release();
        y = c.run(b, x, v);
      });
      results[v] = await readF32(y!);
      (y as Tensor | null)?.release();
      us[v] = (t.gpu ?? t.wall) * 1000;
    }
    x.release();
    const best = pickVariant(c.rule, us, results, (m) => o.log?.(`kernel choices: ${c.key}: ${m}`));
    choose(gpu, c.key, best);
    mine[c.key] = { variant: best, us, rows: c.rows };
    out.push({ ...mine[c.key], key: c.key, cached: false });
    measured++;
    const eta = ((performance.now() - t0) / measured) * (todo.length - i - 1) / 1000;
    o.log?.(
      `kernel choices ${i + 1}/${todo.length}: ${c.key}: ${best} (` +
        Object.entries(us).map(([v, t]) => `${v} ${t.toFixed(0)} µs`).join(", ") +
        `), ETA ${eta.toFixed(0)} s`,
    );
  }
  if (measured) {
    await Deno.mkdir(path.replace(/\/[^/]*$/, ""), { recursive: true });
    await writeJsonAtomic(path, cache);
  }
  if (out.length > measured) {
    o.log?.(`kernel choices: ${out.length - measured} of ${out.length} from ${path}`);
  }
  return out;
}

/** The fastest variant whose output agrees with the rule variant's within 1e-4 relative. */
export function pickVariant(
  rule: string,
  us: Record<string, number>,
  outputs: Record<string, Float32Array>,
  log: (msg: string) => void = () => {},
): string {
  let best = rule;
  for (const v of Object.keys(us)) {
    const e = relErr(outputs[v], outputs[rule]);
    if (!(e < 1e-4)) log(`variant ${v} disagrees with ${rule} (${e.toExponential(2)}), never chosen`);
    else if (us[v] < us[best]) best = v;
  }
  return best;
}
