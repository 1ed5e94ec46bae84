// The quantized path of task evaluation against lm-eval's own HF backend: tiny-llama quantized
// with RTN W4 g128 runs on our packed kernels (prefix-KV reuse on); the same weights dequantized
// are written as a plain checkpoint that transformers loads, and lm-eval's HFLM scores the same
// requests — every log-likelihood within 1e-4, is_greedy equal, acc / acc_norm per document
// identical. (RTN W4 must also move the scores away from FP's: the check is not of FP twice.)

import assert from "node:assert";
import { getGpu } from "../../lib/gpu/device.ts";
import { Checkpoint } from "../../lib/io/checkpoint.ts";
import { type TensorToWrite, writeSafetensors } from "../../lib/io/safetensors.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { encodeRequest } from "../../lib/eval/loglikelihood.ts";
import { multipleChoice } from "../../lib/eval/metrics.ts";
import { scoreReusingContexts } from "../../lib/eval/prefix_kv.ts";
import { localTaskData } from "../../lib/eval/task_data.ts";
import { getTask } from "../../lib/eval/tasks.ts";
import { loadModel } from "../../lib/load.ts";
import { dequantize } from "../../lib/quant/record.ts";
import { quantizeRtn } from "../../lib/quant/rtn.ts";
import { FIXTURES, pythonHas, runPython } from "../python.ts";
import { writeTaskFolders } from "../../datasets/local_tasks.ts";

const LLAMA = `${FIXTURES}/tiny-llama`;
const hasLmEval = await pythonHas("lm_eval.models.huggingface");

const HFLM_SCORE = `
import json, sys
from lm_eval.models.huggingface import HFLM
from lm_eval.api.instance import Instance
reqs = json.load(open(sys.argv[2]))
lm = HFLM(pretrained=sys.argv[1], device="cpu", dtype="float32", batch_size=8)
inst = [Instance(request_type="loglikelihood", doc={}, arguments=(c, x), idx=i) for i, (c, x) in enumerate(reqs)]
print(json.dumps([[float(a), bool(b)] for a, b in lm.loglikelihood(inst, disable_tqdm=True)]))
`;

Deno.test({
  name: "RTN W4 on the packed kernels scores piqa and winogrande as lm-eval does on the exported weights",
  ignore: !hasLmEval,
  fn: async () => {
    const root = await Deno.makeTempDir();
    const gpu = await getGpu(), tok = await loadTokenizer(LLAMA);
    const model = await loadModel(gpu, LLAMA);
    try {
      const dirs = await writeTaskFolders(`${root}/tasks`, 12);
      const docs = [];
      for (const name of ["piqa", "winogrande"]) {
        const t = getTask(name), data = await localTaskData(t, dirs[name], false);
        docs.push(...data.docs.map((d) => t.build(d)));
      }
      const reqs = docs.flatMap((d) => d.requests);
      const encoded = reqs.map((r) => encodeRequest(tok, r));
      const maxLength = model.config.maxPositions;
      const fp = await scoreReusingContexts(model, encoded, { maxLength });
      const { records } = await quantizeRtn(model, { bits: 4, groupSize: 128 });
      const ours = await scoreReusingContexts(model, encoded, { maxLength, reuse: "all" });
      // The exported fake-quant checkpoint: each quantized linear's weight dequantized (f32).
      const out = `${root}/rtn-w4`;
      await Deno.mkdir(out);
      const deq = new Map(records.map((r) => [`${r.name}.weight`, r]));
      const ck = await Checkpoint.open(LLAMA);
      const ts: TensorToWrite[] = [];
      for (const name of ck.names()) {
        const r = deq.get(name);
        ts.push(
          r
            ? { name, dtype: "F32", shape: r.shape, data: dequantize(r) }
            : { name, ...ck.info(name), data: await ck.readBytes(name) },
        );
      }
      assert.strictEqual(deq.size, records.length);
      await writeSafetensors(`${out}/model.safetensors`, ts);
      for (const f of ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]) {
        await Deno.copyFile(`${LLAMA}/${f}`, `${out}/${f}`);
      }
      await Deno.writeTextFile(
        `${root}/reqs.json`,
        JSON.stringify(reqs.map((r) => [r.context, r.continuation])),
      );
      const ref = JSON.parse(
        (await runPython(HFLM_SCORE, [out, `${root}/reqs.json`])).trim().split("\n").at(-1)!,
      ) as [number, boolean][];
      assert.strictEqual(ref.length, ours.length);
      let moved = 0;
      ours.forEach((r, i) => {
        assert.ok(
          Math.abs(r.logprob - ref[i][0]) < 1e-4,
          `request ${i}: ${r.logprob} vs lm-eval's ${ref[i][0]}`,
        );
        assert.strictEqual(r.greedy, ref[i][1], `request ${i}: is_greedy`);
        if (Math.abs(r.logprob - fp[i].logprob) > 1e-3) moved++;
      });
      assert.ok(moved > ours.length / 2, `W4 changes most scores (${moved} of ${ours.length})`);
      let k = 0;
      for (const d of docs) {
        const n = d.requests.length;
        const mine = multipleChoice(ours.slice(k, k + n).map((r) => r.logprob), d.choices, d.gold);
        const theirs = multipleChoice(ref.slice(k, k + n).map((r) => r[0]), d.choices, d.gold);
        assert.deepStrictEqual(mine, theirs);
        k += n;
      }
    } finally {
      model.release();
      await Deno.remove(root, { recursive: true });
    }
  },
});
