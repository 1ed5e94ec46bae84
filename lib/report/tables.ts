// Markdown tables of a run, shaped like the papers': per model and dataset, rows are methods and
// columns their bits/group settings, with the paper's own number beside ours where the preset has
// it; then speed and memory per setting, and the cells that failed.

import { type ErrorRow, isPplRow, isTaskRow, type ResultRow, type Row } from "../eval/results.ts";
import { accuracyTables } from "./accuracy.ts";
import { PAPER_PPL, paperKey, PRESETS } from "../bench/presets.ts";
import { bpwOf, panelOf, settingOf } from "./figures.ts";
import { rowLabels } from "../methods/registry.ts";

const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined ? "—" : x.toFixed(d));

/** The column a row sits in: "FP", "W4 g128", "W3 per-channel", "W4 g64 dq" (its method's labels). */
const column = (r: ResultRow) => rowLabels(r).column;

export function pplTables(rows: ResultRow[], preset: string | null): string {
  const paper = (preset && PAPER_PPL[preset]) || {};
  const out: string[] = [];
  for (const panel of [...new Set(rows.map(panelOf))]) {
    const rs = rows.filter((r) => panelOf(r) === panel);
    const cols = [...new Set(rs.map(column))];
    const methods = [...new Set(rs.map((r) => r.method))];
    const r0 = rs[0];
    out.push(`### Perplexity — ${panel} (seqlen ${r0.seqlen}, ${r0.windows} windows)`, "");
    const cal = rs.find((r) => r.calibration)?.calibration;
    if (cal) {
      out.push(
        `Calibration (${
          [...new Set(rs.filter((r) => r.calibration).map((r) => r.method))].join(", ")
        }): ${cal.nsamples} windows of ${cal.seqlen} tokens from ${
          cal.file.split("/").pop()
        }, seed ${cal.seed}.`,
        "",
      );
    }
    out.push(`| method | ${cols.join(" | ")} |`, `|---|${cols.map(() => "---:").join("|")}|`);
    let anyPaper = false;
    for (const m of methods) {
      const cells = cols.map((c) => {
        const r = rs.find((r) => r.method === m && column(r) === c);
        if (!r) return "";
        const p = paper[paperKey(r.model, r.dataset, r.method, r.bits, r.group_size)];
        if (p !== undefined) anyPaper = true;
        return `${f(r.ppl)}${p !== undefined ? ` (paper ${p.toFixed(2)})` : ""}`;
      });
      out.push(`| ${m} | ${cells.join(" | ")} |`);
    }
    if (anyPaper) {
      out.push("", "(paper N): the published number for this model, data and setting (methods.md §3).");
    }
    out.push("");
  }
  return out.join("\n");
}

export function speedTable(rows: ResultRow[]): string {
  const out = [
    "### Speed and memory",
    "",
    "| model | setting | bits/weight | weight MB | GPU MB needed | peak MB | quant s | eval tok/s | decode tok/s | GEMV µs (block 0) | GEMV GB/s | % of copy GB/s |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const seen = new Set<string>();
  for (const r of rows) {
    const id = `${r.model}|${settingOf(r)}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const pct = r.gemv_gbps && r.copy_gbps ? (100 * r.gemv_gbps) / r.copy_gbps : null;
    out.push(
      `| ${r.model.split("/").pop()} | ${settingOf(r)} | ${f(bpwOf(r), 3)} | ${
        f((r.weight_bytes ?? r.model_gpu_bytes) / 1e6, 1)
      } | ${r.gpu_bytes_needed === null ? "—" : f(r.gpu_bytes_needed / 1e6, 1)} | ` +
        `${f(r.peak_gpu_bytes / 1e6, 1)} | ${f(r.quant_seconds, 1)} | ${f(r.tokens_per_second, 0)} | ` +
        `${f(r.decode_tokens_per_second, 1)} | ${f(r.gemv_us, 0)} | ${f(r.gemv_gbps, 2)} | ${f(pct, 0)} |`,
    );
  }
  return out.join("\n") + "\n";
}

export function errorTable(errors: ErrorRow[]): string {
  if (!errors.length) return "";
  return [
    "### Cells that failed",
    "",
    "| model | dataset | setting | stage | error |",
    "|---|---|---|---|---|",
    ...errors.map((e) =>
      `| ${e.model} | ${e.dataset} | ${e.method}${e.bits ? ` W${e.bits}` : ""}${
        e.group_size ? ` g${e.group_size}` : ""
      } | ${e.stage} | ${e.error.replaceAll("|", "\\|").replaceAll("\n", " ")} |`
    ),
    "",
  ].join("\n");
}

/** The whole tables.md of a run. */
export function tablesMarkdown(rows: Row[], preset: string | null, adapter: string | null): string {
  const ok = rows.filter(isPplRow);
  const errors = rows.filter((r): r is ErrorRow => r.status === "error");
  const notes = preset ? PRESETS[preset]?.notes ?? [] : [];
  return [
    `# Results${preset ? ` — preset ${preset}` : ""}`,
    "",
    adapter ? `Adapter: ${adapter}. Regenerate with \`deno task figures DIR\`.` : "",
    ...notes.map((n) => `- ${n}`),
    "",
    pplTables(ok, preset),
    accuracyTables(rows.filter(isTaskRow)),
    ok.length ? speedTable(ok) : "",
    errorTable(errors),
  ].join("\n");
}
