// Checkpoints written by the peers' own code (../shared/fixtures/peers, README-peer-checkpoints.md):
// AutoGPTQ (W4 g128, and desc_act with a non-trivial g_idx), AutoAWQ GEMM, hqq (its qmodel.pt and
// its safetensors writer, no quantization_config), bitsandbytes NF4+DQ / FP4 / int8 as transformers
// saves them, and auto-round's own format (bf16 tensors beside a float16 config, no g_idx).
// quantlab loads each as a model folder; every layer's weight, dequantized from what we decoded
// with the peer's own arithmetic (its float16 rounding), matches the peer-dequantized checksums in
// reference.json within 1e-6, and the model's perplexity (2 windows of 512 of wiki.test.raw)
// matches the peer-dequantized model's within 1e-4.

import assert from "node:assert";
import { getGpu } from "../../lib/gpu/device.ts";
import { upload } from "../../lib/gpu/tensor.ts";
import { perplexity } from "../../lib/eval/perplexity.ts";
import { readEvalText } from "../../lib/eval/text.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { loadModel, openModel } from "../../lib/load.ts";
import type { CausalLM } from "../../lib/model/model.ts";
import { DenseLinear } from "../../lib/model/linear.ts";
import { dequantize, type QuantRecord } from "../../lib/quant/record.ts";
import { assertSameBits, rewriteCheckpoint } from "../helpers.ts";

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
import { FIXTURES } from "../python.ts";

const gpu = await getGpu();
const PEERS = `${FIXTURES}/peers`;
const ids = (await loadTokenizer(`${FIXTURES}/tiny-llama`)).encode(
  (await readEvalText(`${FIXTURES}/text/wiki.test.raw`)).text,
);

/**
 * How the peer computed the reference weight (reference.json's dequantized_weight.how):
 *   f16  — scale · (q − z) or absmax · code, rounded once to float16 (GPTQ, AWQ, auto-round, bnb 4-bit);
 *   hqq  — (q − zero) rounded to float16, times scale, rounded again (Quantizer.dequantize in fp16);
 *   f32  — CB · SCB / 127 in float32 (bitsandbytes' int8_vectorwise_dequant).
 */
type PeerMath = "f16" | "hqq" | "f32";

function peerWeight(r: QuantRecord, math: PeerMath): Float32Array {
  if (math === "f32") return dequantize(r);
  if (math === "f16") return Float32Array.from(dequantize(r), Math.f16round);
  assert.ok(r.axis === 1 && r.zeros, `${r.name}: hqq reference arithmetic written for axis 1`);
  const [out, inp] = r.shape, G = inp / r.groupSize, w = new Float32Array(out * inp);
  for (let i = 0; i < w.length; i++) {
    const g = Math.floor(i / r.groupSize); // hqq's axis-1 view [numel/g, g]: one scale per row of it
    w[i] = Math.f16round(Math.f16round(r.codes[i] - r.zeros[g]) * r.scales[g]);
  }
  assert.strictEqual(r.scales.length, out * G);
  return w;
}

interface Reference {
  layers: Record<string, { shape: number[]; sum: number; sumsq: number }>;
  ppl: { value: number };
}

/** Every decoder linear's record, its checksums against reference.json; returns the records. */
function checkLayers(model: CausalLM, ref: Reference, math: PeerMath, what: string): QuantRecord[] {
  const records: QuantRecord[] = [];
  for (let i = 0; i < model.config.layers; i++) {
    for (const l of model.blockLinears(i)) {
      const r = (l as { record?: QuantRecord }).record;
      assert.ok(r, `${what}: ${l.name} did not load as a quantized layer`);
      const want = ref.layers[l.name];
      assert.deepStrictEqual(r.shape, want.shape, `${what}: ${l.name} shape`);
      let sum = 0, sumsq = 0;
      for (const v of peerWeight(r, math)) sum += v, sumsq += v * v;
      // A sum near zero is compared at the scale of the weights' norm.
      const sumErr = Math.abs(sum - want.sum) / Math.max(Math.abs(want.sum), Math.sqrt(want.sumsq));
      assert.ok(sumErr < 1e-6, `${what}: ${l.name} sum ${sum} vs the peer's ${want.sum}`);
      assert.ok(rel(sumsq, want.sumsq) < 1e-6, `${what}: ${l.name} sumsq ${sumsq} vs ${want.sumsq}`);
      records.push(r);
    }
  }
  assert.strictEqual(records.length, Object.keys(ref.layers).length, `${what}: layer count`);
  return records;
}

async function checkPpl(model: CausalLM, ref: Reference, what: string) {
  const r = await perplexity(model, ids, { seqlen: 512, maxWindows: 2 });
  assert.ok(
    rel(r.ppl, ref.ppl.value) < 1e-4,
    `${what}: ppl ${r.ppl} vs the peer-dequantized model's ${ref.ppl.value}`,
  );
}

const FOLDERS: [string, PeerMath][] = [
  ["gptq-w4g128", "f16"],
  ["gptq-w4g128-actorder", "f16"],
  ["awq-w4g128", "f16"],
  ["autoround-w4g128", "f16"],
  ["bnb-nf4-dq", "f16"],
  ["bnb-fp4", "f16"],
  ["hqq-w4g64", "hqq"],
];

for (const [folder, math] of FOLDERS) {
  Deno.test(`peer-written ${folder}: loads, checksums within 1e-6 and ppl within 1e-4 of reference.json`, async () => {
    const dir = `${PEERS}/${folder}`;
    const ref: Reference = JSON.parse(await Deno.readTextFile(`${dir}/reference.json`));
    const model = await loadModel(gpu, dir);
    checkLayers(model, ref, math, folder);
    await checkPpl(model, ref, folder);
    model.release();
  });
}

Deno.test("peer-written bnb-int8: checksums, and the ppl of its dequantized weights (no activation rounding, as the reference)", async () => {
  const dir = `${PEERS}/bnb-int8`;
  const ref: Reference = JSON.parse(await Deno.readTextFile(`${dir}/reference.json`));
  const model = await loadModel(gpu, dir);
  for (const r of checkLayers(model, ref, "f32", "bnb-int8")) {
    model.setLinear(r.name, new DenseLinear(r.name, upload(gpu, dequantize(r), r.shape, r.name)));
  }
  await checkPpl(model, ref, "bnb-int8");
  model.release();
});

Deno.test("hqq's qmodel.pt (its other writer: a pickle of per-module state dicts) reads as its safetensors does", async () => {
  const src = `${PEERS}/hqq-w4g64`, dir = await Deno.makeTempDir();
  for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json", "qmodel.pt"]) {
    await Deno.symlink(`${src}/${f}`, `${dir}/${f}`);
  }
  const { config, ckpt } = await openModel(dir);
  assert.strictEqual(ckpt.format, "pytorch");
  assert.strictEqual(ckpt.value("model.layers.0.self_attn.q_proj.compute_dtype"), "torch.float16");
  assert.deepStrictEqual(
    { ...config.quant },
    { quant_method: "hqq", nbits: 4, group_size: 64, axis: 1, compute_dtype: "float16", layout: "hqq" },
  );
  const ref: Reference = JSON.parse(await Deno.readTextFile(`${src}/reference.json`));
  const pt = await loadModel(gpu, dir), st = await loadModel(gpu, src);
  const a = checkLayers(pt, ref, "hqq", "qmodel.pt"), b = checkLayers(st, ref, "hqq", "model.safetensors");
  a.forEach((r, i) => {
    assert.deepStrictEqual(r.codes, b[i].codes, `${r.name} codes`);
    assertSameBits(r.scales, b[i].scales, `${r.name} scale`);
    assertSameBits(r.zeros!, b[i].zeros!, `${r.name} zero`);
  });
  st.release();
  await checkPpl(pt, ref, "qmodel.pt");
  pt.release();
});

Deno.test("hqq layout: W_q viewed as float16 (view_as_float) reads the same codes; quantized scales are refused by layer", async () => {
  const L = "model.layers.1.mlp.up_proj";
  const asFloat = await rewriteCheckpoint(`${PEERS}/hqq-w4g64`, (t) => {
    if (t.name.endsWith(".view_as_float")) return { ...t, data: new Uint8Array([1]) };
    if (!t.name.endsWith(".W_q")) return t;
    return { ...t, dtype: "F16", shape: [t.shape[0], t.shape[1] / 2] };
  });
  const a = await loadModel(gpu, asFloat), b = await loadModel(gpu, `${PEERS}/hqq-w4g64`);
  const rec = (m: CausalLM) =>
    (m.blockLinears(1).find((l) => l.name === L) as unknown as { record: QuantRecord }).record;
  assert.deepStrictEqual(rec(a).codes, rec(b).codes);
  a.release(), b.release();
  const quantScale = await rewriteCheckpoint(
    `${PEERS}/hqq-w4g64`,
    (t) => t.name === `${L}.quant_scale` ? { ...t, data: new Uint8Array([1]) } : t,
  );
  await assert.rejects(
    loadModel(gpu, quantScale),
    new RegExp(`hqq layer ${L}: quantized scale/zero \\(quant_scale / quant_zero\\) are not read`),
  );
});
