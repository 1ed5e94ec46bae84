// `deno task figures DIR...`: regenerate each run folder's figures (Vega-Lite, SVG, PNG) and
// tables.md from its results.jsonl alone.

import { summarize } from "../bench/summary.ts";
import { readRows } from "../eval/results.ts";
import { writeReport } from "../report/report.ts";

if (import.meta.main) {
  if (!Deno.args.length || Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(
      "deno task figures DIR...   regenerate DIR/figures/*.{vl.json,svg,png} and DIR/tables.md from DIR/results.jsonl",
    );
    Deno.exit(Deno.args.length ? 0 : 2);
  }
  try {
    let code = 0;
    for (const dir of Deno.args) {
      const rows = await readRows(`${dir}/results.jsonl`);
      const summary = summarize(rows);
      if (rows.some((r) => r.status === "ok")) {
        const files = await writeReport(dir);
        console.error(`${dir}: ${files.length} files`);
      } else console.error(`${dir}: no figures or tables: no cell has a result`);
      console.error(`${dir}: ${summary.line}`);
      code = Math.max(code, summary.exitCode);
    }
    Deno.exit(code);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
