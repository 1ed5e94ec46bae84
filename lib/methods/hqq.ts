// "hqq": half-quadratic quantization (lib/quant/hqq.ts), calibration-free, with mobiusml/hqq's
// defaults; exports hqq's safetensors layout.

import { z } from "zod";
import { exportHqq } from "../quant/export_hqq.ts";
import { HQQ_SLOW, hqqGroupSize, quantizeHqq } from "../quant/hqq.ts";
import { flagValues, type Method, type RunOptions } from "./contract.ts";

const flags = {
  axis: {
    schema: z.enum(["0", "1"]).default("1").transform(Number).pipe(z.union([z.literal(0), z.literal(1)])),
    value: "0|1",
    help: "groups along the input (1, default: packed kernels) or strided along the\n" +
      "output dimension (0, Quantizer.quantize's default; runs dequantized)",
  },
  "hqq-slow": {
    schema: z.boolean().default(false),
    help: "the reference's slow solver: 100 steps, no early stop",
  },
  "hqq-meta": {
    schema: z.boolean().default(false),
    help: "8-bit meta-quantization of scales (groups of 128) and zeros (the 2-bit g16 recipe)",
  },
};

function hqqRowOptions(o: RunOptions): Record<string, unknown> {
  const f = flagValues(o, flags);
  return {
    axis: f.axis,
    lp_norm: 0.7,
    beta: 10,
    kappa: 1.01,
    iters: f["hqq-slow"] ? 100 : 20,
    early_stop: !f["hqq-slow"],
    meta_quant: f["hqq-meta"],
  };
}

export const hqq: Method = {
  name: "hqq",
  summary: "HQQ: half-quadratic solver for scale and zero-point, no calibration",
  help: {
    title:
      "HQQ (calibration-free; defaults are mobiusml/hqq's: p = 0.7, beta 10, kappa 1.01, 20 steps, early stop):",
  },
  flags,
  bits: [1, 2, 3, 4, 5, 6, 8],
  defaultGroupSize: 64,
  calibrated: false,
  quantizesHead: true,
  checkLayer: (name, shape, s, o) =>
    void hqqGroupSize(name, shape, { groupSize: s.groupSize!, axis: flagValues(o, flags).axis }),
  exportName: (s) => `hqq-w${s.bits}-g${s.groupSize}`,
  async quantize(model, s, o) {
    const f = flagValues(o, flags);
    const quant = await quantizeHqq(model, {
      bits: s.bits!,
      groupSize: s.groupSize!,
      axis: f.axis,
      metaQuant: f["hqq-meta"],
      ...(f["hqq-slow"] ? HQQ_SLOW : {}),
      quantizeHead: o["quantize-head"],
    });
    return {
      quant,
      methodOptions: () => Promise.resolve(hqqRowOptions(o)),
      export: (src, dir, meta) => exportHqq(src, dir, quant.records, hqqRowOptions(o), meta),
    };
  },
};
