// Task folders in their Hub repos' layouts, with rows made from a text file (not the benchmarks:
// stand-ins of the right shape for tests and the fixture accuracy run), written with
// hyparquet-writer (flat columns only: piqa, winogrande, lambada_openai, boolq).
//   deno run -A datasets/local_tasks.ts OUT N [TEXT]   N rows of each task under OUT/<task>

import { parquetWriteBuffer } from "hyparquet-writer";

const FIXTURE_TEXT = new URL("../../shared/fixtures/text/calibration.txt", import.meta.url).pathname;

type Col = { name: string; data: unknown[]; type: "STRING" | "INT64" };

async function write(dir: string, rel: string, cols: Col[]): Promise<void> {
  const path = `${dir}/${rel}`;
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const data = cols.map((
    c,
  ) => (c.type === "INT64" ? { ...c, data: c.data.map((x) => BigInt(x as number)) } : c));
  await Deno.writeFile(path, new Uint8Array(parquetWriteBuffer({ columnData: data as never })));
}

/** `n` documents each of piqa, winogrande, lambada_openai and boolq under `root/<task>`. */
export async function writeTaskFolders(
  root: string,
  n: number,
  text = FIXTURE_TEXT,
): Promise<Record<string, string>> {
  const lines = (await Deno.readTextFile(text)).split("\n")
    .map((l) => l.trim()).filter((l) => l.split(" ").length > 6);
  // At most 14 words: short enough for a small tokenizer's continuations to fit 512 positions.
  const pick = (i: number) => lines[(i * 7) % lines.length].split(" ").slice(0, 14).join(" ");
  const idx = Array.from({ length: n }, (_, i) => i);
  const dirs: Record<string, string> = {};
  for (const t of ["piqa", "winogrande", "lambada_openai", "boolq"]) dirs[t] = `${root}/${t}`;
  await write(dirs.piqa, "data/validation-00000-of-00001.parquet", [
    { name: "goal", data: idx.map((i) => pick(i).split(" ").slice(0, 6).join(" ")), type: "STRING" },
    { name: "sol1", data: idx.map((i) => pick(i).split(" ").slice(6, 12).join(" ")), type: "STRING" },
    { name: "sol2", data: idx.map((i) => pick(i + 1).split(" ").slice(6, 12).join(" ")), type: "STRING" },
    { name: "label", data: idx.map((i) => i % 2), type: "INT64" },
  ]);
  await write(dirs.winogrande, "winogrande_xl/validation-00000-of-00001.parquet", [
    {
      name: "sentence",
      data: idx.map((i) => pick(i).split(" ").map((w, k) => (k === 3 ? "_" : w)).join(" ")),
      type: "STRING",
    },
    { name: "option1", data: idx.map((i) => pick(i).split(" ")[3]), type: "STRING" },
    { name: "option2", data: idx.map((i) => pick(i + 2).split(" ")[3]), type: "STRING" },
    { name: "answer", data: idx.map((i) => String(1 + (i % 2))), type: "STRING" },
  ]);
  await write(dirs.lambada_openai, "default/test-00000-of-00001.parquet", [
    { name: "text", data: idx.map((i) => pick(i)), type: "STRING" },
  ]);
  await write(dirs.boolq, "boolq/validation-00000-of-00001.parquet", [
    { name: "question", data: idx.map((i) => pick(i).split(" ").slice(0, 5).join(" ")), type: "STRING" },
    { name: "passage", data: idx.map((i) => pick(i + 3)), type: "STRING" },
    { name: "idx", data: idx, type: "INT64" },
    { name: "label", data: idx.map((i) => (i * 5) % 2), type: "INT64" },
  ]);
  return dirs;
}

if (import.meta.main) {
  const [out, n, text] = Deno.args;
  if (!out || !(Number(n) >= 1)) {
    console.error("deno run -A datasets/local_tasks.ts OUT N [TEXT]");
    Deno.exit(2);
  }
  console.log(JSON.stringify(await writeTaskFolders(out, Number(n), text), null, 2));
}
