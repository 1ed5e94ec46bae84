// --tasks end to end on stories260K with local task folders (Hub layouts, written by the test):
// rows with lm-eval's metric names, equal to scoring the same requests by recomputing every
// context (no prefix reuse) and lm-eval's metrics by hand; an accuracy table and figures; --resume
// runs nothing twice; bad input (unknown task, a missing column, an empty split, --limit 0, a
// folder of another layout) exits 2 before any model work, with nothing written.

import assert from "node:assert";
import { benchCli } from "../helpers.ts";
import { parseBenchArgs, runBench } from "../../lib/cli/bench.ts";
import { readTaskRows } from "../../lib/eval/results.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { loadModel } from "../../lib/load.ts";
import { loglikelihood } from "../../lib/eval/loglikelihood.ts";
import { hubTaskData, localTaskData } from "../../lib/eval/task_data.ts";
import { startFakeHub, useHub } from "../hub_server.ts";
import { taskMetrics } from "../../lib/eval/task_eval.ts";
import { getTask } from "../../lib/eval/tasks.ts";
import { FIXTURES, pythonHas, runPython } from "../python.ts";
import { MMLU_SUBJECTS } from "../../lib/eval/mmlu.ts";
import { writeTaskFolders } from "../../datasets/local_tasks.ts";

const STORIES = `${FIXTURES}/stories260K`;

const bench = (args: string[]) => benchCli(args, { HF_HUB_OFFLINE: "1" });

Deno.test("--tasks: accuracy rows equal recomputed scoring and lm-eval's metrics; table, figures, resume", async () => {
  const root = await Deno.makeTempDir(), out = `${root}/out`;
  const dirs = await writeTaskFolders(`${root}/tasks`, 10);
  const tasks = ["piqa", "winogrande", "lambada_openai", "boolq"].map((t) => `${t}=${dirs[t]}`).join(",");
  const args = [
    ...[
      "--model",
      STORIES,
      "--methods",
      "fp,rtn",
      "--bits",
      "4",
      "--group-size",
      "-1",
      "--tasks",
      tasks,
      "--limit",
      "8",
    ],
    ...["--decode-tokens", "0", "--gemv-reps", "0", "--quiet", "--out", out],
  ];
  try {
    const o = parseBenchArgs(args);
    assert.ok(o !== "help");
    assert.deepStrictEqual(o.dataset, [], "--tasks alone evaluates no perplexity text");
    await runBench(o);
    const rows = await readTaskRows(`${out}/results.jsonl`);
    assert.strictEqual(rows.length, 8, "2 cells × 4 tasks");
    for (const r of rows) {
      assert.strictEqual(r.n, 8);
      assert.strictEqual(r.limit, 8);
      assert.match(r.dataset_sha256, /^[0-9a-f]{64}$/);
      assert.ok(r.requests_per_second > 0);
    }
    // The FP rows against an independent path: every request recomputed, metrics from the parts.
    const gpu = await getGpu(), tok = await loadTokenizer(STORIES), model = await loadModel(gpu, STORIES);
    try {
      for (const name of ["piqa", "winogrande", "lambada_openai", "boolq"]) {
        const t = getTask(name), data = await localTaskData(t, dirs[name], false);
        const built = data.docs.slice(0, 8).map((d) => t.build(d));
        const lls = await loglikelihood(model, tok, built.flatMap((b) => b.requests), {
          maxLength: model.config.maxPositions,
        });
        let k = 0;
        const perDoc = built.map((b) => lls.slice(k, k += b.requests.length));
        const want = taskMetrics(t, built, perDoc);
        const row = rows.find((r) => r.method === "fp" && r.task === name)!;
        for (const [m, v] of Object.entries(want)) {
          const got = row.metrics[m];
          assert.ok(
            got !== null && Math.abs(got - v) <= 1e-6 * Math.max(1, Math.abs(v)),
            `${name} ${m}: ${got} vs ${v}`,
          );
        }
        assert.strictEqual(row.dataset, t.repo);
        assert.strictEqual(row.dataset_source, dirs[name]);
      }
    } finally {
      model.release();
    }
    const lam = rows.find((r) => r.method === "fp" && r.task === "lambada_openai")!;
    assert.ok(
      lam.metrics.perplexity! > 1 && lam.metrics.perplexity_stderr! > 0,
      "lambada's perplexity and stderr",
    );
    const table = await Deno.readTextFile(`${out}/tables.md`);
    assert.match(table, /### Accuracy — stories260K \(lm-eval acc, 0-shot, first 8 documents per task\)/);
    assert.match(
      table,
      /\| setting \| piqa \(n=8\) \| winogrande \(n=8\) \| lambada_openai \(n=8\) \| boolq \(n=8\) \| avg \| % of FP \|/,
    );
    assert.match(
      table,
      /\| rtn W4 per-channel \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|/,
    );
    for (const f of ["acc-by-bits", "acc-retained"]) await Deno.stat(`${out}/figures/${f}.png`);
    // Resume: every row is there, nothing runs again.
    const before = await Deno.readTextFile(`${out}/results.jsonl`);
    await runBench(parseBenchArgs([...args, "--resume"]) as never);
    assert.strictEqual(await Deno.readTextFile(`${out}/results.jsonl`), before);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("--tasks refuses bad input before any model work (exit 2, nothing written)", async () => {
  const root = await Deno.makeTempDir();
  const dirs = await writeTaskFolders(`${root}/tasks`, 3);
  const { parquetWriteBuffer } = await import("hyparquet-writer");
  const put = async (rel: string, cols: { name: string; data: unknown[]; type: "STRING" }[]) => {
    await Deno.mkdir(`${root}/${rel.slice(0, rel.lastIndexOf("/"))}`, { recursive: true });
    await Deno.writeFile(`${root}/${rel}`, new Uint8Array(parquetWriteBuffer({ columnData: cols })));
  };
  await put("nocol/data/validation-00000-of-00001.parquet", [{ name: "goal", data: ["g"], type: "STRING" }]);
  await put("empty/data/validation-00000-of-00001.parquet", [{ name: "goal", data: [], type: "STRING" }]);
  const base = ["--model", STORIES, "--decode-tokens", "0", "--gemv-reps", "0"];
  const cases: [string[], RegExp][] = [
    [["--tasks", "arc_easyy"], /--tasks: unknown task "arc_easyy"; one of arc_easy/],
    [["--tasks", `piqa=${root}/nocol`], /piqa: .*nocol split validation row 0 has no column "sol1"/],
    [["--tasks", `piqa=${root}/empty`], /piqa: .*empty has no rows in split validation/],
    [["--tasks", `piqa=${dirs.piqa}`, "--limit", "0"], /--limit takes a number of documents ≥ 1 per task/],
    [
      ["--tasks", `arc_easy=${dirs.piqa}`],
      /arc_easy=.*: no parquet files of split "test" \(under ARC-Easy\/\)/,
    ],
    [["--tasks", `piqa=${dirs.piqa}`, "--num-fewshot", "5"], /--num-fewshot: only mmlu's subjects/],
    [["--limit", "3"], /--limit counts a task's documents: it needs --tasks/],
  ];
  try {
    for (const [extra, re] of cases) {
      const out = `${root}/out-${cases.findIndex((c) => c[0] === extra)}`;
      const r = await bench([...base, ...extra, "--out", out]);
      assert.strictEqual(r.code, 2, `${extra.join(" ")}: exit ${r.code}\n${r.err}`);
      assert.match(r.err, re, extra.join(" "));
      const wrote = await Deno.stat(`${out}/results.jsonl`).then(() => true, () => false);
      assert.ok(!wrote, `${extra.join(" ")}: nothing written`);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("task data from the Hub: the split's parquet through the cache, commit and sha256 recorded; offline from the cache", async () => {
  const root = await Deno.makeTempDir();
  const dirs = await writeTaskFolders(root, 5);
  // boolq's repo (aps/super_glue) holds every SuperGLUE config: only boolq/validation-* is fetched.
  await Deno.mkdir(`${dirs.boolq}/rte`);
  await Deno.writeTextFile(`${dirs.boolq}/rte/validation-00000-of-00001.parquet`, "not read");
  await Deno.writeTextFile(`${dirs.boolq}/README.md`, "dataset card");
  const hub = await startFakeHub([{ type: "dataset", id: "aps/super_glue", dir: dirs.boolq }]);
  const restore = await useHub(hub.url);
  try {
    const t = getTask("boolq");
    const data = await hubTaskData(t, false);
    const local = await localTaskData(t, dirs.boolq, false);
    assert.deepStrictEqual(data.docs, local.docs);
    assert.strictEqual(data.sha256, local.sha256, "the LFS sha256 is the file's");
    assert.match(data.revision ?? "", /^[0-9a-f]{40}$/);
    assert.strictEqual(data.source, `hf://datasets/aps/super_glue@${data.revision}/boolq`);
    const got = hub.requests.filter((r) => r.includes("/resolve/"));
    assert.strictEqual(got.length, 1, got.join("\n"));
    assert.match(got[0], /boolq\/validation-00000-of-00001\.parquet/);
    // Offline: the cached snapshot serves.
    Deno.env.set("HF_HUB_OFFLINE", "1");
    const again = await hubTaskData(t, false);
    assert.deepStrictEqual(again.docs, data.docs);
    // A repo without the task's split (the Hub's conversion has none either): named.
    Deno.env.delete("HF_HUB_OFFLINE");
    await assert.rejects(
      hubTaskData(getTask("rte"), false),
      /rte: cannot get dataset nyu-mll\/glue@main from the Hub/,
    );
  } finally {
    Deno.env.delete("HF_HUB_OFFLINE");
    restore();
    await hub.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "--tasks mmlu=DIR: a row per subject and the group's, its acc weighted by subject size",
  ignore: !(await pythonHas("datasets")),
  fn: async () => {
    const root = await Deno.makeTempDir();
    try {
      // Every subject in cais/mmlu's layout (test and dev splits), written by Python's datasets.
      await runPython(
        `import sys, os, datasets
from itertools import cycle
root, subjects = sys.argv[1], sys.argv[2].split(",")
for k, s in enumerate(subjects):
    for split, n in [("test", 1 + k % 3), ("dev", 5)]:
        rows = [{"question": f"{s} {split} {i}?", "subject": s, "choices": ["one", "two", "three", "four"], "answer": (i + k) % 4} for i in range(n)]
        os.makedirs(f"{root}/{s}", exist_ok=True)
        datasets.Dataset.from_list(rows).to_parquet(f"{root}/{s}/{split}-00000-of-00001.parquet")`,
        [`${root}/mmlu`, MMLU_SUBJECTS.join(",")],
      );
      const out = `${root}/out`;
      await runBench(parseBenchArgs([
        ...["--model", STORIES, "--tasks", `mmlu=${root}/mmlu`, "--num-fewshot", "2"],
        ...["--decode-tokens", "0", "--gemv-reps", "0", "--quiet", "--out", out],
      ]) as never);
      const rows = await readTaskRows(`${out}/results.jsonl`);
      assert.strictEqual(rows.length, 58);
      const subjects = rows.filter((r) => r.group === "mmlu"), g = rows.find((r) => r.task === "mmlu")!;
      assert.strictEqual(subjects.length, 57);
      assert.strictEqual(g.subtasks, 57);
      assert.strictEqual(g.n, subjects.reduce((s, r) => s + r.n, 0));
      assert.strictEqual(g.num_fewshot, 2);
      const want = subjects.reduce((s, r) => s + r.n * r.metrics.acc!, 0) / g.n;
      assert.ok(Math.abs(g.metrics.acc! - want) < 1e-12, `${g.metrics.acc} vs ${want}`);
      assert.match(g.dataset_sha256, /^[0-9a-f]{64}$/);
      assert.notStrictEqual(g.dataset_sha256, subjects[0].dataset_sha256);
      // The table shows the group, not its 57 subjects.
      const table = await Deno.readTextFile(`${out}/tables.md`);
      assert.match(table, /\| setting \| mmlu \(n=\d+\) \| avg \|/);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
