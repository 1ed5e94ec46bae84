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
import { type HqqOptions, quantizeHqq } from "../../lib/quant/hqq.ts";
import { QuantLinear } from "../../lib/quant/quant_linear.ts";
import { dequantize } from "../../lib/quant/record.ts";
import { FIXTURES, python, runPython } from "../python.ts";

const gpu = await getGpu();
const LLAMA = `${FIXTURES}/tiny-llama`;
const tok = await loadTokenizer(LLAMA);
const ids = tok.encode((await readEvalText(`${FIXTURES}/text/wiki.test.raw`)).text);
const hasPython = (await python()) !== null;

const hqqPpl = async (o: HqqOptions) => {
  const model = await loadModel(gpu, LLAMA);
  const r = await quantizeHqq(model, o);
  assert.strictEqual(r.records.length, 28);
  // Axis 1 runs the packed kernels; axis 0 (strided groups) runs dequantized.
  if (o.axis !== 0) assert.ok(model.blockLinears(0).every((l) => l instanceof QuantLinear));
  const { ppl } = await perplexity(model, ids, { seqlen: 512, maxWindows: 32 });
  model.release();
  return ppl;
};

// SOURCES.md: mobiusml/hqq's Quantizer.quantize, optimize=True, g64 axis 1, float32 on CPU (its
// default round_zero=False). RTN W4 / W3 g64 (174.2217 / 182.6812) sit 0.5% / 1.0% from these, so
// they fail the tolerance; at W2 g64 HQQ shows no gain over RTN on this model (RTN 270.7976), and
// the recipe test below is where the peer shows one.
for (const [bits, want, tol] of [[4, 175.1572, 1e-3], [3, 184.5913, 1e-3], [2, 270.6579, 1.5e-3]]) {
  Deno.test(`HQQ W${bits} g64 axis 1 on the fixture: ppl equals mobiusml/hqq's ${want} within ${tol * 100}%`, async () => {
    const ppl = await hqqPpl({ bits, groupSize: 64, axis: 1 });
    assert.ok(Math.abs(ppl - want) / want < tol, `ppl ${ppl} vs ${want}`);
  });
}

// The peer's numbers below: bench/hqq_peer.py with mobiusml/hqq @e0b1d00's own Quantizer (float32,
// CPU; its meta-quantization of scales / zeros as HQQLinear did it), same protocol.
Deno.test("HQQ round_zero (hqq_base_quant_config's default at 4 bits): W4 g64 axis 1 equals hqq's 175.5475 within 0.1%", async () => {
  const ppl = await hqqPpl({ bits: 4, groupSize: 64, axis: 1, roundZero: true });
  // Without it 175.15 (0.22% away), RTN 174.22 (0.76%): both fail.
  assert.ok(Math.abs(ppl - 175.5475) / 175.5475 < 1e-3, `ppl ${ppl}`);
});

Deno.test("HQQ's published recipes (axis 0, 8-bit zeros; W2 g16 with 8-bit g128 scales) equal hqq's own; W2 ≥ 5% below RTN W2 g16", async () => {
  const cases = [
    { o: { bits: 4, groupSize: 64, roundZero: true }, want: 173.9914, tol: 5e-4 }, // RTN W4 g64: 174.2217
    { o: { bits: 3, groupSize: 64 }, want: 184.0395, tol: 5e-4 }, // RTN W3 g64: 182.6812
    { o: { bits: 2, groupSize: 16, quantScale: true }, want: 200.6371, tol: 1e-3 },
  ];
  const got: string[] = [];
  for (const { o, want, tol } of cases) {
    const ppl = await hqqPpl({ ...o, axis: 0, quantZero: true });
    got.push(`W${o.bits} g${o.groupSize}: ${ppl.toFixed(4)} (hqq ${want})`);
    assert.ok(Math.abs(ppl - want) / want < tol, got.at(-1));
    if (o.bits === 2) assert.ok(ppl < 0.95 * RTN_W2_G16, `W2 g16 ${ppl} not 5% below RTN ${RTN_W2_G16}`);
  }
  console.log(got.join("; "));
});

/** RTN W2 g16 on the same protocol, by our RTN (PyTorch's to 4 decimals at g64/g128): min/max grid 225.8093. */
const RTN_W2_G16 = 225.8093;

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
