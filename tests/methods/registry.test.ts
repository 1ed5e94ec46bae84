// The method registry: a method defined in a test file (one object, one registerMethod call) runs
// through `deno task bench` end to end — flags, --help, --list, rows — and the registry refuses
// names and flags that would clash. Also: the options every preset, flag and --config key parsed
// to before the registry existed are what they parse to now.

import assert from "node:assert";
import { z } from "zod";
import { benchHelp } from "../../lib/bench/help.ts";
import { listMatrix, rowOptions, settings } from "../../lib/bench/matrix.ts";
import { PRESETS } from "../../lib/bench/presets.ts";
import { parseBenchArgs, runBench } from "../../lib/cli/bench.ts";
import { readResults } from "../../lib/eval/results.ts";
import { flagValues, type Method } from "../../lib/methods/contract.ts";
import { getMethod, registerMethod, unregisterMethod } from "../../lib/methods/registry.ts";
import { quantizeRtn } from "../../lib/quant/rtn.ts";
import { FIXTURES } from "../python.ts";

const LLAMA = `${FIXTURES}/tiny-llama`;
const WIKI = `${FIXTURES}/text/wiki.test.raw`;

function opts(args: string[]) {
  const o = parseBenchArgs(args);
  assert.ok(o !== "help");
  return o;
}

/** A test-only method: RTN on AWQ's or GPTQ's grid, chosen by its own flag. */
const flags = {
  "test-minmax": { schema: z.boolean().default(false), help: "the test method's minmax grid" },
};
const testRtn: Method = {
  name: "test-rtn",
  summary: "a method registered by tests/methods/registry.test.ts",
  help: { title: "test-rtn (registered by a test):" },
  flags,
  bits: [2, 3, 4, 8],
  defaultGroupSize: 32,
  calibrated: false,
  quantizesHead: false,
  async quantize(model, s, o) {
    const minmax = flagValues(o, flags)["test-minmax"];
    const quant = await quantizeRtn(model, {
      bits: s.bits!,
      groupSize: s.groupSize!,
      range: minmax ? "minmax" : "include-zero",
    });
    return { quant, methodOptions: () => Promise.resolve({ minmax }) };
  },
};

Deno.test("a method registered from a test file runs through the harness end to end", async () => {
  registerMethod(testRtn);
  try {
    const help = benchHelp();
    assert.ok(help.includes("--test-minmax") && help.includes("test-rtn"), "--help documents the new method");
    const args = [
      ...["--model", LLAMA, "--dataset", WIKI, "--methods", "rtn,test-rtn", "--bits", "3"],
      ...["--group-size", "32", "--rtn-grid", "minmax", "--test-minmax", "--seqlen", "128"],
      ...["--max-windows", "2", "--decode-tokens", "0", "--gemv-reps", "0", "--no-tune", "--quiet"],
    ];
    assert.match(listMatrix(opts(args)), /test-rtn W3 g32 {2}\[test-minmax\]/);
    const out = await Deno.makeTempDir();
    await runBench(opts([...args, "--out", out, "--no-figures"]));
    const rows = await readResults(`${out}/results.jsonl`); // validated against the row schema
    const [rtn, mine] = ["rtn", "test-rtn"].map((m) => rows.find((r) => r.method === m)!);
    assert.deepStrictEqual(mine.method_options, { minmax: true });
    assert.strictEqual(mine.bits, 3);
    assert.strictEqual(mine.group_size, 32);
    // The same grid through the registry's dispatch: the same numbers as the built-in rtn.
    assert.strictEqual(mine.ppl, rtn.ppl);
    assert.strictEqual(mine.bits_per_weight, rtn.bits_per_weight);
    // Its default group size applies when --group-size is absent.
    assert.strictEqual(
      settings(opts([...args.filter((a) => a !== "32" && a !== "--group-size")]))[1].groupSize,
      32,
    );
  } finally {
    unregisterMethod("test-rtn");
  }
  assert.throws(() => opts(["--model", LLAMA, "--methods", "test-rtn"]), /unknown method "test-rtn"/);
});

Deno.test("the registry refuses clashing names and flags", () => {
  assert.throws(() => registerMethod({ ...testRtn, name: "gptq" }), /method gptq is already registered/);
  assert.throws(() => registerMethod({ ...testRtn, name: "Bad Name" }), /lowercase letters/);
  assert.throws(
    () => registerMethod({ ...testRtn, flags: { sym: { schema: z.boolean().default(true), help: "x" } } }),
    /--sym is already gptq's flag/,
  );
  assert.throws(
    () => registerMethod({ ...testRtn, flags: { seqlen: { schema: z.string(), help: "x" } } }),
    /--seqlen is one of the harness's own flags/,
  );
  // Sharing a flag is allowed only as the very same definition (awq+gptq reads AWQ's and GPTQ's).
  assert.strictEqual(getMethod("awq+gptq").flags["no-clip"], getMethod("awq").flags["no-clip"]);
  assert.throws(() => unregisterMethod("gptq"), /not a run-time registration/);
});

/**
 * tests/methods/options-before-registry.json: what every preset, a command line with every flag,
 * the defaults and the bare command parsed to at commit 7b61c50, before the methods moved into
 * the registry (options, settings, row options and the --list text).
 */
type Pinned = {
  args: string[];
  options: Record<string, unknown>;
  settings: object;
  rowOptions: Record<string, unknown>;
  list: string;
};

/**
 * What changed on purpose since the pin (issue 22), applied to the pinned expectations: two HQQ
 * flags (their defaults are in every parse); the Pile calibration of paper-awq, paper-awq-gptq
 * and paper-autoround (and the latter's 512 samples, the paper's); HQQ's published recipes in
 * paper-hqq (its cells and --list are asserted in tests/bench/options.test.ts instead); --list's
 * header naming the calibration source; then (issue 24) --num-fewshot and paper-autoround's tasks.
 * Returns whether settings and --list are still compared.
 */
function sincePin(what: string, b: Pinned): boolean {
  for (const t of [b.options, b.rowOptions]) {
    if (!b.args.includes("--hqq-round-zero")) t["hqq-round-zero"] = "auto";
    if (!b.args.includes("--hqq-recipes")) t["hqq-recipes"] = what === "preset paper-hqq";
  }
  const pile: Record<string, [string, number]> = {
    "preset paper-awq": ["pile-val", 128],
    "preset paper-awq-gptq": ["pile-val", 128],
    "preset paper-autoround": ["pile-10k", 512],
  };
  if (pile[what]) {
    for (const t of [b.options, b.rowOptions]) [t.calibration, t.nsamples] = pile[what];
  }
  const cal = b.options.calibration as string | undefined;
  const calibrated = (b.options.methods as string[]).some((m) => getMethod(m).calibrated);
  if (cal && calibrated) b.list = b.list.replace(/^(\d+ cells × .*?\))/, `$1, calibration ${cal}`);
  // Issue 24: --num-fewshot's default in every parse; paper-autoround's 11 accuracy tasks.
  b.options["num-fewshot"] = 0;
  if (what === "preset paper-autoround") {
    const names = PRESETS["paper-autoround"].flags.tasks as string;
    b.options.tasks = names.split(",").map((name) => ({ name, dir: null }));
    b.list = b.list.replace(
      /^(\d+ cells × \d+ datasets \([^)]*\))/,
      `$1 + 11 tasks (${names.split(",").join(", ")})`,
    );
  }
  return what !== "preset paper-hqq";
}

Deno.test("every preset and flag parses to the options it did before the registry (and the changes since)", async () => {
  const before = JSON.parse(
    await Deno.readTextFile(new URL("./options-before-registry.json", import.meta.url)),
  ) as Record<string, Pinned>;
  // Canonical JSON: keys sorted at every level.
  const sorted = (x: unknown): string =>
    x && typeof x === "object" && !Array.isArray(x)
      ? `{${
        Object.keys(x).sort().map((k) => `${JSON.stringify(k)}:${sorted((x as Record<string, unknown>)[k])}`)
      }}`
      : Array.isArray(x)
      ? `[${x.map(sorted)}]`
      : JSON.stringify(x);
  let configKeys = 0;
  for (const [what, b] of Object.entries(before)) {
    const o = opts([...b.args, "--out", "OUT"]);
    const { out: _, ...parsed } = o;
    const same = sincePin(what, b);
    assert.strictEqual(sorted(parsed), sorted(b.options), `${what}: options`);
    assert.strictEqual(sorted(rowOptions(o)), sorted(b.rowOptions), `${what}: row options`);
    if (same) {
      assert.deepStrictEqual(settings(o), b.settings, `${what}: settings`);
      assert.strictEqual(listMatrix(o), b.list, `${what}: --list`);
    }
    // The same flags from a --config file parse to the same options.
    const keys = Object.fromEntries(
      Object.entries(o).filter(([k]) =>
        !["out", "preset", "shard", "quick"].includes(k) && b.args.includes(`--${k}`)
      )
        .map(([k]) => {
          const i = b.args.lastIndexOf(`--${k}`), v = b.args[i + 1];
          return [k, v === undefined || v.startsWith("--") ? true : k === "model" ? [v] : v];
        }),
    );
    if (!Object.keys(keys).length) continue;
    const file = await Deno.makeTempFile({ suffix: ".json" });
    await Deno.writeTextFile(file, JSON.stringify(keys));
    const viaConfig = opts([
      "--config",
      file,
      "--out",
      "OUT",
      ...(b.args.includes("--quick") ? ["--quick"] : []),
    ]);
    for (const k of Object.keys(keys)) {
      if (k === "model" || k === "methods") continue; // repeated on the command line: the last wins
      assert.deepStrictEqual(viaConfig[k], o[k], `${what}: --config key ${k}`);
      configKeys++;
    }
  }
  assert.ok(configKeys >= 25, `only ${configKeys} --config keys compared`);
});
