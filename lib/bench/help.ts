// The --help text of `deno task bench`: the harness's own flags, then each registered method's
// section with its flags (lib/methods/registry.ts), so that a method registered at run time is
// documented like the built-in ones.

import { DATASET_NAMES } from "../../datasets/datasets.ts";
import type { Method } from "../methods/contract.ts";
import { allMethods } from "../methods/registry.ts";
import { PRESETS } from "./presets.ts";
import { TASKS } from "../eval/tasks.ts";

const COL = 23;
const indent = (text: string) => text.split("\n").join(`\n${" ".repeat(COL)}`);
/** "  --flag VALUE        text" with continuation lines under the text. */
const line = (flag: string, text: string) => `  ${flag}`.padEnd(COL - 1) + " " + indent(text);

/** Items joined by ", ", wrapped under the help text's column (the first line starts at `first`). */
function wrapList(items: string[], first = COL): string {
  const lines: string[] = [];
  let cur = "", width = 100 - first;
  for (const it of items) {
    const next = cur ? `${cur}, ${it}` : it;
    if (next.length > width && cur) {
      lines.push(`${cur},`);
      cur = it;
      width = 100 - COL;
    } else cur = next;
  }
  lines.push(cur);
  return lines.join(`\n${" ".repeat(COL)}`);
}

/**
 * Each method's section: its heading, its flags not listed before (a composed method's are its
 * parts'), its notes. A method without a heading adds its flags to the section before it.
 */
function methodSections(ms: Method[]): string {
  const seen = new Set<string>(), out: string[] = [];
  for (const m of ms) {
    const flags = Object.entries(m.flags).filter(([n]) => !seen.has(n));
    if (m.help) out.push("", m.help.title);
    else if (flags.length && !out.length) out.push("", `${m.name}:`);
    for (const [n, f] of flags) {
      seen.add(n);
      out.push(line(`--${n}${f.value ? ` ${f.value}` : ""}`, f.help));
    }
    for (const note of m.help?.notes ?? []) out.push(`  ${note}`);
  }
  return out.join("\n");
}

export function benchHelp(): string {
  const ms = allMethods();
  const list = ms.map((m) => `    ${m.name.padEnd(15)}${m.summary}`).join("\n");
  const groups = wrapList(
    ms.filter((m) => m.defaultGroupSize !== undefined).map((m) => `${m.name} ${m.defaultGroupSize}`),
    COL + "method as its reference: ".length,
  );
  const calibrated = wrapList(ms.filter((m) => m.calibrated).map((m) => m.name), COL + 21);
  const heads = ms.filter((m) => m.quantizesHead && !m.baseline).map((m) => m.name).join(", ");
  const exports = ms.filter((m) => m.exportName).map((m) =>
    `${m.name}: DIR/<model>-${
      m.exportName!({ method: m.name, bits: 4, groupSize: m.defaultGroupSize ?? 128, doubleQuant: true })
    }`
  );
  return `deno task bench — models × datasets × methods × bits × group sizes → perplexity, accuracy,
speed and memory rows (OUT/results.jsonl), a manifest, figures and tables. With no flags: --preset smoke.

  deno task bench [flags]            run a matrix
  deno task bench merge OUT DIR...   join shard outputs (and write their figures)
  deno task figures DIR              regenerate DIR's figures and tables from its rows

  --preset NAME        ${
    Object.entries(PRESETS).map(([k, p]) => `${k}: ${p.description}`).join("\n                       ")
  }
  --config FILE        JSON object of flag → value (e.g. {"methods": "gptq", "act-order": true}),
                       validated like the flags; the command line overrides it, it overrides the preset
  --model ID|DIR       Hub repo id (downloaded into the HF_HOME cache; HF_ENDPOINT, HF_TOKEN honoured)
                       or a local folder (config.json, *.safetensors, tokenizer.json); repeatable.
                       Llama, Mistral, Qwen2 and OPT architectures.
  --dataset NAME|FILE  ${DATASET_NAMES.join(", ")} (from the Hub, GPTQ's protocols) or a UTF-8
                       text file used as-is; repeatable (default wikitext2)
  --tasks LIST         accuracy as lm-eval 0.4.13 scores it, beside perplexity: comma-separated
                       ${wrapList([...Object.keys(TASKS), "mmlu (57 subjects; or mmlu_<subject>)"], COL)};
                       each from its Hub dataset (cached), or NAME=FOLDER: a local copy laid out like
                       the Hub repo (arc_easy=DIR reads DIR/ARC-Easy/test-*.parquet). Without
                       --dataset, no perplexity is evaluated
  --limit N            the first N documents of each task (default: all)
  --num-fewshot N      mmlu: the first N rows of its dev split as examples (default 0; 5 = MMLU's
                       original protocol)
  --methods LIST       comma-separated (default fp); available now:
${list}
  --bits LIST          bit widths for quantizing methods (default 4; e.g. 8,4,3)
  --group-size LIST    group sizes along the input dimension (-1 = per-channel); default per
                       method as its reference: ${groups}
  --seqlen N           window length in tokens (default 2048, capped at the model's positions)
  --max-windows K      evaluate only the first K windows (default: all)
  --seed N             seed for calibration sampling (default 0)
  --quantize-head      quantize lm_head too (${heads}; embeddings stay FP,
                       a tied head gets its own tensors); the others refuse it
  --calibration NAME|FILE  calibration data (a dataset name: its train split; or a UTF-8
                       text file) for ${calibrated}; also pile-val (AutoAWQ's and
                       llm-awq's: mit-han-lab/pile-val-backup, shuffled with seed 42, documents of
                       ≤ calib-seqlen tokens concatenated into windows) and pile-10k (auto-round's:
                       NeelNanda/pile-10k, seed 42, the first calib-seqlen tokens of long documents);
                       NAME=PATH reads their parquet/JSON-lines from a local file or Hub-layout folder
  --nsamples N         calibration windows (default 128; pile-val: documents)
  --calib-seqlen N     tokens per window (default 2048, capped at the model's positions)
  --export DIR         write each quantized model as its method's checkpoint (AutoGPTQ v1, AutoAWQ
                       GEMM 4-bit, auto-round, hqq, bitsandbytes layouts); e.g.
                       ${exports.join("\n                       ")}
${methodSections(ms)}

Memory:
  --gpu-memory SIZE    GPU memory budget (bytes, or 24GB, 80GiB, 512MiB, ...): every buffer the run
                       holds stays under it. Models that fit run resident; otherwise decoder blocks
                       stay in host memory and are streamed through the GPU one at a time (the log
                       says which and why; speed rows are then skipped). Too small: refused before
                       work with the arithmetic. Default: no budget, everything resident

Speed, scale-out and output:
  --decode-tokens N    greedy decode of N tokens per cell for decode tokens/s (default 32; 0 = skip)
  --gemv-reps N        timed repetitions of each block-0 linear at batch 1 (GEMV µs, GB/s; default 5; 0 = skip)
  --quick              cap windows (4), calibration (16 × 512), AutoRound iterations (10), decode (8)
  --shard i/n          run only cells i, i+n, i+2n, ... of the matrix (0-based), for runner matrices
  --resume             keep OUT's finished rows and run only the missing cells (a cell cut off midway
                       left no row and is recomputed)
  --force              with --resume: go on although OUT has rows of other options (they are kept)
  --no-figures         skip figures and tables at the end
  --no-tune            no kernel sweep: each GEMM takes the adapter's rule variant
  --retune             time the GEMM variants again (default: the choices cached per adapter, driver
                       and Deno in HF_HOME/quantlab/kernel-choices.json, measured at first use)
  --list               print the matrix (cell index, shard, model, setting) and exit: nothing runs
  --out DIR            where results.jsonl, manifest.json, figures and tables go
                       (default results/runs/<timestamp>)
  --quiet              no progress lines
  -h, --help           this text

Protocol: the text is tokenized once with the tokenizer's special tokens (one BOS at the start),
cut into non-overlapping windows of seqlen tokens (tail dropped), ppl = exp(mean NLL of all
predicted tokens). Tasks: lm-eval's requests, encoding and metrics (acc, acc_norm, stderr), the
model's positions as max length; a question's context runs once for all its choices. A failing
cell is written as an error row and the matrix goes on.

Exit status: 0 every cell ok; 1 some cell failed (the last line names each, with its stage);
2 refused before any work (bad flags, models, data; nothing written).`;
}
