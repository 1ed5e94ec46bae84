// "awq+autoround": AWQ's scale search and folding (and clipping unless --no-clip) on the FP model,
// then AutoRound started from the AWQ-scaled weights (its FP reference is the scaled model, whose
// function is the FP one's up to the clipping). The checkpoint is auto-round's, with the folded norms.

import { quantizeAwq } from "../quant/awq.ts";
import { quantizeAutoRound } from "../quant/autoround.ts";
import { exportAutoRound } from "../quant/export_gptq.ts";
import { AWQ_FLAGS, awqRowOptions, awqSettings } from "./awq.ts";
import { autoround, AUTOROUND_FLAGS, autoRoundRowOptions, autoRoundSettings } from "./autoround.ts";
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
  checkLayer: (name, shape, s) => checkUniformLayer(name, shape, s.bits!, s.groupSize!),
  checkCalibration: autoround.checkCalibration,
  exportName: (s) => `awq+autoround-w${s.bits}-g${s.groupSize}`,
  async quantize(model, s, o, ctx) {
    const cal = ctx.calibration!;
    const a = await quantizeAwq(model, cal.windows, {
      ...awqSettings(o, s),
      quantize: false,
      statesOnHost: ctx.statesOnHost,
    }, (m) => ctx.log(`awq: ${m}`));
    const ar = autoRoundSettings(o, s);
    const r = await quantizeAutoRound(
      model,
      cal.windows,
      { ...ar, statesOnHost: ctx.statesOnHost },
      (m) => ctx.log(`autoround: ${m}`),
    );
    return {
      quant: { records: r.records, seconds: a.seconds + r.seconds },
      methodOptions: () =>
        Promise.resolve({
          awq: { ...awqRowOptions(o), seconds: a.seconds, quant_peak_gpu_bytes: a.peakBytes },
          autoround: {
            ...autoRoundRowOptions(o, ar),
            seconds: r.seconds,
            quant_peak_gpu_bytes: r.peakBytes,
            best_iters: r.blocks.map((b) => b.bestIter),
          },
        }),
      export: (src, dir, meta) =>
        exportAutoRound(
          src,
          dir,
          r.records,
          {
            bits: s.bits!,
            groupSize: s.groupSize!,
            sym: ar.sym,
            iters: ar.iters,
            lr: r.lr,
            nsamples: cal.windows.length,
            seqlen: cal.windows[0].length,
          },
          meta,
          a.folded,
        ),
    };
  },
};
