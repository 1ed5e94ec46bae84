// awq+gptq through the method contract: AWQ's fold-only search then GPTQ on the scaled weights
// beats GPTQ alone where AWQ's Table 9 shows the combination's gain (2 bits), and its AutoGPTQ
// export (scaled weights and folded norms) loads back to the same perplexity.

import assert from "node:assert";
import { loadCalibration } from "../../lib/data/calibration.ts";
import { perplexity } from "../../lib/eval/perplexity.ts";
import { readEvalText } from "../../lib/eval/text.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { loadModel } from "../../lib/load.ts";
import { getMethod } from "../../lib/methods/registry.ts";
import { parseBenchArgs } from "../../lib/bench/options.ts";
import { FIXTURES } from "../python.ts";

const gpu = await getGpu();
const LLAMA = `${FIXTURES}/tiny-llama`;
const tok = await loadTokenizer(LLAMA);
const ids = tok.encode((await readEvalText(`${FIXTURES}/text/wiki.test.raw`)).text);
const CALIB = `${FIXTURES}/text/calibration.txt`;
/** RTN W2 g128 on the same 4 windows of 512 (the harness's rtn, include-zero grid). */
const EVAL = { seqlen: 512, maxWindows: 4 };

Deno.test("awq+gptq W2 g128: below GPTQ and RTN; its export loads back to the same ppl", async () => {
  const cal = await loadCalibration(tok, CALIB, { nsamples: 8, seqlen: 256, seed: 0 });
  const calibration = { file: CALIB, sha256: "", windows: cal.windows, tokens: Infinity };
  const o = parseBenchArgs(["--model", LLAMA, "--methods", "rtn,gptq,awq+gptq", "--calibration", CALIB]);
  assert.ok(o !== "help");
  const s = (method: string) => ({ method, bits: 2, groupSize: 128 });
  const ctx = { calibration, log: () => {}, statesOnHost: false, gpuMemory: null, seed: 0 };
  const out = await Deno.makeTempDir();
  const ppl: Record<string, number> = {};
  for (const name of ["rtn", "gptq", "awq+gptq"]) {
    const model = await loadModel(gpu, LLAMA);
    const q = await getMethod(name).quantize(model, s(name), o, ctx);
    ppl[name] = (await perplexity(model, ids, EVAL)).ppl;
    model.release();
    if (name === "awq+gptq") await q.export!(LLAMA, `${out}/awq+gptq`, {});
  }
  console.log(Object.entries(ppl).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(", "));
  assert.ok(ppl["awq+gptq"] < ppl.gptq * 0.99, `awq+gptq ${ppl["awq+gptq"]} not 1% below gptq ${ppl.gptq}`);
  assert.ok(ppl.gptq < ppl.rtn, `gptq ${ppl.gptq} not below rtn ${ppl.rtn}`);
  const back = await loadModel(gpu, `${out}/awq+gptq`);
  const again = (await perplexity(back, ids, EVAL)).ppl;
  back.release();
  assert.ok(
    Math.abs(again - ppl["awq+gptq"]) / ppl["awq+gptq"] < 1e-5,
    `export ${again} vs ${ppl["awq+gptq"]}`,
  );
});

Deno.test("awq+autoround W4 g128: AutoRound from the AWQ-scaled weights; its auto-round export loads back", async () => {
  const cal = await loadCalibration(tok, CALIB, { nsamples: 8, seqlen: 128, seed: 0 });
  const calibration = { file: CALIB, sha256: "", windows: cal.windows, tokens: Infinity };
  const o = parseBenchArgs([
    "--model",
    LLAMA,
    "--methods",
    "awq+autoround",
    "--calibration",
    CALIB,
    "--iters",
    "2",
  ]);
  assert.ok(o !== "help");
  const ctx = { calibration, log: () => {}, statesOnHost: false, gpuMemory: null, seed: 0 };
  const model = await loadModel(gpu, LLAMA);
  const q = await getMethod("awq+autoround").quantize(
    model,
    { method: "awq+autoround", bits: 4, groupSize: 128 },
    o,
    ctx,
  );
  const ppl = (await perplexity(model, ids, EVAL)).ppl;
  model.release();
  assert.strictEqual(q.quant!.records.length, 28);
  const opts = (await q.methodOptions()) as { awq: { duo_scaling: boolean }; autoround: { iters: number } };
  assert.deepStrictEqual([opts.awq.duo_scaling, opts.autoround.iters], [true, 2]);
  const out = await Deno.makeTempDir();
  await q.export!(LLAMA, `${out}/m`, {});
  const cfg = JSON.parse(await Deno.readTextFile(`${out}/m/config.json`));
  assert.strictEqual(cfg.quantization_config.quant_method, "auto-round");
  const back = await loadModel(gpu, `${out}/m`);
  const again = (await perplexity(back, ids, EVAL)).ppl;
  back.release();
  assert.ok(Math.abs(again - ppl) / ppl < 1e-5, `export ${again} vs ${ppl}`);
});
