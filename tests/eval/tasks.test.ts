// The zero-shot tasks' requests against lm-eval 0.4.13 itself: for every task, rows in its
// dataset's shape written as parquet in the Hub repo's layout (by Python's datasets), lm-eval's
// ConfigurableTask built from its own YAML over those files (build_all_requests), and ours from
// the same folder: every request's (context, continuation) and every gold answer equal. Then the
// whole path for every task on tiny-llama: lm-eval's HFLM scores and metrics vs ours; mmlu's
// subjects 0- and 5-shot the same way.

import assert from "node:assert";
import { getGpu } from "../../lib/gpu/device.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { loglikelihood } from "../../lib/eval/loglikelihood.ts";
import { multipleChoice } from "../../lib/eval/metrics.ts";
import { loadTaskDocs, localTaskData, splitFiles } from "../../lib/eval/task_data.ts";
import { loadModel } from "../../lib/load.ts";
import { expandTask, getTask, TASKS } from "../../lib/eval/tasks.ts";
import { prepareTask } from "../../lib/eval/task_eval.ts";
import { scoreReusingContexts } from "../../lib/eval/prefix_kv.ts";
import { FIXTURES, pythonHas, runPython } from "../python.ts";

const hasLmEval = await pythonHas("lm_eval.api.task, datasets");

const LLAMA = `${FIXTURES}/tiny-llama`;
/** Every task is also scored end to end (lm-eval's HFLM against ours, document by document). */
const SCORED = Object.keys(TASKS);

const YAML: Record<string, string> = {
  arc_easy: "arc/arc_easy.yaml",
  arc_challenge: "arc/arc_challenge.yaml",
  piqa: "piqa/piqa.yaml",
  hellaswag: "hellaswag/hellaswag.yaml",
  winogrande: "winogrande/default.yaml",
  lambada_openai: "lambada/lambada_openai.yaml",
  boolq: "super_glue/boolq/default.yaml",
  openbookqa: "openbookqa/openbookqa.yaml",
  rte: "glue/rte/default.yaml",
  truthfulqa_mc1: "truthfulqa/truthfulqa_mc1.yaml",
};

/** Rows in each dataset's own shape, with the cases the templates treat specially. */
function rows(task: string): Record<string, unknown>[] {
  const w = ["river", "the old Mill", "naïve café", "1,024 lines", "Zebra", "a [header] note"];
  const mc = (i: number, labels: string[]) => ({
    text: labels.map((_, k) => `${w[(i + k) % w.length]} ${k}`),
    label: labels,
  });
  return Array.from({ length: 6 }, (_, i) => {
    switch (task) {
      case "arc_easy":
      case "arc_challenge": {
        const labels = i % 2 ? ["1", "2", "3", "4"] : ["A", "B", "C", "D"];
        return {
          id: `q${i}`,
          question: `Which ${w[i]} is it?`,
          choices: mc(i, labels),
          answerKey: labels[i % 4],
        };
      }
      case "piqa":
        return { goal: `How to move ${w[i]}?`, sol1: `Push ${w[i]}.`, sol2: `Pull it ${i}.`, label: i % 2 };
      case "hellaswag":
        return {
          ind: i,
          activity_label: `Doing ${w[i]}`,
          ctx_a: `A man [title] walks  to the ${w[i]}.`,
          ctx_b: i % 2 ? "tHE DOG barks" : "he",
          ctx: "",
          endings: [0, 1, 2, 3].map((k) => ` ends [step] ${k}  twice ${w[(i + k) % 6]}`),
          source_id: "x",
          split: "val",
          split_type: "indomain",
          label: String(i % 4),
        };
      case "winogrande":
        return {
          sentence: `The ${w[i]} did not fit because _ was too ${i % 2 ? "big" : "small"}.`,
          option1: "it",
          option2: "the box",
          answer: String(1 + (i % 2)),
        };
      case "lambada_openai":
        return { text: `She looked at the ${w[i]} and then said ${w[(i + 2) % 6]}` };
      case "boolq":
        return {
          question: `is the ${w[i]} open`,
          passage: `The ${w[i]} is open daily.`,
          idx: i,
          label: i % 2,
        };
      case "openbookqa":
        return {
          id: `o${i}`,
          question_stem: `The ${w[i]} needs`,
          choices: mc(i, ["A", "B", "C", "D"]),
          answerKey: ["A", "B", "C", "D"][i % 4],
        };
      case "rte":
        return {
          sentence1: `The ${w[i]} was sold.`,
          sentence2: `Someone bought the ${w[i]}.`,
          label: i % 2,
          idx: i,
        };
      default: // truthfulqa_mc1
        return {
          question: `What happens to ${w[i]}?`,
          mc1_targets: { choices: [`Nothing ${i}.`, "It melts.", "It sings."], labels: [1, 0, 0] },
          mc2_targets: { choices: [`Nothing ${i}.`, "It melts."], labels: [1, 0] },
        };
    }
  });
}

const LM_EVAL_REQUESTS = `
import json, sys, os
from pathlib import Path
import datasets, lm_eval
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml
spec = json.load(open(sys.argv[1]))
root = Path(lm_eval.__file__).parent / "tasks"
out = {}
for name, t in spec.items():
    path = os.path.join(t["dir"], t["file"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    datasets.Dataset.from_list(t["rows"]).to_parquet(path)
    cfg = load_yaml(root / t["yaml"])
    cfg.pop("tag", None)
    cfg.update(dataset_path="parquet", dataset_name=None, dataset_kwargs={"data_files": {t["split"]: path}},
               training_split=None, fewshot_split=None)
    cfg["validation_split" if t["split"] == "test" else "test_split"] = None
    task = ConfigurableTask(config=cfg)
    task.build_all_requests(rank=0, world_size=1)
    docs = {}
    for inst in task.instances:
        docs.setdefault(inst.doc_id, {"args": [], "doc": inst.doc})
        docs[inst.doc_id]["args"].append(list(inst.arguments))
    res = []
    for k in sorted(docs):
        d = docs[k]["doc"]
        gold = task.doc_to_text(d) if task.multiple_input else (task.doc_to_target(d) if task.OUTPUT_TYPE == "multiple_choice" else 0)
        res.append({"args": docs[k]["args"], "gold": gold})
    if t.get("score"):
        # The whole path: lm-eval's HF backend scores the task's own instances, its task the metrics.
        from lm_eval.models.huggingface import HFLM
        lm = HFLM(pretrained=t["score"], device="cpu", dtype="float32", batch_size=4, max_length=48)
        lls = lm.loglikelihood(task.instances, disable_tqdm=True)
        by = {}
        for inst, r in zip(task.instances, lls):
            by.setdefault(inst.doc_id, []).append((float(r[0]), bool(r[1])))
        for k, r in zip(sorted(docs), res):
            r["lls"] = by[k]
            r["metrics"] = task.process_results(docs[k]["doc"], by[k])
    out[name] = res
print(json.dumps(out))
`;

Deno.test({
  name:
    "every task's requests and gold answers equal lm-eval's own, built from its YAML over the same parquet files",
  ignore: !hasLmEval,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const tok = await loadTokenizer(LLAMA);
    const model = await loadModel(await getGpu(), LLAMA);
    try {
      const spec: Record<string, unknown> = {};
      for (const name of Object.keys(TASKS)) {
        const t = getTask(name);
        const file = `${t.config ? `${t.config}/` : ""}${t.split}-00000-of-00001.parquet`;
        const score = SCORED.includes(name) ? LLAMA : undefined;
        spec[name] = {
          dir: `${dir}/${name}`,
          file,
          yaml: YAML[name],
          split: t.split,
          rows: rows(name),
          score,
        };
      }
      assert.deepStrictEqual(Object.keys(YAML).sort(), Object.keys(TASKS).sort());
      const specFile = `${dir}/spec.json`;
      await Deno.writeTextFile(specFile, JSON.stringify(spec));
      const ref = JSON.parse((await runPython(LM_EVAL_REQUESTS, [specFile])).trim().split("\n").at(-1)!);
      for (const name of Object.keys(TASKS)) {
        const t = getTask(name);
        const docs = await loadTaskDocs(t, `${dir}/${name}`);
        const ours = docs.map((d) => t.build(d));
        assert.strictEqual(ours.length, ref[name].length, `${name}: documents`);
        for (const [i, o] of ours.entries()) {
          assert.deepStrictEqual(
            o.requests.map((r) => [r.context, r.continuation]),
            ref[name][i].args,
            `${name} doc ${i}`,
          );
          assert.strictEqual(o.gold, ref[name][i].gold, `${name} doc ${i}: gold`);
        }
        if (!SCORED.includes(name)) continue;
        // Scored on tiny-llama (max_length 48: some contexts are left-truncated), metrics per document.
        const lls = await loglikelihood(model, tok, ours.flatMap((o) => o.requests), { maxLength: 48 });
        let k = 0;
        for (const [i, o] of ours.entries()) {
          const mine = lls.slice(k, k += o.requests.length);
          const theirs = ref[name][i].lls as [number, boolean][];
          assert.strictEqual(mine.length, theirs.length, `${name} doc ${i}: requests scored`);
          mine.forEach((r, j) => {
            const what = `${name} doc ${i} request ${j}`;
            assert.ok(Math.abs(r.logprob - theirs[j][0]) < 1e-4, `${what}: ${r.logprob} vs ${theirs[j][0]}`);
            assert.strictEqual(r.greedy, theirs[j][1], `${what}: is_greedy`);
          });
          const metrics: Record<string, number> = t.kind === "word"
            ? { perplexity: mine[0].logprob, acc: mine[0].greedy ? 1 : 0 }
            : { ...multipleChoice(mine.map((r) => r.logprob), o.choices, o.gold) };
          const want = ref[name][i].metrics as Record<string, number>;
          assert.ok(Object.keys(want).length >= 1, `${name}: lm-eval gave metrics`);
          for (const [m, v] of Object.entries(want)) {
            const ok = m === "perplexity" ? Math.abs(metrics[m] - v) < 1e-4 : metrics[m] === v;
            assert.ok(ok, `${name} doc ${i}: ${m} ${metrics[m]} vs lm-eval's ${v}`);
          }
        }
      }
    } finally {
      model.release();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("tasks refuse bad input before model work: unknown task, missing column, empty split, wrong layout", async () => {
  assert.throws(
    () => getTask("mmlu_pro"),
    /unknown task "mmlu_pro": one of arc_easy, arc_challenge.*mmlu \(or mmlu_<subject>\)/,
  );
  const dir = await Deno.makeTempDir();
  try {
    const arc = getTask("arc_easy");
    await assert.rejects(
      splitFiles(arc, dir),
      /no parquet files of split "test" \(under ARC-Easy\/\) — the layout of allenai\/ai2_arc/,
    );
    const { parquetWriteBuffer } = await import("hyparquet-writer");
    await Deno.mkdir(`${dir}/ARC-Easy`);
    const pq = parquetWriteBuffer({ columnData: [{ name: "question", data: ["q?"], type: "STRING" }] });
    await Deno.writeFile(`${dir}/ARC-Easy/test-00000-of-00001.parquet`, new Uint8Array(pq));
    await assert.rejects(
      loadTaskDocs(arc, dir),
      /arc_easy: .* row 0 has no column "choices" \(the task's YAML reads it\)/,
    );
    const empty = parquetWriteBuffer({ columnData: [{ name: "question", data: [], type: "STRING" }] });
    await Deno.writeFile(`${dir}/ARC-Easy/test-00000-of-00001.parquet`, new Uint8Array(empty));
    await assert.rejects(loadTaskDocs(arc, dir), /arc_easy: .* has no rows in split test/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const LM_EVAL_MMLU = `
import json, sys, os
from pathlib import Path
import datasets, lm_eval
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml
spec = json.load(open(sys.argv[1]))
root = Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default"
out = {}
for subject, t in spec["subjects"].items():
    files = {}
    for split in ["test", "dev"]:
        path = os.path.join(spec["dir"], subject, f"{split}-00000-of-00001.parquet")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        datasets.Dataset.from_list(t[split]).to_parquet(path)
        files[split] = path
    for shots in [0, 5]:
        cfg = load_yaml(root / f"mmlu_{subject}.yaml")
        cfg.pop("tag", None)
        cfg.update(dataset_path="parquet", dataset_name=None, dataset_kwargs={"data_files": files}, num_fewshot=shots)
        task = ConfigurableTask(config=cfg)
        task.set_fewshot_seed(1234)
        task.build_all_requests(rank=0, world_size=1)
        docs = {}
        for inst in task.instances:
            docs.setdefault(inst.doc_id, {"args": [], "doc": inst.doc})
            docs[inst.doc_id]["args"].append(list(inst.arguments))
        res = [{"args": docs[k]["args"], "gold": task.doc_to_target(docs[k]["doc"])} for k in sorted(docs)]
        from lm_eval.models.huggingface import HFLM
        lm = HFLM(pretrained=spec["model"], device="cpu", dtype="float32", batch_size=4, max_length=96)
        lls = lm.loglikelihood(task.instances, disable_tqdm=True)
        by = {}
        for inst, r in zip(task.instances, lls):
            by.setdefault(inst.doc_id, []).append((float(r[0]), bool(r[1])))
        for k, r in zip(sorted(docs), res):
            r["lls"] = by[k]
            r["metrics"] = task.process_results(docs[k]["doc"], by[k])
        out[f"{subject}/{shots}"] = res
print(json.dumps(out))
`;

Deno.test({
  name: "mmlu's subjects, 0-shot and 5-shot (first 5 of dev), build lm-eval's own requests",
  ignore: !hasLmEval,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const tok = await loadTokenizer(LLAMA);
    const model = await loadModel(await getGpu(), LLAMA);
    try {
      const row = (s: string, i: number) => ({
        question: `  ${s} question ${i}: which holds?\n`,
        subject: s,
        choices: [`x = ${i}`, "none of these", `${i} and ${i + 1}`, "naïve"],
        answer: (i * 3) % 4,
      });
      const subjects = ["abstract_algebra", "high_school_us_history"];
      const spec = {
        dir,
        model: LLAMA,
        subjects: Object.fromEntries(subjects.map((s) => [s, {
          test: [0, 1, 2].map((i) => row(s, i)),
          dev: [10, 11, 12, 13, 14, 15].map((i) => row(s, i)),
        }])),
      };
      await Deno.writeTextFile(`${dir}/spec.json`, JSON.stringify(spec));
      const ref = JSON.parse(
        (await runPython(LM_EVAL_MMLU, [`${dir}/spec.json`])).trim().split("\n").at(-1)!,
      );
      for (const s of subjects) {
        const t = getTask(`mmlu_${s}`);
        const data = await localTaskData(t, dir, true);
        assert.strictEqual(data.shots.length, 6);
        for (const shots of [0, 5]) {
          const ours = data.docs.map((d) => t.build(d, data.shots.slice(0, shots)));
          const want = ref[`${s}/${shots}`];
          assert.strictEqual(ours.length, want.length);
          ours.forEach((o, i) => {
            assert.deepStrictEqual(
              o.requests.map((r) => [r.context, r.continuation]),
              want[i].args,
              `${s} ${shots}-shot doc ${i}`,
            );
            assert.strictEqual(o.gold, want[i].gold);
          });
          // Scored (5-shot contexts are left-truncated at max_length 96): one row per question.
          const p = prepareTask(t, data, tok, { numFewshot: shots });
          const lls = await scoreReusingContexts(model, p.encoded.flat(), { maxLength: 96 });
          ours.forEach((o, i) => {
            const mine = lls.slice(4 * i, 4 * i + 4), theirs = want[i].lls as [number, boolean][];
            mine.forEach((r, j) => {
              const what = `${s} ${shots}-shot doc ${i} choice ${j}: ${r.logprob} vs ${theirs[j][0]}`;
              assert.ok(Math.abs(r.logprob - theirs[j][0]) < 1e-4, what);
              assert.strictEqual(r.greedy, theirs[j][1], what);
            });
            const acc = multipleChoice(mine.map((r) => r.logprob), o.choices, o.gold).acc;
            assert.strictEqual(acc, want[i].metrics.acc, `${s} ${shots}-shot doc ${i}: acc`);
          });
          if (shots === 5) {
            assert.ok(p.encoded[0][0].context.length > 96, "5-shot contexts are longer than max_length");
          }
        }
      }
      assert.strictEqual(expandTask("mmlu").length, 57);
      assert.strictEqual(new Set(expandTask("mmlu").map((t) => t.name)).size, 57);
    } finally {
      model.release();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
