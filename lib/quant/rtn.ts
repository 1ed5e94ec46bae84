// Round-to-nearest: every linear inside the decoder blocks quantized independently with the
// uniform quantizer — the baseline of the GPTQ and AWQ papers (asymmetric, [min, max] widened to
// include 0). Embeddings stay FP; lm_head too unless `quantizeHead`.

import { Batch } from "../gpu/kernel.ts";
import { readF32, upload } from "../gpu/tensor.ts";
import { DenseLinear } from "../model/linear.ts";
import type { CausalLM } from "../model/model.ts";
import { QuantLinear } from "./quant_linear.ts";
import { quantTargets, visitTargets } from "./targets.ts";
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
  const targets = quantTargets(model, o.quantizeHead);
  for (const { linear: l } of targets) checkUniform(l.name, l.inFeatures, opts);
  const t0 = performance.now();
  const records: QuantRecord[] = [];
  for await (const { linear: l, replace } of visitTargets(model, targets)) {
    const w = await readF32(l.weight);
    const r = quantizeUniform(l.name, w, [l.outFeatures, l.inFeatures], opts, "rtn");
    if (l.bias) r.bias = await readF32(l.bias);
    records.push(r);
    replace(o.fake ? fakeLinear(model, r) : QuantLinear.fromRecord(model.gpu, r));
    onLayer?.(l.name);
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
