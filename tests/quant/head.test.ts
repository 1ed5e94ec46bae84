// --quantize-head: every data-free method (rtn, hqq, nf4, fp4, bnb-int8) quantizes lm_head when
// asked — fewer weight bytes, a non-FP head — and a tied head's export is untied and loads back
// to the same perplexity; the calibrated methods refuse the flag before any work.

import assert from "node:assert";
import { parseBenchArgs, runBench } from "../../lib/cli/bench.ts";
import type { ResultRow } from "../../lib/eval/results.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { DenseLinear } from "../../lib/model/linear.ts";
import { loadModel } from "../../lib/load.ts";
import { quantizeBnb4 } from "../../lib/quant/bnb.ts";
import { quantizeHqq } from "../../lib/quant/hqq.ts";
import { quantizeInt8 } from "../../lib/quant/llm_int8.ts";
import { FIXTURES } from "../python.ts";

const gpu = await getGpu();
const OPT = `${FIXTURES}/tiny-opt`; // lm_head tied to the embeddings
const LLAMA = `${FIXTURES}/tiny-llama`; // an untied lm_head
const args = (extra: string[], model = OPT) => {
  const o = parseBenchArgs([
    ...["--model", model, "--dataset", `${FIXTURES}/text/wiki.test.raw`, "--seqlen", "128"],
    ...["--max-windows", "2", "--decode-tokens", "0", "--gemv-reps", "0", "--no-figures", "--quiet"],
    ...extra,
  ]);
  assert.ok(o !== "help");
  return o;
};

Deno.test("hqq, nf4 and LLM.int8 quantize lm_head with quantizeHead (and leave it FP without)", async () => {
  const runs: [string, (m: Awaited<ReturnType<typeof loadModel>>, head: boolean) => Promise<unknown>][] = [
    ["hqq", (m, head) => quantizeHqq(m, { bits: 4, groupSize: 32, quantizeHead: head })],
    ["nf4", (m, head) => quantizeBnb4(m, { type: "nf4", blocksize: 64, quantizeHead: head })],
    ["bnb-int8", (m, head) => quantizeInt8(m, 6, head)],
  ];
  for (const [what, q] of runs) {
    for (const head of [false, true]) {
      const model = await loadModel(gpu, OPT);
      const r = await q(model, head) as { records: { name: string }[] };
      assert.strictEqual(r.records.some((x) => x.name === "lm_head"), head, what);
      assert.strictEqual(
        model.headLinear() instanceof DenseLinear,
        !head,
        `${what}: head quantized = ${head}`,
      );
      model.release();
    }
  }
});

Deno.test("bench --quantize-head: an untied head costs fewer weight bytes for every data-free method and changes ppl", async () => {
  const methods = "rtn,hqq,nf4,bnb-int8";
  const base = ["--methods", methods, "--bits", "4", "--group-size", "64", "--max-windows", "1"];
  const plain = await runBench(args([...base, "--out", await Deno.makeTempDir()], LLAMA)) as ResultRow[];
  const headed = await runBench(
    args([...base, "--quantize-head", "--out", await Deno.makeTempDir()], LLAMA),
  ) as ResultRow[];
  for (const m of methods.split(",")) {
    const [a, b] = [plain, headed].map((rows) => rows.find((r) => r.method === m && r.status === "ok")!);
    assert.ok(b.weight_bytes! < a.weight_bytes!, `${m}: ${b.weight_bytes} < ${a.weight_bytes}`);
    assert.notStrictEqual(b.ppl, a.ppl, m);
  }
});

Deno.test("--quantize-head on a tied model: the export is untied and loads back to the same ppl; gptq, awq, autoround refuse", async () => {
  const exp = await Deno.makeTempDir();
  const base = ["--methods", "hqq", "--bits", "4", "--group-size", "32", "--quantize-head", "--export", exp];
  const headed = await runBench(args([...base, "--out", await Deno.makeTempDir()])) as ResultRow[];
  // The HQQ export holds the head as its own quantized tensors beside the FP embeddings.
  const dir = `${exp}/tiny-opt-hqq-w4-g32`;
  const cfg = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  assert.strictEqual(cfg.tie_word_embeddings, false);
  const back = await runBench(args(["--out", await Deno.makeTempDir()], dir)) as ResultRow[];
  const hqq = headed.find((r) => r.method === "hqq")!;
  assert.ok(Math.abs(back[0].ppl! - hqq.ppl!) / hqq.ppl! < 1e-6, `${back[0].ppl} vs ${hqq.ppl}`);
  for (const m of ["gptq", "awq", "autoround"]) {
    assert.throws(
      () =>
        args([
          "--methods",
          `rtn,${m}`,
          "--quantize-head",
          "--calibration",
          `${FIXTURES}/text/calibration.txt`,
        ]),
      /--quantize-head: only rtn, hqq, nf4, fp4, bnb-int8 quantize lm_head/,
      m,
    );
  }
});
