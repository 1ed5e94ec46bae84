// `deno task bench` options: one zod schema over the flags (node:util parseArgs), a preset's
// defaults and an optional --config JSON file (flag name → value), in that order of precedence:
// preset < config file < command line. Flags and row fields are stable: later versions add, never rename.

import { parseBytes } from "../model/memory.ts";
import { parseArgs } from "node:util";
import { z } from "zod";
import type { RunOptions } from "../methods/contract.ts";
import {
  allMethods,
  getMethod,
  hasMethod,
  methodFlags,
  methodNames,
  reserveFlags,
} from "../methods/registry.ts";
import { PRESETS } from "./presets.ts";
import { TASK_NAMES, TASKS } from "../eval/tasks.ts";

export interface TaskEntry {
  /** The --tasks name: a task or a group (mmlu). */
  name: string;
  /** A local folder in the Hub repo's layout, or null (the Hub). */
  dir: string | null;
}

/** "arc_easy,piqa=DIR,mmlu" → entries (names checked by the option's schema). */
export function parseTaskList(s: string): TaskEntry[] {
  return s.split(",").map((x) => x.trim()).filter(Boolean).map((x) => {
    const at = x.indexOf("=");
    return at < 0 ? { name: x, dir: null } : { name: x.slice(0, at), dir: x.slice(at + 1) };
  });
}

const taskListHelp = () => `${Object.keys(TASKS).join(", ")}, mmlu (or mmlu_<subject>)`;

const csvInts = (name: string) =>
  z.string().transform((s, ctx) => {
    const out = s.split(",").map((x) => Number(x.trim()));
    if (out.some((n) => !Number.isInteger(n))) {
      ctx.addIssue({ code: "custom", message: `--${name} takes comma-separated integers, got "${s}"` });
      return z.NEVER;
    }
    return out;
  });

/** The harness's own flags; each method's come from the registry (lib/methods/registry.ts). */
const COMMON = {
  model: z.array(z.string().min(1)).min(1, "--model is required (a Hub id or a local model folder)"),
  dataset: z.array(z.string().min(1)).default(["wikitext2"]),
  preset: z.string().optional(),
  config: z.string().optional(),
  methods: z.string().default("fp").transform((s, ctx) => {
    const ms = s.split(",").map((m) => m.trim()).filter(Boolean);
    for (const m of ms) {
      if (!hasMethod(m)) {
        ctx.addIssue({
          code: "custom",
          message: `unknown method "${m}"; available now: ${methodNames().join(", ")}`,
        });
      }
    }
    if (!ms.length) {
      ctx.addIssue({ code: "custom", message: `--methods is empty; available: ${methodNames().join(", ")}` });
    }
    return ms;
  }),
  bits: csvInts("bits").optional(),
  "group-size": csvInts("group-size").optional(),
  seqlen: z.coerce.number().int().min(2).default(2048),
  "max-windows": z.coerce.number().int().positive().optional(),
  seed: z.coerce.number().int().nonnegative().default(0),
  "quantize-head": z.boolean().default(false),
  calibration: z.string().min(1).optional(),
  /** Default 128 (or the method's own, e.g. AutoRound's best recipe: 512): see calibrationSamples. */
  nsamples: z.coerce.number().int().positive().optional(),
  "calib-seqlen": z.coerce.number().int().min(2).default(2048),
  export: z.string().min(1).optional(),
  "gpu-memory": z.string().optional().transform((s, ctx) => {
    if (s === undefined) return null;
    try {
      const n = parseBytes(s);
      if (n > 0) return n;
      ctx.addIssue({ code: "custom", message: `--gpu-memory must be > 0, got "${s}"` });
    } catch (e) {
      ctx.addIssue({ code: "custom", message: `--gpu-memory: ${(e as Error).message}` });
    }
    return z.NEVER;
  }),
  /** Accuracy tasks (lib/eval/tasks.ts), each `name` or `name=FOLDER` (a local copy in the Hub layout). */
  tasks: z.string().optional().transform((s, ctx) => {
    if (s === undefined) return undefined;
    const entries = parseTaskList(s);
    if (!entries.length) {
      ctx.addIssue({ code: "custom", message: `--tasks is empty; one of ${taskListHelp()}` });
    }
    for (const e of entries) {
      if (!TASK_NAMES.includes(e.name)) {
        ctx.addIssue({
          code: "custom",
          message: `--tasks: unknown task "${e.name}"; one of ${taskListHelp()}`,
        });
      }
      if (e.dir === "") ctx.addIssue({ code: "custom", message: `--tasks ${e.name}=: the folder is empty` });
    }
    return entries;
  }),
  limit: z.coerce.number().int().positive("--limit takes a number of documents ≥ 1 per task").optional(),
  "num-fewshot": z.coerce.number().int().min(0).default(0),
  "decode-tokens": z.coerce.number().int().min(0).default(32),
  "gemv-reps": z.coerce.number().int().min(0).default(5),
  quick: z.boolean().default(false),
  shard: z.string().default("0/1").transform((s, ctx) => {
    const m = s.match(/^(\d+)\/(\d+)$/);
    if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) {
      ctx.addIssue({ code: "custom", message: `--shard takes i/n with 0 ≤ i < n, got "${s}"` });
      return z.NEVER;
    }
    return { index: Number(m[1]), count: Number(m[2]) };
  }),
  resume: z.boolean().default(false),
  force: z.boolean().default(false),
  "no-figures": z.boolean().default(false),
  /** Kernel variants by measurement (lib/bench/tune.ts): cached per adapter; off = per-adapter rules. */
  "no-tune": z.boolean().default(false),
  retune: z.boolean().default(false),
  list: z.boolean().default(false),
  out: z.string().default(`results/runs/${new Date().toISOString().replace(/[:.]/g, "-")}`),
  quiet: z.boolean().default(false),
};
reserveFlags([...Object.keys(COMMON), "help"]);

const Common = z.object(COMMON);
/** The parsed options: the harness's own, typed, and every registered method's under its flag name. */
export type BenchOptions = z.output<typeof Common> & RunOptions;

/** The flags, before the cross-flag checks: the harness's and the registered methods' (strict). */
export function benchFlags() {
  const own = Object.fromEntries([...methodFlags()].map(([n, f]) => [n, f.schema]));
  return z.object({ ...COMMON, ...own }).strict();
}

/** The cross-flag checks, each method's own refusals among them. */
function crossChecks(o: BenchOptions): string[] {
  const ms = o.methods.map(getMethod), out: string[] = [];
  const calibrated = ms.filter((m) => m.calibrated).map((m) => m.name);
  if (calibrated.length && !o.calibration) {
    out.push(
      `--methods ${calibrated.join(", ")} need${calibrated.length > 1 ? "" : "s"} --calibration ` +
        "(wikitext2, c4, ptb, or a UTF-8 text file)",
    );
  }
  if (o.export) {
    for (const m of ms) {
      if (m.baseline || m.exportName) continue;
      out.push(
        `--export: ${m.name} has no checkpoint format of its own; leave ${m.name} out of --methods, ` +
          "or drop --export (gptq with --export writes the same grid as an AutoGPTQ checkpoint)",
      );
    }
  }
  for (const m of ms) {
    const why = m.refuse?.(o);
    if (why) out.push(why);
  }
  const noHead = ms.filter((m) => !m.quantizesHead).map((m) => m.name);
  if (o["quantize-head"] && noHead.length) {
    const heads = allMethods().filter((m) => m.quantizesHead && !m.baseline).map((m) => m.name);
    out.push(
      `--quantize-head: only ${heads.join(", ")} quantize lm_head; ${noHead.join(", ")} ` +
        "quantize the decoder blocks only (drop the flag, or leave those methods out)",
    );
  }
  return out;
}

/** Every flag's name (the harness's and the registered methods'), for --help's completeness test. */
export const flagNames = () => Object.keys(benchFlags().shape);

/** Flags that may appear in a --config file or a preset (everything but the run's own plumbing). */
const NOT_IN_CONFIG = [
  "config",
  "preset",
  "help",
  "shard",
  "resume",
  "force",
  "out",
  "quiet",
  "no-figures",
  "no-tune",
  "retune",
  "list",
];

function flagTypes(): Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> {
  const out: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {};
  for (const [name, def] of Object.entries(benchFlags().shape)) {
    let t: z.ZodType = def;
    while (t instanceof z.ZodDefault || t instanceof z.ZodOptional) t = t.unwrap() as z.ZodType;
    out[name] = name === "model" || name === "dataset"
      ? { type: "string", multiple: true }
      : { type: t instanceof z.ZodBoolean ? "boolean" : "string" };
  }
  out.help = { type: "boolean", short: "h" };
  return out;
}

/**
 * `--group-size -1` (the documented per-channel value): node's parseArgs reads "-1" as an option
 * and calls the flag ambiguous, so a negative number after a valued flag is joined to it
 * (`--group-size=-1`), as if written that way.
 */
function joinNegativeValues(args: string[], types: ReturnType<typeof flagTypes>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : "";
    if (types[name]?.type === "string" && /^-\d/.test(args[i + 1] ?? "")) out.push(`${args[i]}=${args[++i]}`);
    else out.push(args[i]);
  }
  return out;
}

export function parseBenchArgs(args: string[]): BenchOptions | "help" {
  let values: Record<string, unknown>;
  try {
    const options = flagTypes();
    args = joinNegativeValues(args, options);
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new Error(`${(e as Error).message}\nRun with --help for the flags.`);
  }
  if (values.help) return "help";
  // No model, data, preset or config named: the smoke preset, so `deno task bench` alone works.
  const bare = !["model", "dataset", "preset", "config"].some((k) => k in values);
  const presetName = (values.preset as string | undefined) ?? (bare ? "smoke" : undefined);
  let merged: Record<string, unknown> = {};
  if (presetName !== undefined) {
    const p = PRESETS[presetName];
    if (!p) {
      throw new Error(
        `--preset: unknown preset "${presetName}"; available: ${Object.keys(PRESETS).join(", ")}`,
      );
    }
    merged = { ...p.flags, preset: presetName };
  }
  if (typeof values.config === "string") merged = { ...merged, ...readConfigFile(values.config) };
  merged = { ...merged, ...values };
  // Accuracy only: --tasks without --dataset evaluates no perplexity text.
  if (merged.tasks !== undefined && !("dataset" in merged)) merged.dataset = [];
  if (merged.quick) merged = { ...quickCaps(merged), ...values };
  const r = benchFlags().safeParse({ model: [], ...merged });
  if (!r.success) {
    const where = (
      i: z.core.$ZodIssue,
    ) => (i.path.length && !i.message.startsWith("--") ? `--${i.path.join(".")}: ` : "");
    throw new Error(r.error.issues.map((i) => `${where(i)}${i.message}`).join("\n"));
  }
  const o = r.data as BenchOptions;
  if (!o.dataset.length && !o.tasks) throw new Error("--dataset: name a dataset to evaluate, or --tasks");
  if (o.limit !== undefined && !o.tasks) {
    throw new Error("--limit counts a task's documents: it needs --tasks");
  }
  if (o["num-fewshot"] > 0 && !o.tasks?.every((t) => t.name.startsWith("mmlu"))) {
    throw new Error(
      "--num-fewshot: only mmlu's subjects take few-shot examples (lm-eval's 0-shot tasks otherwise)",
    );
  }
  const refused = crossChecks(o);
  if (refused.length) throw new Error(refused.join("\n"));
  checkBits(o);
  return o;
}

/** --quick: a fast look (few windows, few calibration samples, methods' own caps); flags still win. */
function quickCaps(m: Record<string, unknown>): Record<string, unknown> {
  const cap = (k: string, v: number) => String(Math.min(Number(m[k] ?? Infinity), v));
  const caps: Record<string, number> = {
    "max-windows": 4,
    nsamples: 16,
    "calib-seqlen": 512,
    "decode-tokens": 8,
    "gemv-reps": 2,
  };
  for (const meth of allMethods()) {
    for (const [k, v] of Object.entries(meth.quick ?? {})) caps[k] = Math.min(caps[k] ?? Infinity, v);
  }
  return { ...m, ...Object.fromEntries(Object.entries(caps).map(([k, v]) => [k, cap(k, v)])) };
}

function readConfigFile(path: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(Deno.readTextFileSync(path));
  } catch (e) {
    throw new Error(`--config ${path}: cannot read a JSON object (${(e as Error).message})`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new Error(`--config ${path}: not a JSON object`);
  }
  const types = flagTypes();
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) {
    if (!(k in types) || NOT_IN_CONFIG.includes(k)) throw new Error(`--config ${path}: unknown key "${k}"`);
    const t = types[k];
    const ok = t.multiple
      ? Array.isArray(v) && v.every((x) => typeof x === "string")
      : t.type === "boolean"
      ? typeof v === "boolean"
      : ["string", "number"].includes(typeof v);
    if (!ok) {
      throw new Error(`--config ${path}: "${k}" must be ${t.multiple ? "a list of strings" : `a ${t.type}`}`);
    }
    out[k] = t.type === "string" && !t.multiple ? String(v) : v;
  }
  return out;
}

function checkBits(o: BenchOptions): void {
  for (const m of o.methods) {
    const allowed = getMethod(m).bits;
    const bad = allowed && (o.bits ?? [4]).filter((b) => !allowed.includes(b));
    if (bad && bad.length) throw new Error(`--bits ${bad.join(",")}: ${m} takes ${allowed!.join(", ")} bits`);
  }
}

/** Calibration windows: --nsamples, else the most any method of the run asks for, else 128. */
export function calibrationSamples(o: BenchOptions): number {
  if (o.nsamples !== undefined) return o.nsamples;
  const asked = o.methods.map((m) => getMethod(m).nsamples?.(o)).filter((n) => n !== undefined);
  return asked.length ? Math.max(...asked) : 128;
}
