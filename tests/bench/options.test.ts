// Harness options without running anything: every preset parses into a matrix, --help names every
// flag, --quick caps the work but explicit flags still win, --list shows cells and shards.

import assert from "node:assert";
import { benchHelp } from "../../lib/bench/help.ts";
import { listMatrix, matrix, settings, shardCells } from "../../lib/bench/matrix.ts";
import { flagNames, parseBenchArgs } from "../../lib/bench/options.ts";
import { PRESETS } from "../../lib/bench/presets.ts";

const parse = (args: string[]) => {
  const o = parseBenchArgs(args);
  assert.ok(o !== "help");
  return o;
};

Deno.test("every preset parses into its matrix, and shards cover it exactly once", () => {
  const sizes: Record<string, number> = {};
  for (const name of Object.keys(PRESETS)) {
    const o = parse(["--preset", name]);
    assert.strictEqual(o.preset, name);
    const cells = matrix(o);
    sizes[name] = cells.length;
    const shards = [0, 1, 2].map((i) => shardCells(cells, { index: i, count: 3 }).map((c) => c.index));
    assert.deepStrictEqual(shards.flat().sort((a, b) => a - b), cells.map((c) => c.index));
  }
  // paper-gptq: 8 OPT models × (fp + rtn/gptq × W4/W3 per-channel).
  assert.strictEqual(sizes["paper-gptq"], 8 * 5);
  // paper-bnb: 5 models × (fp + int8 + nf4/fp4 × DQ on/off).
  assert.strictEqual(sizes["paper-bnb"], 5 * 6);
  assert.strictEqual(sizes.smoke, 13);
  const gptq = parse(["--preset", "paper-gptq"]);
  assert.deepStrictEqual([gptq.calibration, gptq["group-size"], gptq.seqlen], ["c4", [-1], 2048]);
});

Deno.test("--help names every flag", () => {
  const help = benchHelp();
  for (const f of flagNames()) assert.ok(help.includes(`--${f}`), `--${f} is missing from --help`);
  assert.ok(help.includes("-h, --help"));
});

Deno.test("--quick caps windows, calibration and iterations; explicit flags win", () => {
  const q = parse(["--preset", "paper-awq", "--quick"]);
  assert.deepStrictEqual([q["max-windows"], q.nsamples, q["calib-seqlen"], q.iters], [4, 16, 512, 10]);
  const q2 = parse(["--preset", "paper-awq", "--quick", "--max-windows", "9"]);
  assert.strictEqual(q2["max-windows"], 9);
});

Deno.test("--list prints the cells with their shards", () => {
  const text = listMatrix(parse(["--preset", "paper-gptq", "--shard", "1/4", "--list"]));
  const lines = text.split("\n");
  assert.match(
    lines[0],
    /^40 cells × 1 datasets \(wikitext2\), preset paper-gptq; \* = in shard 1\/4 \(10 cells\)$/,
  );
  assert.match(lines[2], /^\* +1 {2}shard 1\/4 {2}facebook\/opt-125m {2}rtn W4 per-channel$/);
  assert.strictEqual(lines.filter((l) => l.startsWith("*")).length, 10);
});

Deno.test("presets follow their papers' protocols, and --list shows each cell's non-default protocol flags", () => {
  const list = (preset: string) => listMatrix(parse(["--preset", preset, "--list"])).split("\n");
  const cell = (lines: string[], what: RegExp) => lines.find((l) => what.test(l)) ?? "";
  const gptq = list("paper-gptq"), awq = list("paper-awq"), ar = list("paper-autoround");
  // IST-DASLab's opt.py: one FP pass per block; llm-awq: s = s_x^α and its min/max RTN grid;
  // AutoRound's GPTQ baseline: act-order with static groups.
  assert.match(cell(gptq, / gptq W4 /), /\[no-true-sequential\]$/);
  assert.match(cell(awq, / awq W4 /), /\[no-duo-scaling\]$/);
  assert.match(cell(awq, / rtn W4 /), /\[rtn-grid minmax\]$/);
  assert.match(cell(ar, / gptq W4 /), /\[act-order, static-groups\]$/);
  assert.doesNotMatch(cell(ar, / awq W4 /), /\[/); // AutoAWQ's defaults there
  assert.strictEqual(parse(["--model", "m"])["rtn-grid"], "include-zero");
});

Deno.test("without --group-size each method takes its reference's default group size", () => {
  const o = parse(["--model", "m", "--methods", "rtn,gptq,awq,autoround,hqq,nf4,fp4", "--calibration", "c"]);
  assert.deepStrictEqual(
    settings(o).map((s) => [s.method, s.groupSize]),
    [["rtn", 128], ["gptq", -1], ["awq", 128], ["autoround", 128], ["hqq", 64], ["nf4", 64], ["fp4", 64]],
  );
  const given = parse(["--model", "m", "--methods", "gptq,hqq", "--calibration", "c", "--group-size", "32"]);
  assert.deepStrictEqual(settings(given).map((s) => s.groupSize), [32, 32]);
});
