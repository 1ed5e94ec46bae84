// `deno task bench`: the headless harness (lib/bench/run.ts), and `deno task bench merge OUT DIR...`
// to join shard outputs. With no flags it runs the smoke preset.

import { benchHelp } from "../bench/help.ts";
import { listMatrix } from "../bench/matrix.ts";
import { mergeRuns } from "../bench/merge.ts";
import { parseBenchArgs } from "../bench/options.ts";
import { runBench } from "../bench/run.ts";
import { summarize } from "../bench/summary.ts";

export { benchHelp, parseBenchArgs, runBench };
export { calibrationSamples } from "../bench/options.ts";
export { getMethod, methodNames, registerMethod, unregisterMethod } from "../methods/registry.ts";
export type { Method, MethodContext, Quantized, RunOptions, Setting } from "../methods/contract.ts";

if (import.meta.main) {
  try {
    if (Deno.args[0] === "merge") {
      const [out, ...dirs] = Deno.args.slice(1);
      if (!out) throw new Error("usage: deno task bench merge OUT DIR...");
      const rows = await mergeRuns(out, dirs, (s) => console.error(s));
      console.error(`merged ${rows.length} rows into ${out}`);
      const summary = summarize(rows);
      console.error(summary.line);
      Deno.exit(summary.exitCode);
    } else {
      const o = parseBenchArgs(Deno.args);
      if (o === "help") console.log(benchHelp());
      else if (o.list) console.log(listMatrix(o));
      else {
        // Rows are written whole (write-then-rename), so stopping anywhere leaves a valid file.
        Deno.addSignalListener("SIGINT", () => {
          console.error(
            `\ninterrupted: finished rows are in ${o.out}/results.jsonl; run again with --resume`,
          );
          Deno.exit(130);
        });
        // Exit 1 when any cell failed (its error row is written and named in the summary line).
        Deno.exit(summarize(await runBench(o)).exitCode);
      }
    }
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
