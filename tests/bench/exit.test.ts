// Honest exits: a run whose cells failed exits 1 with a summary line naming them (2 stays
// "refused before work"), a run where every cell failed says so and draws no figures; flags that
// used to trip the parser (--group-size -1) or do nothing (--methods "") are handled; an
// unsupported tensor dtype is named.

import assert from "node:assert";
import { benchCli } from "../helpers.ts";
import { parseBenchArgs } from "../../lib/bench/options.ts";
import { Checkpoint } from "../../lib/io/checkpoint.ts";
import { type TensorToWrite, writeSafetensors } from "../../lib/io/safetensors.ts";
import { writeQuantizedCheckpoint } from "../../lib/quant/export.ts";
import { FIXTURES } from "../python.ts";

const STORIES = `${FIXTURES}/stories260K`;
const TEXT = `${FIXTURES}/text/tinystories_valid_head.txt`;

/** stories260K with `edit` applied to one tensor's entry (its data or its dtype). */
async function brokenCopy(edit: (t: TensorToWrite) => TensorToWrite): Promise<string> {
  const dir = await Deno.makeTempDir();
  const ck = await Checkpoint.open(STORIES);
  const ts: TensorToWrite[] = [];
  for (const name of ck.names()) {
    const t = { name, ...ck.info(name), data: await ck.readBytes(name) };
    ts.push(name === "model.layers.1.mlp.up_proj.weight" ? edit(t) : t);
  }
  await writeSafetensors(`${dir}/model.safetensors`, ts);
  for (const f of ["config.json", "tokenizer.json"]) await Deno.copyFile(`${STORIES}/${f}`, `${dir}/${f}`);
  return dir;
}

const bench = (args: string[]) => benchCli(args);

const common = [
  "--dataset",
  TEXT,
  "--seqlen",
  "64",
  "--max-windows",
  "1",
  "--decode-tokens",
  "0",
  "--gemv-reps",
  "0",
];

Deno.test("every cell failing: exit 1, one line saying so with the cells and stages, no figures", async () => {
  // A NaN inside block 1's up_proj: every cell fails to load it (a value fault, found on reading).
  const model = await brokenCopy((t) => {
    const f = new Float32Array(t.data.buffer.slice(0));
    f[5] = NaN;
    return { ...t, data: f };
  });
  const out = `${await Deno.makeTempDir()}/out`;
  const r = await bench([
    "--model",
    model,
    "--methods",
    "fp,rtn",
    "--bits",
    "4",
    "--group-size",
    "-1",
    ...common,
    "--out",
    out,
  ]);
  assert.strictEqual(r.code, 1, r.err);
  assert.match(
    r.err,
    /every cell failed \(2\): cell 0 fp on .* \(load\); cell 1 rtn W4 per-channel on .* \(load\)/,
  );
  assert.match(r.err, /up_proj\.weight has a non-finite value/);
  assert.match(r.err, /no figures or tables: no cell has a result/);
  assert.ok(!(await Deno.stat(`${out}/figures`).then(() => true, () => false)), "no figures");
  const figs = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../lib/cli/figures.ts", import.meta.url).pathname, out],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.strictEqual(figs.code, 1);
  assert.match(new TextDecoder().decode(figs.stderr), /every cell failed \(2\)/);
});

Deno.test("a clean run exits 0 with its summary line; --group-size -1 and --group-size=-1 both parse", async () => {
  const out = `${await Deno.makeTempDir()}/out`;
  const r = await bench([
    "--model",
    STORIES,
    "--methods",
    "rtn",
    "--group-size",
    "-1",
    "--no-figures",
    ...common,
    "--out",
    out,
  ]);
  assert.strictEqual(r.code, 0, r.err);
  assert.match(r.err, /cells: 1 ok, 0 failed, 0 skipped/);
  const base = ["--model", STORIES, "--methods", "rtn"];
  for (
    const args of [[...base, "--group-size", "-1"], [...base, "--group-size=-1"], [
      ...base,
      "--group-size",
      "-1,64",
    ]]
  ) {
    const o = parseBenchArgs(args);
    assert.ok(o !== "help");
    assert.deepStrictEqual(o["group-size"]?.[0], -1, args.join(" "));
  }
});

Deno.test("--methods '' is refused; an F8 tensor is named with its dtype", async () => {
  assert.throws(() => parseBenchArgs(["--model", STORIES, "--methods", ""]), /--methods is empty/);
  assert.throws(() => parseBenchArgs(["--model", STORIES, "--methods", " , "]), /--methods is empty/);
  const model = await brokenCopy((t) => ({
    ...t,
    dtype: "F8_E4M3",
    data: new Uint8Array(t.data.byteLength / 4),
  }));
  const ck = await Checkpoint.open(model);
  await assert.rejects(
    ck.readF32("model.layers.1.mlp.up_proj.weight"),
    /unsupported dtype F8_E4M3 in tensor model\.layers\.1\.mlp\.up_proj\.weight/,
  );
});

Deno.test("--resume over rows of other options is refused (exit 2, nothing changed) unless --force", async () => {
  const out = `${await Deno.makeTempDir()}/out`;
  const run = (extra: string[]) =>
    bench(["--model", STORIES, "--methods", "rtn", "--no-figures", ...common, "--out", out, ...extra]);
  assert.strictEqual((await run(["--group-size", "-1"])).code, 0);
  const before = await Deno.readTextFile(`${out}/results.jsonl`);
  const manifest = await Deno.readTextFile(`${out}/manifest.json`);
  const r = await run(["--group-size", "-1", "--seed", "7", "--resume"]);
  assert.strictEqual(r.code, 2, r.err);
  assert.match(
    r.err,
    /results\.jsonl: 1 of its rows are not cells of this matrix \(other options\).*--resume --force/,
  );
  assert.strictEqual(await Deno.readTextFile(`${out}/results.jsonl`), before, "rows untouched");
  assert.strictEqual(await Deno.readTextFile(`${out}/manifest.json`), manifest, "manifest untouched");
  const forced = await run(["--group-size", "-1", "--seed", "7", "--resume", "--force"]);
  assert.strictEqual(forced.code, 0, forced.err);
  assert.strictEqual((await Deno.readTextFile(`${out}/results.jsonl`)).trim().split("\n").length, 2);
});

Deno.test("checked before any cell (exit 2, --out untouched): group size vs a layer, ids past vocab_size, a quantized layer missing, rtn --export", async () => {
  const out = `${await Deno.makeTempDir()}/out`;
  const refused = async (args: string[], re: RegExp) => {
    const r = await bench([...args, ...common, "--out", out]);
    assert.strictEqual(r.code, 2, r.err);
    assert.match(r.err, re);
    assert.ok(!(await Deno.stat(out).then(() => true, () => false)), `nothing written: ${args.join(" ")}`);
  };
  // stories260K's MLP is 172 wide: g64 divides its other layers, not down_proj's inputs.
  await refused(
    ["--model", STORIES, "--methods", "rtn", "--group-size", "64"],
    /--methods rtn --group-size 64: model\.layers\.0\.mlp\.down_proj: in-features 172 are not divisible by group size 64/,
  );
  await refused(
    ["--model", STORIES, "--methods", "hqq", "--group-size", "64"],
    /--methods hqq --group-size 64: model\.layers\.0\.mlp\.down_proj: group size 64 does not divide the tensor \[64,172\]/,
  );
  // A config whose vocab_size is smaller than the tokenizer's ids.
  const small = await Deno.makeTempDir();
  const cfg = JSON.parse(await Deno.readTextFile(`${STORIES}/config.json`));
  await Deno.writeTextFile(`${small}/config.json`, JSON.stringify({ ...cfg, vocab_size: 300 }));
  for (const f of ["model.safetensors", "tokenizer.json"]) {
    await Deno.symlink(`${STORIES}/${f}`, `${small}/${f}`);
  }
  await refused(
    ["--model", small],
    /model\.safetensors: tensor model\.embed_tokens\.weight has shape \[512,64\], but config\.json implies \[300,64\]/,
  );
  // The same with the table cut to 300 rows: the checkpoint agrees, the tokenizer's ids do not.
  const ck0 = await Checkpoint.open(STORIES);
  const cut: TensorToWrite[] = [];
  for (const name of ck0.names()) {
    const data = await ck0.readBytes(name);
    cut.push(
      name === "model.embed_tokens.weight"
        ? { name, dtype: "F32", shape: [300, 64], data: data.subarray(0, 300 * 64 * 4) }
        : { name, ...ck0.info(name), data },
    );
  }
  await Deno.remove(`${small}/model.safetensors`);
  await writeSafetensors(`${small}/model.safetensors`, cut);
  await refused(
    ["--model", small],
    /dataset .* has token id \d+ at position \d+, outside config\.json's vocab_size 300/,
  );
  // A GPTQ checkpoint (written by AutoGPTQ) with one layer's qweight removed.
  const peer = `${FIXTURES}/peers/gptq-w4g128`, gone = "model.layers.1.mlp.up_proj.qweight";
  const broken = await Deno.makeTempDir();
  const ck = await Checkpoint.open(peer);
  const ts: TensorToWrite[] = [];
  for (const name of ck.names()) {
    if (name !== gone) ts.push({ name, ...ck.info(name), data: await ck.readBytes(name) });
  }
  await writeSafetensors(`${broken}/model.safetensors`, ts);
  for await (const e of Deno.readDir(peer)) {
    if (e.name.endsWith(".json") && e.name !== "reference.json") {
      await Deno.copyFile(`${peer}/${e.name}`, `${broken}/${e.name}`);
    }
  }
  await refused(
    ["--model", broken, "--dataset", `${FIXTURES}/text/wiki.test.raw`],
    /quantization_config is gptq, but layer model\.layers\.1\.mlp\.up_proj has only .*\.qzeros, .*\.scales \(missing model\.layers\.1\.mlp\.up_proj\.qweight\)/,
  );
  await refused(
    ["--model", STORIES, "--methods", "rtn", "--export", out],
    /--export: rtn has no checkpoint format/,
  );
});

Deno.test("a failed export leaves no folder behind (nor the --export folder it created), and names the path", async () => {
  const root = await Deno.makeTempDir();
  const outDir = `${root}/new-export/ckpt`;
  // A tensor given twice fails inside the safetensors writer, after the folders were made.
  const t: TensorToWrite = { name: "x", dtype: "F32", shape: [1], data: new Float32Array(1) };
  await assert.rejects(
    writeQuantizedCheckpoint(STORIES, outDir, [], [t, t], { quant_method: "test" }),
    new RegExp(`writing the export ${outDir}: .*tensor x is given twice`),
  );
  assert.deepStrictEqual([...Deno.readDirSync(root)], [], "nothing left");
});

Deno.test("quantize_config.json disagreeing with config.json's quantization_config is warned about, both values named", async () => {
  const peer = `${FIXTURES}/peers/gptq-w4g128`, dir = await Deno.makeTempDir();
  for await (const e of Deno.readDir(peer)) await Deno.symlink(`${peer}/${e.name}`, `${dir}/${e.name}`);
  const side = JSON.parse(await Deno.readTextFile(`${peer}/quantize_config.json`));
  await Deno.remove(`${dir}/quantize_config.json`);
  await Deno.writeTextFile(`${dir}/quantize_config.json`, JSON.stringify({ ...side, group_size: 64 }));
  const r = await bench([
    "--model",
    dir,
    ...common,
    "--no-figures",
    "--out",
    `${await Deno.makeTempDir()}/o`,
  ]);
  assert.strictEqual(r.code, 0, r.err);
  assert.match(
    r.err,
    /warning: .*quantize_config\.json has group_size = 64, config\.json's quantization_config 128; using config\.json's/,
  );
});
