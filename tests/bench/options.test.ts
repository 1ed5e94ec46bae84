// Harness options without running anything: every preset parses into a matrix, --help names every
// flag, --quick caps the work but explicit flags still win, --list shows cells and shards.

import assert from "node:assert";
import { benchHelp } from "../../lib/bench/help.ts";
import { listMatrix, matrix, settings, shardCells } from "../../lib/bench/matrix.ts";
import { flagNames, parseBenchArgs } from "../../lib/bench/options.ts";
import { PRESETS } from "../../lib/bench/presets.ts";
import { hqqConfig } from "../../lib/methods/hqq.ts";

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
    /^40 cells × 1 datasets \(wikitext2\), calibration c4, preset paper-gptq; \* = in shard 1\/4 \(10 cells\)$/,
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
  // Calibration as each paper's code draws it: AWQ's pile-val (both AWQ presets), auto-round's
  // pile-10k at the paper's 512 × 2048; the source is in --list's header.
  for (
    const [preset, source, n, seq] of [
      ["paper-awq", "pile-val", 128, 512],
      ["paper-awq-gptq", "pile-val", 128, 512],
      ["paper-autoround", "pile-10k", 512, 2048],
    ] as const
  ) {
    const o = parse(["--preset", preset]);
    assert.deepStrictEqual([o.calibration, o.nsamples, o["calib-seqlen"]], [source, n, seq], preset);
    assert.match(list(preset)[0], new RegExp(`, calibration ${source}, preset ${preset};`));
  }
  // HQQ's published recipes: group size per bit width, axis 0, 8-bit zeros, W2's 8-bit scales.
  const hqq = list("paper-hqq");
  assert.match(cell(hqq, / hqq W4 /), /hqq W4 g64 {2}\[hqq-recipes, axis 0, 8-bit zeros, round-zero\]$/);
  assert.match(cell(hqq, / hqq W3 /), /hqq W3 g64 {2}\[hqq-recipes, axis 0, 8-bit zeros\]$/);
  assert.match(
    cell(hqq, / hqq W2 /),
    /hqq W2 g16 {2}\[hqq-recipes, axis 0, 8-bit zeros, 8-bit g128 scales\]$/,
  );
  assert.match(cell(hqq, / rtn W2 /), /rtn W2 g64$/);
  assert.doesNotMatch(PRESETS["paper-bnb"].description, /QLoRA/);
});

Deno.test("HQQ: round_zero as hqq_base_quant_config (auto: at 4 bits) or forced; recipes refuse widths HQQ published none for", () => {
  const o = (args: string[]) => parse(["--model", "m", "--methods", "hqq", ...args]);
  const cfg = (args: string[], bits: number) => hqqConfig({ method: "hqq", bits, groupSize: 64 }, o(args));
  assert.deepStrictEqual([cfg([], 4).roundZero, cfg([], 3).roundZero, cfg([], 2).roundZero], [
    true,
    false,
    false,
  ]);
  assert.strictEqual(cfg(["--hqq-round-zero", "off"], 4).roundZero, false);
  assert.strictEqual(cfg(["--hqq-round-zero", "on"], 3).roundZero, true);
  assert.deepStrictEqual(cfg([], 4), { axis: 1, roundZero: true, quantScale: false, quantZero: false });
  assert.deepStrictEqual(cfg(["--hqq-recipes"], 2), {
    axis: 0,
    roundZero: false,
    quantScale: true,
    quantZero: true,
  });
  assert.deepStrictEqual(
    settings(o(["--hqq-recipes", "--bits", "8,4,3,2", "--group-size", "32"])).map((s) => s.groupSize),
    [128, 64, 64, 16],
  );
  assert.throws(
    () => o(["--hqq-recipes", "--bits", "4,5"]),
    /HQQ published recipes for 2, 3, 4, 8 bits, not 5/,
  );
  assert.throws(() => o(["--hqq-round-zero", "maybe"]), /hqq-round-zero/);
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
