// Text rows of a dataset file: parquet (the Hub's datasets and their parquet conversions) or JSON
// lines, plain or gzipped (C4's shards).

import { parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";

/** The `column` of every row of a parquet file or a JSON-lines file (.gz: gzipped). */
export async function readRows(file: string, column: string): Promise<string[]> {
  const bytes = await Deno.readFile(file);
  let rows: Record<string, unknown>[];
  if (file.endsWith(".parquet")) {
    rows = await parquetReadObjects({ file: bytes.buffer, columns: [column], compressors });
  } else if (/\.jsonl?(\.gz)?$/.test(file)) {
    const text = file.endsWith(".gz")
      ? await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text()
      : new TextDecoder().decode(bytes);
    rows = text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  } else {
    throw new Error(`${file}: not a .parquet or JSON-lines (.jsonl, .json.gz) file`);
  }
  return rows.map((r, i) => {
    const v = r[column];
    if (typeof v !== "string") throw new Error(`${file}: row ${i} has no text column "${column}"`);
    return v;
  });
}
