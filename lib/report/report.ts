// A run folder's figures and tables, regenerated from its rows alone (results.jsonl, plus the
// preset named in manifest.json for the paper numbers): DIR/figures/<name>.{vl.json,svg,png} and
// DIR/tables.md. Every file is written atomically.

import { isPplRow, isTaskRow, readRows } from "../eval/results.ts";
import { ACCURACY_FIGURES } from "./accuracy.ts";
import { writeFileAtomic, writeJsonAtomic, writeTextAtomic } from "../provenance.ts";
import { FIGURES } from "./figures.ts";
import { toPng, toSvg } from "./render.ts";
import { tablesMarkdown } from "./tables.ts";

/** Writes the report of `dir`; returns the files written. */
export async function writeReport(dir: string): Promise<string[]> {
  const rows = await readRows(`${dir}/results.jsonl`);
  const manifest = await Deno.readTextFile(`${dir}/manifest.json`).then(JSON.parse, () => null);
  const ok = rows.filter(isPplRow);
  const written: string[] = [];
  const tasks = rows.filter(isTaskRow);
  const figures = [
    ...Object.entries(FIGURES).map(([name, make]) => [name, () => make(ok)] as const),
    ...Object.entries(ACCURACY_FIGURES).map(([name, make]) => [name, () => make(tasks)] as const),
  ];
  for (const [name, make] of figures) {
    const spec = make();
    const values = (spec as { data?: { values?: unknown[] } }).data?.values ?? [];
    if (!values.length) continue; // e.g. no quantized rows: no quantization-time figure
    const base = `${dir}/figures/${name}`;
    const svg = await toSvg(spec);
    await writeJsonAtomic(`${base}.vl.json`, spec);
    await writeTextAtomic(`${base}.svg`, svg);
    await writeFileAtomic(`${base}.png`, [toPng(svg)]);
    written.push(`${base}.vl.json`, `${base}.svg`, `${base}.png`);
  }
  const adapter = ok[0]?.adapter ?? tasks[0]?.adapter ?? null;
  await writeTextAtomic(`${dir}/tables.md`, tablesMarkdown(rows, manifest?.preset ?? null, adapter));
  written.push(`${dir}/tables.md`);
  return written;
}
