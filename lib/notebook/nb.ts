// What the notebooks share: parameters from the environment (fixture paths by default, Hub ids or
// other paths when set, so one notebook serves CI and a GPU runner), displays (Markdown, tables,
// Vega-Lite with a PNG beside it for viewers without Vega, such as GitHub), and `step`, which
// shows a failing cell's reason as a message instead of a stack trace (and marks it for the CI
// executor, notebooks/execute.py) and skips the cells after it.

import { getGpu } from "../gpu/device.ts";
import { readConfig } from "../io/config.ts";
import { loadTokenizer, type TextTokenizer } from "../io/tokenizer.ts";
import { loadModel } from "../load.ts";
import type { CausalLM } from "../model/model.ts";
import { perplexity } from "../eval/perplexity.ts";
import { resolveModel } from "../bench/models.ts";
import { loadText } from "../../datasets/datasets.ts";
import { writeFileAtomic, writeJsonAtomic, writeTextAtomic } from "../provenance.ts";
import { toPng, toSvg } from "../report/render.ts";
import type { TopLevelSpec } from "vega-lite";
import { Buffer } from "node:buffer";

export const ERROR_MIME = "application/vnd.quantlab.error+json";

export interface Params {
  model: string;
  dataset: string;
  calibration: string;
  seqlen: number;
  /** Evaluation windows (the first K). */
  windows: number;
  nsamples: number;
  calibSeqlen: number;
  /** Iterations of the iterative methods' experiments (AutoRound). */
  iters: number;
  /** A harness run folder (results.jsonl) for the table notebooks. */
  run: string;
  /** Where notebooks write figures. */
  out: string;
}

/**
 * The parameters: QUANTLAB_MODEL, QUANTLAB_DATASET, QUANTLAB_CALIBRATION (Hub ids, dataset names
 * or paths), QUANTLAB_SEQLEN, QUANTLAB_WINDOWS, QUANTLAB_NSAMPLES, QUANTLAB_CALIB_SEQLEN,
 * QUANTLAB_ITERS, QUANTLAB_RUN, QUANTLAB_OUT; defaults: the fixtures under QUANTLAB_FIXTURES (default ../../shared/fixtures,
 * relative to notebooks/).
 */
export function params(defaults: Partial<Params> = {}): Params {
  const env = (k: string) => Deno.env.get(`QUANTLAB_${k}`) || undefined;
  const fx = env("FIXTURES") ?? "../../shared/fixtures";
  const num = (k: string, d: number) => {
    const v = env(k);
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`QUANTLAB_${k}=${v}: not a positive integer`);
    return n;
  };
  return {
    model: env("MODEL") ?? defaults.model ?? `${fx}/tiny-llama`,
    dataset: env("DATASET") ?? defaults.dataset ?? `${fx}/text/wiki.test.raw`,
    calibration: env("CALIBRATION") ?? defaults.calibration ?? `${fx}/text/calibration.txt`,
    seqlen: num("SEQLEN", defaults.seqlen ?? 256),
    windows: num("WINDOWS", defaults.windows ?? 4),
    nsamples: num("NSAMPLES", defaults.nsamples ?? 8),
    calibSeqlen: num("CALIB_SEQLEN", defaults.calibSeqlen ?? 128),
    iters: num("ITERS", defaults.iters ?? 12),
    run: env("RUN") ?? defaults.run ?? "../results/smoke-fixture",
    out: env("OUT") ?? defaults.out ?? "../results/notebooks",
  };
}

const inKernel = () => typeof (Deno as unknown as { jupyter?: unknown }).jupyter !== "undefined";

/** Display a MIME bundle in the notebook (printed as text outside Jupyter). */
export async function display(bundle: Record<string, unknown>): Promise<void> {
  if (inKernel()) {
    await (Deno as unknown as { jupyter: { display(b: unknown, o: unknown): Promise<void> } }).jupyter
      .display(bundle, { raw: true });
  } else console.log(bundle["text/markdown"] ?? bundle["text/plain"] ?? "(figure)");
}

export const md = (text: string) => display({ "text/markdown": text, "text/plain": text });

/** A Markdown table of rows (columns from the first row's keys); numbers to `digits`. */
export function mdTable(rows: Record<string, unknown>[], digits = 4): string {
  if (!rows.length) return "(no rows)";
  const cols = Object.keys(rows[0]);
  const cell = (v: unknown) =>
    typeof v === "number"
      ? (Number.isInteger(v) ? String(v) : v.toFixed(digits))
      : v === null || v === undefined
      ? "—"
      : String(v);
  return [
    `| ${cols.join(" | ")} |`,
    `|${cols.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${cols.map((c) => cell(r[c])).join(" | ")} |`),
  ].join("\n");
}

export const table = (rows: Record<string, unknown>[], digits = 4) => md(mdTable(rows, digits));

/**
 * Show a Vega-Lite figure inline (the Vega-Lite MIME type, plus its PNG for viewers without
 * Vega); with `name`, also write OUT/<name>.{vl.json,svg,png}.
 */
export async function vegaLite(spec: TopLevelSpec, name?: string, out = params().out): Promise<void> {
  const svg = await toSvg(spec);
  const png = toPng(svg);
  if (name) {
    await writeJsonAtomic(`${out}/${name}.vl.json`, spec);
    await writeTextAtomic(`${out}/${name}.svg`, svg);
    await writeFileAtomic(`${out}/${name}.png`, [png]);
  }
  await display({
    "application/vnd.vegalite.v5+json": spec,
    "image/png": Buffer.from(png).toString("base64"),
    "text/plain": `${(spec as { title?: string }).title ?? "figure"}${name ? ` (${out}/${name}.png)` : ""}`,
  });
}

let failed: string | null = null;

/**
 * Run a cell's work; on failure show "**what** failed: reason" (no stack trace) and skip every
 * later step, so a bad parameter reads as one clear message.
 */
export async function step<T>(what: string, fn: () => Promise<T> | T): Promise<T | undefined> {
  if (failed) {
    await md(`*Skipped: ${what} (${failed} failed above).*`);
    return undefined;
  }
  try {
    return await fn();
  } catch (e) {
    failed = what;
    const message = `${what} failed: ${(e as Error).message ?? e}`;
    await display({ "text/markdown": `**${message}**`, "text/plain": message, [ERROR_MIME]: { message } });
    return undefined;
  }
}

/** A loaded setting: the model folder, tokenizer, evaluation ids and calibration windows. */
export interface Session {
  p: Params;
  dir: string;
  tok: TextTokenizer;
  ids: number[];
  windows: number[][];
  seqlen: number;
  /** A fresh FP copy of the model on the GPU (release it when done). */
  load(): Promise<CausalLM>;
  /** Perplexity on the first `p.windows` windows. */
  ppl(model: CausalLM): Promise<number>;
}

export async function open(p: Params): Promise<Session> {
  const gpu = await getGpu();
  const resolved = await resolveModel(p.model);
  const config = await readConfig(resolved.dir);
  const tok = await loadTokenizer(resolved.dir);
  const seqlen = Math.min(p.seqlen, config.maxPositions);
  const text = await loadText(p.dataset, { split: "test" });
  const ids = text.evalIds(tok, seqlen);
  if (ids.length < seqlen) {
    throw new Error(`${p.dataset}: ${ids.length} tokens, fewer than one window of ${seqlen}`);
  }
  const cal = await loadText(p.calibration, { split: "train" });
  const calSeq = Math.min(p.calibSeqlen, config.maxPositions);
  const windows = cal.calibration(tok, { nsamples: p.nsamples, seqlen: calSeq, seed: 0 });
  return {
    p,
    dir: resolved.dir,
    tok,
    ids,
    windows,
    seqlen,
    load: () => loadModel(gpu, resolved.dir),
    ppl: async (m) => (await perplexity(m, ids, { seqlen, maxWindows: p.windows })).ppl,
  };
}
