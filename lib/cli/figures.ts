// `deno task figures DIR...`: regenerate each run folder's figures (Vega-Lite, SVG, PNG) and
// tables.md from its results.jsonl alone.

import { writeReport } from "../report/report.ts";

if (import.meta.main) {
  if (!Deno.args.length || Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(
      "deno task figures DIR...   regenerate DIR/figures/*.{vl.json,svg,png} and DIR/tables.md from DIR/results.jsonl",
    );
    Deno.exit(Deno.args.length ? 0 : 2);
  }
  try {
    for (const dir of Deno.args) {
      const files = await writeReport(dir);
      console.error(`${dir}: ${files.length} files`);
    }
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
