// Hub downloads through HF_ENDPOINT against a local server shaped like the Hub (tests/hub_server.ts):
// the cache layout, resume after a dropped connection, checksums, tokens, offline reuse; datasets
// from parquet; the bench run on a Hub model and Hub WikiText-2 equal to the same files locally;
// GPTQ's C4 document sampling against Python's random.

import assert from "node:assert";
import { parquetWriteBuffer } from "hyparquet-writer";
import { hashFile, hubConfig, snapshot } from "../../lib/hub/hub.ts";
import { parseBenchArgs, runBench } from "../../lib/cli/bench.ts";
import type { ResultRow } from "../../lib/eval/results.ts";
import { loadText, readRows, sampleDocWindows } from "../../datasets/datasets.ts";
import { startFakeHub, useHub } from "../hub_server.ts";
import { FIXTURES, python, runPython } from "../python.ts";

const LLAMA = `${FIXTURES}/tiny-llama`;
const COMMIT = "0123456789abcdef0123456789abcdef01234567";

Deno.test("hubConfig honours HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE", () => {
  const env = (vars: Record<string, string>) => (k: string) => vars[k];
  const c = hubConfig(
    env({ HF_ENDPOINT: "http://mirror.local/", HF_TOKEN: "hf_x", HF_HOME: "/h", HOME: "/u" }),
  );
  assert.deepStrictEqual(c, {
    endpoint: "http://mirror.local",
    token: "hf_x",
    cacheDir: "/h/hub",
    offline: false,
  });
  assert.strictEqual(hubConfig(env({ HOME: "/u" })).cacheDir, "/u/.cache/huggingface/hub");
  assert.strictEqual(hubConfig(env({ HOME: "/u" })).endpoint, "https://huggingface.co");
  assert.strictEqual(hubConfig(env({ HF_HOME: "/h", HF_HUB_CACHE: "/c" })).cacheDir, "/c");
  assert.strictEqual(hubConfig(env({ HF_HUB_OFFLINE: "1" })).offline, true);
});

Deno.test("snapshot: HF cache layout, resume after a dropped connection, verified bytes, offline reuse", async () => {
  const hub = await startFakeHub([{ type: "model", id: "test-org/tiny-llama", dir: LLAMA }], {
    token: "hf_secret",
    breakOnce: "model.safetensors",
  });
  try {
    const cache = await Deno.makeTempDir();
    const cfg = { endpoint: hub.url, token: "hf_secret", cacheDir: cache, offline: false };
    await assert.rejects(
      snapshot("test-org/tiny-llama", { config: cfg }),
      /broke off at \d+ of 10494520 bytes.*run again to resume/,
    );
    const s = await snapshot("test-org/tiny-llama", { config: cfg });
    assert.ok(
      hub.requests.some((r) => /model.safetensors bytes=[1-9]\d*-$/.test(r)),
      "resumed with a Range request",
    );
    assert.strictEqual(s.commit, COMMIT);
    assert.strictEqual(s.dir, `${cache}/models--test-org--tiny-llama/snapshots/${COMMIT}`);
    assert.strictEqual(
      (await Deno.readTextFile(`${cache}/models--test-org--tiny-llama/refs/main`)).trim(),
      COMMIT,
    );
    const sha = await hashFile(`${LLAMA}/model.safetensors`, "sha256", null);
    assert.strictEqual(await Deno.readLink(`${s.dir}/model.safetensors`), `../../blobs/${sha}`);
    for (const f of ["config.json", "tokenizer.json", "model.safetensors"]) {
      assert.deepStrictEqual(await Deno.readFile(`${s.dir}/${f}`), await Deno.readFile(`${LLAMA}/${f}`), f);
    }
    // Cached: no file is fetched again; offline, the cache alone serves.
    const gets = hub.requests.length;
    await snapshot("test-org/tiny-llama", { config: cfg });
    assert.ok(hub.requests.slice(gets).every((r) => r.includes("/api/")));
    assert.strictEqual(
      (await snapshot("test-org/tiny-llama", { config: { ...cfg, offline: true } })).dir,
      s.dir,
    );
    // A wrong token is a clear error; so is a corrupt partial file (removed, not renamed into the cache).
    await assert.rejects(
      snapshot("test-org/tiny-llama", {
        config: { ...cfg, token: "hf_wrong", cacheDir: await Deno.makeTempDir() },
      }),
      /cannot get model test-org\/tiny-llama@main from the Hub at http:\/\/127.0.0.1:\d+ \(.*(401|credentials)/i,
    );
    const fresh = await Deno.makeTempDir();
    const blobs = `${fresh}/models--test-org--tiny-llama/blobs`;
    await Deno.mkdir(blobs, { recursive: true });
    await Deno.writeFile(`${blobs}/${sha}.incomplete`, new Uint8Array(10494520).fill(7));
    await assert.rejects(
      snapshot("test-org/tiny-llama", { config: { ...cfg, cacheDir: fresh } }),
      /model.safetensors: checksum mismatch/,
    );
    assert.strictEqual(await Deno.stat(`${blobs}/${sha}.incomplete`).then(() => true, () => false), false);
  } finally {
    await hub.close();
  }
});

Deno.test("bench on a Hub model and Hub WikiText-2 (parquet) equals the same files read locally", async () => {
  const rows = (await Deno.readTextFile(`${FIXTURES}/text/wiki.test.raw`)).split("\n").slice(0, 300).map((
    l,
  ) => `${l}\n`);
  const data = await Deno.makeTempDir();
  await Deno.mkdir(`${data}/wikitext-2-raw-v1`);
  const pq = parquetWriteBuffer({ columnData: [{ name: "text", data: rows, type: "STRING" }] });
  await Deno.writeFile(`${data}/wikitext-2-raw-v1/test-00000-of-00001.parquet`, new Uint8Array(pq));
  const joined = `${data}/joined.txt`;
  await Deno.writeTextFile(joined, rows.join("\n\n"));
  const hub = await startFakeHub([
    { type: "model", id: "test-org/tiny-llama", dir: LLAMA },
    { type: "dataset", id: "Salesforce/wikitext", dir: data },
  ]);
  const restore = await useHub(hub.url);
  try {
    const text = await loadText("wikitext2", { split: "test" });
    assert.strictEqual(text.sha256, await hashFile(joined, "sha256", null));
    assert.strictEqual(
      text.source,
      `hf://datasets/Salesforce/wikitext@${COMMIT}/wikitext-2-raw-v1/test-00000-of-00001.parquet`,
    );
    assert.ok(
      hub.requests.includes(`GET /api/datasets/Salesforce/wikitext/tree/${COMMIT}/wikitext-2-raw-v1`),
      "listed one folder",
    );
    const run = async (model: string, dataset: string) => {
      const out = await Deno.makeTempDir();
      const args = ["--model", model, "--dataset", dataset, "--seqlen", "128", "--max-windows", "2"];
      const o = parseBenchArgs([
        ...args,
        "--decode-tokens",
        "0",
        "--gemv-reps",
        "0",
        "--no-figures",
        "--quiet",
        "--out",
        out,
      ]);
      assert.ok(o !== "help");
      return (await runBench(o))[0] as ResultRow;
    };
    const [viaHub, local] = [await run("test-org/tiny-llama", "wikitext2"), await run(LLAMA, joined)];
    assert.strictEqual(viaHub.ppl, local.ppl);
    assert.strictEqual(viaHub.dataset_sha256, local.dataset_sha256);
    assert.deepStrictEqual([viaHub.model_revision, local.model_revision], [COMMIT, null]);
    assert.strictEqual(viaHub.dataset_source, text.source);
  } finally {
    restore();
    await hub.close();
  }
});

Deno.test("C4 rows from gzipped JSON lines; GPTQ's document sampling equals Python's random", async () => {
  const docs = Array.from(
    { length: 40 },
    (_, i) => Array.from({ length: 3 + ((i * 7) % 23) }, (_, j) => `w${i}_${j}`).join(" "),
  );
  const dir = await Deno.makeTempDir();
  const gz = new Blob([docs.map((text) => JSON.stringify({ text, timestamp: "x" })).join("\n") + "\n"])
    .stream()
    .pipeThrough(new CompressionStream("gzip"));
  await Deno.writeFile(`${dir}/c4.json.gz`, new Uint8Array(await new Response(gz).arrayBuffer()));
  assert.deepStrictEqual(await readRows(`${dir}/c4.json.gz`, "text"), docs);
  // A tokenizer anyone can reimplement: one id per word (its index in the document).
  const tok = { encode: (t: string) => t.split(" ").map((w) => Number(w.split("_")[1])) };
  const ours = [sampleDocWindows(docs, tok, 6, 10, 0, true), sampleDocWindows(docs, tok, 6, 10, 3, false)];
  if (!(await python())) return;
  const py = JSON.parse(
    await runPython(
      `import json, random
docs = ${JSON.stringify(docs)}
def sample(n, seqlen, seed, inclusive):
    random.seed(seed); out = []
    for _ in range(n):
        while True:
            i = random.randint(0, len(docs) - 1)
            ids = [int(w.split("_")[1]) for w in docs[i].split(" ")]
            if (len(ids) >= seqlen) if inclusive else (len(ids) > seqlen): break
        i = random.randint(0, len(ids) - seqlen - 1) if len(ids) > seqlen else 0
        out.append(ids[i:i + seqlen])
    return out
print(json.dumps([sample(6, 10, 0, True), sample(6, 10, 3, False)]))
`,
    ),
  );
  assert.deepStrictEqual(ours, py);
});

Deno.test("a .bin-only Hub repo (tiny-opt-bin) downloads its shards and index and runs; a repo with both fetches safetensors only", async () => {
  const BIN = `${FIXTURES}/tiny-opt-bin`;
  const both = await Deno.makeTempDir();
  for await (const e of Deno.readDir(BIN)) await Deno.copyFile(`${BIN}/${e.name}`, `${both}/${e.name}`);
  await Deno.copyFile(`${FIXTURES}/tiny-opt/model.safetensors`, `${both}/model.safetensors`);
  const hub = await startFakeHub([
    { type: "model", id: "test-org/tiny-opt-bin", dir: BIN },
    { type: "model", id: "test-org/tiny-opt-both", dir: both },
  ]);
  const restore = await useHub(hub.url);
  try {
    const run = async (model: string) => {
      const o = parseBenchArgs([
        ...["--model", model, "--dataset", `${FIXTURES}/text/wiki.test.raw`, "--seqlen", "128"],
        ...["--max-windows", "2", "--methods", "fp,rtn", "--bits", "4", "--group-size", "64"],
        ...[
          "--decode-tokens",
          "0",
          "--gemv-reps",
          "0",
          "--no-figures",
          "--quiet",
          "--out",
          await Deno.makeTempDir(),
        ],
      ]);
      assert.ok(o !== "help");
      return (await runBench(o)) as ResultRow[];
    };
    const rows = await run("test-org/tiny-opt-bin");
    assert.deepStrictEqual(rows.map((r) => [r.status, r.method]), [["ok", "fp"], ["ok", "rtn"]]);
    const got = (id: string) =>
      hub.requests.filter((r) => r.includes(`/${id}/resolve/`)).map((r) => r.split("/").pop());
    for (
      const f of [
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
        "pytorch_model.bin.index.json",
      ]
    ) {
      assert.ok(got("tiny-opt-bin").includes(f), `downloaded ${f}`);
    }
    // The same ppl as the local folder.
    const local = await run(BIN);
    assert.deepStrictEqual(rows.map((r) => r.ppl), local.map((r) => r.ppl));
    await run("test-org/tiny-opt-both");
    assert.ok(got("tiny-opt-both").includes("model.safetensors"));
    assert.ok(
      !got("tiny-opt-both").some((f) => f!.includes(".bin")),
      `no .bin fetched: ${got("tiny-opt-both")}`,
    );
  } finally {
    restore();
    await hub.close();
  }
});
