// Round-to-nearest: every linear inside the decoder blocks quantized independently with the
// uniform quantizer — the baseline of the GPTQ and AWQ papers (asymmetric, [min, max] widened to
// include 0). Embeddings stay FP; lm_head too unless `quantizeHead`.

import { Batch } from "../gpu/kernel.ts";
import { readF32, upload } from "../gpu/tensor.ts";
import { DenseLinear } from "../model/linear.ts";
import type { CausalLM } from "../model/model.ts";
import { QuantLinear } from "./quant_linear.ts";
import { dequantize, type QuantRecord } from "./record.ts";
import { checkUniform, quantizeUniform, type UniformOptions } from "./uniform.ts";

export const RTN_DEFAULTS = { sym: false, range: "include-zero" } as const;

export interface QuantizeResult {
  records: QuantRecord[];
  seconds: number;
}

/**
 * Quantize the model in place. `fake` keeps the dequantized weights as FP layers (the reference
 * the packed kernels are checked against) instead of the packed run-time layers.
 */
export async function quantizeRtn(
  model: CausalLM,
  o: Omit<UniformOptions, "sym" | "range"> & Partial<UniformOptions> & {
    fake?: boolean;
    quantizeHead?: boolean;
  },
  onLayer?: (name: string) => void,
): Promise<QuantizeResult> {
  const opts: UniformOptions = { ...RTN_DEFAULTS, ...o };
  // Validate every layer's shape before any work.
  for (let i = 0; i < model.numBlocks; i++) {
    for (const l of model.blockLinears(i)) checkUniform(l.name, l.inFeatures, opts);
  }
  if (o.quantizeHead) checkUniform("lm_head", model.headLinear().inFeatures, opts);
  const t0 = performance.now();
  const records: QuantRecord[] = [];
  for (let i = 0; i < model.numBlocks; i++) {
    for (const l of model.blockLinears(i)) {
      if (!(l instanceof DenseLinear)) throw new Error(`${l.name} is already quantized`);
      const w = await readF32(l.weight);
      const r = quantizeUniform(l.name, w, [l.outFeatures, l.inFeatures], opts, "rtn");
      if (l.bias) r.bias = await readF32(l.bias);
      records.push(r);
      model.setLinear(l.name, o.fake ? fakeLinear(model, r) : QuantLinear.fromRecord(model.gpu, r));
      onLayer?.(l.name);
    }
  }
  if (o.quantizeHead) {
    const h = model.headLinear();
    if (!(h instanceof DenseLinear)) throw new Error("lm_head is already quantized");
    const r = quantizeUniform("lm_head", await readF32(h.weight), [h.outFeatures, h.inFeatures], opts, "rtn");
    records.push(r);
    model.setHead(o.fake ? fakeLinear(model, r) : QuantLinear.fromRecord(model.gpu, r));
  }
  await new Batch(model.gpu).done();
  return { records, seconds: (performance.now() - t0) / 1000 };
}

/** An FP layer holding the dequantized weight: the fake-quant path. */
export function fakeLinear(model: CausalLM, r: QuantRecord): DenseLinear {
  const g = model.gpu;
  return new DenseLinear(
    r.name,
    upload(g, dequantize(r), r.shape, `${r.name}.fake`),
    r.bias ? upload(g, Float32Array.from(r.bias), [r.shape[0]], `${r.name}.bias`) : undefined,
  );
}
