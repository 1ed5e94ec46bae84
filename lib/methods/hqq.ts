// "hqq": half-quadratic quantization (lib/quant/hqq.ts), calibration-free, with mobiusml/hqq's
// defaults (hqq_base_quant_config: round_zero at 4 bits, axis 1); --hqq-recipes runs the recipes
// HQQ published its Llama-2 numbers with; exports hqq's safetensors layout.

import { z } from "zod";
import { exportHqq } from "../quant/export_hqq.ts";
import { HQQ_SLOW, hqqGroupSize, quantizeHqq } from "../quant/hqq.ts";
import { flagValues, type Method, type RunOptions, type Setting, uniformSettings } from "./contract.ts";

/**
 * HQQ's published recipes (its Llama-2 benchmark, hqq @b60baf6, Nov 2023: hqq_base_quant_config
 * with quant_zero on by default, Quantizer.quantize's axis 0 of that time): group size per bit
 * width, 8-bit meta-quantized zeros, and at 2 bits g16 with 8-bit g128 meta-quantized scales.
 */
export const HQQ_RECIPES: Record<number, { groupSize: number; quantScale: boolean }> = {
  8: { groupSize: 128, quantScale: false },
  4: { groupSize: 64, quantScale: false },
  3: { groupSize: 64, quantScale: false },
  2: { groupSize: 16, quantScale: true },
};

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
  "hqq-round-zero": {
    schema: z.enum(["auto", "on", "off"]).default("auto"),
    value: "auto|on|off",
    help: "round the initial zero-points to integers (auto: at 4 bits, as hqq_base_quant_config;\n" +
      "Quantizer.quantize's own default is off)",
  },
  "hqq-recipes": {
    schema: z.boolean().default(false),
    help:
      "HQQ's published Llama-2 recipes for the hqq cells (over --group-size, --axis): 8-bit g128, 4- and\n" +
      "3-bit g64, 2-bit g16 with 8-bit g128 scales; axis 0, 8-bit zeros (hqq of Nov 2023)",
  },
};

/** What one setting runs: the flags, or the published recipe of its bit width. */
export function hqqConfig(s: Setting, o: RunOptions) {
  const f = flagValues(o, flags), bits = s.bits!;
  const recipe = f["hqq-recipes"] ? HQQ_RECIPES[bits] : undefined;
  const roundZero = f["hqq-round-zero"] === "auto" ? bits === 4 : f["hqq-round-zero"] === "on";
  return {
    axis: recipe ? 0 as const : f.axis,
    roundZero,
    quantScale: recipe ? recipe.quantScale : f["hqq-meta"],
    quantZero: recipe ? true : f["hqq-meta"],
  };
}

function hqqRowOptions(s: Setting, o: RunOptions): Record<string, unknown> {
  const f = flagValues(o, flags), c = hqqConfig(s, o);
  return {
    axis: c.axis,
    lp_norm: 0.7,
    beta: 10,
    kappa: 1.01,
    iters: f["hqq-slow"] ? 100 : 20,
    early_stop: !f["hqq-slow"],
    meta_quant: c.quantScale && c.quantZero,
    quant_scale: c.quantScale,
    quant_zero: c.quantZero,
    round_zero: c.roundZero,
    ...(f["hqq-recipes"] ? { recipe: "hqq-published" } : {}),
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
  settings: (o) =>
    flagValues(o, flags)["hqq-recipes"]
      ? (o.bits ?? [4]).map((bits) => ({ method: "hqq", bits, groupSize: HQQ_RECIPES[bits].groupSize }))
      : uniformSettings(hqq, o),
  refuse: (o) => {
    if (!flagValues(o, flags)["hqq-recipes"]) return null;
    const missing = (o.bits ?? [4]).filter((b) => !HQQ_RECIPES[b]);
    if (missing.length) {
      return `--hqq-recipes: HQQ published recipes for ${Object.keys(HQQ_RECIPES).join(", ")} bits, not ${
        missing.join(", ")
      }`;
    }
    return null;
  },
  protocol: (s, o) => {
    if (!flagValues(o, flags)["hqq-recipes"]) return [];
    const c = hqqConfig(s, o);
    return [
      `axis ${c.axis}`,
      ...(c.quantZero ? ["8-bit zeros"] : []),
      ...(c.quantScale ? ["8-bit g128 scales"] : []),
      ...(c.roundZero ? ["round-zero"] : []),
    ];
  },
  checkLayer: (name, shape, s, o) =>
    void hqqGroupSize(name, shape, { groupSize: s.groupSize!, axis: hqqConfig(s, o).axis }),
  exportName: (s) => `hqq-w${s.bits}-g${s.groupSize}`,
  async quantize(model, s, o) {
    const f = flagValues(o, flags), c = hqqConfig(s, o);
    const quant = await quantizeHqq(model, {
      bits: s.bits!,
      groupSize: s.groupSize!,
      axis: c.axis,
      roundZero: c.roundZero,
      quantScale: c.quantScale,
      quantZero: c.quantZero,
      ...(f["hqq-slow"] ? HQQ_SLOW : {}),
      quantizeHead: o["quantize-head"],
    });
    const rowOptions = hqqRowOptions(s, o);
    return {
      quant,
      methodOptions: () => Promise.resolve(rowOptions),
      export: (src, dir, meta) => exportHqq(src, dir, quant.records, rowOptions, meta),
    };
  },
};
