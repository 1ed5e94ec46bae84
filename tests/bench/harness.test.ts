// The harness end to end on the fixtures: the smoke preset (rows, manifest, figures, table),
// kill-and-resume, shard-and-merge equal to the unsharded run, and bad input refused before any
// work with nothing written.

import assert from "node:assert";
import { benchCli } from "../helpers.ts";
import { compile } from "vega-lite";
import { parseBenchArgs, runBench } from "../../lib/cli/bench.ts";
import { mergeRuns } from "../../lib/bench/merge.ts";
import { readRows, type ResultRow } from "../../lib/eval/results.ts";
import { decodePng, inked } from "../png.ts";
import { FIXTURES } from "../python.ts";

const LLAMA = `${FIXTURES}/tiny-llama`;
const WIKI = `${FIXTURES}/text/wiki.test.raw`;
const CALIB = `${FIXTURES}/text/calibration.txt`;
/** Three quick cells (fp, rtn W4, rtn W3) on tiny-llama: the matrix of the resume and shard tests. */
const SMALL = [
  ...["--model", LLAMA, "--dataset", WIKI, "--methods", "fp,rtn", "--bits", "4,3", "--seqlen", "128"],
  ...["--max-windows", "3", "--decode-tokens", "8", "--gemv-reps", "1", "--quiet"],
];
const BENCH = new URL("../../lib/cli/bench.ts", import.meta.url).pathname;

function opts(args: string[]) {
  const o = parseBenchArgs(args);
  assert.ok(o !== "help");
  return o;
}

/** The fields that must agree between runs of the same matrix (not dates or timings). */
const stable = (
  r: ResultRow,
) => [r.key, r.cell, r.model, r.dataset, r.method, r.bits, r.group_size, r.ppl, r.tokens];

let reference: Promise<ResultRow[]> | null = null;
function unsharded(): Promise<ResultRow[]> {
  return reference ??= (async () => {
    const out = await Deno.makeTempDir();
    await runBench(opts([...SMALL, "--out", out, "--no-figures"]));
    return (await readRows(`${out}/results.jsonl`)) as ResultRow[];
  })();
}

Deno.test("smoke preset on the fixtures: rows, manifest, Vega-Lite figures that compile, PNGs with ink, the table", async () => {
  const out = await Deno.makeTempDir();
  const o = opts([
    ...["--preset", "smoke", "--model", LLAMA, "--dataset", WIKI, "--calibration", CALIB],
    ...["--methods", "fp,rtn,gptq,hqq,nf4,bnb-int8", "--bits", "4", "--seqlen", "128", "--max-windows", "2"],
    ...[
      "--nsamples",
      "4",
      "--calib-seqlen",
      "128",
      "--decode-tokens",
      "4",
      "--gemv-reps",
      "1",
      "--quiet",
      "--out",
      out,
    ],
  ]);
  assert.strictEqual(o.preset, "smoke");
  await runBench(o);
  const rows = (await readRows(`${out}/results.jsonl`)) as ResultRow[];
  assert.deepStrictEqual(rows.map((r) => r.status), Array(6).fill("ok"));
  assert.deepStrictEqual(rows.map((r) => r.method), ["fp", "rtn", "gptq", "hqq", "nf4", "bnb-int8"]);
  for (const r of rows) {
    assert.ok(r.ppl > 1 && r.ppl < 1000, `${r.method} ppl ${r.ppl}`);
    assert.ok(
      r.decode_tokens_per_second! > 0 && r.gemv!.length === 7 && r.gemv_gbps! > 0 && r.copy_gbps! > 0,
    );
    assert.ok(r.weight_bytes! > 0 && r.peak_gpu_bytes >= r.weight_bytes!);
    assert.strictEqual(r.preset, "smoke");
  }
  assert.ok(rows.slice(1).every((r) => r.bits_per_weight! < 9 && r.quant_seconds! > 0));
  assert.deepStrictEqual(rows[2].seeds, { calibration: 0 });
  const m = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`));
  assert.strictEqual(m.preset, "smoke");
  assert.strictEqual(
    m.datasets[0].sha256,
    "173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08",
  );
  assert.ok(m.invocations[0].deno && m.invocations[0].adapter.limits.maxStorageBufferBindingSize > 0);
  assert.ok(m.models[0].files.some((f: { path: string }) => f.path === "model.safetensors"));
  for (
    const name of [
      "ppl-by-bits",
      "ppl-vs-bpw",
      "decode-speed",
      "gemv-bandwidth",
      "weight-memory",
      "quant-time",
    ]
  ) {
    const spec = JSON.parse(await Deno.readTextFile(`${out}/figures/${name}.vl.json`));
    assert.ok(compile(spec).spec.marks, `${name} compiles`);
    const svg = await Deno.readTextFile(`${out}/figures/${name}.svg`);
    assert.match(svg, /<svg[\s\S]*<text/, `${name}.svg has text`);
    const png = await decodePng(await Deno.readFile(`${out}/figures/${name}.png`));
    assert.ok(png.width > 200 && png.height > 100, `${name}.png is ${png.width}×${png.height}`);
    const ink = inked(png) / (png.width * png.height);
    assert.ok(ink > 0.005 && ink < 0.6, `${name}.png: ${(100 * ink).toFixed(2)}% inked`);
  }
  const table = await Deno.readTextFile(`${out}/tables.md`);
  assert.match(table, /\| method \| FP \| W4 g128 \| W4 g128 dq \| int8 \|/);
  for (const r of rows) assert.ok(table.includes(r.ppl.toFixed(2)), `${r.method}'s ppl in the table`);
  assert.match(table, /### Speed and memory/);
});

Deno.test("kill and resume: a killed run leaves whole rows; --resume finishes with the numbers of an uninterrupted run", async () => {
  const out = await Deno.makeTempDir();
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BENCH, ...SMALL, "--out", out, "--no-figures"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  // Kill it as soon as its first row lands (the second cell is then under way).
  let lines = 0;
  for (let i = 0; i < 1200 && lines < 1; i++) {
    await new Promise((r) => setTimeout(r, 50));
    lines = await Deno.readTextFile(`${out}/results.jsonl`).then(
      (t) => t.split("\n").filter(Boolean).length,
      () => 0,
    );
  }
  p.kill("SIGKILL");
  await p.status;
  const before = await readRows(`${out}/results.jsonl`); // every line a whole row
  assert.ok(before.length >= 1 && before.length < 3, `${before.length} rows when killed`);
  await assert.rejects(runBench(opts([...SMALL, "--out", out])), /already has \d rows: pass --resume/);
  await runBench(opts([...SMALL, "--out", out, "--resume", "--no-figures"]));
  const after = (await readRows(`${out}/results.jsonl`)) as ResultRow[];
  assert.strictEqual(after.length, 3);
  assert.deepStrictEqual(after.slice(0, before.length), before, "finished rows kept as they were");
  assert.deepStrictEqual(after.map(stable), (await unsharded()).map(stable));
  const m = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`));
  assert.deepStrictEqual(m.invocations.map((i: { resume: boolean }) => i.resume), [false, true]);
  // Resuming a finished run does nothing.
  assert.deepStrictEqual(await runBench(opts([...SMALL, "--out", out, "--resume", "--no-figures"])), []);
});

Deno.test("--shard 0/2 and 1/2 merged equal the unsharded run", async () => {
  const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
  for (const [i, d] of dirs.entries()) {
    await runBench(opts([...SMALL, "--shard", `${i}/2`, "--out", d, "--no-figures"]));
  }
  const counts = await Promise.all(dirs.map(async (d) => (await readRows(`${d}/results.jsonl`)).length));
  assert.deepStrictEqual(counts, [2, 1], "cells 0, 2 and cell 1");
  const merged = `${await Deno.makeTempDir()}/merged`;
  await mergeRuns(merged, dirs);
  const rows = (await readRows(`${merged}/results.jsonl`)) as ResultRow[];
  assert.deepStrictEqual(rows.map(stable), (await unsharded()).map(stable));
  assert.ok(await Deno.stat(`${merged}/figures/ppl-by-bits.png`));
  const m = JSON.parse(await Deno.readTextFile(`${merged}/manifest.json`));
  assert.deepStrictEqual(m.merged_from, dirs);
  await assert.rejects(mergeRuns(merged, dirs), /exists; merge into a new folder/);
  // Shards of different matrices do not merge.
  const other = await Deno.makeTempDir();
  await runBench(opts([...SMALL, "--seqlen", "64", "--methods", "fp", "--out", other, "--no-figures"]));
  await assert.rejects(mergeRuns(`${merged}2`, [dirs[0], other]), /ran another matrix or other options/);
});

Deno.test("a failing cell becomes an error row and the matrix goes on; --resume retries it", async () => {
  const out = await Deno.makeTempDir();
  // The export's target folder exists, not empty, and so does the folder it would be moved aside
  // to: HQQ quantizes, then its export cannot be put in place (a fault found only on the disk, not
  // in the options), so the cell fails at its quantize stage while fp runs.
  const blocker = await Deno.makeTempDir();
  for (const d of ["tiny-llama-hqq-w4-g64", `tiny-llama-hqq-w4-g64.old-${Deno.pid}`]) {
    await Deno.mkdir(`${blocker}/${d}`);
    await Deno.writeTextFile(`${blocker}/${d}/keep`, "x");
  }
  const args = [
    ...SMALL,
    "--methods",
    "fp,hqq",
    "--bits",
    "4",
    "--group-size",
    "64",
    "--export",
    blocker,
    "--out",
    out,
    "--no-figures",
  ];
  const rows = await runBench(opts(args));
  assert.deepStrictEqual(rows.map((r) => [r.method, r.status]), [["fp", "ok"], ["hqq", "error"]]);
  const err = rows[1] as { stage: string; error: string };
  assert.strictEqual(err.stage, "quantize");
  assert.match(err.error, /writing the export .*tiny-llama-hqq-w4-g64/);
  const again = await runBench(opts([...args, "--resume"]));
  assert.deepStrictEqual(again.map((r) => r.status), ["error"], "only the failed cell is retried");
  assert.strictEqual((await readRows(`${out}/results.jsonl`)).length, 2, "the old error row is replaced");
});

Deno.test("bad input is refused before any work, with nothing written", async () => {
  const out = `${await Deno.makeTempDir()}/run`;
  const base = ["--model", LLAMA, "--dataset", WIKI, "--out", out, "--quiet"];
  assert.throws(() => opts([...base, "--methods", "fp,gptq9"]), /unknown method "gptq9"/);
  assert.throws(
    () => opts([...base, "--methods", "gptq", "--calibration", CALIB, "--bits", "5"]),
    /--bits 5: gptq takes 2, 3, 4, 8 bits/,
  );
  assert.throws(() => opts([...base, "--preset", "paper-xyz"]), /unknown preset "paper-xyz"/);
  assert.throws(() => opts([...base, "--shard", "2/2"]), /--shard takes i\/n/);
  assert.throws(() => opts([...base, "--frobnicate"]), /Unknown option '--frobnicate'/);
  const cfg = `${await Deno.makeTempDir()}/c.json`;
  await Deno.writeTextFile(cfg, JSON.stringify({ methods: "rtn", "act-ordr": true }));
  assert.throws(() => opts([...base, "--config", cfg]), /c.json: unknown key "act-ordr"/);
  await Deno.writeTextFile(cfg, JSON.stringify({ methods: "rtn", bits: "3", "group-size": "64" }));
  const fromFile = opts([...base, "--config", cfg, "--bits", "2"]);
  assert.deepStrictEqual([fromFile.methods, fromFile.bits, fromFile["group-size"]], [["rtn"], [2], [64]]);
  const short = `${await Deno.makeTempDir()}/short.txt`;
  await Deno.writeTextFile(short, "A few words only.");
  await assert.rejects(
    runBench(opts([...base, "--dataset", short, "--seqlen", "128"])),
    /fewer than one window of 128/,
  );
  await assert.rejects(runBench(opts([...base, "--dataset", "/nonexistent/text.txt"])), /cannot read/);
  await assert.rejects(
    runBench(opts([...base, "--dataset", "wikitext3"])),
    /not a file, and not one of wikitext2/,
  );
  await assert.rejects(runBench(opts([...base, "--model", "/nonexistent/model"])), /no such folder/);
  assert.strictEqual(await Deno.stat(out).then(() => true, () => false), false, "nothing written");
  // The command line: exit code 2 and the message, for an unreachable Hub too.
  const cli = await benchCli(["--model", "org/model", "--dataset", WIKI, "--out", out], {
    HF_ENDPOINT: "http://127.0.0.1:9",
    HF_HOME: await Deno.makeTempDir(),
  });
  assert.strictEqual(cli.code, 2);
  assert.match(cli.err, /error: cannot get model org\/model@main from the Hub at http:\/\/127.0.0.1:9/);
  assert.strictEqual(await Deno.stat(out).then(() => true, () => false), false, "nothing written");
});
