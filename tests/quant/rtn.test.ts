// RTN on the fixture: deterministic, so it must equal the reference ppl of SOURCES.md (computed
// with the GPTQ quantizer in PyTorch) within 0.2%; the packed kernels must equal the fake-quant
// path; W8 must sit within 0.5% of FP. The remaining settings of the table run in the benchmark.

import assert from "node:assert";
import { parseBenchArgs, runBench } from "../../lib/cli/bench.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { perplexity } from "../../lib/eval/perplexity.ts";
import type { ResultRow } from "../../lib/eval/results.ts";
import { readEvalText } from "../../lib/eval/text.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { DenseLinear } from "../../lib/model/linear.ts";
import { loadModel, logits } from "../../lib/load.ts";
import { QuantLinear } from "../../lib/quant/quant_linear.ts";
import { quantizeRtn } from "../../lib/quant/rtn.ts";
import { FIXTURES } from "../python.ts";

const gpu = await getGpu();
const LLAMA = `${FIXTURES}/tiny-llama`;
const tok = await loadTokenizer(LLAMA);
const ids = tok.encode((await readEvalText(`${FIXTURES}/text/wiki.test.raw`)).text);

async function ppl(windows: number, quant?: { bits: number; groupSize: number; fake?: boolean }) {
  const model = await loadModel(gpu, LLAMA);
  if (quant) await quantizeRtn(model, quant);
  const r = await perplexity(model, ids, { seqlen: 512, maxWindows: windows });
  model.release();
  return r.ppl;
}

// SOURCES.md, "Quantized references on text/wiki.test.raw, first 32 windows of 512".
for (const [bits, groupSize, want] of [[4, 128, 173.2806], [2, 64, 270.7976]]) {
  Deno.test(`RTN W${bits} g${groupSize}: ppl equals the PyTorch reference ${want} within 0.2%`, async () => {
    const got = await ppl(32, { bits, groupSize });
    const rel = Math.abs(got - want) / want;
    assert.ok(rel < 2e-3, `ppl ${got} vs ${want} (${(100 * rel).toFixed(3)}%)`);
  });
}

Deno.test("the packed kernels equal the fake-quant path within 0.1%; W8 is within 0.5% of FP", async () => {
  const packed = await ppl(2, { bits: 3, groupSize: 128 });
  const fake = await ppl(2, { bits: 3, groupSize: 128, fake: true });
  assert.ok(Math.abs(packed - fake) / fake < 1e-3, `packed ${packed} vs fake-quant ${fake}`);
  const fp = await ppl(2);
  const w8 = await ppl(2, { bits: 8, groupSize: 128 });
  assert.ok(Math.abs(w8 - fp) / fp < 5e-3, `W8 ${w8} vs FP ${fp}`);
});

Deno.test("a group size the layers cannot take is refused before any layer changes", async () => {
  const model = await loadModel(gpu, LLAMA);
  await assert.rejects(
    quantizeRtn(model, { bits: 4, groupSize: 96 }),
    /model.layers.0.self_attn.q_proj: in-features 256 are not divisible by group size 96/,
  );
  assert.ok(model.blockLinears(0).every((l) => l instanceof DenseLinear), "nothing was quantized");
  await quantizeRtn(model, { bits: 4, groupSize: 64 });
  assert.ok(model.blockLinears(3).every((l) => l instanceof QuantLinear));
  await assert.rejects(quantizeRtn(model, { bits: 4, groupSize: 64 }), /already quantized/);
  model.release();
});

Deno.test("deno task bench --methods rtn writes bits_per_weight, weight_bytes and quant time", async () => {
  const out = await Deno.makeTempDir();
  const o = parseBenchArgs([
    ...["--model", LLAMA, "--dataset", `${FIXTURES}/text/wiki.test.raw`, "--methods", "fp,rtn"],
    ...[
      "--bits",
      "4",
      "--group-size",
      "128",
      "--seqlen",
      "512",
      "--max-windows",
      "1",
      "--out",
      out,
      "--quiet",
    ],
  ]);
  assert.ok(o !== "help");
  const [fp, rtn] = (await runBench(o)) as ResultRow[];
  assert.deepStrictEqual([fp.method, fp.bits, fp.bits_per_weight], ["fp", null, null]);
  assert.deepStrictEqual([rtn.method, rtn.bits, rtn.group_size], ["rtn", 4, 128]);
  assert.strictEqual(rtn.bits_per_weight, 4 + (16 + 4) / 128);
  assert.ok(rtn.weight_bytes! < fp.weight_bytes! && rtn.quant_seconds! > 0, JSON.stringify(rtn));
});

Deno.test("lm_head stays FP by default and can be quantized; a tied head leaves the embeddings intact", async () => {
  const model = await loadModel(gpu, `${FIXTURES}/stories260K`); // tied lm_head
  const prompt = [1, 403, 407, 261, 378];
  const fp = await logits(model, prompt);
  await quantizeRtn(model, { bits: 8, groupSize: -1 });
  assert.ok(model.headLinear() instanceof DenseLinear, "head stays FP by default");
  await assert.rejects(
    quantizeRtn(model, { bits: 8, groupSize: -1, quantizeHead: true }),
    /already quantized/,
  );
  const fresh = await loadModel(gpu, `${FIXTURES}/stories260K`);
  await quantizeRtn(fresh, { bits: 8, groupSize: -1, quantizeHead: true });
  assert.ok(fresh.headLinear() instanceof QuantLinear);
  const q = await logits(fresh, prompt); // the embedding gather still reads the (FP) table
  let num = 0, den = 0;
  for (let i = 0; i < fp.length; i++) (num += (q[i] - fp[i]) ** 2), (den += fp[i] ** 2);
  assert.ok(Math.sqrt(num / den) < 0.05, `W8 logits stay close to FP: ${Math.sqrt(num / den)}`);
  model.release();
  fresh.release();
});
