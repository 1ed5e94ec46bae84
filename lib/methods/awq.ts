// "awq": activation-aware scaling (lib/quant/awq.ts) with AutoAWQ's defaults; exports AutoAWQ GEMM.

import { z } from "zod";
import { exportAwq } from "../quant/export_awq.ts";
import { quantizeAwq } from "../quant/awq.ts";
import type { CausalLM } from "../model/model.ts";
import { flagValues, type Method, type MethodContext, type RunOptions, type Setting } from "./contract.ts";
import { checkUniformLayer, UNIFORM_BITS } from "./rtn.ts";

export const AWQ_FLAGS = {
  "no-duo-scaling": {
    schema: z.boolean().default(false),
    help: "s = s_x^α alone (the paper's form) instead of s_x^α / s_w^(1−α)",
  },
  "no-clip": { schema: z.boolean().default(false), help: "skip the clipping search" },
};

/** AWQ's options for setting `s` (also the first step of awq+gptq and awq+autoround). */
export function awqSettings(o: RunOptions, s: Setting) {
  const f = flagValues(o, AWQ_FLAGS);
  return {
    bits: s.bits as 2 | 3 | 4 | 8,
    groupSize: s.groupSize!,
    duoScaling: !f["no-duo-scaling"],
    clip: !f["no-clip"],
  };
}

/** The row's method_options of AWQ's search (AutoAWQ's fixed constants beside the flags). */
export function awqRowOptions(o: RunOptions): Record<string, unknown> {
  const f = flagValues(o, AWQ_FLAGS);
  return {
    zero_point: true,
    n_grid: 20,
    duo_scaling: !f["no-duo-scaling"],
    clip: !f["no-clip"],
    max_shrink: 0.5,
    clip_tokens: 512,
    calibration_chain: "fp",
  };
}

/**
 * AWQ's scale search, folding and clipping on the FP weights, leaving FP layers (llm-awq's
 * --run_awq): the first step of awq+gptq and awq+autoround. Returns the search's result (its
 * `folded` norms go into the second method's checkpoint) and its part of the row's options.
 */
export async function awqScaleOnly(model: CausalLM, s: Setting, o: RunOptions, ctx: MethodContext) {
  const a = await quantizeAwq(model, ctx.calibration!.windows, {
    ...awqSettings(o, s),
    quantize: false,
    statesOnHost: ctx.statesOnHost,
  }, (m) => ctx.log(`awq: ${m}`));
  return {
    result: a,
    rowOptions: { ...awqRowOptions(o), seconds: a.seconds, quant_peak_gpu_bytes: a.peakBytes },
  };
}

export const awq: Method = {
  name: "awq",
  summary: "AWQ: activation-aware per-channel scales folded into the weights, then clipping",
  help: {
    title:
      "AWQ (AutoAWQ's defaults: asymmetric with zero-point, grid of 20 α, duo scaling, clipping search;\n" +
      "its calibration is 128 windows of 512 tokens: pass --calib-seqlen 512):",
  },
  flags: AWQ_FLAGS,
  bits: UNIFORM_BITS,
  defaultGroupSize: 128,
  calibrated: true,
  quantizesHead: false,
  memory: { chains: 2, trains: false },
  refuse: (o) =>
    o.export && (o.bits ?? [4]).some((b) => b !== 4)
      ? "--export of awq writes AutoAWQ GEMM checkpoints, which are 4-bit only: use --bits 4"
      : null,
  checkLayer: checkUniformLayer,
  exportMayRefuse: true,
  exportName: (s) => `awq-w${s.bits}-g${s.groupSize}`,
  async quantize(model, s, o, ctx) {
    const r = await quantizeAwq(model, ctx.calibration!.windows, {
      ...awqSettings(o, s),
      statesOnHost: ctx.statesOnHost,
    }, ctx.log);
    return {
      quant: r,
      methodOptions: () => Promise.resolve({ ...awqRowOptions(o), quant_peak_gpu_bytes: r.peakBytes }),
      export: (src, dir, meta) => exportAwq(src, dir, r.records, r.folded, meta),
    };
  },
};
