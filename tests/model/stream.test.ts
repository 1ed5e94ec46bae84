// Streamed blocks (issue 19): a model whose decoder blocks live in host memory and visit the GPU
// one at a time gives the resident run's perplexity bit for bit, and every method's codes and
// scales bit-identical, with far fewer GPU bytes; the bench picks the mode from --gpu-memory, keeps
// under the budget, and refuses a budget too small with the arithmetic.

import assert from "node:assert";
import { checkMemory } from "../../lib/bench/checks.ts";
import { parseBenchArgs, runBench } from "../../lib/cli/bench.ts";
import type { Setting } from "../../lib/methods/contract.ts";
import { loadCalibration } from "../../lib/data/calibration.ts";
import { perplexity } from "../../lib/eval/perplexity.ts";
import { readResults } from "../../lib/eval/results.ts";
import { readEvalText } from "../../lib/eval/text.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { generate } from "../../lib/model/generate.ts";
import { loadModel } from "../../lib/load.ts";
import { footprint, parseBytes } from "../../lib/model/memory.ts";
import { readConfig } from "../../lib/io/config.ts";
import type { CausalLM } from "../../lib/model/model.ts";
import { quantizeAutoRound } from "../../lib/quant/autoround.ts";
import { quantizeAwq } from "../../lib/quant/awq.ts";
import { quantizeBnb4 } from "../../lib/quant/bnb.ts";
import { quantizeGptq } from "../../lib/quant/gptq.ts";
import { quantizeHqq } from "../../lib/quant/hqq.ts";
import { quantizeInt8 } from "../../lib/quant/llm_int8.ts";
import { quantizeRtn } from "../../lib/quant/rtn.ts";
import type { QuantRecord } from "../../lib/quant/record.ts";
import { FIXTURES } from "../python.ts";

const gpu = await getGpu();
const LLAMA = `${FIXTURES}/tiny-llama`;
const tok = await loadTokenizer(LLAMA);
const ids = tok.encode((await readEvalText(`${FIXTURES}/text/wiki.test.raw`)).text);
const cal = await loadCalibration(tok, `${FIXTURES}/text/calibration.txt`, {
  nsamples: 2,
  seqlen: 64,
  seed: 0,
});

// `statesOnHost`: the calibrated methods' hidden states in host memory between uses (the
// streamed runs below use it, so it too must give the resident run's records).
type Quantize = (m: CausalLM, statesOnHost?: boolean) => Promise<{ records: QuantRecord[] }>;
const METHODS: [string, Quantize][] = [
  ["fp", () => Promise.resolve({ records: [] })],
  ["rtn", (m) => quantizeRtn(m, { bits: 4, groupSize: 128 })],
  ["hqq", (m) => quantizeHqq(m, { bits: 4, groupSize: 64, axis: 1 })],
  ["nf4", (m) => quantizeBnb4(m, { type: "nf4", doubleQuant: true })],
  ["fp4", (m) => quantizeBnb4(m, { type: "fp4", doubleQuant: false })],
  ["bnb-int8", (m) => quantizeInt8(m, 6)],
  ["gptq", (m, statesOnHost) => quantizeGptq(m, cal.windows, { bits: 4, groupSize: 128, statesOnHost })],
  [
    "awq",
    (m, statesOnHost) =>
      quantizeAwq(m, cal.windows, {
        bits: 4,
        groupSize: 128,
        nGrid: 4,
        clipTokens: 64,
        statesOnHost,
        samplesPerBatch: 1,
      }),
  ],
  [
    "autoround",
    (m, statesOnHost) =>
      quantizeAutoRound(m, cal.windows, { bits: 4, groupSize: 128, iters: 2, statesOnHost }),
  ],
];

/** Host bytes the model's blocks keep (a streamed FP block keeps none: it is re-read from the file). */
const hostBytes = (m: CausalLM) =>
  Array.from({ length: m.numBlocks }, (_, i) => m.blockTensors(i)).flat().reduce(
    (n, t) => n + t.hostBytes,
    0,
  );

async function run(stream: boolean, quantize: Quantize) {
  gpu.pool.trim();
  gpu.pool.resetPeak();
  const model = await loadModel(gpu, LLAMA, stream);
  assert.strictEqual(model.streamed, stream);
  if (stream) {
    assert.ok(model.blockTensors(0).every((t) => !t.resident), "blocks start off the GPU");
    assert.strictEqual(hostBytes(model), 0, "an FP block is read from the checkpoint when it enters");
  }
  const q = await quantize(model, stream);
  if (stream && q.records.length) {
    // What the method keeps: the packed layers (and the norms it may have rescaled), no FP copy.
    const packed = q.records.reduce((n, r) => n + r.shape[0] * r.shape[1], 0);
    assert.ok(hostBytes(model) < packed * 2, `host copies ${hostBytes(model)} vs ${packed} FP16 weights`);
  }
  const quantPeak = gpu.pool.stats().peak;
  gpu.pool.resetPeak();
  const r = await perplexity(model, ids, { seqlen: 128, maxWindows: 3, windowsPerPass: 2 });
  const evalPeak = gpu.pool.stats().peak, bytes = model.bytes();
  model.release();
  return { ppl: r.ppl, records: q.records, quantPeak, evalPeak, bytes };
}

for (const [name, quantize] of METHODS) {
  Deno.test(`streamed ${name} (calibration states in host memory): perplexity and records bit-identical to the resident run`, async () => {
    const a = await run(false, quantize), b = await run(true, quantize);
    assert.strictEqual(b.ppl, a.ppl, `${name}: streamed ppl ${b.ppl} vs resident ${a.ppl}`);
    assert.strictEqual(b.bytes, a.bytes);
    assert.strictEqual(b.records.length, a.records.length);
    for (const [k, r] of b.records.entries()) {
      assert.deepStrictEqual(r, a.records[k], `${name}: record ${r.name}`);
    }
    // The streamed evaluation holds two of the four blocks at most: less than the resident model.
    assert.ok(b.evalPeak < a.evalPeak, `${name}: eval peak ${b.evalPeak} vs resident ${a.evalPeak}`);
    if (name !== "fp") {
      assert.ok(b.quantPeak < a.quantPeak, `${name}: quant peak ${b.quantPeak} vs ${a.quantPeak}`);
    }
  });
}

Deno.test("generation with the blocks streamed: the resident run's tokens, greedy and sampled", async () => {
  const prompt = ids.slice(0, 12);
  const out: number[][][] = [];
  for (const stream of [false, true]) {
    const model = await loadModel(gpu, LLAMA, stream);
    const greedy = await generate(model, prompt, { maxNewTokens: 6 });
    const sampled = await generate(model, prompt, { maxNewTokens: 6, temperature: 0.8, topP: 0.9, seed: 3 });
    out.push([greedy.ids, sampled.ids]);
    if (stream) assert.ok(model.blockTensors(0).every((t) => !t.resident), "blocks leave the GPU again");
    model.release();
  }
  assert.deepStrictEqual(out[1], out[0]);
});

Deno.test("sizes: bytes, SI and binary suffixes; nonsense refused", () => {
  assert.strictEqual(parseBytes("1234"), 1234);
  assert.strictEqual(parseBytes("24GB"), 24e9);
  assert.strictEqual(parseBytes("80 GiB"), 80 * 2 ** 30);
  assert.strictEqual(parseBytes("1.5MiB"), 1.5 * 2 ** 20);
  assert.throws(() => parseBytes("lots"), /"lots" is not a size/);
  assert.throws(() => parseBytes("12 parsecs"), /not a size/);
  assert.throws(() => parseBenchArgs(["--gpu-memory", "0"]), /--gpu-memory must be > 0/);
});

const bench = (budget: string, out: string) =>
  parseBenchArgs([
    ...["--model", LLAMA, "--dataset", `${FIXTURES}/text/wiki.test.raw`, "--methods", "fp,rtn"],
    ...["--seqlen", "128", "--max-windows", "2", "--decode-tokens", "4", "--gemv-reps", "0"],
    ...["--no-figures", "--quiet", "--gpu-memory", budget, "--out", out],
  ]);

Deno.test("bench --gpu-memory below the model's needs streams the blocks and stays under the budget", async () => {
  const out = await Deno.makeTempDir();
  const o = bench("12MiB", out);
  assert.ok(o !== "help");
  // FP fits streamed at 12 MiB; RTN (a block expanded to f32 while quantized) needs more, even
  // with the logits in chunks of one row.
  await assert.rejects(
    runBench(o),
    /--methods rtn: --gpu-memory 12\.0 MiB \(12582912 bytes\) is too small: resident needs .* streamed needs .* = 1\d\.\d MiB/,
  );
  assert.deepStrictEqual([...Deno.readDirSync(out)], [], "refused before anything was written");
  const o2 = bench("15MiB", out);
  assert.ok(o2 !== "help");
  const rows = await runBench(o2);
  const got = (await readResults(`${out}/results.jsonl`)).filter((r) => r.status === "ok");
  assert.strictEqual(got.length, 2);
  assert.strictEqual(rows.length, 2);
  const fp = got.find((r) => r.method === "fp")!, rtn = got.find((r) => r.method === "rtn")!;
  // At 15 MiB FP fits resident once a window's logits come in chunks of 64 rows (its
  // 128 × 4096 f32 logits and their NLL are 4 MiB); RTN streams, with chunks too.
  assert.strictEqual(fp.memory_mode, "resident", "FP fits 15 MiB resident");
  assert.strictEqual(fp.logit_rows, 64);
  assert.strictEqual(rtn.memory_mode, "streamed", "RTN does not");
  assert.strictEqual(rtn.logit_rows, 64);
  assert.strictEqual(rtn.decode_tokens_per_second, null, "no speed figures while streamed");
  for (const r of got) {
    assert.strictEqual(r.gpu_memory_budget, 15 * 2 ** 20);
    assert.ok(r.peak_gpu_held_bytes! <= 15 * 2 ** 20, `${r.method}: held ${r.peak_gpu_held_bytes}`);
    assert.ok(r.eval_peak_gpu_bytes! <= r.peak_gpu_bytes);
    // What the plan counted for the mode that ran: under the budget, above the weights alone.
    assert.ok(
      r.gpu_bytes_needed! <= 15 * 2 ** 20 && r.gpu_bytes_needed! > r.weight_bytes!,
      `${r.method}: needed`,
    );
  }
  assert.ok(rtn.quant_peak_gpu_bytes! > 0);
  assert.strictEqual(gpu.pool.budget, null, "the budget does not outlive the run");
});

Deno.test("a budget the calibration states do not fit: they go to host memory, after streaming", async () => {
  const c = await readConfig(LLAMA);
  const plan = (method: string, budget: string) => {
    const o = parseBenchArgs([
      ...["--model", LLAMA, "--methods", method, "--gpu-memory", budget],
      ...["--calibration", `${FIXTURES}/text/calibration.txt`],
    ]);
    assert.ok(o !== "help");
    return checkMemory(LLAMA, c, { method, bits: 4, groupSize: 128 } as Setting, o, 512, {
      n: 128,
      seq: 512,
    });
  };
  // 128 × 512 tokens × 256 hidden × 4 bytes × (in, out) = 128 MiB of states.
  const big = plan("gptq", "1GiB");
  assert.strictEqual(big.mode, "resident");
  assert.ok(!big.statesOnHost);
  const small = plan("gptq", "100MiB");
  assert.strictEqual(small.statesOnHost, true, small.why);
  assert.match(small.why, /calibration states in host memory/);
  assert.strictEqual(plan("awq", "100MiB").statesOnHost, true);
  assert.strictEqual(plan("autoround", "300MiB").statesOnHost, true); // 256 MiB of states (two chains)
  assert.throws(() => plan("gptq", "8MiB"), /--methods gptq: --gpu-memory 8\.0 MiB .* is too small/);
});

Deno.test("bench gptq under a budget its calibration states do not fit: states in host memory, under the budget", async () => {
  const out = await Deno.makeTempDir();
  // 16 × 512 calibration tokens: 16 MiB of states (in and out); 90 MiB holds 8 MiB of them.
  const o = parseBenchArgs([
    ...["--model", LLAMA, "--dataset", `${FIXTURES}/text/wiki.test.raw`, "--methods", "gptq"],
    ...["--calibration", `${FIXTURES}/text/calibration.txt`, "--nsamples", "16", "--calib-seqlen", "512"],
    ...["--seqlen", "128", "--max-windows", "1", "--decode-tokens", "4", "--gemv-reps", "0"],
    ...["--no-figures", "--quiet", "--gpu-memory", "90MiB", "--out", out],
  ]);
  assert.ok(o !== "help");
  await runBench(o);
  const [r] = (await readResults(`${out}/results.jsonl`)).filter((r) => r.status === "ok");
  assert.strictEqual(r.states_on_host, true);
  assert.strictEqual(r.memory_mode, "resident");
  assert.ok(r.peak_gpu_held_bytes! <= 90 * 2 ** 20, `held ${r.peak_gpu_held_bytes}`);
});

Deno.test("the memory plan's parameter bytes equal what the loaded fixtures hold", async () => {
  for (const m of ["tiny-llama", "tiny-llama3", "stories260K", "tiny-opt", "tiny-opt-bin"]) {
    const dir = `${FIXTURES}/${m}`;
    const f = footprint(await readConfig(dir));
    const model = await loadModel(gpu, dir);
    assert.strictEqual(f.params, model.bytes(), m);
    model.release();
  }
});
