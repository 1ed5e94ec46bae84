// Result rows: the zod schema every run writes (one JSON line each in results.jsonl) and every
// table reads. Keep field names stable; later issues add fields, never rename them.

import { z } from "zod";
import { writeTextAtomic } from "../provenance.ts";

export const ResultRow = z.object({
  method: z.string(),
  bits: z.number().int().nullable(),
  group_size: z.number().int().nullable(),
  model: z.string(),
  model_arch: z.string(),
  weights_dtype: z.string(),
  dataset: z.string(),
  dataset_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  seqlen: z.number().int().positive(),
  windows: z.number().int().positive(),
  tokens: z.number().int().positive(),
  text_tokens: z.number().int().positive(),
  ppl: z.number().positive(),
  mean_nll: z.number(),
  eval_seconds: z.number().nonnegative(),
  tokens_per_second: z.number().nonnegative(),
  model_gpu_bytes: z.number().int().nonnegative(),
  /** Quantized linears only: exchange-format bits per weight (codes, scales, zeros, g_idx). */
  bits_per_weight: z.number().positive().nullable().default(null),
  /** Bytes of all model parameters as the runtime holds them on the GPU. */
  weight_bytes: z.number().int().nonnegative().nullable().default(null),
  quant_seconds: z.number().nonnegative().nullable().default(null),
  /** The method's settings beyond bits and group size (GPTQ: sym, act_order, percdamp, ...). */
  method_options: z.record(z.string(), z.unknown()).nullable().default(null),
  /** Calibration text and sampling, for methods that calibrate. */
  calibration: z.object({
    file: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    nsamples: z.number().int().positive(),
    seqlen: z.number().int().positive(),
    seed: z.number().int().nonnegative(),
  }).nullable().default(null),
  peak_gpu_bytes: z.number().int().nonnegative(),
  adapter: z.string(),
  fallback_adapter: z.boolean(),
  date: z.string(),
  deno: z.string(),
  git_commit: z.string().nullable(),
});
export type ResultRow = z.infer<typeof ResultRow>;

/** Append rows to DIR/results.jsonl, rewriting the file atomically. */
export async function appendResults(dir: string, rows: ResultRow[]): Promise<string> {
  const path = `${dir}/results.jsonl`;
  let old = "";
  try {
    old = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (old && !old.endsWith("\n")) old += "\n";
  const lines = rows.map((r) => JSON.stringify(ResultRow.parse(r))).join("\n");
  await writeTextAtomic(path, old + lines + "\n");
  return path;
}

export async function readResults(path: string): Promise<ResultRow[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l.trim()).map((l, i) => {
    const r = ResultRow.safeParse(JSON.parse(l));
    if (!r.success) throw new Error(`${path}:${i + 1}: not a result row (${r.error.issues[0].message})`);
    return r.data;
  });
}
