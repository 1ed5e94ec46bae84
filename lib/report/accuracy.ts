// Accuracy of a run's task rows, in the shape of AutoRound's and the low-bit leaderboard's tables:
// per model, a row per setting, a column per task (lm-eval's acc; mmlu as its group row, its
// subjects not shown one by one), the average over the tasks, and that average as a share of FP's
// (the "int4 retains ~98% of the accuracy" claim). Figures: accuracy by bits per method, one
// panel per task, and the share of FP's average retained by each setting.

import type { TopLevelSpec } from "vega-lite";
import type { TaskRow } from "../eval/results.ts";
import { rowLabels } from "../methods/registry.ts";

const CONFIG = { font: "DejaVu Sans", view: { stroke: "#ddd" } };
const shortModel = (m: string) => m.replace(/\/+$/, "").split("/").pop()!;
const f = (x: number | null | undefined, d = 4) => (x === null || x === undefined ? "—" : x.toFixed(d));

/** Rows shown: every task's own row, except the subjects of a group whose group row is there. */
export function shownRows(rows: TaskRow[]): TaskRow[] {
  const groups = new Set(rows.filter((r) => r.subtasks !== null).map((r) => `${r.model}|${r.task}`));
  return rows.filter((r) => !(r.group && groups.has(`${r.model}|${r.group}`)));
}

interface Setting {
  model: string;
  label: string;
  method: string;
  bits: number | null;
  acc: Map<string, number | null>;
  avg: number | null;
}

/** Per model × setting: acc of each task and their mean (null when a task is missing or NaN). */
export function settingsAcc(rows: TaskRow[]): { tasks: string[]; settings: Setting[] } {
  const shown = shownRows(rows);
  const tasks = [...new Set(shown.map((r) => r.task))];
  const by = new Map<string, Setting>();
  for (const r of shown) {
    const label = rowLabels(r).series, id = `${r.model}|${label}`;
    const s = by.get(id) ??
      { model: r.model, label, method: r.method, bits: r.bits, acc: new Map(), avg: null };
    s.acc.set(r.task, r.metrics.acc ?? null);
    by.set(id, s);
  }
  const settings = [...by.values()];
  for (const s of settings) {
    const xs = tasks.map((t) => s.acc.get(t));
    s.avg = xs.every((x) => typeof x === "number")
      ? (xs as number[]).reduce((a, b) => a + b, 0) / xs.length
      : null;
  }
  return { tasks, settings };
}

/** FP's average for the model, when the run has an FP row for every task. */
const fpAvg = (settings: Setting[], model: string) =>
  settings.find((s) => s.model === model && s.method === "fp")?.avg ?? null;

export function accuracyTables(rows: TaskRow[]): string {
  if (!rows.length) return "";
  const { tasks, settings } = settingsAcc(rows);
  const r0 = rows[0];
  const out: string[] = [];
  for (const model of [...new Set(settings.map((s) => s.model))]) {
    const ss = settings.filter((s) => s.model === model), fp = fpAvg(settings, model);
    const n = (t: string) => rows.find((r) => r.model === model && r.task === t)?.n;
    out.push(
      `### Accuracy — ${shortModel(model)} (lm-eval acc, ${r0.num_fewshot}-shot${
        r0.limit ? `, first ${r0.limit} documents per task` : ""
      })`,
      "",
      `| setting | ${tasks.map((t) => `${t} (n=${n(t) ?? "?"})`).join(" | ")} | avg |${
        fp ? " % of FP |" : ""
      }`,
      `|---|${tasks.map(() => "---:").join("|")}|---:|${fp ? "---:|" : ""}`,
    );
    for (const s of ss) {
      const pct = fp && s.avg !== null ? `${((100 * s.avg) / fp).toFixed(1)} |` : fp ? "— |" : "";
      out.push(
        `| ${s.label} | ${tasks.map((t) => f(s.acc.get(t))).join(" | ")} | ${f(s.avg)} |${
          pct ? ` ${pct}` : ""
        }`,
      );
    }
    out.push("");
  }
  out.push(
    "acc: lm-eval's (argmax log-likelihood; lambada_openai: the last word greedy); each row's stderr, " +
      "acc_norm and lambada's perplexity are in results.jsonl.",
    "",
  );
  return out.join("\n");
}

interface Datum {
  task: string;
  setting: string;
  method: string;
  bits: number | null;
  acc: number;
  [k: string]: unknown;
}

function accData(rows: TaskRow[]): Datum[] {
  return shownRows(rows).filter((r) => typeof r.metrics.acc === "number").map((r) => ({
    task: `${shortModel(r.model)} · ${r.task}`,
    setting: rowLabels(r).series,
    method: r.method,
    bits: r.bits,
    acc: r.metrics.acc as number,
    lo: (r.metrics.acc as number) - (r.metrics.acc_stderr ?? 0),
    hi: (r.metrics.acc as number) + (r.metrics.acc_stderr ?? 0),
  }));
}

export function accByBits(rows: TaskRow[]): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: "Accuracy by bits per method (FP as the dashed line, bars ± stderr)",
    data: { values: accData(rows) },
    facet: { field: "task", type: "nominal", title: null },
    columns: 3,
    spec: {
      width: 220,
      height: 160,
      layer: [
        {
          transform: [{ filter: "datum.method === 'fp'" }],
          mark: { type: "rule", strokeDash: [4, 4], color: "#444" },
          encoding: { y: { field: "acc", type: "quantitative" } },
        },
        {
          transform: [{ filter: "datum.bits !== null && datum.method !== 'fp'" }],
          mark: { type: "line", point: true },
          encoding: {
            x: { field: "bits", type: "ordinal", sort: "descending", axis: { labelAngle: 0 } },
            y: { field: "acc", type: "quantitative", scale: { zero: false }, title: "acc" },
            color: { field: "method", type: "nominal" },
            tooltip: [{ field: "setting" }, { field: "acc", format: ".4f" }],
          },
        },
        {
          transform: [{ filter: "datum.bits !== null && datum.method !== 'fp'" }],
          mark: { type: "errorbar" },
          encoding: {
            x: { field: "bits", type: "ordinal", sort: "descending" },
            y: { field: "lo", type: "quantitative", title: "acc" },
            y2: { field: "hi" },
            color: { field: "method", type: "nominal" },
          },
        },
      ],
    },
    resolve: { scale: { y: "independent" } },
    config: CONFIG,
  } as TopLevelSpec;
}

export function accRetained(rows: TaskRow[]): TopLevelSpec {
  const { settings } = settingsAcc(rows);
  const values = settings.flatMap((s) => {
    const fp = fpAvg(settings, s.model);
    if (!fp || s.avg === null || s.method === "fp") return [];
    return [{
      model: shortModel(s.model),
      setting: s.label,
      method: s.method,
      bits: s.bits,
      retained: (100 * s.avg) / fp,
    }];
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: "Average accuracy retained vs FP (rule: the 98% of the int4 claim)",
    data: { values },
    facet: { field: "model", type: "nominal", title: null },
    spec: {
      width: 320,
      layer: [
        {
          mark: { type: "point", filled: true, size: 80 },
          encoding: {
            y: { field: "setting", type: "nominal", sort: null, title: null },
            x: {
              field: "retained",
              type: "quantitative",
              title: "% of FP's average acc",
              scale: { zero: false },
            },
            color: { field: "method", type: "nominal", legend: null },
            tooltip: [{ field: "setting" }, { field: "retained", format: ".1f" }],
          },
        },
        { mark: { type: "rule", strokeDash: [4, 4], color: "#444" }, encoding: { x: { datum: 98 } } },
      ],
    },
    config: CONFIG,
  } as TopLevelSpec;
}

export const ACCURACY_FIGURES: Record<string, (rows: TaskRow[]) => TopLevelSpec> = {
  "acc-by-bits": accByBits,
  "acc-retained": accRetained,
};
