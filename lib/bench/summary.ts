// The closing line of a run (and of `bench merge` / `figures`): cells ok / failed / kept from an
// earlier run, the failed cells named with their stage, and the exit status it implies — 1 when
// any cell failed (2 stays "refused before any work"), so a CI job never reads failures as success.

import type { Row } from "../eval/results.ts";
import { settingLabel } from "./matrix.ts";

export interface RunSummary {
  line: string;
  failed: number;
  exitCode: 0 | 1;
}

/** `rows`: this run's rows (or a result set's); `skipped`: cells finished before (--resume). */
export function summarize(rows: Row[], skipped = 0): RunSummary {
  const byCell = new Map<string, Row[]>();
  for (const r of rows) {
    const k = `${r.model}\u0000${r.cell ?? r.key}`;
    byCell.set(k, [...(byCell.get(k) ?? []), r]);
  }
  const failedCells = [...byCell.values()].filter((rs) => rs.some((r) => r.status === "error"));
  const ok = byCell.size - failedCells.length;
  const named = failedCells.map((rs) => {
    const e = rs.find((r) => r.status === "error")!;
    const setting = settingLabel({ method: e.method, bits: e.bits, groupSize: e.group_size });
    return `cell ${e.cell ?? "?"} ${setting} on ${e.model} (${e.status === "error" ? e.stage : ""})`;
  });
  let line = `cells: ${ok} ok, ${failedCells.length} failed, ${skipped} skipped (finished before)`;
  if (failedCells.length && !ok && !skipped) {
    line = `every cell failed (${failedCells.length}): ${named.join("; ")}`;
  } else if (failedCells.length) line += `; failed: ${named.join("; ")}`;
  return { line, failed: failedCells.length, exitCode: failedCells.length ? 1 : 0 };
}
