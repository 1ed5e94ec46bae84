// Real checkpoint layouts end to end: tiny-opt-bin (sharded fp16 .bin, facebook key names, an
// explicit lm_head) against transformers' logits and against the same bytes as safetensors; and
// tiny-llama3 (rope_type llama3, tied, bf16) in both config dialects, with a control showing that
// ignoring the scaling fails.

import assert from "node:assert";
import { getGpu } from "../../lib/gpu/device.ts";
import { perplexity } from "../../lib/eval/perplexity.ts";
import { readEvalText } from "../../lib/eval/text.ts";
import { SafetensorsFile } from "../../lib/io/safetensors.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { loadModel, logits } from "../../lib/load.ts";
import { quantizeRtn } from "../../lib/quant/rtn.ts";
import { assertClose, relErr, rewriteCheckpoint } from "../helpers.ts";
import { FIXTURES } from "../python.ts";

const gpu = await getGpu();
const BIN = `${FIXTURES}/tiny-opt-bin`, LLAMA3 = `${FIXTURES}/tiny-llama3`;

async function tensorsOf(path: string) {
  const f = await SafetensorsFile.open(path);
  const ints = async (n: string) => [...new Int32Array((await f.readBytes(n)).buffer)];
  return { f, ints, f32: async (n: string) => new Float32Array((await f.readBytes(n)).buffer) };
}

Deno.test("tiny-opt-bin (.bin shards + index) logits equal transformers' within 1e-4", async () => {
  const model = await loadModel(gpu, BIN);
  const ref = await tensorsOf(`${BIN}/reference_logits.safetensors`);
  assertClose(
    await logits(model, await ref.ints("input_ids")),
    await ref.f32("logits"),
    1e-4,
    "tiny-opt-bin logits",
  );
  model.release();
});

Deno.test("tiny-opt-bin: FP and RTN perplexity equal the same bytes read as safetensors, and tiny-opt's up to fp16", async () => {
  const tok = await loadTokenizer(BIN);
  const ids = tok.encode((await readEvalText(`${FIXTURES}/text/wiki.test.raw`)).text);
  const ppl = async (dir: string, rtn: boolean) => {
    const model = await loadModel(gpu, dir);
    if (rtn) await quantizeRtn(model, { bits: 4, groupSize: 64 });
    const r = await perplexity(model, ids, { seqlen: 128, maxWindows: 4 });
    model.release();
    return r.ppl;
  };
  const st = await rewriteCheckpoint(BIN); // the .bin's own bytes as safetensors
  for (const rtn of [false, true]) {
    const [viaBin, viaSt, f32] = [
      await ppl(BIN, rtn),
      await ppl(st, rtn),
      await ppl(`${FIXTURES}/tiny-opt`, rtn),
    ];
    assert.strictEqual(viaBin, viaSt, `${rtn ? "RTN W4 g64" : "FP"}: .bin vs safetensors`);
    const rel = Math.abs(viaBin - f32) / f32;
    assert.ok(rel < 2e-3, `${rtn ? "RTN" : "FP"} ppl ${viaBin} vs f32 tiny-opt ${f32}: ${rel}`);
  }
});

/** tiny-llama3 with its config rewritten (dialect, or the scaling dropped) beside the same weights. */
async function llama3With(edit: (c: Record<string, unknown>) => void): Promise<string> {
  const dir = await Deno.makeTempDir();
  const c = JSON.parse(await Deno.readTextFile(`${LLAMA3}/config.json`));
  edit(c);
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(c));
  for (const f of ["model.safetensors", "tokenizer.json"]) {
    await Deno.symlink(`${LLAMA3}/${f}`, `${dir}/${f}`);
  }
  return dir;
}

Deno.test("tiny-llama3 (rope_type llama3, tied, bf16) logits equal transformers' at every stored position, in both config dialects", async () => {
  const ref = await tensorsOf(`${LLAMA3}/reference_logits.safetensors`);
  const ids = await ref.ints("input_ids"), positions = await ref.ints("positions");
  const want = await ref.f32("logits");
  const v4 = await llama3With((c) => {
    // transformers-4 files: rope_theta at top level, rope_scaling beside it, torch_dtype.
    const { rope_theta, ...scaling } = c.rope_parameters as Record<string, unknown>;
    delete c.rope_parameters;
    Object.assign(c, { rope_theta, rope_scaling: scaling, torch_dtype: c.dtype });
    delete c.dtype;
  });
  const plain = await llama3With((c) => {
    c.rope_parameters = {
      rope_type: "default",
      rope_theta: (c.rope_parameters as { rope_theta: number }).rope_theta,
    };
  });
  const worst = async (dir: string) => {
    const model = await loadModel(gpu, dir);
    const l = await logits(model, ids);
    const V = model.vocab;
    model.release();
    return positions.map((p, k) => relErr(l.subarray(p * V, (p + 1) * V), want.subarray(k * V, (k + 1) * V)));
  };
  for (const [what, dir] of [["transformers-5 config", LLAMA3], ["transformers-4 config", v4]]) {
    const errs = await worst(dir);
    errs.forEach((e, k) => assert.ok(e < 1e-4, `${what}, position ${positions[k]}: ${e}`));
  }
  // Control: the same weights with plain RoPE agree at position 0 and miss beyond the original 64.
  const errs = await worst(plain);
  assert.ok(errs[0] < 1e-4, `position 0 has no rotation: ${errs[0]}`);
  assert.ok(Math.max(...errs) > 1e-2, `plain RoPE must differ: ${Math.max(...errs)}`);
});
