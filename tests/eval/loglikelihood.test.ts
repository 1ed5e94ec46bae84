// The loglikelihood request against lm-eval 0.4.13's own Hugging Face backend (HFLM on the
// tiny-llama fixture, float32, CPU): every request's encoding equal, log-likelihood within 1e-4,
// is_greedy equal — short and long contexts (left-truncated at a lowered max_length of 64),
// trailing whitespace moved to the continuation, an empty context, multi-token continuations.

import assert from "node:assert";
import { getGpu } from "../../lib/gpu/device.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import {
  type EncodedRequest,
  encodeRequest,
  type LlRequest,
  scoreRequests,
} from "../../lib/eval/loglikelihood.ts";
import { scoreReusingContexts } from "../../lib/eval/prefix_kv.ts";
import { loadModel } from "../../lib/load.ts";
import { FIXTURES, pythonHas, runPython } from "../python.ts";

const LLAMA = `${FIXTURES}/tiny-llama`;
const hasLmEval = await pythonHas("lm_eval.models.huggingface");

async function requests(): Promise<LlRequest[]> {
  const lines = (await Deno.readTextFile(`${FIXTURES}/text/calibration.txt`)).split("\n").filter((l) =>
    l.trim()
  );
  const out: LlRequest[] = [];
  for (let i = 0; i < 24; i++) {
    const text = lines.slice(i * 5, i * 5 + 1 + (i % 6)).join(" ");
    const words = text.split(" ");
    const cut = Math.max(1, words.length - 1 - (i % 4));
    const context = words.slice(0, cut).join(" ") + (i % 3 === 0 ? " " : i % 3 === 1 ? "\n" : "");
    const continuation = (i % 3 === 0 ? "" : " ") + words.slice(cut).join(" ");
    out.push({ context, continuation });
  }
  // Multiple choice as the tasks build it: one context, several continuations.
  for (const c of [" Paris.", " a small town", " 1,024", " naïve café"]) {
    out.push({ context: "Question: Where did they go?\nAnswer:", continuation: c });
  }
  out.push({ context: "", continuation: "The story begins" });
  out.push({ context: "Once upon a time   ", continuation: "there was" });
  return out;
}

const LM_EVAL = `
import json, sys
from lm_eval.models.huggingface import HFLM
from lm_eval.api.instance import Instance
reqs = json.load(open(sys.argv[2]))
lm = HFLM(pretrained=sys.argv[1], device="cpu", dtype="float32", batch_size=4, max_length=int(sys.argv[3]))
inst = [Instance(request_type="loglikelihood", doc={}, arguments=(r["context"], r["continuation"]), idx=i)
        for i, r in enumerate(reqs)]
res = lm.loglikelihood(inst, disable_tqdm=True)
enc = []
for r in reqs:
    if r["context"] == "":
        cont = lm.tok_encode(r["continuation"], add_special_tokens=False)
        enc.append([[lm.prefix_token_id], cont] if lm.prefix_token_id != cont[0] else [cont[:1], cont[1:]])
    else:
        enc.append([list(x) for x in lm._encode_pair(r["context"], r["continuation"])])
print(json.dumps({"res": [[float(a), bool(b)] for a, b in res], "enc": enc}))
`;

Deno.test({
  name:
    "loglikelihood requests equal lm-eval's HF backend: encodings, log-likelihoods within 1e-4, is_greedy",
  ignore: !hasLmEval,
  fn: async () => {
    const reqs = await requests();
    const file = await Deno.makeTempFile({ suffix: ".json" });
    await Deno.writeTextFile(file, JSON.stringify(reqs));
    const maxLength = 64;
    const ref = JSON.parse(await runPython(LM_EVAL, [LLAMA, file, String(maxLength)])) as {
      res: [number, boolean][];
      enc: [number[], number[]][];
    };
    await Deno.remove(file);
    const tok = await loadTokenizer(LLAMA);
    const enc = reqs.map((r) => encodeRequest(tok, r));
    assert.deepStrictEqual(enc.map((e) => [e.context, e.continuation]), ref.enc, "encodings");
    assert.ok(
      enc.some((e) => e.context.length + e.continuation.length > maxLength + 1),
      "some need truncation",
    );
    const gpu = await getGpu();
    const model = await loadModel(gpu, LLAMA);
    try {
      const ours = await scoreRequests(model, enc, { maxLength, batchTokens: 200 });
      let worst = 0;
      for (const [i, r] of ours.entries()) {
        worst = Math.max(worst, Math.abs(r.logprob - ref.res[i][0]));
        assert.strictEqual(r.greedy, ref.res[i][1], `request ${i}: is_greedy`);
      }
      assert.ok(worst < 1e-4, `log-likelihoods differ from lm-eval's by up to ${worst}`);
      assert.ok(ref.res.some(([, g]) => g) || ours.every((r) => !r.greedy), "greedy compared");
      console.log(`${ours.length} requests, worst |Δ log-likelihood| ${worst.toExponential(2)}`);
    } finally {
      model.release();
    }
  },
});

Deno.test("loglikelihood refuses what it cannot score: a continuation of no tokens, one longer than the model", async () => {
  const gpu = await getGpu();
  const model = await loadModel(gpu, LLAMA);
  try {
    await assert.rejects(
      scoreRequests(model, [{ context: [1, 2], continuation: [] }], { maxLength: 64 }),
      /request 0: the continuation encodes to no tokens/,
    );
    await assert.rejects(
      scoreRequests(model, [{ context: [1], continuation: new Array(65).fill(5) }], { maxLength: 64 }),
      /request 0: 65 continuation tokens exceed the model's 64/,
    );
  } finally {
    model.release();
  }
});

Deno.test("prefix-KV reuse: each shared context run once gives the log-likelihoods of recomputing it", async () => {
  const gpu = await getGpu();
  for (const fixture of [LLAMA, `${FIXTURES}/tiny-opt`]) {
    const tok = await loadTokenizer(fixture);
    const model = await loadModel(gpu, fixture);
    try {
      // Questions of 2–5 choices with 1–9 token continuations, a question too long for the
      // positions (left-truncated: recomputed), a lone request, and a repeated continuation.
      const reqs: EncodedRequest[] = [];
      const base = (await requests()).filter((r) => r.context).map((r) => encodeRequest(tok, r));
      for (let q = 0; q < 6; q++) {
        const ctx = base[q].context.concat(base[q + 6].context.slice(1));
        for (let k = 0; k < 2 + (q % 4); k++) {
          const c = base[(q + k) % base.length].continuation.concat(
            base[k].context.slice(1, 1 + (q + k) % 8),
          );
          reqs.push({ context: ctx, continuation: c.length ? c : [5] });
        }
        if (q === 2) reqs.push({ context: ctx, continuation: reqs.at(-1)!.continuation });
      }
      // mmlu's shape: one-token continuations (" A" … " D"), what a CPU adapter reuses.
      for (let q = 0; q < 3; q++) {
        for (const t of [30, 31, 32, 33]) reqs.push({ context: base[q + 10].context, continuation: [t + q] });
      }
      const long = base.slice(0, 8).flatMap((r) => r.context);
      reqs.push({ context: long, continuation: [7, 8] }, { context: long, continuation: [9] });
      // A left-truncated question of one-token choices: its last row still scores them all.
      const long2 = base.slice(1, 9).flatMap((r) => r.context);
      for (const t of [40, 41, 42]) reqs.push({ context: long2, continuation: [t] });
      reqs.push(base[20]);
      const maxLength = 64;
      assert.ok(long.length + 1 > maxLength, "one question is left-truncated");
      const ref = await scoreRequests(model, reqs, { maxLength });
      let calls = 0;
      const got = await scoreReusingContexts(model, reqs, {
        maxLength,
        reuse: "all",
        batchTokens: 96, // several chunks of groups
        onProgress: () => calls++,
      });
      assert.ok(calls >= 3, `progress reported per chunk (${calls})`);
      assert.strictEqual(got.length, ref.length);
      got.forEach((r, i) => {
        assert.ok(
          Math.abs(r.logprob - ref[i].logprob) < 1e-4,
          `${fixture} request ${i}: ${r.logprob} vs ${ref[i].logprob}`,
        );
        assert.strictEqual(r.greedy, ref[i].greedy, `request ${i}: is_greedy`);
        assert.strictEqual(r.tokens, reqs[i].continuation.length);
      });
      assert.ok(new Set(got.map((r) => r.logprob.toFixed(3))).size > reqs.length / 2, "requests differ");
      const single = await scoreReusingContexts(model, reqs, { maxLength, reuse: "single-token" });
      single.forEach((r, i) => {
        assert.ok(Math.abs(r.logprob - ref[i].logprob) < 1e-4, `single-token reuse, request ${i}`);
        assert.strictEqual(r.greedy, ref[i].greedy);
      });
    } finally {
      model.release();
    }
  }
});
