// The rows the table notebooks show: a harness run folder, or "fresh": a quick smoke run of the
// harness on the notebook's model and data (fp, rtn, nf4, bnb-int8; calibration-free, minutes on llvmpipe).

import { parseBenchArgs, runBench } from "../cli/bench.ts";
import { readResults, readTaskRows, type ResultRow, type TaskRow } from "../eval/results.ts";
import type { Params } from "./nb.ts";

export async function readRuns(
  p: Params,
): Promise<{ dir: string; rows: ResultRow[]; preset: string | null }> {
  let dir = p.run;
  if (p.run === "fresh") {
    dir = await Deno.makeTempDir({ prefix: "quantlab-smoke-" });
    const o = parseBenchArgs([
      ...["--preset", "smoke", "--quick", "--model", p.model, "--dataset", p.dataset],
      ...["--methods", "fp,rtn,nf4,bnb-int8", "--seqlen", String(p.seqlen), "--out", dir, "--quiet"],
    ]);
    if (o === "help") throw new Error("unreachable");
    await runBench(o);
  }
  let rows: ResultRow[];
  try {
    rows = await readResults(`${dir}/results.jsonl`);
  } catch (e) {
    throw new Error(
      `${dir}/results.jsonl: ${(e as Error).message} (QUANTLAB_RUN names a harness run folder, or "fresh")`,
    );
  }
  if (!rows.length) throw new Error(`${dir}/results.jsonl has no result rows`);
  const manifest = await Deno.readTextFile(`${dir}/manifest.json`).then(JSON.parse, () => null);
  return { dir, rows, preset: manifest?.preset ?? null };
}

/** The task rows of a harness run folder (--tasks), for the accuracy notebook. */
export async function readTaskRuns(
  dir: string,
): Promise<{ dir: string; rows: TaskRow[]; preset: string | null }> {
  let rows: TaskRow[];
  try {
    rows = await readTaskRows(`${dir}/results.jsonl`);
  } catch (e) {
    throw new Error(
      `${dir}/results.jsonl: ${(e as Error).message} (QUANTLAB_RUN names a harness run folder)`,
    );
  }
  if (!rows.length) throw new Error(`${dir}/results.jsonl has no task rows (a run with --tasks)`);
  const manifest = await Deno.readTextFile(`${dir}/manifest.json`).then(JSON.parse, () => null);
  return { dir, rows, preset: manifest?.preset ?? null };
}
