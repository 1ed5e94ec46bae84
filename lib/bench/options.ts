// `deno task bench` options: one zod schema over the flags (node:util parseArgs), a preset's
// defaults and an optional --config JSON file (flag name → value), in that order of precedence:
// preset < config file < command line. Flags and row fields are stable: later versions add, never rename.

import { parseBytes } from "../model/memory.ts";
import { parseArgs } from "node:util";
import { z } from "zod";
import { HEAD_METHODS } from "../quant/targets.ts";
import { AUTOROUND_PRESETS } from "../quant/autoround.ts";
import { PRESETS } from "./presets.ts";

export const METHODS = ["fp", "rtn", "gptq", "awq", "autoround", "hqq", "nf4", "fp4", "bnb-int8"] as const;
/** Methods that draw calibration windows from --calibration. */
export const CALIBRATED = ["gptq", "awq", "autoround"];

const csvInts = (name: string) =>
  z.string().transform((s, ctx) => {
    const out = s.split(",").map((x) => Number(x.trim()));
    if (out.some((n) => !Number.isInteger(n))) {
      ctx.addIssue({ code: "custom", message: `--${name} takes comma-separated integers, got "${s}"` });
      return z.NEVER;
    }
    return out;
  });

/** The flags, before the cross-flag checks: its keys are the command line's flags. */
export const BenchFlags = z.object({
  model: z.array(z.string().min(1)).min(1, "--model is required (a Hub id or a local model folder)"),
  dataset: z.array(z.string().min(1)).default(["wikitext2"]),
  preset: z.string().optional(),
  config: z.string().optional(),
  methods: z.string().default("fp").transform((s, ctx) => {
    const ms = s.split(",").map((m) => m.trim()).filter(Boolean);
    for (const m of ms) {
      if (!(METHODS as readonly string[]).includes(m)) {
        ctx.addIssue({
          code: "custom",
          message: `unknown method "${m}"; available now: ${METHODS.join(", ")}`,
        });
      }
    }
    if (!ms.length) {
      ctx.addIssue({ code: "custom", message: `--methods is empty; available: ${METHODS.join(", ")}` });
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
  /** Default 128 (512 under --recipe best with autoround): see calibrationSamples. */
  nsamples: z.coerce.number().int().positive().optional(),
  "calib-seqlen": z.coerce.number().int().min(2).default(2048),
  sym: z.boolean().default(false),
  /** RTN's grid: GPTQ's (range widened to include 0) or AWQ's pseudo_quantize_tensor (raw min/max). */
  "rtn-grid": z.enum(["include-zero", "minmax"]).default("include-zero"),
  "act-order": z.boolean().default(false),
  "static-groups": z.boolean().default(false),
  "no-true-sequential": z.boolean().default(false),
  "fp-inputs": z.boolean().default(false),
  "no-duo-scaling": z.boolean().default(false),
  "no-clip": z.boolean().default(false),
  recipe: z.enum(["default", "light", "best"]).default("default"),
  iters: z.coerce.number().int().min(0, "must be ≥ 0").optional(),
  lr: z.coerce.number().positive("must be > 0").optional(),
  "minmax-lr": z.coerce.number().positive("must be > 0").optional(),
  "autoround-asym": z.boolean().default(false),
  "no-minmax": z.boolean().default(false),
  percdamp: z.coerce.number().min(0).max(1).default(0.01),
  blocksize: z.coerce.number().int().min(4).max(256).multipleOf(4, "must be a multiple of 4").default(128),
  export: z.string().min(1).optional(),
  axis: z.enum(["0", "1"]).default("1").transform(Number).pipe(z.union([z.literal(0), z.literal(1)])),
  "hqq-slow": z.boolean().default(false),
  "hqq-meta": z.boolean().default(false),
  "int8-threshold": z.coerce.number().min(0).default(6),
  "double-quant": z.string().default("on").transform((s, ctx) => {
    const v = s.split(",").map((x) => x.trim());
    if (v.some((x) => x !== "on" && x !== "off")) {
      ctx.addIssue({ code: "custom", message: `--double-quant takes on, off or on,off; got "${s}"` });
      return z.NEVER;
    }
    return v.map((x) => x === "on");
  }),
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
}).strict();

export const BenchOptions = BenchFlags.refine(
  (o) => !o.methods.some((m) => CALIBRATED.includes(m)) || o.calibration,
  {
    message:
      "--methods gptq, awq and autoround need --calibration (wikitext2, c4, ptb, or a UTF-8 text file)",
  },
).refine((o) => !(o.export && o.methods.includes("awq") && (o.bits ?? [4]).some((b) => b !== 4)), {
  message: "--export of awq writes AutoAWQ GEMM checkpoints, which are 4-bit only: use --bits 4",
}).refine((o) => !(o.export && o.methods.includes("rtn")), {
  message: "--export: rtn has no checkpoint format of its own (gptq with --export writes AutoGPTQ " +
    "checkpoints); leave rtn out of --methods, or drop --export",
}).refine((o) => !o["quantize-head"] || o.methods.every((m) => m === "fp" || HEAD_METHODS.includes(m)), {
  message: `--quantize-head: only ${HEAD_METHODS.join(", ")} quantize lm_head; gptq, awq and autoround ` +
    "quantize the decoder blocks only (drop the flag, or leave those methods out)",
});
export type BenchOptions = z.infer<typeof BenchOptions>;

/** Every flag's name (the schema's keys), for --help's completeness test. */
export const FLAG_NAMES = Object.keys(BenchFlags.shape);

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

/** Bit widths each quantizing method accepts (checked before any work). */
const METHOD_BITS: Record<string, number[]> = {
  rtn: [2, 3, 4, 8],
  gptq: [2, 3, 4, 8],
  awq: [2, 3, 4, 8],
  autoround: [2, 3, 4, 8],
  hqq: [1, 2, 3, 4, 5, 6, 8],
};

function flagTypes(): Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> {
  const out: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {};
  for (const [name, def] of Object.entries(BenchFlags.shape)) {
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
  if (merged.quick) merged = { ...quickCaps(merged), ...values };
  const r = BenchOptions.safeParse({ model: [], ...merged });
  if (!r.success) {
    const where = (
      i: z.core.$ZodIssue,
    ) => (i.path.length && !i.message.startsWith("--") ? `--${i.path.join(".")}: ` : "");
    throw new Error(r.error.issues.map((i) => `${where(i)}${i.message}`).join("\n"));
  }
  checkBits(r.data);
  return r.data;
}

/** --quick: a fast look (few windows, few calibration samples, short AutoRound); flags still win. */
function quickCaps(m: Record<string, unknown>): Record<string, unknown> {
  const cap = (k: string, v: number) => String(Math.min(Number(m[k] ?? Infinity), v));
  return {
    ...m,
    "max-windows": cap("max-windows", 4),
    nsamples: cap("nsamples", 16),
    "calib-seqlen": cap("calib-seqlen", 512),
    iters: cap("iters", 10),
    "decode-tokens": cap("decode-tokens", 8),
    "gemv-reps": cap("gemv-reps", 2),
  };
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
    const allowed = METHOD_BITS[m];
    const bad = allowed && (o.bits ?? [4]).filter((b) => !allowed.includes(b));
    if (bad && bad.length) throw new Error(`--bits ${bad.join(",")}: ${m} takes ${allowed.join(", ")} bits`);
  }
}

/** Calibration windows: --nsamples, else 128 (AutoRound's best recipe: 512). */
export function calibrationSamples(o: BenchOptions): number {
  if (o.nsamples !== undefined) return o.nsamples;
  return o.methods.includes("autoround") && o.recipe === "best" ? AUTOROUND_PRESETS.best.nsamples : 128;
}
