// `--tasks`: zero-shot (and mmlu few-shot) accuracy beside perplexity. Before any model work each
// entry's data is read (a local folder named `task=FOLDER`, else the task's Hub dataset) and
// checked, and every request is encoded with each model's tokenizer; after a cell's perplexity
// the same loaded model scores every task, one row each (mmlu: a row per subject and the group).

import { createHash } from "node:crypto";
import type { ModelConfig } from "../io/config.ts";
import type { TextTokenizer } from "../io/tokenizer.ts";
import type { CausalLM } from "../model/model.ts";
import type { TaskRow } from "../eval/results.ts";
import { hubTasksData, localTaskData, type TaskData } from "../eval/task_data.ts";
import {
  evaluateTask,
  groupMetrics,
  type PreparedTask,
  prepareTask,
  type TaskScore,
} from "../eval/task_eval.ts";
import { expandTask, type Task } from "../eval/tasks.ts";
import { checkIdsInVocab } from "./checks.ts";
import type { BenchOptions, TaskEntry } from "./options.ts";

export interface LoadedEntry {
  entry: TaskEntry;
  tasks: { task: Task; data: TaskData }[];
}

/** Every entry's rows, read and checked (columns, empty splits, few-shot rows) before model work. */
export async function loadTasks(o: BenchOptions, log: (s: string) => void): Promise<LoadedEntry[]> {
  const out: LoadedEntry[] = [];
  const shots = o["num-fewshot"] > 0;
  for (const entry of o.tasks ?? []) {
    const expanded = expandTask(entry.name);
    const data = entry.dir === null
      ? await hubTasksData(expanded, shots, { log })
      : await Promise.all(expanded.map((t) => localTaskData(t, entry.dir!, shots)));
    const tasks = expanded.map((task, i) => ({ task, data: data[i] }));
    const docs = tasks.reduce((s, t) => s + t.data.docs.length, 0);
    log(
      `task ${entry.name}: ${docs} documents${tasks.length > 1 ? ` in ${tasks.length} subtasks` : ""} from ${
        entry.dir ?? tasks[0].data.source
      }${o.limit ? ` (first ${o.limit} of each)` : ""}`,
    );
    out.push({ entry, tasks });
  }
  return out;
}

export interface ModelTasks {
  entry: TaskEntry;
  prepared: PreparedTask[];
}

/** The entries' requests encoded with one model's tokenizer, ids checked against its vocabulary. */
export function encodeTasks(
  spec: string,
  loaded: LoadedEntry[],
  tok: TextTokenizer,
  config: ModelConfig,
  o: BenchOptions,
): ModelTasks[] {
  return loaded.map(({ entry, tasks }) => ({
    entry,
    prepared: tasks.map(({ task, data }) => {
      let p;
      try {
        p = prepareTask(task, data, tok, {
          limit: o.limit,
          numFewshot: o["num-fewshot"],
          maxLength: config.maxPositions,
        });
      } catch (e) {
        throw new Error(`--model ${spec} (its tokenizer and positions): ${(e as Error).message}`);
      }
      p.encoded.forEach((doc, i) =>
        doc.forEach((r, j) =>
          checkIdsInVocab(
            spec,
            `task ${task.name} (${data.source}) row ${i} request ${j}`,
            [...r.context, ...r.continuation],
            config.vocab,
          )
        )
      );
      return p;
    }),
  }));
}

/** The rows an entry writes: its tasks, and the group's own row (mmlu). */
export function entryTaskNames(name: string): string[] {
  const tasks = expandTask(name).map((t) => t.name);
  return tasks.length > 1 ? [...tasks, name] : tasks;
}

/** The identity of a task row: its cell's key with the task, limit and shots in place of a dataset. */
export const taskKeyName = (task: string, o: BenchOptions) =>
  `task:${task}:limit=${o.limit ?? "all"}:shots=${o["num-fewshot"]}`;

/** A task row before run.ts stamps it with the time and the kernels the cell ran. */
export type TaskResult = Omit<TaskRow, "date" | "kernels">;

/** What a task row shares with the cell's perplexity rows. */
export type RowCommon = Omit<
  TaskResult,
  | "key"
  | "task"
  | "group"
  | "subtasks"
  | "num_fewshot"
  | "limit"
  | "n"
  | "requests"
  | "metrics"
  | "dataset"
  | "dataset_config"
  | "dataset_split"
  | "dataset_revision"
  | "dataset_sha256"
  | "dataset_source"
  | "max_length"
  | "eval_seconds"
  | "requests_per_second"
>;

/** Score one entry's tasks on a loaded model: a row per task, and a group row for mmlu. */
export async function runEntry(
  model: CausalLM,
  mt: ModelTasks,
  common: RowCommon,
  key: (name: string) => string,
  o: BenchOptions,
  log: (s: string) => void,
): Promise<TaskResult[]> {
  const maxLength = model.config.maxPositions;
  const rows: TaskResult[] = [];
  const total = mt.prepared.reduce((s, p) => s + p.encoded.flat().length, 0);
  let before = 0, last = 0, shown = -1;
  const t0 = performance.now();
  const scores: TaskScore[] = [];
  for (const p of mt.prepared) {
    const s = await evaluateTask(model, p, {
      maxLength,
      onProgress: (done) => {
        const now = performance.now(), all = before + done;
        if ((now - last < 5000 && all < total) || all === shown) return;
        last = now;
        shown = all;
        const rate = all / ((now - t0) / 1000);
        log(
          `  ${p.task.name}: ${all}/${total} requests, ${rate.toFixed(1)}/s, ETA ${
            ((total - all) / rate).toFixed(0)
          } s`,
        );
      },
    });
    before += s.requests;
    scores.push(s);
    rows.push(taskRow(common, p, s, key(p.task.name), maxLength, o));
    if (!p.task.group) log(`  ${p.task.name}: ${metricLine(s.metrics)} (${s.n} documents)`);
  }
  const group = mt.prepared[0].task.group;
  if (group && mt.entry.name === group) {
    const metrics = groupMetrics(scores);
    const first = rows[0];
    const seconds = scores.reduce((a, s) => a + s.seconds, 0);
    const requests = scores.reduce((a, s) => a + s.requests, 0);
    rows.push({
      ...first,
      key: key(group),
      task: group,
      group: null,
      subtasks: scores.length,
      n: scores.reduce((a, s) => a + s.n, 0),
      requests,
      metrics: finite(metrics),
      dataset_config: null,
      // The subjects' sha256, one per line, hashed: the group's data as a whole.
      dataset_sha256: createHash("sha256").update(rows.map((r) => r.dataset_sha256).join("\n")).digest("hex"),
      dataset_source: mt.entry.dir ?? first.dataset_source.replace(/\/[^/]+$/, ""),
      eval_seconds: seconds,
      requests_per_second: requests / seconds,
    });
    log(`  ${group}: ${metricLine(metrics)} (${scores.length} subjects)`);
  }
  return rows;
}

/** Metrics as rows hold them: NaN (a stderr of one document) as null, lm-eval's "N/A". */
const finite = (m: Record<string, number>) =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Number.isFinite(v) ? v : null]));

const metricLine = (m: Record<string, number>) =>
  Object.entries(m).filter(([k]) => !k.endsWith("_stderr")).map(([k, v]) =>
    `${k} ${k === "perplexity" ? v.toFixed(3) : v.toFixed(4)} ± ${(m[`${k}_stderr`] ?? NaN).toFixed(4)}`
  ).join(", ");

function taskRow(
  common: RowCommon,
  p: PreparedTask,
  s: TaskScore,
  key: string,
  maxLength: number,
  o: BenchOptions,
): TaskResult {
  return {
    ...common,
    key,
    task: p.task.name,
    group: p.task.group ?? null,
    subtasks: null,
    num_fewshot: p.numFewshot,
    limit: o.limit ?? null,
    n: s.n,
    requests: s.requests,
    metrics: finite(s.metrics),
    dataset: p.task.repo,
    dataset_config: p.task.config,
    dataset_split: p.task.split,
    dataset_revision: p.data.revision,
    dataset_sha256: p.data.sha256,
    dataset_source: p.data.source,
    max_length: maxLength,
    eval_seconds: s.seconds,
    requests_per_second: s.requests / s.seconds,
  };
}
