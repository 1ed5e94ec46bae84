// `deno task bench`: models × datasets × methods → perplexity rows in OUT/results.jsonl.
// Methods so far: fp, rtn, gptq, awq and autoround (calibrated on a local text), hqq, nf4, fp4, bnb-int8; Hub loading joins with its issue. Flags and row fields are stable: later versions add, never rename.

import { parseArgs } from "node:util";
import { z } from "zod";
import { getGpu } from "../gpu/device.ts";
import { loadTokenizer } from "../io/tokenizer.ts";
import { loadModel } from "../model/load.ts";
import { perplexity } from "../eval/perplexity.ts";
import { appendResults, type ResultRow } from "../eval/results.ts";
import { readEvalText } from "../eval/text.ts";
import { provenance } from "../provenance.ts";
import { type Calibration, loadCalibration } from "../data/calibration.ts";
import { readConfig } from "../io/config.ts";
import { AUTOROUND_PRESETS, checkAutoRoundSamples } from "../quant/autoround.ts";
import { loadedRow, meanBitsPerWeight, quantizeSetting, type Setting } from "./methods.ts";

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

export const BenchOptions = z.object({
  model: z.array(z.string().min(1)).min(1, "--model is required (a local Hugging Face model directory)"),
  dataset: z.array(z.string().min(1)).min(1, "--dataset is required (a local UTF-8 text file)"),
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
  out: z.string().default(`results/runs/${new Date().toISOString().replace(/[:.]/g, "-")}`),
  quiet: z.boolean().default(false),
}).strict().refine((o) => !o.methods.some((m) => CALIBRATED.includes(m)) || o.calibration, {
  message:
    "--methods gptq, awq and autoround need --calibration FILE (a UTF-8 text to draw calibration windows from)",
}).refine((o) => !(o.export && o.methods.includes("awq") && (o.bits ?? [4]).some((b) => b !== 4)), {
  message: "--export of awq writes AutoAWQ GEMM checkpoints, which are 4-bit only: use --bits 4",
});
export type BenchOptions = z.infer<typeof BenchOptions>;

export const HELP = `deno task bench — perplexity of models on texts, one JSON line per result

  --model DIR          Hugging Face model directory (config.json, *.safetensors, tokenizer.json);
                       repeatable. Llama, Mistral, Qwen2 and OPT architectures.
  --dataset FILE       UTF-8 text file, used as-is; repeatable
  --methods LIST       comma-separated; available now: ${METHODS.join(", ")} (default fp)
  --bits LIST          bit widths for quantizing methods (default 4; e.g. 8,4,3)
  --group-size LIST    group sizes along the input dimension (default 128; -1 = per-channel)
  --seqlen N           window length in tokens (default 2048, capped at the model's positions)
  --max-windows K      evaluate only the first K windows (default: all)
  --seed N             seed for calibration sampling (default 0)
  --quantize-head      quantize lm_head too (embeddings always stay FP)

GPTQ (defaults are the IST-DASLab reference's):
  --calibration FILE   calibration text (required for gptq and awq)
  --nsamples N         calibration windows (default 128)
  --calib-seqlen N     tokens per window (default 2048, capped at the model's positions)
  --sym                symmetric grid (default asymmetric)
  --act-order          quantize columns by descending diag H (desc_act), with g_idx
  --static-groups      group params from the original weights (g_idx stays monotone)
  --no-true-sequential collect every layer's inputs in one FP pass per block
  --fp-inputs          feed each block the FP model's hidden states (default: quantized prefix)
  --percdamp X         damping, fraction of mean diag H (default 0.01; raised on failure)
  --blocksize N        columns per lazy batch (default 128)
  --export DIR         write each GPTQ model as an AutoGPTQ v1 checkpoint DIR/<model>-gptq-w<b>-g<g>
                       (AWQ: AutoAWQ GEMM, 4-bit; HQQ: DIR/<model>-hqq-w<b>-g<g>; nf4/fp4/bnb-int8:
                       bitsandbytes layouts)

AWQ (AutoAWQ's defaults: asymmetric with zero-point, grid of 20 α, duo scaling, clipping search;
its calibration is 128 windows of 512 tokens: pass --calib-seqlen 512):
  --no-duo-scaling     s = s_x^α alone (the paper's form) instead of s_x^α / s_w^(1−α)
  --no-clip            skip the clipping search

AutoRound (intel/auto-round's defaults: 200 iterations of signed gradient descent per block, batch 8,
lr 1/iters, min/max tuning, symmetric full-range grid; its calibration is 128 windows of 2048):
  --recipe NAME        default (200 iters), light (50 iters, lr 5e-3) or best (1000 iters; with
                       512 samples when --nsamples is not given)
  --iters N            iterations per block (overrides the recipe; 0 = rounding to the same grid)
  --lr X               learning rate (default 1/iters; 2/iters for ≤ 3 bits with ≥ 1000 iters)
  --minmax-lr X        learning rate of the min/max scale factors (default: lr)
  --autoround-asym     asymmetric grid with zero-point (default symmetric, as the reference)
  --no-minmax          tune only the rounding, not the min/max scale factors
  (--export writes auto-round's own format, auto_round:auto_gptq: DIR/<model>-autoround-w<b>-g<g>)

HQQ (calibration-free; defaults are mobiusml/hqq's: p = 0.7, beta 10, kappa 1.01, 20 steps, early stop):
  --axis 0|1           groups along the input (1, default: packed kernels) or strided along the
                       output dimension (0, Quantizer.quantize's default; runs dequantized)
  --hqq-slow           the reference's slow solver: 100 steps, no early stop
  --hqq-meta           8-bit meta-quantization of scales (groups of 128) and zeros (the 2-bit g16 recipe)

bitsandbytes 4-bit (nf4, fp4; calibration-free; --group-size is the blocksize, default 64):
  --double-quant LIST  on, off or on,off: 8-bit quantization of the absmax values (default on, as QLoRA)
  --int8-threshold X   bnb-int8 (LLM.int8()): input columns with any |x| ≥ X take the FP path
                       (default 6.0 as the paper and transformers; 0 = no decomposition)
  --out DIR            where results.jsonl goes (default results/runs/<timestamp>)
  --quiet              no progress lines
  -h, --help           this text

Protocol: the text is tokenized once with the tokenizer's special tokens (one BOS at the start),
cut into non-overlapping windows of seqlen tokens (tail dropped), ppl = exp(mean NLL of all
predicted tokens).`;

export function parseBenchArgs(args: string[]): BenchOptions | "help" {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        model: { type: "string", multiple: true },
        dataset: { type: "string", multiple: true },
        methods: { type: "string" },
        bits: { type: "string" },
        "group-size": { type: "string" },
        seqlen: { type: "string" },
        "max-windows": { type: "string" },
        seed: { type: "string" },
        "quantize-head": { type: "boolean" },
        calibration: { type: "string" },
        nsamples: { type: "string" },
        "calib-seqlen": { type: "string" },
        sym: { type: "boolean" },
        "act-order": { type: "boolean" },
        "no-duo-scaling": { type: "boolean" },
        "no-clip": { type: "boolean" },
        recipe: { type: "string" },
        iters: { type: "string" },
        lr: { type: "string" },
        "minmax-lr": { type: "string" },
        "autoround-asym": { type: "boolean" },
        "no-minmax": { type: "boolean" },
        "static-groups": { type: "boolean" },
        "no-true-sequential": { type: "boolean" },
        "fp-inputs": { type: "boolean" },
        percdamp: { type: "string" },
        blocksize: { type: "string" },
        export: { type: "string" },
        axis: { type: "string" },
        "hqq-slow": { type: "boolean" },
        "hqq-meta": { type: "boolean" },
        "double-quant": { type: "string" },
        "int8-threshold": { type: "string" },
        out: { type: "string" },
        quiet: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new Error(`${(e as Error).message}\nRun with --help for the flags.`);
  }
  if (values.help) return "help";
  const r = BenchOptions.safeParse({ model: [], dataset: [], ...values });
  if (!r.success) {
    const where = (
      i: z.core.$ZodIssue,
    ) => (i.path.length && !i.message.startsWith("--") ? `--${i.path.join(".")}: ` : "");
    throw new Error(r.error.issues.map((i) => `${where(i)}${i.message}`).join("\n"));
  }
  return r.data;
}

/** Calibration windows: --nsamples, else 128 (AutoRound's best recipe: 512). */
export function calibrationSamples(o: BenchOptions): number {
  if (o.nsamples !== undefined) return o.nsamples;
  return o.methods.includes("autoround") && o.recipe === "best" ? AUTOROUND_PRESETS.best.nsamples : 128;
}

function settings(o: BenchOptions): Setting[] {
  const out: Setting[] = [];
  for (const method of o.methods) {
    if (method === "fp") out.push({ method, bits: null, groupSize: null });
    else if (method === "bnb-int8") out.push({ method, bits: 8, groupSize: -1 });
    else if (method === "nf4" || method === "fp4") {
      for (const groupSize of o["group-size"] ?? [64]) {
        for (const doubleQuant of o["double-quant"]) out.push({ method, bits: 4, groupSize, doubleQuant });
      }
    } else {
      for (const bits of o.bits ?? [4]) {
        for (const groupSize of o["group-size"] ?? [128]) out.push({ method, bits, groupSize });
      }
    }
  }
  return out;
}

export async function runBench(o: BenchOptions): Promise<ResultRow[]> {
  const gpu = await getGpu();
  const log = (s: string) => o.quiet || console.error(s);
  log(`adapter: ${gpu.name}`);
  const prov = await provenance(gpu);
  const rows: ResultRow[] = [];
  for (const modelDir of o.model) {
    const tok = await loadTokenizer(modelDir);
    const texts = [];
    for (const path of o.dataset) {
      const text = await readEvalText(path);
      texts.push({ path, text, ids: tok.encode(text.text) });
    }
    let cal: Calibration | null = null;
    if (o.methods.some((m) => CALIBRATED.includes(m))) {
      const config = await readConfig(modelDir);
      const seqlen = Math.min(o["calib-seqlen"], config.maxPositions);
      const nsamples = calibrationSamples(o);
      cal = await loadCalibration(tok, o.calibration!, { nsamples, seqlen, seed: o.seed });
      if (o.methods.includes("autoround")) {
        checkAutoRoundSamples(cal.tokens, nsamples, seqlen, o.calibration!);
      }
      log(`calibration: ${nsamples} windows of ${seqlen} tokens from ${o.calibration} (seed ${o.seed})`);
    }
    for (const s of settings(o)) {
      const label = s.method === "fp"
        ? "fp"
        : `${s.method} W${s.bits} g${s.groupSize}${
          s.doubleQuant === undefined ? "" : s.doubleQuant ? " dq" : ""
        }`;
      const model = await loadModel(gpu, modelDir);
      const { quant, methodOptions } = await quantizeSetting(
        model,
        modelDir,
        s,
        o,
        cal,
        prov.git_commit,
        label,
        log,
      );
      const seqlen = Math.min(o.seqlen, model.config.maxPositions);
      if (seqlen < o.seqlen) log(`seqlen capped at ${seqlen} (max_position_embeddings of ${modelDir})`);
      for (const { path, text, ids } of texts) {
        let last = 0;
        gpu.pool.resetPeak();
        const r = await perplexity(model, ids, {
          seqlen,
          maxWindows: o["max-windows"],
          onWindow: (done, total, ppl) => {
            const now = performance.now();
            if (now - last > 2000 || done === total) {
              last = now;
              log(`  ${label} ${modelDir} on ${path}: window ${done}/${total}, ppl so far ${ppl.toFixed(4)}`);
            }
          },
        });
        // A quantized checkpoint evaluated as loaded is a row of its method, settings from its config.
        const loaded = s.method === "fp" && model.config.quant ? loadedRow(model.config.quant) : null;
        const row: ResultRow = {
          method: loaded?.method ?? s.method,
          bits: loaded ? loaded.bits : s.bits,
          group_size: loaded ? loaded.group_size : s.groupSize,
          model: modelDir,
          model_arch: model.config.arch,
          weights_dtype: model.config.dtype,
          dataset: path,
          dataset_sha256: text.sha256,
          seqlen: r.seqlen,
          windows: r.windows,
          tokens: r.tokens,
          text_tokens: r.textTokens,
          ppl: r.ppl,
          mean_nll: r.meanNll,
          eval_seconds: r.seconds,
          tokens_per_second: r.tokens / r.seconds,
          model_gpu_bytes: model.bytes(),
          bits_per_weight: quant ? meanBitsPerWeight(quant.records) : null,
          weight_bytes: model.bytes(),
          quant_seconds: quant?.seconds ?? null,
          method_options: loaded?.method_options ?? await methodOptions(),
          calibration: CALIBRATED.includes(s.method) && cal
            ? {
              file: cal.file,
              sha256: cal.sha256,
              nsamples: cal.windows.length,
              seqlen: cal.windows[0].length,
              seed: o.seed,
            }
            : null,
          peak_gpu_bytes: gpu.pool.stats().peak,
          adapter: gpu.name,
          fallback_adapter: gpu.isFallback,
          date: prov.date,
          deno: prov.deno,
          git_commit: prov.git_commit,
        };
        rows.push(row);
        const file = await appendResults(o.out, [row]);
        log(
          `${label} ${modelDir} on ${path}: ppl ${r.ppl.toFixed(4)} (${r.windows} windows of ${r.seqlen}, ` +
            `${(r.tokens / r.seconds).toFixed(0)} tok/s) → ${file}`,
        );
      }
      model.release();
    }
  }
  return rows;
}

if (import.meta.main) {
  try {
    const o = parseBenchArgs(Deno.args);
    if (o === "help") console.log(HELP);
    else await runBench(o);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
