// `deno task bench merge OUT DIR...`: join the outputs of shards (--shard i/n) of one matrix into
// one result set: rows matched by key (a finished row wins over an error row of the same cell),
// ordered as the unsharded run orders them, manifests joined; then the figures and tables.

import { appendResults, readRows, type Row } from "../eval/results.ts";
import { writeJsonAtomic } from "../provenance.ts";
import { writeReport } from "../report/report.ts";

export async function mergeRuns(
  out: string,
  dirs: string[],
  log: (s: string) => void = () => {},
): Promise<Row[]> {
  if (!dirs.length) {
    throw new Error("bench merge: name the run folders to merge (deno task bench merge OUT DIR...)");
  }
  if (await Deno.stat(`${out}/results.jsonl`).then(() => true, () => false)) {
    throw new Error(`bench merge: ${out}/results.jsonl exists; merge into a new folder`);
  }
  const manifests = [];
  const byKey = new Map<string, Row>();
  for (const d of dirs) {
    let m;
    try {
      m = JSON.parse(await Deno.readTextFile(`${d}/manifest.json`));
    } catch (e) {
      throw new Error(`bench merge: ${d}/manifest.json: ${(e as Error).message}`);
    }
    const rows = await readRows(`${d}/results.jsonl`);
    manifests.push({ dir: d, m });
    for (const r of rows) {
      if (!r.key) {
        throw new Error(
          `bench merge: ${d}/results.jsonl has a row without a key (written before shards existed)`,
        );
      }
      const prev = byKey.get(r.key);
      if (!prev || (prev.status === "error" && r.status === "ok")) byKey.set(r.key, r);
    }
    log(`${d}: ${rows.length} rows`);
  }
  const first = manifests[0].m;
  for (const { dir, m } of manifests.slice(1)) {
    const same = JSON.stringify([m.options, m.matrix, m.preset]) ===
      JSON.stringify([first.options, first.matrix, first.preset]);
    if (!same) {
      throw new Error(`bench merge: ${dir} ran another matrix or other options than ${manifests[0].dir}`);
    }
  }
  const datasets: string[] = first.matrix.datasets;
  const rows = [...byKey.values()].sort((a, b) =>
    (a.cell ?? 0) - (b.cell ?? 0) || datasets.indexOf(a.dataset) - datasets.indexOf(b.dataset)
  );
  await appendResults(out, rows);
  await writeJsonAtomic(`${out}/manifest.json`, {
    ...first,
    merged_from: dirs,
    invocations: manifests.flatMap(({ m }) => m.invocations ?? []),
  });
  await writeReport(out);
  return rows;
}
