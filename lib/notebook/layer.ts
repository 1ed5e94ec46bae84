// One layer on its own, for the notebooks' experiments: the FP inputs of a linear of block `block`
// (the calibration windows through the FP blocks before it), its Hessian H = 2/n · XᵀX as GPTQ
// accumulates it, its FP weight, and the output error of any quantized weight on those inputs.

import { Batch } from "../gpu/kernel.ts";
import { readF32, type Tensor } from "../gpu/tensor.ts";
import { HessianAccumulator } from "../kernels/hessian.ts";
import { DenseLinear } from "../model/linear.ts";
import type { CausalLM } from "../model/model.ts";
import { calibrationChunks, embedChunks } from "../quant/sequential.ts";

export interface LayerStats {
  name: string;
  /** [out, in] */
  shape: [number, number];
  /** FP weight, host, [out, in] row-major. */
  w: Float32Array;
  /** H [in, in] on the GPU (release it) and on the host. */
  h: Tensor;
  hHost: Float32Array;
}

export async function layerStats(
  model: CausalLM,
  windows: number[][],
  block: number,
  name: string,
): Promise<LayerStats> {
  const lin = model.blockLinears(block).find((l) => l.name === name || l.name.endsWith(`.${name}`));
  if (!lin) {
    throw new Error(
      `block ${block} has no linear "${name}"; it has ${
        model.blockLinears(block).map((l) => l.name).join(", ")
      }`,
    );
  }
  if (!(lin instanceof DenseLinear)) throw new Error(`${lin.name} is already quantized`);
  const { seq, chunks } = calibrationChunks(model, windows);
  let hs = await embedChunks(model, chunks, seq);
  const acc = new HessianAccumulator(model.gpu, lin.inFeatures, lin.name);
  try {
    for (let i = 0; i <= block; i++) {
      const next: Tensor[] = [];
      for (const [j, h] of hs.entries()) {
        const b = new Batch(model.gpu);
        const out = model.block(b, i, h, seq, (n, x) => {
          if (i === block && n === lin.name) acc.add(b, x, chunks[j].length);
          return i === block && n === lin.name;
        });
        if (out) next.push(out);
        await b.done();
      }
      for (const h of hs) h.release();
      hs = next;
    }
  } finally {
    for (const h of hs) h.release();
  }
  return {
    name: lin.name,
    shape: [lin.outFeatures, lin.inFeatures],
    w: await readF32(lin.weight),
    h: acc.h,
    hHost: await readF32(acc.h),
  };
}

/**
 * The layer's output error on its calibration inputs relative to the output itself:
 * tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) with ΔW = W − Q (float64 on the host). This is what GPTQ minimizes.
 */
export function outputError(s: LayerStats, q: Float32Array): number {
  const [out, k] = s.shape;
  let num = 0, den = 0;
  const d = new Float64Array(k), hw = new Float64Array(k), hd = new Float64Array(k);
  for (let r = 0; r < out; r++) {
    for (let j = 0; j < k; j++) d[j] = s.w[r * k + j] - q[r * k + j];
    for (let i = 0; i < k; i++) {
      let a = 0, b = 0;
      for (let j = 0; j < k; j++) {
        const hij = s.hHost[i * k + j];
        a += hij * d[j];
        b += hij * s.w[r * k + j];
      }
      hd[i] = a, hw[i] = b;
    }
    for (let i = 0; i < k; i++) (num += d[i] * hd[i]), (den += s.w[r * k + i] * hw[i]);
  }
  return num / den;
}
