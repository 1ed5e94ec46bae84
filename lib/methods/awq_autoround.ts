// "awq+autoround": AWQ's scale search and folding (and clipping unless --no-clip) on the FP model,
// then AutoRound started from the AWQ-scaled weights (its FP reference is the scaled model, whose
// function is the FP one's up to the clipping). The checkpoint is auto-round's, with the folded norms.

import { quantizeAutoRound } from "../quant/autoround.ts";
import { AWQ_FLAGS, awqScaleOnly } from "./awq.ts";
import {
  autoround,
  AUTOROUND_FLAGS,
  autoRoundRowOptions,
  autoRoundSettings,
  exportAutoRoundRun,
} from "./autoround.ts";
import type { Method } from "./contract.ts";
import { checkUniformLayer, UNIFORM_BITS } from "./rtn.ts";

export const awqAutoround: Method = {
  name: "awq+autoround",
  summary: "AWQ's scaling (and clipping) on the FP weights, then AutoRound from the scaled ones",
  help: {
    title: "awq+autoround (AWQ's scale search, then AutoRound from the scaled weights):",
    notes: [
      "reads AWQ's flags and AutoRound's; default group size 128; --export writes auto-round's",
      "format of the scaled weights with the folded norms",
    ],
  },
  flags: { ...AWQ_FLAGS, ...AUTOROUND_FLAGS },
  bits: UNIFORM_BITS,
  defaultGroupSize: 128,
  calibrated: true,
  quantizesHead: false,
  nsamples: autoround.nsamples,
  quick: autoround.quick,
  seeds: autoround.seeds,
  memory: { chains: 4, trains: true },
  checkLayer: checkUniformLayer,
  checkCalibration: autoround.checkCalibration,
  exportName: (s) => `awq+autoround-w${s.bits}-g${s.groupSize}`,
  async quantize(model, s, o, ctx) {
    const windows = ctx.calibration!.windows;
    const a = await awqScaleOnly(model, s, o, ctx);
    const ar = autoRoundSettings(o, s);
    const r = await quantizeAutoRound(
      model,
      windows,
      { ...ar, statesOnHost: ctx.statesOnHost },
      (m) => ctx.log(`autoround: ${m}`),
    );
    return {
      quant: { records: r.records, seconds: a.result.seconds + r.seconds },
      methodOptions: () =>
        Promise.resolve({
          awq: a.rowOptions,
          autoround: {
            ...autoRoundRowOptions(o, ar),
            seconds: r.seconds,
            quant_peak_gpu_bytes: r.peakBytes,
            best_iters: r.blocks.map((b) => b.bestIter),
          },
        }),
      export: (src, dir, meta) => exportAutoRoundRun(src, dir, meta, s, ar, r, windows, a.result.folded),
    };
  },
};
