// Result rows: the zod schema every run writes (one JSON line each in results.jsonl) and every
// table reads. Keep field names stable; later issues add fields, never rename them.

import { z } from "zod";
import { writeTextAtomic } from "../provenance.ts";

export const ResultRow = z.object({
  status: z.literal("ok").default("ok"),
  /** The cell and dataset this row answers (lib/bench/matrix.ts cellKey): what --resume skips. */
  key: z.string().nullable().default(null),
  /** The cell's position in the run's whole (unsharded) matrix: merged shards sort by it. */
  cell: z.number().int().nonnegative().nullable().default(null),
  preset: z.string().nullable().default(null),
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
  /** The two stages' peaks (live tensors) and what the device held with the pool's cache. */
  quant_peak_gpu_bytes: z.number().int().nonnegative().nullable().default(null),
  eval_peak_gpu_bytes: z.number().int().nonnegative().nullable().default(null),
  peak_gpu_held_bytes: z.number().int().nonnegative().nullable().default(null),
  /** resident: every block on the GPU; streamed: blocks in host memory, one at a time (--gpu-memory). */
  memory_mode: z.enum(["resident", "streamed"]).default("resident"),
  /** GPU bytes the memory plan counts for the mode that ran: weights, work, caches (with the pool's
   * measured peak beside it, what a user sizes a GPU by). */
  gpu_bytes_needed: z.number().int().nonnegative().nullable().default(null),
  /** Rows of a window whose logits existed at once, when fewer than the window (the budget). */
  logit_rows: z.number().int().positive().nullable().default(null),
  /** Calibration hidden states were kept in host memory between uses (the budget). */
  states_on_host: z.boolean().default(false),
  /** The process's peak resident set size during the cell (load, quantization, evaluation). */
  peak_host_rss_bytes: z.number().int().nonnegative().nullable().default(null),
  gpu_memory_budget: z.number().int().positive().nullable().default(null),
  /** The Hub commit of the model (null: a local folder). */
  model_revision: z.string().nullable().default(null),
  /** Where the evaluation text came from: a file, or hf://datasets/<repo>@<commit>/<path>. */
  dataset_source: z.string().nullable().default(null),
  /** Greedy decode with the KV cache at batch 1, after the first token. */
  decode_tokens_per_second: z.number().nonnegative().nullable().default(null),
  /** Each linear of block 0 at batch 1 (GEMV), as quantized: median µs and weight GB/s. */
  gemv: z.array(z.object({
    layer: z.string(),
    n: z.number().int(),
    k: z.number().int(),
    us: z.number().nonnegative(),
    gbps: z.number().nonnegative(),
  })).nullable().default(null),
  /** Sum over block 0's linears, and their bytes over that time. */
  gemv_us: z.number().nonnegative().nullable().default(null),
  gemv_gbps: z.number().nonnegative().nullable().default(null),
  /** The adapter's measured copy bandwidth (read + write), the roofline of GEMV and decode. */
  copy_gbps: z.number().nonnegative().nullable().default(null),
  /** Every seed the row depends on (calibration sampling, AutoRound's batch sampler). */
  seeds: z.record(z.string(), z.number()).nullable().default(null),
  adapter: z.string(),
  fallback_adapter: z.boolean(),
  /** The kernels (variants, entry points) the cell dispatched: e.g. matmul_tex on a CPU adapter. */
  kernels: z.array(z.string()).nullable().default(null),
  date: z.string(),
  deno: z.string(),
  git_commit: z.string().nullable(),
});
export type ResultRow = z.infer<typeof ResultRow>;

/** A cell that failed: what it was and why, so the rest of the matrix goes on and --resume retries it. */
export const ErrorRow = z.object({
  status: z.literal("error"),
  key: z.string(),
  cell: z.number().int().nonnegative(),
  preset: z.string().nullable(),
  method: z.string(),
  bits: z.number().int().nullable(),
  group_size: z.number().int().nullable(),
  model: z.string(),
  dataset: z.string(),
  /** Where it failed: load, quantize, speed or eval. */
  stage: z.string(),
  error: z.string(),
  adapter: z.string(),
  date: z.string(),
  git_commit: z.string().nullable(),
});
export type ErrorRow = z.infer<typeof ErrorRow>;

/**
 * One model × setting × task (lib/eval/task_eval.ts): the task's metrics under lm-eval's names
 * (acc, acc_stderr, acc_norm, acc_norm_stderr, perplexity, perplexity_stderr), over its first
 * `limit` documents; `mmlu` also has a group row (its subjects' acc weighted by size).
 */
export const TaskRow = ResultRow.pick({
  status: true,
  cell: true,
  preset: true,
  method: true,
  bits: true,
  group_size: true,
  model: true,
  model_arch: true,
  weights_dtype: true,
  bits_per_weight: true,
  quant_seconds: true,
  method_options: true,
  calibration: true,
  model_revision: true,
  seeds: true,
  adapter: true,
  fallback_adapter: true,
  kernels: true,
  date: true,
  deno: true,
  git_commit: true,
}).extend({
  key: z.string(),
  task: z.string(),
  /** The group a subject's row belongs to (mmlu), or null; a group row lists its subtasks. */
  group: z.string().nullable().default(null),
  subtasks: z.number().int().positive().nullable().default(null),
  num_fewshot: z.number().int().nonnegative(),
  limit: z.number().int().positive().nullable(),
  /** Documents and loglikelihood requests evaluated. */
  n: z.number().int().positive(),
  requests: z.number().int().positive(),
  /** lm-eval's names; null where lm-eval says N/A (the stderr of one document). */
  metrics: z.record(z.string(), z.number().nullable()),
  /** The Hub dataset (repo, config, split) the task reads, its commit and files' sha256. */
  dataset: z.string(),
  dataset_config: z.string().nullable(),
  dataset_split: z.string(),
  dataset_revision: z.string().nullable(),
  dataset_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  dataset_source: z.string(),
  /** The model's positions: requests longer are left-truncated (lm-eval's max_length). */
  max_length: z.number().int().positive(),
  eval_seconds: z.number().nonnegative(),
  requests_per_second: z.number().nonnegative(),
});
export type TaskRow = z.infer<typeof TaskRow>;

export const Row = z.union([ErrorRow, ResultRow, TaskRow]);
export type Row = ResultRow | ErrorRow | TaskRow;

/** A perplexity row (a finished cell × dataset). */
export const isPplRow = (r: Row): r is ResultRow => r.status === "ok" && "ppl" in r;
/** A task row (a finished cell × task). */
export const isTaskRow = (r: Row): r is TaskRow => r.status === "ok" && "task" in r;

/** Append rows to DIR/results.jsonl, rewriting the file atomically. */
export async function appendResults(dir: string, rows: Row[]): Promise<string> {
  const path = `${dir}/results.jsonl`;
  let old = "";
  try {
    old = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (old && !old.endsWith("\n")) old += "\n";
  const lines = rows.map((r) => JSON.stringify(Row.parse(r))).join("\n");
  await writeTextAtomic(path, old + lines + "\n");
  return path;
}

/** Every row of a results.jsonl, results and errors. */
export async function readRows(path: string): Promise<Row[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l.trim()).map((l, i) => {
    let json: unknown;
    try {
      json = JSON.parse(l);
    } catch {
      throw new Error(`${path}:${i + 1}: not JSON`);
    }
    const r = Row.safeParse(json);
    if (!r.success) throw new Error(`${path}:${i + 1}: not a result row (${r.error.issues[0].message})`);
    return r.data;
  });
}

/** The perplexity rows of a results.jsonl (error and task rows left out). */
export async function readResults(path: string): Promise<ResultRow[]> {
  return (await readRows(path)).filter(isPplRow);
}

/** The task rows of a results.jsonl. */
export async function readTaskRows(path: string): Promise<TaskRow[]> {
  return (await readRows(path)).filter(isTaskRow);
}
