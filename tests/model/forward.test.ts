// Forward passes against transformers' own outputs stored beside the fixtures, the block-by-block
// API, sharded checkpoints, and the bad-checkpoint errors (missing tensor, wrong shape, NaN).

import assert from "node:assert";
import { getGpu } from "../../lib/gpu/device.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { readF32, upload } from "../../lib/gpu/tensor.ts";
import { SafetensorsFile, type TensorToWrite, writeSafetensors } from "../../lib/io/safetensors.ts";
import { encodeForward, loadModel, logits } from "../../lib/load.ts";
import { assertClose } from "../helpers.ts";
import { FIXTURES } from "../python.ts";

const gpu = await getGpu();
const OPT = `${FIXTURES}/tiny-opt`;

async function optReference() {
  const ref = await SafetensorsFile.open(`${OPT}/reference_logits.safetensors`);
  const ids = [...new Int32Array((await ref.readBytes("input_ids")).buffer)];
  const want = new Float32Array((await ref.readBytes("logits")).buffer);
  return { ids, want };
}

Deno.test("tiny-opt logits equal transformers' within 1e-4 (project_in/out, learned positions, tied head)", async () => {
  const model = await loadModel(gpu, OPT);
  const { ids, want } = await optReference();
  assertClose(await logits(model, ids), want, 1e-4, "tiny-opt logits");
  model.release();
});

Deno.test("stories260K (tied embeddings, top-level rope_theta, GQA 8/4) matches transformers' reference", async () => {
  const ref = JSON.parse(
    await Deno.readTextFile(`${FIXTURES}/stories260K/reference_logits_tinystories_64.json`),
  );
  const model = await loadModel(gpu, `${FIXTURES}/stories260K`);
  const ids: number[] = ref.input_ids;
  const l = await logits(model, ids);
  const V = model.vocab;
  let nll = 0;
  for (let t = 0; t < ids.length; t++) {
    const row = l.subarray(t * V, (t + 1) * V);
    const order = [...row.keys()].sort((a, b) => row[b] - row[a]);
    assert.strictEqual(order[0], ref.argmax[t], `argmax at ${t}`);
    assertClose(ref.top5_ids[t].map((i: number) => row[i]), ref.top5_logits[t], 1e-4, `top-5 logits at ${t}`);
    if (t < ids.length - 1) {
      const mx = row[order[0]];
      const lse = mx + Math.log(row.reduce((s, x) => s + Math.exp(x - mx), 0));
      const lp = row[ids[t + 1]] - lse;
      assert.ok(
        Math.abs(lp - ref.logprob_next[t]) < 1e-4,
        `log-prob of next token at ${t}: ${lp} vs ${ref.logprob_next[t]}`,
      );
      nll -= lp;
    }
  }
  assert.ok(Math.abs(nll / (ids.length - 1) - ref.mean_nll) < 1e-5);
  model.release();
});

Deno.test("block by block: captures every linear's input, leaves the block input untouched, equals the full pass", async () => {
  const model = await loadModel(gpu, `${FIXTURES}/tiny-llama`);
  const ids = [0, 1499, 490, 15, 813, 280, 80, 1157, 13, 353, 450];
  const T = ids.length, H = 256;
  const b = new Batch(gpu);
  const idsT = upload(gpu, Uint32Array.from(ids), [T]);
  const h0 = model.embed(b, idsT, T);
  const seen: [string, number[]][] = [];
  const h1 = model.block(b, 0, h0, T, (name, x) => void seen.push([name, [...x.shape]]))!;
  const before = model.embed(b, idsT, T);
  let h = h1;
  for (let i = 1; i < model.numBlocks; i++) h = model.block(b, i, h, T)!;
  const viaBlocks = model.head(b, h);
  const full = encodeForward(b, model, ids, T);
  await b.submit();
  assert.deepStrictEqual(seen.map((s) => s[0]), [
    "model.layers.0.self_attn.q_proj",
    "model.layers.0.self_attn.k_proj",
    "model.layers.0.self_attn.v_proj",
    "model.layers.0.self_attn.o_proj",
    "model.layers.0.mlp.gate_proj",
    "model.layers.0.mlp.up_proj",
    "model.layers.0.mlp.down_proj",
  ]);
  assert.deepStrictEqual(seen.map((s) => s[1].at(-1)), [H, H, H, H, H, H, 768]);
  assert.deepStrictEqual(await readF32(h0), await readF32(before), "block input untouched");
  assertClose(await readF32(viaBlocks), await readF32(full), 1e-6, "blocks vs full pass");
  assert.deepStrictEqual(model.blockLinears(2).map((l) => l.name.split(".").at(-1)), [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
  ]);
  model.release();
});

/** Copy tiny-opt into a temp dir with its tensors passed through `edit` (and optionally sharded). */
async function variant(edit: (ts: TensorToWrite[]) => TensorToWrite[], shards = 1): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.copyFile(`${OPT}/config.json`, `${dir}/config.json`);
  await Deno.copyFile(`${OPT}/tokenizer.json`, `${dir}/tokenizer.json`);
  const src = await SafetensorsFile.open(`${OPT}/model.safetensors`);
  const ts: TensorToWrite[] = [];
  for (const name of src.names()) {
    const info = src.info(name);
    ts.push({ name, dtype: info.dtype, shape: info.shape, data: await src.readBytes(name) });
  }
  const out = edit(ts);
  if (shards === 1) {
    await writeSafetensors(`${dir}/model.safetensors`, out);
  } else {
    const map: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const file = `model-${s + 1}-of-${shards}.safetensors`;
      const part = out.filter((_, i) => i % shards === s);
      for (const t of part) map[t.name] = file;
      await writeSafetensors(`${dir}/${file}`, part);
    }
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify({ metadata: {}, weight_map: map }),
    );
  }
  return dir;
}

Deno.test("a sharded checkpoint (model.safetensors.index.json) gives the same logits", async () => {
  const dir = await variant((ts) => ts, 3);
  const model = await loadModel(gpu, dir);
  const { ids, want } = await optReference();
  assertClose(await logits(model, ids), want, 1e-4, "sharded tiny-opt");
  model.release();
});

Deno.test("bad checkpoints are refused naming the file and tensor", async () => {
  const fc2 = "model.decoder.layers.1.fc2.weight";
  const missing = await variant((ts) => ts.filter((t) => t.name !== fc2));
  await assert.rejects(
    loadModel(gpu, missing),
    new RegExp(`checkpoint has no tensor ${fc2.replaceAll(".", "\\.")} \\(expected \\[128,512\\]`),
  );

  const reshaped = await variant((ts) => ts.map((t) => (t.name === fc2 ? { ...t, shape: [512, 128] } : t)));
  await assert.rejects(
    loadModel(gpu, reshaped),
    /model.safetensors: tensor model.decoder.layers.1.fc2.weight has shape \[512,128\], but config.json implies \[128,512\]/,
  );

  const withNaN = await variant((ts) =>
    ts.map((t) => {
      if (t.name !== fc2) return t;
      const f = new Float32Array(
        new Uint8Array(t.data.buffer as ArrayBuffer, t.data.byteOffset, t.data.byteLength).slice().buffer,
      );
      f[77] = NaN;
      return { ...t, data: f };
    })
  );
  await assert.rejects(
    loadModel(gpu, withNaN),
    /tensor model.decoder.layers.1.fc2.weight has a non-finite value \(NaN\) at flat index 77/,
  );

  const badIndex = await variant((ts) => ts, 2);
  const index = JSON.parse(await Deno.readTextFile(`${badIndex}/model.safetensors.index.json`));
  index.weight_map["model.decoder.ghost.weight"] = "model-1-of-2.safetensors";
  await Deno.writeTextFile(`${badIndex}/model.safetensors.index.json`, JSON.stringify(index));
  await assert.rejects(
    loadModel(gpu, badIndex),
    /model-1-of-2.safetensors: the index lists tensor model.decoder.ghost.weight here/,
  );

  const empty = await Deno.makeTempDir();
  await Deno.copyFile(`${OPT}/config.json`, `${empty}/config.json`);
  await assert.rejects(
    loadModel(gpu, empty),
    /no weights \(looked for model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json, qmodel.pt\)/,
  );
});

Deno.test("token ids outside the vocabulary are refused before the GPU sees them", async () => {
  const model = await loadModel(gpu, OPT);
  await assert.rejects(
    logits(model, [5, 4096, 7]),
    /token id 4096 at position 1 is outside the vocabulary of 4096/,
  );
  model.release();
});
