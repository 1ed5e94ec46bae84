// AWQ on the fixture models end to end: folding leaves the FP model's function unchanged (Llama
// with grouped KV heads, OPT with biases and the o/v group), the fixture perplexities against RTN,
// FP and an independent torch implementation of AutoAWQ's algorithm (bench/awq_reference.py), the
// AutoAWQ GEMM export read back by our loader and dequantized independently in Python, and errors.

import assert from "node:assert";
import { randn } from "../../lib/cpu/random.ts";
import { loadCalibration } from "../../lib/data/calibration.ts";
import { perplexity } from "../../lib/eval/perplexity.ts";
import { readEvalText } from "../../lib/eval/text.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { writeSafetensors } from "../../lib/io/safetensors.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { DenseLinear } from "../../lib/model/linear.ts";
import { loadModel, logits } from "../../lib/model/load.ts";
import { quantizeAwq } from "../../lib/quant/awq.ts";
import { exportAwq } from "../../lib/quant/export_awq.ts";
import { QuantLinear } from "../../lib/quant/quant_linear.ts";
import { dequantize } from "../../lib/quant/record.ts";
import { quantizeUniform } from "../../lib/quant/uniform.ts";
import { poisonEmbeddingRow, relErr } from "../helpers.ts";
import { FIXTURES, python, runPython } from "../python.ts";

const gpu = await getGpu();
const LLAMA = `${FIXTURES}/tiny-llama`, OPT = `${FIXTURES}/tiny-opt`;
const tok = await loadTokenizer(LLAMA);
const ids = tok.encode((await readEvalText(`${FIXTURES}/text/wiki.test.raw`)).text);
const CALIB = `${FIXTURES}/text/calibration.txt`;
const hasPython = (await python()) !== null;

// SOURCES.md (first 32 windows of 512), and bench/awq_reference.py — AutoAWQ's algorithm in torch
// float32 — with the same 4 calibration windows (Python random, seed 0).
const FP = 171.6299, RTN_W3 = 186.3091;
const TORCH_AWQ: Record<number, number> = { 3: 182.5990, 4: 173.0277 };

for (const dir of [LLAMA, OPT]) {
  Deno.test(`AWQ folding leaves the FP model unchanged: ${dir.split("/").at(-1)} logits within 1e-5`, async () => {
    const model = await loadModel(gpu, dir);
    const probe = ids.slice(0, 64);
    const before = await logits(model, probe);
    const cal = await loadCalibration(tok, CALIB, { nsamples: 2, seqlen: 128, seed: 1 });
    const r = await quantizeAwq(model, cal.windows, { bits: 3, groupSize: 64, quantize: false, clip: false });
    const after = await logits(model, probe);
    model.release();
    assert.ok(r.folded.size > 0 && r.searches.length > 0, "nothing was folded");
    assert.ok(
      r.searches.some((s) => s.best > 0),
      "every group kept α = 0: the test would not see a bad fold",
    );
    const e = relErr(after, before);
    assert.ok(e < 1e-5, `logits moved by ${e} relative`);
    // Llama here has grouped KV heads: AutoAWQ skips o_proj against v_proj; OPT has that group.
    const oGroup = r.searches.some((s) => /v_proj$/.test(s.prev));
    assert.strictEqual(oGroup, dir === OPT);
  });
}

Deno.test("AWQ on the fixture: W3 g128 below RTN, W4 g128 within 1.5% of FP, both near AutoAWQ's algorithm in torch", async () => {
  // 4 calibration windows (the benchmark uses the reference's 128) keep this test a few minutes.
  const cal = await loadCalibration(tok, CALIB, { nsamples: 4, seqlen: 512, seed: 0 });
  const got: string[] = [];
  for (const bits of [3, 4] as const) {
    const model = await loadModel(gpu, LLAMA);
    const r = await quantizeAwq(model, cal.windows, { bits, groupSize: 128 });
    assert.ok(model.blockLinears(3).every((l) => l instanceof QuantLinear));
    const { ppl } = await perplexity(model, ids, { seqlen: 512, maxWindows: 32 });
    model.release();
    got.push(
      `W${bits}: ${ppl.toFixed(4)} (torch ${TORCH_AWQ[bits]}, ${
        r.seconds.toFixed(0)
      } s, peak ${r.peakBytes} B)`,
    );
    if (bits === 3) assert.ok(ppl < RTN_W3, `AWQ W3 ppl ${ppl} is not below RTN ${RTN_W3}`);
    else assert.ok(Math.abs(ppl - FP) / FP < 0.015, `AWQ W4 ppl ${ppl} vs FP ${FP}`);
    // Float32 rounding of the clipping search's .5 ties alone moves the result by up to ~1%
    // (torch float32 vs float64 on the same windows); 1.5% bounds that.
    assert.ok(
      Math.abs(ppl - TORCH_AWQ[bits]) / TORCH_AWQ[bits] < 0.015,
      `W${bits}: ${ppl} vs ${TORCH_AWQ[bits]}`,
    );
  }
  console.log(got.join("; "));
});

Deno.test({
  name:
    "AutoAWQ GEMM export: loads back to the same ppl; Python dequantizes it to our weights; a bad layer writes nothing",
  ignore: !hasPython,
  async fn() {
    const cal = await loadCalibration(tok, CALIB, { nsamples: 1, seqlen: 512, seed: 2 });
    const model = await loadModel(gpu, LLAMA);
    const r = await quantizeAwq(model, cal.windows, { bits: 4, groupSize: 64 });
    const mem = (await perplexity(model, ids, { seqlen: 512, maxWindows: 2 })).ppl;
    const dir = await Deno.makeTempDir();
    try {
      await exportAwq(LLAMA, `${dir}/out`, r.records, r.folded);
      const cfg = JSON.parse(await Deno.readTextFile(`${dir}/out/config.json`)).quantization_config;
      assert.deepStrictEqual([cfg.quant_method, cfg.bits, cfg.group_size, cfg.version], [
        "awq",
        4,
        64,
        "gemm",
      ]);
      const back = await loadModel(gpu, `${dir}/out`);
      assert.ok(back.blockLinears(0).every((l) => l instanceof QuantLinear));
      const loaded = (await perplexity(back, ids, { seqlen: 512, maxWindows: 2 })).ppl;
      back.release();
      assert.strictEqual(loaded, mem, `loaded ${loaded} vs in-memory ${mem}`);
      await writeSafetensors(
        `${dir}/ours.safetensors`,
        r.records.map((x) => ({ name: x.name, dtype: "F32", shape: x.shape, data: dequantize(x) })),
      );
      const worst = Number(
        await runPython(PY_DEQUANT, [`${dir}/out/model.safetensors`, `${dir}/ours.safetensors`]),
      );
      assert.ok(worst === 0, `Python's dequantization differs from ours by up to ${worst}`);

      // out-features not divisible by 8: the error names the layer, nothing is written, and the
      // in-memory model is untouched.
      const bad = quantizeUniform("model.layers.9.odd", randn(12 * 64, 1), [12, 64], {
        bits: 4,
        groupSize: 64,
        sym: false,
        range: "minmax",
      }, "awq");
      await assert.rejects(
        exportAwq(LLAMA, `${dir}/bad`, [...r.records, bad], r.folded),
        /model\.layers\.9\.odd: the AWQ GEMM format needs out-features divisible by 8, got 12/,
      );
      assert.ok(
        !(await Deno.stat(`${dir}/bad`).then(() => true, () => false)),
        "a partial checkpoint was left",
      );
      assert.strictEqual((await perplexity(model, ids, { seqlen: 512, maxWindows: 2 })).ppl, mem);
    } finally {
      model.release();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// AutoAWQ's GEMM layout read the way its unpack does it, written without our code: the eight
// nibbles of each int32 in shift order, then the columns put back with the reverse of the
// [0, 2, 4, 6, 1, 3, 5, 7] interleave; W = (q − z) · s.
const PY_DEQUANT = `
import sys, numpy as np
from safetensors.numpy import load_file
ckpt, ours = load_file(sys.argv[1]), load_file(sys.argv[2])
REVERSE = np.array([0, 4, 1, 5, 2, 6, 3, 7])
def unpack(words):  # int32 [R, C/8] -> [R, C]
    w = words.view(np.uint32)
    nib = np.stack([(w >> (4 * i)) & 15 for i in range(8)], axis=-1)  # [R, C/8, 8] in packed order
    return nib[:, :, REVERSE].reshape(w.shape[0], -1).astype(np.int64)
worst = 0.0
for name, w in ours.items():
    q = unpack(ckpt[name + '.qweight'])            # [in, out]
    z = unpack(ckpt[name + '.qzeros'])             # [G, out]
    s = ckpt[name + '.scales'].astype(np.float32)  # [G, out]
    g = q.shape[0] // z.shape[0]
    deq = (q - np.repeat(z, g, axis=0)) * np.repeat(s, g, axis=0)
    worst = max(worst, float(np.abs(deq.T.astype(np.float32) - w).max()))
print(worst)
`;

Deno.test("AWQ errors: NaN calibration activations name the block; bad options name the option", async () => {
  const cal = await loadCalibration(tok, CALIB, { nsamples: 1, seqlen: 64, seed: 0 });
  const model = await loadModel(gpu, LLAMA);
  try {
    await assert.rejects(quantizeAwq(model, cal.windows, { bits: 5 as 4 }), /bits/);
    await assert.rejects(
      quantizeAwq(model, cal.windows, { groupSize: 100 }),
      /not divisible by group size 100/,
    );
    poisonEmbeddingRow(model, cal.windows[0][5]); // a token the calibration window uses
    await assert.rejects(
      quantizeAwq(model, cal.windows, { bits: 4, groupSize: 128 }),
      /AWQ: block 0: NaN or Inf in the calibration activations entering model\.layers\.0\.self_attn\.q_proj/,
    );
    assert.ok(model.blockLinears(0).every((l) => l instanceof DenseLinear), "no layer was replaced");
  } finally {
    model.release();
  }
});
