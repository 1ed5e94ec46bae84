// FP weights stay in the checkpoint's dtype on the GPU: f16 (tiny-llama) and bf16 (tiny-llama3, and
// a bf16 copy of tiny-llama written here) take 2 bytes per weight, and give exactly the logits of
// the same values stored as f32 (the path checked against transformers); the expand kernel that
// AWQ/AutoRound use equals the host conversion.

import assert from "node:assert";
import { randn } from "../../lib/cpu/random.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, readF32, upload } from "../../lib/gpu/tensor.ts";
import { expandToF32 } from "../../lib/kernels/expand.ts";
import { loadModel, logits } from "../../lib/load.ts";
import { rewriteCheckpoint, withBindingLimit } from "../helpers.ts";
import { FIXTURES } from "../python.ts";

const gpu = await getGpu();

/** A copy of a model folder with every tensor stored as `to` (f32, or bf16 rounded to nearest even). */
const recast = (src: string, to: "F32" | "BF16") =>
  rewriteCheckpoint(src, async ({ name, shape }, ck) => {
    const f32 = await ck.readF32(name);
    return { name, dtype: to, shape, data: to === "F32" ? f32 : f32ToBf16(f32) };
  });

const ids = [0, 1499, 490, 15, 813, 280, 80, 1157, 13, 353, 450, 77, 396];

Deno.test("f16 and bf16 weights: 2 bytes per weight on the GPU, logits identical to the same values as f32", async () => {
  const bf16Llama = await recast(`${FIXTURES}/tiny-llama`, "BF16");
  for (const dir of [`${FIXTURES}/tiny-llama`, `${FIXTURES}/tiny-llama3`, bf16Llama]) {
    const native = await loadModel(gpu, dir), wide = await loadModel(gpu, await recast(dir, "F32"));
    const c = native.config;
    assert.ok(c.family === "llama");
    // Matrices (embeddings, every linear; the head when untied) at 2 bytes, the norms in f32.
    const q = c.heads * c.headDim, kv = c.kvHeads * c.headDim;
    const perBlock = c.hidden * (q + 2 * kv) + q * c.hidden + 3 * c.hidden * c.intermediate;
    const matrices = c.vocab * c.hidden * (c.tied ? 1 : 2) + c.layers * perBlock;
    const norms = (2 * c.layers + 1) * c.hidden;
    assert.strictEqual(native.bytes(), 2 * matrices + 4 * norms, dir);
    assert.strictEqual(wide.bytes(), 4 * matrices + 4 * norms, dir);
    assert.deepStrictEqual(await logits(native, ids), await logits(wide, ids), dir);
    native.release();
    wide.release();
  }
});

Deno.test("expandToF32 equals the host conversion for f16 and bf16, odd sizes, whole and split", async () => {
  const x = randn(1001, 5, 3);
  for (const [bits, dt] of [[f32ToF16(x), "f16"], [f32ToBf16(x), "bf16"]] as const) {
    const ref = dt === "f16" ? f16ToF32(bits) : bf16ToF32(bits);
    for (const limit of [gpu.maxBinding, 512]) {
      await withBindingLimit(gpu, limit, async () => {
        const t = upload(gpu, bits, [7, 143], "x", dt);
        const b = new Batch(gpu);
        const y = expandToF32(b, t);
        await b.submit();
        assert.deepStrictEqual(y.shape, [7, 143]);
        assert.deepStrictEqual(await readF32(y), ref, `${dt} limit ${limit}`);
      });
    }
  }
});
