// A task's rows, from the Hub or from a local folder laid out like its Hub dataset repo: the
// parquet files of the task's split (`<split>-*.parquet`, `<split>.parquet` or
// `<split>/*.parquet`, under the config's folder when the repo has one: `arc_easy=DIR` reads
// `DIR/ARC-Easy/test-*.parquet`), every column read (structs and lists as objects and arrays), in
// file order. From the Hub: the repo's main branch, else the Hub's parquet conversion
// (refs/convert/parquet, `<config>/<split>/0000.parquet`), through our cache; the commit and the
// files' sha256 go into each row.

import { parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { type HubConfig, snapshot } from "../hub/hub.ts";
import { sha256Hex } from "./text.ts";
import { checkDocs, type Doc, type Task } from "./tasks.ts";

export interface TaskData {
  /** Rows of the evaluated split, checked for the task's columns. */
  docs: Doc[];
  /** Rows of the few-shot split (tasks that have one), else empty. */
  shots: Doc[];
  /** A local folder, or hf://datasets/<repo>@<commit>/<config>. */
  source: string;
  /** The Hub commit (null: a local folder). */
  revision: string | null;
  /** sha256 of the split's file (or of the list of its files' sha256, one per line). */
  sha256: string;
}

/** Of a repo's relative paths, the parquet files of `split` (under the task's config folder when present). */
export function matchSplit(task: Task, paths: string[], split = task.split): string[] {
  let files = paths.filter((p) => {
    if (!p.endsWith(".parquet")) return false;
    const parts = p.split("/"), base = parts.at(-1)!;
    return base.startsWith(`${split}-`) || base === `${split}.parquet` || parts.at(-2) === split;
  });
  if (task.config && files.some((p) => p.split("/").includes(task.config!))) {
    files = files.filter((p) => p.split("/").includes(task.config!));
  }
  return files.sort();
}

/** The split's parquet files under `dir`, relative paths sorted. */
export async function splitFiles(task: Task, dir: string, split = task.split): Promise<string[]> {
  const all: string[] = [];
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(`${d}/${e.name}`, r);
      else all.push(r);
    }
  };
  await walk(dir, "").catch((e) => {
    throw new Error(`${task.name}=${dir}: ${(e as Error).message}`);
  });
  const files = matchSplit(task, all, split);
  if (!files.length) {
    throw new Error(
      `${task.name}=${dir}: no parquet files of split "${split}"${
        task.config ? ` (under ${task.config}/)` : ""
      } — the layout of ${task.repo}`,
    );
  }
  return files;
}

async function readParquet(files: string[]): Promise<Doc[]> {
  const docs: Doc[] = [];
  for (const f of files) {
    const bytes = await Deno.readFile(f);
    docs.push(...(await parquetReadObjects({ file: bytes.buffer, compressors })) as Doc[]);
  }
  return docs;
}

const combine = async (shas: string[]) =>
  shas.length === 1 ? shas[0] : await sha256Hex(new TextEncoder().encode(shas.join("\n")));

/** The task's rows from a local folder, checked for the columns its YAML reads. */
export async function loadTaskDocs(task: Task, dir: string, split = task.split): Promise<Doc[]> {
  const docs = await readParquet((await splitFiles(task, dir, split)).map((f) => `${dir}/${f}`));
  checkDocs(task, docs, dir, split);
  return docs;
}

/** A task's rows from a local folder (a --tasks name=FOLDER), with their checksum. */
export async function localTaskData(task: Task, dir: string, withShots: boolean): Promise<TaskData> {
  const files = await splitFiles(task, dir);
  const docs = await readParquet(files.map((f) => `${dir}/${f}`));
  checkDocs(task, docs, dir, task.split);
  const shots = withShots && task.fewshotSplit ? await loadTaskDocs(task, dir, task.fewshotSplit) : [];
  const shas = await Promise.all(files.map(async (f) => sha256Hex(await Deno.readFile(`${dir}/${f}`))));
  return { docs, shots, source: dir, revision: null, sha256: await combine(shas) };
}

/** A task's rows from its Hub repo (main, else refs/convert/parquet), cached like models. */
export async function hubTaskData(
  task: Task,
  withShots: boolean,
  o: { hub?: HubConfig; log?: (s: string) => void } = {},
): Promise<TaskData> {
  return (await hubTasksData([task], withShots, o))[0];
}

/**
 * The rows of tasks that share one Hub repo (mmlu's 57 subjects: one config each) from a single
 * snapshot: one listing and one download pass, the files every task needs or the next revision.
 */
export async function hubTasksData(
  tasks: Task[],
  withShots: boolean,
  o: { hub?: HubConfig; log?: (s: string) => void } = {},
): Promise<TaskData[]> {
  const repo = tasks[0].repo, what = tasks.length > 1 ? `${repo} (${tasks.length} tasks)` : tasks[0].name;
  if (tasks.some((t) => t.repo !== repo)) throw new Error(`hubTasksData: tasks of several repos`);
  const splitsOf = (t: Task) => [t.split, ...(withShots && t.fewshotSplit ? [t.fewshotSplit] : [])];
  let snap, lastError: Error | null = null;
  for (const revision of ["main", "refs/convert/parquet"]) {
    try {
      snap = await snapshot(repo, {
        type: "dataset",
        revision,
        allow: (p) => p.endsWith(".parquet"),
        choose: (paths) => {
          const per = tasks.flatMap((t) => splitsOf(t).map((s) => matchSplit(t, paths, s)));
          return per.every((f) => f.length) ? [...new Set(per.flat())] : [];
        },
        config: o.hub,
        log: o.log,
      });
      break;
    } catch (e) {
      lastError = e as Error;
      if (!/no files to download/.test(lastError.message)) throw new Error(`${what}: ${lastError.message}`);
    }
  }
  if (!snap) {
    const t = tasks[0], splits = splitsOf(t);
    throw new Error(
      `${what}: ${repo} has no parquet files of split${splits.length > 1 ? "s" : ""} ${splits.join(", ")}${
        tasks.length === 1 && t.config ? ` under ${t.config}/` : ""
      } (main or refs/convert/parquet): ${lastError?.message}`,
    );
  }
  const dir = snap.dir, paths = snap.files.map((f) => f.path);
  const where = `${repo}@${snap.commit}`;
  const byPath = new Map(snap.files.map((f) => [f.path, f.etag]));
  const out: TaskData[] = [];
  for (const task of tasks) {
    const files = matchSplit(task, paths);
    const docs = await readParquet(files.map((f) => `${dir}/${f}`));
    checkDocs(task, docs, where, task.split);
    let shots: Doc[] = [];
    if (splitsOf(task).length > 1) {
      shots = await readParquet(matchSplit(task, paths, task.fewshotSplit).map((f) => `${dir}/${f}`));
      checkDocs(task, shots, where, task.fewshotSplit!);
    }
    const shas = await Promise.all(
      files.map(async (f) => {
        const e = byPath.get(f)!;
        return e.length === 64 ? e : sha256Hex(await Deno.readFile(`${dir}/${f}`));
      }),
    );
    out.push({
      docs,
      shots,
      source: `hf://datasets/${where}${task.config ? `/${task.config}` : ""}`,
      revision: snap.commit,
      sha256: await combine(shas),
    });
  }
  return out;
}
