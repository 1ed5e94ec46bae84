// A task's rows from a local folder laid out like its Hub dataset repo: the parquet files of the
// task's split (`<split>-*.parquet`, `<split>.parquet` or `<split>/*.parquet`, under the
// config's folder when the repo has one: `arc_easy=DIR` reads `DIR/ARC-Easy/test-*.parquet`),
// every column read (structs and lists as objects and arrays), in file order.

import { parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { checkDocs, type Doc, type Task } from "./tasks.ts";

/** The split's parquet files under `dir`, relative paths sorted. */
export async function splitFiles(task: Task, dir: string): Promise<string[]> {
  const all: string[] = [];
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(`${d}/${e.name}`, r);
      else if (r.endsWith(".parquet")) all.push(r);
    }
  };
  await walk(dir, "").catch((e) => {
    throw new Error(`${task.name}=${dir}: ${(e as Error).message}`);
  });
  const split = task.split;
  let files = all.filter((p) => {
    const parts = p.split("/"), base = parts.at(-1)!;
    return base.startsWith(`${split}-`) || base === `${split}.parquet` || parts.at(-2) === split;
  });
  if (task.config && files.some((p) => p.split("/").includes(task.config!))) {
    files = files.filter((p) => p.split("/").includes(task.config!));
  }
  if (!files.length) {
    throw new Error(
      `${task.name}=${dir}: no parquet files of split "${split}"${
        task.config ? ` (under ${task.config}/)` : ""
      } — the layout of ${task.repo}`,
    );
  }
  return files.sort();
}

/** The task's rows from a local folder, checked for the columns its YAML reads. */
export async function loadTaskDocs(task: Task, dir: string): Promise<Doc[]> {
  const docs: Doc[] = [];
  for (const f of await splitFiles(task, dir)) {
    const bytes = await Deno.readFile(`${dir}/${f}`);
    docs.push(...(await parquetReadObjects({ file: bytes.buffer, compressors })) as Doc[]);
  }
  checkDocs(task, docs, dir);
  return docs;
}
