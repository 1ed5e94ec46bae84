// The Hessian accumulation against float64, on awkward sizes, split across bindings, and the
// running average over samples that GPTQ's add_batch keeps.

import * as ref from "../../lib/cpu/ref.ts";
import { randn } from "../../lib/cpu/random.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { readF32, upload } from "../../lib/gpu/tensor.ts";
import { HessianAccumulator, hessianUpdate } from "../../lib/kernels/hessian.ts";
import { assertClose, getGpu, withBindingLimit } from "../helpers.ts";

const gpu = await getGpu();

Deno.test("H ← a·H + b·XᵀX matches float64 (awkward sizes, H split across bindings)", async () => {
  for (const [T, D, limit] of [[1, 1, 0], [37, 29, 0], [8, 70, 4096]]) {
    const x = randn(T * D, T + D), h0 = randn(D * D, D);
    await withBindingLimit(gpu, limit || gpu.maxBinding, async () => {
      const H = upload(gpu, h0, [D, D]);
      const b = new Batch(gpu);
      hessianUpdate(b, H, upload(gpu, x, [T, D]), 0.25, 1.5);
      await b.submit();
      assertClose(await readF32(H), ref.hessianUpdate(h0, x, T, D, 0.25, 1.5), 1e-5, `hessian T=${T} D=${D}`);
    });
  }
});

Deno.test("the running average equals (2/n)·Σ XᵀX over all samples", async () => {
  const D = 24, T = 10;
  const acc = new HessianAccumulator(gpu, D, "layer");
  const xs = [randn(T * D, 1), randn(2 * T * D, 2), randn(T * D, 3)];
  const b = new Batch(gpu);
  acc.add(b, upload(gpu, xs[0], [T, D]), 1);
  acc.add(b, upload(gpu, xs[1], [2 * T, D]), 2); // a batch of two samples
  acc.add(b, upload(gpu, xs[2], [T, D]), 1);
  await b.submit();
  let want: Float64Array = new Float64Array(D * D);
  for (const x of xs) want = ref.hessianUpdate(want, x, x.length / D, D, 1, 2 / 4);
  assertClose(await readF32(acc.h), want, 1e-5, "running Hessian");
});

// Both variants, whatever this adapter picks: D not a multiple of the texture tile's 8 columns
// per thread is impossible (D % 64 is required), so the edge case is D = 64·k with tiles past the
// diagonal, and T past the texture height (token windows: the first scales H, the rest add).
Deno.test("buffer and texture variants agree with float64, texture split over token windows", async () => {
  for (const variant of ["buffer", "texture"] as const) {
    for (const [T, D] of [[5, 64], [33, 192]]) {
      const x = randn(T * D, T * D), h0 = randn(D * D, D + 1);
      const H = upload(gpu, h0, [D, D]);
      const b = new Batch(gpu);
      hessianUpdate(b, H, upload(gpu, x, [T, D]), 0.25, 1.5, variant);
      await b.submit();
      assertClose(
        await readF32(H),
        ref.hessianUpdate(h0, x, T, D, 0.25, 1.5),
        1e-5,
        `${variant} T=${T} D=${D}`,
      );
    }
  }
  const [T, D] = [45, 128], x = randn(T * D, 9), h0 = randn(D * D, 10);
  const maxTexture2D = gpu.maxTexture2D;
  gpu.maxTexture2D = 16; // 45 tokens → windows of 16, 16, 13
  try {
    const H = upload(gpu, h0, [D, D]);
    const b = new Batch(gpu);
    hessianUpdate(b, H, upload(gpu, x, [T, D]), 0.5, 0.75, "texture");
    await b.submit();
    assertClose(await readF32(H), ref.hessianUpdate(h0, x, T, D, 0.5, 0.75), 1e-5, "texture, token windows");
  } finally {
    gpu.maxTexture2D = maxTexture2D;
  }
});
