// HQQ on the fixture model: ppl equal to mobiusml/hqq's own result (SOURCES.md) within 0.5% at
// 4, 3 and 2 bits; the HQQ-style export loads back to the same ppl and Python, reading the planar
// format on its own, dequantizes it to our weights.

import assert from "node:assert";
import { perplexity } from "../../lib/eval/perplexity.ts";
import { readEvalText } from "../../lib/eval/text.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { writeSafetensors } from "../../lib/io/safetensors.ts";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { DenseLinear } from "../../lib/model/linear.ts";
import { loadModel } from "../../lib/load.ts";
import { exportHqq } from "../../lib/quant/export_hqq.ts";
import { quantizeHqq } from "../../lib/quant/hqq.ts";
import { QuantLinear } from "../../lib/quant/quant_linear.ts";
import { dequantize } from "../../lib/quant/record.ts";
import { FIXTURES, python, runPython } from "../python.ts";

const gpu = await getGpu();
const LLAMA = `${FIXTURES}/tiny-llama`;
const tok = await loadTokenizer(LLAMA);
const ids = tok.encode((await readEvalText(`${FIXTURES}/text/wiki.test.raw`)).text);
const hasPython = (await python()) !== null;

// SOURCES.md: mobiusml/hqq's Quantizer.quantize, optimize=True, g64 axis 1, float32 on CPU.
for (const [bits, want] of [[4, 175.1572], [3, 184.5913], [2, 270.6579]]) {
  Deno.test(`HQQ W${bits} g64 axis 1 on the fixture: ppl equals mobiusml/hqq's ${want} within 0.5%`, async () => {
    const model = await loadModel(gpu, LLAMA);
    await quantizeHqq(model, { bits, groupSize: 64, axis: 1 });
    assert.ok(model.blockLinears(0).every((l) => l instanceof QuantLinear));
    const { ppl } = await perplexity(model, ids, { seqlen: 512, maxWindows: 32 });
    model.release();
    assert.ok(Math.abs(ppl - want) / want < 5e-3, `ppl ${ppl} vs ${want}`);
  });
}

// hqq's planar formats and per-layer meta read without our code: slice s of the packed rows sits at
// the s-th shift from the top; 3bit_32 holds 10 slices at shifts 27, 24, …, 0. (hqq's own
// HQQLinear.load_state_dict was run on these exports by hand: README, HQQ.)
const PY_DEQUANT = `
import sys, json, numpy as np
from safetensors.numpy import load_file
ckpt, ours = load_file(sys.argv[1]), load_file(sys.argv[2])
assert 'quant_config' in json.load(open(sys.argv[3]))['quantization_config']
worst = 0.0
for name, w in ours.items():
    # each layer's own meta record, encoded as hqq's encode_safetensor_type does
    meta = lambda k: ckpt[name + '.' + k]
    b, g, axis = int(meta('nbits')), int(meta('group_size')), int(meta('axis'))
    assert tuple(meta('shape').tolist()) == w.shape and meta('shape').dtype == np.int64
    assert bytes(meta('packing')).decode() == {3: '3bit_32', 2: '2bit_u8', 4: '4bit_u8'}[b]
    assert bytes(meta('compute_dtype')).decode() == 'torch.float32' and int(meta('encoded_state_dict')) == 1
    step, S = (3, 10) if b == 3 else (b, 8 // b)
    top = 27 if b == 3 else 8 - step
    packed = ckpt[name + '.W_q'].astype(np.int64) & 0xFFFFFFFF
    rows = w.size // g if axis == 1 else g
    codes = np.concatenate([(packed >> (top - step * s)) & ((1 << step) - 1) for s in range(S)])[:rows]
    deq = ckpt[name + '.scale'] * (codes - ckpt[name + '.zero'])
    worst = max(worst, float(np.abs(deq.astype(np.float32).reshape(w.shape) - w).max()))
print(worst)
`;

for (const [bits, axis] of [[3, 0], [2, 1]] as const) {
  Deno.test({
    name:
      `HQQ export W${bits} axis ${axis}: loads back to the same ppl; Python dequantizes it to our weights`,
    ignore: !hasPython,
    async fn() {
      const model = await loadModel(gpu, LLAMA);
      const r = await quantizeHqq(model, { bits, groupSize: 64, axis });
      const mem = (await perplexity(model, ids, { seqlen: 512, maxWindows: 2 })).ppl;
      model.release();
      const dir = await Deno.makeTempDir();
      try {
        await exportHqq(LLAMA, `${dir}/out`, r.records, { axis });
        const back = await loadModel(gpu, `${dir}/out`);
        const kind = axis === 1 ? QuantLinear : DenseLinear; // axis 0 runs dequantized
        assert.ok(back.blockLinears(2).every((l) => l instanceof kind));
        const loaded = (await perplexity(back, ids, { seqlen: 512, maxWindows: 2 })).ppl;
        back.release();
        assert.strictEqual(loaded, mem);
        await writeSafetensors(
          `${dir}/ours.safetensors`,
          r.records.map((x) => ({ name: x.name, dtype: "F32", shape: x.shape, data: dequantize(x) })),
        );
        const worst = Number(
          await runPython(PY_DEQUANT, [
            `${dir}/out/model.safetensors`,
            `${dir}/ours.safetensors`,
            `${dir}/out/config.json`,
          ]),
        );
        assert.ok(worst < 1e-6, `Python's dequantization differs from ours by up to ${worst}`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
