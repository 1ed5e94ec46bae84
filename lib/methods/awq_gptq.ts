// "awq+gptq": AWQ's scale search and folding (and its clipping unless --no-clip) on the FP
// model, then GPTQ on the scaled weights — llm-awq's --run_awq (scales and clips applied to the
// FP weights, no quantization) followed by GPTQ, as AWQ's paper (Table 9) and llmc combine them.
// One calibration set feeds both steps; the checkpoint is GPTQ's, with the folded norms.

import { exportGptq } from "../quant/export_gptq.ts";
import { quantizeGptq } from "../quant/gptq.ts";
import { AWQ_FLAGS, awqScaleOnly } from "./awq.ts";
import type { Method } from "./contract.ts";
import { GPTQ_FLAGS, gptqRowOptions, gptqSettings } from "./gptq.ts";
import { checkUniformLayer, UNIFORM_BITS } from "./rtn.ts";

export const awqGptq: Method = {
  name: "awq+gptq",
  summary: "AWQ's scaling (and clipping) on the FP weights, then GPTQ on the scaled ones",
  help: {
    title: "awq+gptq (AWQ's scale search, then GPTQ; AWQ Table 9 reports it at g64):",
    notes: [
      "reads AWQ's flags (--no-duo-scaling, --no-clip) and GPTQ's; default group size 128;",
      "--export writes an AutoGPTQ v1 checkpoint of the scaled weights with the folded norms",
    ],
  },
  flags: { ...AWQ_FLAGS, ...GPTQ_FLAGS },
  bits: UNIFORM_BITS,
  defaultGroupSize: 128,
  calibrated: true,
  quantizesHead: false,
  memory: { chains: 2, trains: false },
  checkLayer: checkUniformLayer,
  exportMayRefuse: true,
  exportName: (s) => `awq+gptq-w${s.bits}-g${s.groupSize}`,
  async quantize(model, s, o, ctx) {
    const a = await awqScaleOnly(model, s, o, ctx);
    const g = gptqSettings(o, s);
    const q = await quantizeGptq(
      model,
      ctx.calibration!.windows,
      { ...g, statesOnHost: ctx.statesOnHost },
      (m) => ctx.log(`gptq: ${m}`),
    );
    return {
      quant: { records: q.records, seconds: a.result.seconds + q.seconds },
      methodOptions: () =>
        Promise.resolve({ awq: a.rowOptions, gptq: { ...gptqRowOptions(o), seconds: q.seconds } }),
      export: (src, dir, meta) => exportGptq(src, dir, q.records, g, meta, a.result.folded),
    };
  },
};
