// `deno task bench:loglikelihood`: requests/s of task evaluation, ours beside lm-eval's HF backend
// (torch on the same CPU) on the same items, in one run: Q multiple-choice questions of C choices
// (contexts and continuations cut from a text file) in two shapes — "words" (continuations of
// 3–14 words: ARC, PIQA, HellaSwag) and "letters" (" A", " B", …: MMLU) — scored by
//   ours, recomputed        every request its own row in right-padded chunks (lm-eval's shape)
//   ours, reuse all         each question's context once into a KV cache, each choice after it
//   ours, reuse single-token  only one-token choices reused (the CPU adapter's default)
//   lm-eval HFLM            batch 1 and batch 8, float32, device cpu
// Every path's log-likelihoods are compared with lm-eval's (max |Δ|), so a fast wrong path shows.
// Writes --out (default results/eval/loglikelihood_speed.json).

import { parseArgs } from "node:util";
import { runCrossCheck } from "./python.ts";
import { z } from "zod";
import { getGpu } from "../lib/gpu/device.ts";
import { loadTokenizer } from "../lib/io/tokenizer.ts";
import { encodeRequest, type LlRequest, scoreRequests } from "../lib/eval/loglikelihood.ts";
import { scoreReusingContexts } from "../lib/eval/prefix_kv.ts";
import { loadModel } from "../lib/load.ts";
import { provenance, writeJsonAtomic } from "../lib/provenance.ts";

const HELP =
  `deno task bench:loglikelihood [--model DIR] [--text FILE] [--questions Q] [--choices C] [--out FILE]
  --model      model folder (default ../shared/fixtures/tiny-llama)
  --text       text the items are cut from (default ../shared/fixtures/text/calibration.txt)
  --questions  questions (default 100); --choices per question (default 4)
  --out        JSON report (default results/eval/loglikelihood_speed.json)
Needs the cross-check Python (QUANTLAB_PYTHON or .venv) with lm-eval for the lm-eval columns.`;

const Options = z.object({
  model: z.string().default("../shared/fixtures/tiny-llama"),
  text: z.string().default("../shared/fixtures/text/calibration.txt"),
  questions: z.coerce.number().int().positive().default(100),
  choices: z.coerce.number().int().min(2).default(4),
  out: z.string().default("results/eval/loglikelihood_speed.json"),
  help: z.boolean().default(false),
});

const LM_EVAL = `
import json, sys, time
from lm_eval.models.huggingface import HFLM
from lm_eval.api.instance import Instance
reqs = json.load(open(sys.argv[2]))
out = {}
for bs in [1, 8]:
    lm = HFLM(pretrained=sys.argv[1], device="cpu", dtype="float32", batch_size=bs)
    inst = [Instance(request_type="loglikelihood", doc={}, arguments=(c, x), idx=i) for i, (c, x) in enumerate(reqs)]
    t = time.perf_counter()
    res = lm.loglikelihood(inst, disable_tqdm=True)
    out[f"batch{bs}"] = {"seconds": time.perf_counter() - t, "lls": [float(r[0]) for r in res]}
print(json.dumps(out))
`;

/**
 * Q questions: a context of 16–76 words (a benchmark question's size: ARC, HellaSwag, PIQA), C
 * continuations of 3–14 words from other lines.
 */
function items(text: string, Q: number, C: number, letters: boolean): LlRequest[] {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l.split(" ").length > 8);
  const out: LlRequest[] = [];
  for (let q = 0; q < Q; q++) {
    const words = lines.slice(q % lines.length, (q % lines.length) + 8).join(" ").split(" ");
    const context = words.slice(0, 16 + 12 * (q % 6)).join(" ") + "\nAnswer:";
    for (let c = 0; c < C; c++) {
      const words = lines[(q * 7 + c * 13) % lines.length].split(" ");
      const continuation = letters
        ? ` ${String.fromCharCode(65 + c)}`
        : " " + words.slice(0, 3 + ((q + c) % 12)).join(" ");
      out.push({ context, continuation });
    }
  }
  return out;
}

async function lmEval(model: string, reqs: LlRequest[]) {
  const file = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(file, JSON.stringify(reqs.map((r) => [r.context, r.continuation])));
  const out = await runCrossCheck(LM_EVAL, [model, file]);
  return out === null
    ? null
    : JSON.parse(out.trim().split("\n").at(-1)!) as Record<string, { seconds: number; lls: number[] }>;
}

async function main() {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      text: { type: "string" },
      questions: { type: "string" },
      choices: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const o = Options.parse(values);
  if (o.help) return console.log(HELP);
  const gpu = await getGpu();
  const tok = await loadTokenizer(o.model), model = await loadModel(gpu, o.model);
  const text = await Deno.readTextFile(o.text);
  const maxLength = model.config.maxPositions;
  const time = async (f: () => Promise<{ logprob: number }[]>) => {
    const t = performance.now();
    const r = await f();
    return { seconds: (performance.now() - t) / 1000, lls: r.map((x) => x.logprob) };
  };
  const rows: Record<string, unknown>[] = [];
  for (const shape of ["words", "letters"] as const) {
    const reqs = items(text, o.questions, o.choices, shape === "letters");
    const encoded = reqs.map((r) => encodeRequest(tok, r));
    const ctx = encoded.reduce((s, r) => s + r.context.length, 0) / encoded.length;
    const cont = encoded.reduce((s, r) => s + r.continuation.length, 0) / encoded.length;
    console.error(
      `${shape}: ${reqs.length} requests (${o.questions} questions × ${o.choices}; context ${
        ctx.toFixed(0)
      }, ` +
        `continuation ${cont.toFixed(1)} tokens on average) on ${o.model}, ${gpu.name}`,
    );
    await scoreRequests(model, encoded.slice(0, 8), { maxLength }); // pipelines compiled
    const ours = {
      "quantlab recomputed (right-padded chunks)": await time(() =>
        scoreRequests(model, encoded, { maxLength })
      ),
      "quantlab prefix-KV reuse, all": await time(() =>
        scoreReusingContexts(model, encoded, { maxLength, reuse: "all" })
      ),
      "quantlab prefix-KV reuse, single-token": await time(() =>
        scoreReusingContexts(model, encoded, { maxLength, reuse: "single-token" })
      ),
    };
    console.error("lm-eval HFLM on the same requests...");
    const ref = await lmEval(o.model, reqs);
    const all = {
      ...ours,
      ...Object.fromEntries(Object.entries(ref ?? {}).map(([k, v]) => [`lm-eval HFLM ${k} (torch CPU)`, v])),
    };
    for (const [path, r] of Object.entries(all)) {
      const diff = ref ? Math.max(...r.lls.map((l, i) => Math.abs(l - ref.batch1.lls[i]))) : null;
      const row = {
        shape,
        path,
        mean_context_tokens: ctx,
        mean_continuation_tokens: cont,
        seconds: r.seconds,
        requests_per_second: reqs.length / r.seconds,
        sum_ll: r.lls.reduce((a, b) => a + b, 0),
        max_abs_diff_vs_lm_eval: diff,
      };
      rows.push(row);
      console.log(
        `${shape.padEnd(8)} ${path.padEnd(44)} ${row.requests_per_second.toFixed(1).padStart(7)} req/s  ` +
          `Σll ${row.sum_ll.toFixed(3)}  max|Δ| vs lm-eval ${diff === null ? "—" : diff.toExponential(1)}`,
      );
    }
  }
  model.release();
  const prov = await provenance(gpu);
  await Deno.mkdir(o.out.slice(0, o.out.lastIndexOf("/")) || ".", { recursive: true });
  await writeJsonAtomic(o.out, {
    model: o.model,
    text: o.text,
    questions: o.questions,
    choices: o.choices,
    max_length: maxLength,
    cpu_cores: navigator.hardwareConcurrency,
    rows,
    ...prov,
  });
  console.error(`wrote ${o.out}`);
}

if (import.meta.main) await main();
