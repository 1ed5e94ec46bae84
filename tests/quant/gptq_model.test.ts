// GPTQ on the fixture model end to end: calibration windows → block-by-block quantization →
// perplexity, against the RTN references of SOURCES.md; the AutoGPTQ export, read back by our
// loader and dequantized independently in Python; and the errors a user can meet.

import assert from "node:assert";
import { loadCalibration } from "../../lib/data/calibration.ts";
import { perplexity } from "../../lib/eval/perplexity.ts";
import { readEvalText } from "../../lib/eval/text.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { Checkpoint } from "../../lib/io/checkpoint.ts";
import { writeSafetensors } from "../../lib/io/safetensors.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { DenseLinear } from "../../lib/model/linear.ts";
import { loadModel } from "../../lib/load.ts";
import { exportGptq, v1ZeroWraps } from "../../lib/quant/export_gptq.ts";
import { quantizeUniform } from "../../lib/quant/uniform.ts";
import { quantizeGptq } from "../../lib/quant/gptq.ts";
import { QuantLinear } from "../../lib/quant/quant_linear.ts";
import { dequantize } from "../../lib/quant/record.ts";
import { poisonEmbeddingRow } from "../helpers.ts";
import { FIXTURES, python, runPython } from "../python.ts";

const gpu = await getGpu();
const LLAMA = `${FIXTURES}/tiny-llama`;
const tok = await loadTokenizer(LLAMA);
const ids = tok.encode((await readEvalText(`${FIXTURES}/text/wiki.test.raw`)).text);
const CALIB = `${FIXTURES}/text/calibration.txt`;
const hasPython = (await python()) !== null;

// SOURCES.md, "Quantized references on text/wiki.test.raw, first 32 windows of 512".
const RTN: Record<string, number> = { w3g128: 186.3091, w3pc: 189.0206, w2g128: 293.8506 };

/**
 * IST-DASLab's own GPTQ on this protocol, nine runs that differ only in float rounding
 * (peers/gptq_noise_floor.json: float32, float64, reversed/permuted/batched accumulation, one
 * thread, eager attention): the range two correct implementations can land in.
 */
const NOISE = JSON.parse(await Deno.readTextFile(`${FIXTURES}/peers/gptq_noise_floor.json`))
  .settings as Record<
    string,
    {
      a_f32: number;
      b_f64: number;
      c_f32_reversed: number;
      other_rounding_only_variants: Record<string, number>;
    }
  >;
const peerRange = (k: string) => {
  const v = NOISE[k],
    all = [v.a_f32, v.b_f64, v.c_f32_reversed, ...Object.values(v.other_rounding_only_variants)];
  return [Math.min(...all), Math.max(...all)];
};

Deno.test("GPTQ on the fixture (128 × 512 calibration): inside IST-DASLab's rounding-noise range ± 0.5%, and below RTN by its margin", async () => {
  // The peer's protocol: 128 windows of 512 of calibration.txt (Python random, seed 0), asym,
  // percdamp 0.01, blocksize 128, true-sequential. The peer's margins below RTN are 3.6% (W3 g128),
  // 3.3% (W3 per-channel), 19% (W2 g128); asserted here at 2%, 2% and 10%, so RTN fails.
  const cal = await loadCalibration(tok, CALIB, { nsamples: 128, seqlen: 512, seed: 0 });
  const got: string[] = [];
  for (
    const [k, bits, groupSize, margin] of [["w3g128", 3, 128, 0.02], ["w3pc", 3, -1, 0.02], [
      "w2g128",
      2,
      128,
      0.1,
    ]] as const
  ) {
    const model = await loadModel(gpu, LLAMA);
    await quantizeGptq(model, cal.windows, { bits, groupSize });
    assert.ok(model.blockLinears(3).every((l) => l instanceof QuantLinear));
    const { ppl } = await perplexity(model, ids, { seqlen: 512, maxWindows: 32 });
    model.release();
    const [lo, hi] = peerRange(k);
    got.push(`${k}: ${ppl.toFixed(4)} (peer ${lo.toFixed(2)}–${hi.toFixed(2)})`);
    assert.ok(ppl >= lo * 0.995 && ppl <= hi * 1.005, `GPTQ ${k} ppl ${ppl} outside ${lo}–${hi} ± 0.5%`);
    assert.ok(
      ppl < (1 - margin) * RTN[k],
      `GPTQ ${k} ppl ${ppl} is not ${margin * 100}% below RTN ${RTN[k]}`,
    );
  }
  console.log(got.join("; "));
});

Deno.test({
  name:
    "AutoGPTQ export (3-bit, act-order g_idx): loads back to the same ppl; Python dequantizes it to our weights",
  ignore: !hasPython,
  async fn() {
    const cal = await loadCalibration(tok, CALIB, { nsamples: 4, seqlen: 512, seed: 1 });
    const model = await loadModel(gpu, LLAMA);
    const settings = {
      bits: 3 as const,
      groupSize: 64,
      sym: false,
      actOrder: true,
      staticGroups: false,
      percdamp: 0.01,
      trueSequential: true,
    };
    const r = await quantizeGptq(model, cal.windows, settings);
    assert.ok(r.records.some((x) => x.gIdx), "act-order gives non-monotone g_idx");
    const mem = (await perplexity(model, ids, { seqlen: 512, maxWindows: 2 })).ppl;
    model.release();
    const dir = await Deno.makeTempDir();
    try {
      await exportGptq(LLAMA, `${dir}/out`, r.records, settings);
      const cfg = JSON.parse(await Deno.readTextFile(`${dir}/out/config.json`));
      assert.deepStrictEqual(
        [
          cfg.quantization_config.quant_method,
          cfg.quantization_config.bits,
          cfg.quantization_config.desc_act,
        ],
        ["gptq", 3, true],
      );
      const back = await loadModel(gpu, `${dir}/out`);
      assert.ok(back.blockLinears(0).every((l) => l instanceof QuantLinear));
      const loaded = (await perplexity(back, ids, { seqlen: 512, maxWindows: 2 })).ppl;
      back.release();
      assert.strictEqual(loaded, mem, `loaded ${loaded} vs in-memory ${mem}`);
      // Untouched tensors keep their bytes.
      const src = await Checkpoint.open(LLAMA), out = await Checkpoint.open(`${dir}/out`);
      for (const n of ["model.embed_tokens.weight", "lm_head.weight", "model.norm.weight"]) {
        assert.deepStrictEqual(await out.fileOf(n).readBytes(n), await src.fileOf(n).readBytes(n), n);
      }
      // Our dequantized weights, for Python to compare with its own reading of the checkpoint.
      await writeSafetensors(
        `${dir}/ours.safetensors`,
        r.records.map((x) => ({ name: x.name, dtype: "F32", shape: x.shape, data: dequantize(x) })),
      );
      const worst = Number(
        await runPython(PY_DEQUANT, [`${dir}/out/model.safetensors`, `${dir}/ours.safetensors`]),
      );
      assert.ok(worst === 0, `Python's dequantization differs from ours by up to ${worst}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// AutoGPTQ v1 read the way its dequantize does it, written without our code: unpack the bit
// stream (b bits per value, little-endian across 32-bit words), zeros + 1, W = scales[g_idx] · (q − z).
const PY_DEQUANT = `
import sys, numpy as np
from safetensors.numpy import load_file
ckpt, ours = load_file(sys.argv[1]), load_file(sys.argv[2])
def unpack(words, b, n):  # words uint32 [W] -> n values
    bits = np.unpackbits(words.astype('<u4').view(np.uint8), bitorder='little')
    return bits[: n * b].reshape(n, b) @ (1 << np.arange(b))
worst = 0.0
for name, w in ours.items():
    out, inp = w.shape
    qw, qz = ckpt[name + '.qweight'].view(np.uint32), ckpt[name + '.qzeros'].view(np.uint32)
    sc, gi = ckpt[name + '.scales'].astype(np.float32), ckpt[name + '.g_idx']
    b = qw.shape[0] * 32 // inp
    q = np.stack([unpack(qw[:, n], b, inp) for n in range(out)])            # [out, in]
    z = (np.stack([unpack(qz[g], b, out) for g in range(qz.shape[0])]) + 1) & ((1 << b) - 1)  # [G, out]
    deq = sc[gi].T * (q - z[gi].T)                                          # [out, in]
    worst = max(worst, float(np.abs(deq.astype(np.float32) - w).max()))
print(worst)
`;

Deno.test("GPTQ export: a zero-point of 0 (v1 stores all ones, GPTQModel's +1 overflows it) is refused by layer", async () => {
  const r = quantizeUniform(
    "model.layers.0.self_attn.q_proj",
    Float32Array.from({ length: 256 * 256 }, (_, i) => (i % 7) / 7),
    [256, 256],
    {
      bits: 4,
      groupSize: 128,
      sym: false,
      range: "include-zero",
    },
  ); // every weight ≥ 0: the grid includes 0 at its bottom, zero-point 0
  assert.ok(r.zeros!.some((z) => z === 0));
  assert.deepStrictEqual(v1ZeroWraps([r]), [r.name]);
  const dir = await Deno.makeTempDir();
  const settings = {
    bits: 4,
    groupSize: 128,
    percdamp: 0.01,
    actOrder: false,
    staticGroups: false,
    sym: false,
    trueSequential: true,
  };
  await assert.rejects(
    exportGptq(LLAMA, `${dir}/out`, [r], settings),
    /model\.layers\.0\.self_attn\.q_proj: a zero-point of 0, .* overflow it; nothing written/,
  );
  assert.deepStrictEqual([...Deno.readDirSync(dir)], [], "nothing written");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("GPTQ errors: a calibration text shorter than one window; NaN activations name the layer", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/short.txt`, "Only a few words here.");
    await assert.rejects(
      loadCalibration(tok, `${dir}/short.txt`, { nsamples: 4, seqlen: 512, seed: 0 }),
      /short\.txt: calibration: the text has \d+ tokens, too few for windows of 512/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const cal = await loadCalibration(tok, CALIB, { nsamples: 1, seqlen: 64, seed: 0 });
  const model = await loadModel(gpu, LLAMA);
  poisonEmbeddingRow(model, cal.windows[0][5]); // a token the calibration window uses
  await assert.rejects(
    quantizeGptq(model, cal.windows, { bits: 4, groupSize: 128 }),
    /model\.layers\.0\.self_attn\.q_proj: the Hessian is not finite/,
  );
  assert.ok(model.blockLinears(0).every((l) => l instanceof DenseLinear), "no layer was replaced");
  model.release();
});

Deno.test("GPTQ inputs: FP inputs and one-pass (not true-sequential) change exactly the layers they should", async () => {
  const cal = await loadCalibration(tok, CALIB, { nsamples: 2, seqlen: 256, seed: 3 });
  const codes = async (o: { fpInputs?: boolean; trueSequential?: boolean }) => {
    const model = await loadModel(gpu, LLAMA);
    const r = await quantizeGptq(model, cal.windows, { bits: 2, groupSize: 64, ...o });
    model.release();
    return new Map(r.records.map((x) => [x.name, x.codes]));
  };
  const same = (a: Uint8Array, b: Uint8Array) => a.every((v, i) => v === b[i]);
  const ref = await codes({}),
    fp = await codes({ fpInputs: true }),
    one = await codes({ trueSequential: false });
  const L = (i: number, n: string) => `model.layers.${i}.${n}`;
  // Block 0 sees the embeddings either way; block 1 sees FP instead of quantized hidden states.
  for (const n of ["self_attn.q_proj", "self_attn.o_proj", "mlp.down_proj"]) {
    assert.ok(same(fp.get(L(0, n))!, ref.get(L(0, n))!), `FP inputs: block 0 ${n} unchanged`);
  }
  assert.ok(
    !same(fp.get(L(1, "self_attn.q_proj"))!, ref.get(L(1, "self_attn.q_proj"))!),
    "FP inputs: block 1 differs",
  );
  // The first group sees the same inputs in both orders; o_proj sees FP q, k, v in the one-pass run.
  assert.ok(
    same(one.get(L(0, "self_attn.k_proj"))!, ref.get(L(0, "self_attn.k_proj"))!),
    "q, k, v unchanged",
  );
  assert.ok(!same(one.get(L(0, "self_attn.o_proj"))!, ref.get(L(0, "self_attn.o_proj"))!), "o_proj differs");
});

Deno.test("GPTQ on OPT: every linear quantized in the OPT order; W4 g128 stays within 3% of FP (a sanity bound, not a quality claim)", async () => {
  const OPT = `${FIXTURES}/tiny-opt`;
  const otok = await loadTokenizer(OPT);
  const cal = await loadCalibration(otok, CALIB, { nsamples: 4, seqlen: 256, seed: 0 });
  const oids = otok.encode((await readEvalText(`${FIXTURES}/text/books.valid.txt`)).text);
  const model = await loadModel(gpu, OPT);
  assert.deepStrictEqual(model.sequentialGroups(1).map((g) => g.length), [3, 1, 1, 1]);
  const fp = (await perplexity(model, oids, { seqlen: 256, maxWindows: 8 })).ppl;
  const r = await quantizeGptq(model, cal.windows, { bits: 4, groupSize: 128 });
  assert.strictEqual(r.records.length, 12);
  const q = (await perplexity(model, oids, { seqlen: 256, maxWindows: 8 })).ppl;
  model.release();
  assert.ok(Math.abs(q - fp) / fp < 0.03, `OPT GPTQ W4 ${q} vs FP ${fp}`);
});
