// The Pile calibration sources: numpy's default_rng permutation (Hugging Face datasets'
// shuffle(seed) is exactly `np.random.default_rng(seed).permutation(len)`, checked once against
// datasets 5.0.1), AutoAWQ's pile-val windows and auto-round's pile-10k windows, each against a
// Python transcription of the peer's procedure run with numpy and the tokenizers library; the
// Hub layout through the fake Hub, and the bench rows that record them.

import assert from "node:assert";
import { parquetWriteBuffer } from "hyparquet-writer";
import { parseBenchArgs, runBench } from "../../lib/cli/bench.ts";
import { numpyPermutation, Pcg64, seedSequenceState } from "../../lib/data/numpy_random.ts";
import type { ResultRow } from "../../lib/eval/results.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { loadText } from "../../datasets/datasets.ts";
import { autoRoundPileWindows, awqPileWindows } from "../../datasets/pile.ts";
import { startFakeHub, useHub } from "../hub_server.ts";
import { FIXTURES, python, runPython } from "../python.ts";

const LLAMA = `${FIXTURES}/tiny-llama`;
const hasPython = (await python()) !== null;

Deno.test("numpy's default_rng(42): SeedSequence words, PCG64 outputs and permutations as numpy gives them", () => {
  // numpy 2.x: np.random.SeedSequence(42).generate_state(4, np.uint32), default_rng(42).bit_generator.random_raw(2)
  assert.deepStrictEqual(Array.from(seedSequenceState(42, 4)), [
    3444837047,
    2669555309,
    2046530742,
    3581440988,
  ]);
  const r = new Pcg64(42);
  assert.deepStrictEqual([r.nextU64(), r.nextU64()], [14276969152011380360n, 8095878257575067585n]);
  // default_rng(42).permutation(10)
  assert.deepStrictEqual(Array.from(numpyPermutation(10, 42)), [5, 6, 0, 7, 3, 2, 4, 9, 1, 8]);
});

Deno.test({
  name: "permutations equal numpy's for several sizes and seeds (2**32 + 5 seeds too)",
  ignore: !hasPython,
  fn: async () => {
    for (const [n, seed] of [[1, 0], [2, 1], [1000, 42], [10000, 42], [77777, 7], [3000, 2 ** 32 + 5]]) {
      const out = await runPython(
        `import sys, numpy as np
n, seed = map(int, sys.argv[1:3])
print(",".join(map(str, np.random.default_rng(seed).permutation(n))))`,
        [String(n), String(seed)],
      );
      assert.deepStrictEqual(
        Array.from(numpyPermutation(n, seed)),
        out.trim().split(",").map(Number),
        `${n}/${seed}`,
      );
    }
  },
});

/** Documents of every kind the procedures treat differently: short, long, padded, empty, repetitive. */
async function documents(): Promise<string[]> {
  const lines = (await Deno.readTextFile(`${FIXTURES}/text/calibration.txt`)).split("\n").filter((l) =>
    l.trim()
  );
  const docs: string[] = [];
  for (let i = 0; docs.length < 300; i++) {
    const k = i % 7;
    const body = lines.slice(i * 3 % lines.length, i * 3 % lines.length + 1 + (i * 5) % 9).join("\n");
    if (k === 0) docs.push(`  ${body}\n\n`);
    else if (k === 3) docs.push(i % 2 ? "" : " \t\n");
    else if (k === 5) docs.push(`${body} ${"the ".repeat(80)}the`);
    else docs.push(body);
  }
  return docs;
}

const pyReference = `
import json, sys, numpy as np
from tokenizers import Tokenizer
path, tokfile, which, nsamples, seqlen = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
docs = [json.loads(l)["text"] for l in open(path, encoding="utf-8")]
tok = Tokenizer.from_file(tokfile)
order = np.random.default_rng(42).permutation(len(docs))  # datasets' shuffle(seed=42)
out = []
if which == "awq":
    # AutoAWQ get_calib_dataset: strip, encode, skip > max_seq_len and empty, n_samples kept, concat, split
    cat, kept = [], 0
    for i in order:
        ids = tok.encode(docs[i].strip()).ids
        if len(ids) > seqlen or len(ids) == 0:
            continue
        cat += ids
        kept += 1
        if kept == nsamples:
            break
    out = [cat[k * seqlen:(k + 1) * seqlen] for k in range(len(cat) // seqlen)]
else:
    # auto-round: tokenizer(text, truncation=True, max_length=seqlen), then its filter_func
    tok.enable_truncation(max_length=seqlen)
    for i in order:
        ids = tok.encode(docs[i]).ids
        if len(ids) < seqlen:
            continue
        if len(ids) > 1 and seqlen > 2 and ids.count(ids[-1]) > seqlen // 2:
            continue
        out.append(ids)
        if len(out) == nsamples:
            break
print(json.dumps(out))
`;

Deno.test({
  name: "pile-val (AutoAWQ) and pile-10k (auto-round) windows equal the peers' procedures run in Python",
  ignore: !hasPython,
  fn: async () => {
    const tok = await loadTokenizer(LLAMA);
    const docs = await documents();
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/docs.jsonl`;
      await Deno.writeTextFile(
        file,
        docs.map((text) => JSON.stringify({ text, meta: {} })).join("\n") + "\n",
      );
      for (const [which, nsamples, seqlen] of [["awq", 150, 64], ["awq", 500, 48], ["ar", 12, 32]] as const) {
        const py = JSON.parse(
          await runPython(pyReference, [
            file,
            `${LLAMA}/tokenizer.json`,
            which,
            String(nsamples),
            String(seqlen),
          ]),
        );
        const spec = which === "awq" ? `pile-val=${file}` : `pile-10k=${file}`;
        const data = await loadText(spec, { split: "train" });
        const ours = data.calibration(tok, { nsamples, seqlen, seed: 0 });
        assert.ok(py.length >= 3, `${which}: the reference drew ${py.length} windows`);
        assert.deepStrictEqual(ours, py, `${which} ${nsamples}×${seqlen}`);
        // The seed is the sources' own: --seed does not move the windows.
        assert.deepStrictEqual(data.calibration(tok, { nsamples, seqlen, seed: 5 }), ours);
        assert.strictEqual(data.calibrationSeed, 42);
      }
      // By hand, with a tokenizer anyone can reimplement (a word's length per word); the order of
      // three documents under seed 42 is 2, 1, 0. AWQ: "dddd ee f" is too long, "ccc" and "a bb"
      // concatenate to [3, 1, 2]: one window. auto-round (windows of 3): "x y y y" → [1, 1, 1]
      // repeats its last token in more than half the window, "bb ccc d" → [2, 3, 1] is kept,
      // "a" is too short.
      const words = { encode: (t: string) => t.split(/\s+/).filter(Boolean).map((w) => w.length) };
      assert.deepStrictEqual(awqPileWindows(["a bb", "ccc", "dddd ee f"], words, 2, 2), [[3, 1]]);
      assert.deepStrictEqual(autoRoundPileWindows(["a", "bb ccc d", "x y y y"], words, 5, 3), [[2, 3, 1]]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("pile-val from the Hub's parquet layout and from a local folder: same windows; bench rows record seed 42", async () => {
  const docs = await documents();
  const data = await Deno.makeTempDir();
  await Deno.mkdir(`${data}/default/validation`, { recursive: true });
  const half = docs.length / 2;
  for (const [k, part] of [docs.slice(0, half), docs.slice(half)].entries()) {
    const pq = parquetWriteBuffer({ columnData: [{ name: "text", data: part, type: "STRING" }] });
    await Deno.writeFile(`${data}/default/validation/000${k}.parquet`, new Uint8Array(pq));
  }
  const tok = await loadTokenizer(LLAMA);
  const c = { nsamples: 24, seqlen: 64, seed: 0 };
  const local = await loadText(`pile-val=${data}`, { split: "train" });
  const hub = await startFakeHub([{ type: "dataset", id: "mit-han-lab/pile-val-backup", dir: data }]);
  const restore = await useHub(hub.url);
  try {
    const viaHub = await loadText("pile-val", { split: "train" });
    assert.match(
      viaHub.source,
      /^hf:\/\/datasets\/mit-han-lab\/pile-val-backup@[0-9a-f]{40}\/default\/validation\//,
    );
    assert.strictEqual(viaHub.sha256, local.sha256);
    const windows = local.calibration(tok, c);
    assert.deepStrictEqual(viaHub.calibration(tok, c), windows);
    assert.deepStrictEqual(windows, awqPileWindows(docs, tok, c.nsamples, c.seqlen), "both files, in order");

    const out = await Deno.makeTempDir();
    const o = parseBenchArgs([
      ...["--model", LLAMA, "--dataset", `${FIXTURES}/text/wiki.test.raw`, "--calibration", "pile-val"],
      ...[
        "--methods",
        "awq",
        "--nsamples",
        "24",
        "--calib-seqlen",
        "64",
        "--seqlen",
        "128",
        "--max-windows",
        "1",
      ],
      ...["--decode-tokens", "0", "--gemv-reps", "0", "--no-figures", "--quiet", "--no-tune", "--out", out],
    ]);
    assert.ok(o !== "help");
    const [row] = (await runBench(o)) as ResultRow[];
    assert.strictEqual(row.status, "ok");
    assert.deepStrictEqual(row.calibration, {
      file: viaHub.source,
      sha256: viaHub.sha256,
      nsamples: windows.length,
      seqlen: 64,
      seed: 42,
    });
    assert.strictEqual(row.seeds?.calibration, 42);
    await Deno.remove(out, { recursive: true });
  } finally {
    restore();
    await hub.close();
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("Pile sources refuse what they cannot be: an evaluation dataset, a missing path, a folder without the layout", async () => {
  await assert.rejects(loadText("pile-val", { split: "test" }), /pile-val is a calibration source/);
  await assert.rejects(
    loadText("pile-10k=/nonexistent/x", { split: "train" }),
    /pile-10k=\/nonexistent\/x: no such file/,
  );
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/notes.txt`, "x");
    await assert.rejects(
      loadText(`pile-10k=${dir}`, { split: "train" }),
      /no files data\/train-\*\.parquet in the folder/,
    );
    await Deno.writeTextFile(`${dir}/a.jsonl`, JSON.stringify({ text: "hi" }) + "\n");
    const tok = await loadTokenizer(LLAMA);
    const d = await loadText(`pile-10k=${dir}/a.jsonl`, { split: "train" });
    assert.throws(
      () => d.calibration(tok, { nsamples: 4, seqlen: 64, seed: 0 }),
      /no calibration window of 64 tokens/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const o = parseBenchArgs(["--model", LLAMA, "--dataset", "pile-val", "--no-figures", "--quiet"]);
  assert.ok(o !== "help");
  await assert.rejects(runBench(o), /pile-val is a calibration source/);
});
