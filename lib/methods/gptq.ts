// "gptq": GPTQ (lib/quant/gptq.ts) with the IST-DASLab reference's defaults; exports AutoGPTQ v1.

import { z } from "zod";
import { exportGptq } from "../quant/export_gptq.ts";
import { quantizeGptq } from "../quant/gptq.ts";
import { flagValues, type Method, type RunOptions, type Setting } from "./contract.ts";
import { checkUniformLayer, UNIFORM_BITS } from "./rtn.ts";

export const GPTQ_FLAGS = {
  sym: { schema: z.boolean().default(false), help: "symmetric grid (default asymmetric)" },
  "act-order": {
    schema: z.boolean().default(false),
    help: "quantize columns by descending diag H (desc_act), with g_idx",
  },
  "static-groups": {
    schema: z.boolean().default(false),
    help: "group params from the original weights (g_idx stays monotone)",
  },
  "no-true-sequential": {
    schema: z.boolean().default(false),
    help: "collect every layer's inputs in one FP pass per block",
  },
  "fp-inputs": {
    schema: z.boolean().default(false),
    help: "feed each block the FP model's hidden states (default: quantized prefix)",
  },
  percdamp: {
    schema: z.coerce.number().min(0).max(1).default(0.01),
    value: "X",
    help: "damping, fraction of mean diag H (default 0.01; raised on failure)",
  },
  blocksize: {
    schema: z.coerce.number().int().min(4).max(256).multipleOf(4, "must be a multiple of 4").default(128),
    value: "N",
    help: "columns per lazy batch (default 128)",
  },
};

/** GPTQ's options for setting `s` from the run's flags (also what awq+gptq runs after AWQ). */
export function gptqSettings(o: RunOptions, s: Setting) {
  const f = flagValues(o, GPTQ_FLAGS);
  return {
    bits: s.bits as 2 | 3 | 4 | 8,
    groupSize: s.groupSize!,
    sym: f.sym,
    actOrder: f["act-order"],
    staticGroups: f["static-groups"],
    percdamp: f.percdamp,
    blocksize: f.blocksize,
    trueSequential: !f["no-true-sequential"],
    fpInputs: f["fp-inputs"],
  };
}

/** The row's method_options of a GPTQ run. */
export function gptqRowOptions(o: RunOptions): Record<string, unknown> {
  const f = flagValues(o, GPTQ_FLAGS);
  return {
    sym: f.sym,
    act_order: f["act-order"],
    static_groups: f["static-groups"],
    true_sequential: !f["no-true-sequential"],
    fp_inputs: f["fp-inputs"],
    percdamp: f.percdamp,
    blocksize: f.blocksize,
  };
}

export const gptq: Method = {
  name: "gptq",
  summary: "GPTQ: second-order rounding with error feedback (IST-DASLab's defaults)",
  help: { title: "GPTQ (defaults are the IST-DASLab reference's):" },
  flags: GPTQ_FLAGS,
  bits: UNIFORM_BITS,
  defaultGroupSize: -1,
  calibrated: true,
  quantizesHead: false,
  memory: { chains: 2, trains: false },
  checkLayer: checkUniformLayer,
  exportMayRefuse: true,
  exportName: (s) => `gptq-w${s.bits}-g${s.groupSize}`,
  async quantize(model, s, o, ctx) {
    const g = gptqSettings(o, s);
    const quant = await quantizeGptq(model, ctx.calibration!.windows, {
      ...g,
      statesOnHost: ctx.statesOnHost,
    }, ctx.log);
    return {
      quant,
      methodOptions: () => Promise.resolve(gptqRowOptions(o)),
      export: (src, dir, meta) => exportGptq(src, dir, quant.records, g, meta),
    };
  },
};
