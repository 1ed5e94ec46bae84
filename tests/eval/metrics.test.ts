// Multiple-choice metrics against lm-eval 0.4.13's own ConfigurableTask.process_results (a task
// built from a config over a local JSON-lines file) and its mean_stderr, on random documents
// whose choices differ in characters and bytes (so acc, acc_norm and acc_bytes disagree).

import assert from "node:assert";
import {
  argmax,
  bootstrapStderr,
  mean,
  meanStderr,
  multipleChoice,
  perplexityOf,
} from "../../lib/eval/metrics.ts";
import { groupMetrics } from "../../lib/eval/task_eval.ts";
import { pythonHas, runPython } from "../python.ts";

const hasLmEval = await pythonHas("lm_eval.api.task, datasets");

Deno.test("argmax is numpy's (first maximum); metrics by hand; stderr of fewer than two is NaN", () => {
  assert.strictEqual(argmax([1, 3, 3]), 1);
  // lls −3, −7, −5.5 over 1, 5, 5 characters (1, 5, 6 bytes): acc picks 0, acc_norm and acc_bytes 2.
  assert.deepStrictEqual(multipleChoice([-3, -7, -5.5], ["x", "yy yy", "naïve"], 1), {
    acc: 0,
    acc_norm: 0,
    acc_bytes: 0,
  });
  assert.deepStrictEqual(multipleChoice([-3, -7, -5.5], ["x", "yy yy", "naïve"], 2), {
    acc: 0,
    acc_norm: 1,
    acc_bytes: 1,
  });
  assert.deepStrictEqual(multipleChoice([-3, -7, -5.5], ["x", "yy yy", "naïve"], [0, 2]).acc, 1);
  assert.ok(Number.isNaN(meanStderr([1])));
  assert.throws(() => multipleChoice([-1], ["a", "b"], 0), /1 log-likelihoods for 2 choices/);
});

Deno.test({
  name: "acc / acc_norm / acc_bytes per document and their stderr equal lm-eval's own",
  ignore: !hasLmEval,
  fn: async () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pieces = ["a", "bb", " café", "ü", "naïve", "日本", "x y", "🙂"];
    const docs = Array.from({ length: 40 }, (_, i) => {
      const n = 2 + (i % 4);
      const choices = Array.from(
        { length: n },
        () => pieces[Math.floor(rnd() * pieces.length)] + pieces[Math.floor(rnd() * pieces.length)],
      );
      return {
        q: `Question ${i}?\nAnswer:`,
        choices,
        gold: Math.floor(rnd() * n),
        lls: choices.map(() => -1 - 9 * rnd()),
      };
    });
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${dir}/d.jsonl`, docs.map((d) => JSON.stringify(d)).join("\n") + "\n");
    const ref = JSON.parse(
      await runPython(
        `import json, sys
from lm_eval.api.task import ConfigurableTask
from lm_eval.api.metrics import mean_stderr
t = ConfigurableTask(config={"task": "t", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": sys.argv[1]}},
    "test_split": "test", "output_type": "multiple_choice", "doc_to_text": "{{q}}", "doc_to_choice": "{{choices}}",
    "doc_to_target": "{{gold}}", "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}, {"metric": "acc_bytes", "higher_is_better": True}]})
out = [t.process_results(d, [(l, False) for l in d["lls"]]) for d in t.test_docs()]
print(json.dumps({"docs": out, "stderr": {k: mean_stderr([o[k] for o in out]) for k in ["acc", "acc_norm", "acc_bytes"]}}))`,
        [`${dir}/d.jsonl`],
      ).then((s) => s.trim().split("\n").at(-1)!),
    );
    await Deno.remove(dir, { recursive: true });
    const ours = docs.map((d) => multipleChoice(d.lls, d.choices, d.gold));
    assert.deepStrictEqual(ours, ref.docs);
    for (const k of ["acc", "acc_norm", "acc_bytes"] as const) {
      const xs = ours.map((o) => o[k]);
      assert.ok(Math.abs(meanStderr(xs) - ref.stderr[k]) < 1e-12, `${k} stderr`);
      assert.ok(mean(xs) > 0 && mean(xs) < 1, `${k} is not constant over the documents`);
    }
    assert.ok(
      ours.some((o) => o.acc !== o.acc_norm) && ours.some((o) => o.acc_norm !== o.acc_bytes),
      "metrics disagree somewhere",
    );
  },
});

Deno.test({
  name: "perplexity and its bootstrap stderr equal lm-eval's (random.Random(i) chunks, random.choices)",
  ignore: !hasLmEval,
  fn: async () => {
    const lls = Array.from({ length: 37 }, (_, i) => -0.3 - ((i * 7919) % 101) / 13);
    const ref = JSON.parse(
      await runPython(
        `import json, os, sys
os.environ["DISABLE_MULTIPROC"] = "1"
from lm_eval.api.metrics import bootstrap_stderr, perplexity
xs = json.loads(sys.argv[1])
print(json.dumps({"ppl": perplexity(xs), "se": bootstrap_stderr(perplexity, xs, 3000)}))`,
        [JSON.stringify(lls)],
      ).then((s) => s.trim().split("\n").at(-1)!),
    );
    assert.ok(Math.abs(perplexityOf(lls) - ref.ppl) <= 1e-12 * ref.ppl, `${perplexityOf(lls)} vs ${ref.ppl}`);
    const se = bootstrapStderr(perplexityOf, lls, 3000);
    assert.ok(Math.abs(se - ref.se) <= 1e-9 * ref.se, `bootstrap stderr ${se} vs lm-eval's ${ref.se}`);
    // Another seed schedule (one chunk fewer) must give another value: the draws matter.
    assert.notStrictEqual(bootstrapStderr(perplexityOf, lls, 2000), se);
  },
});

Deno.test({
  name:
    "a group's acc (weighted by size) and pooled stderr equal lm-eval's aggregate_subtask_metrics / pooled_sample_stderr",
  ignore: !hasLmEval,
  fn: async () => {
    const parts = [[1, 0, 1, 1], [0, 0, 1], [1, 1, 1, 0, 0, 1, 0]].map((xs) => ({
      n: xs.length,
      metrics: { acc: mean(xs), acc_stderr: meanStderr(xs) },
    }));
    const ref = JSON.parse(
      await runPython(
        `import json, sys
from lm_eval.api.metrics import aggregate_subtask_metrics, pooled_sample_stderr
p = json.loads(sys.argv[1])
print(json.dumps({"acc": aggregate_subtask_metrics([x["metrics"]["acc"] for x in p], [x["n"] for x in p], True),
  "se": float(pooled_sample_stderr([x["metrics"]["acc_stderr"] for x in p], [x["n"] for x in p]))}))`,
        [JSON.stringify(parts)],
      ).then((s) => s.trim().split("\n").at(-1)!),
    );
    const g = groupMetrics(parts);
    assert.ok(
      Math.abs(g.acc - ref.acc) < 1e-12 && Math.abs(g.acc_stderr - ref.se) < 1e-12,
      JSON.stringify([g, ref]),
    );
  },
});
