// "autoround": signed gradient descent on rounding offsets and clipping (lib/quant/autoround.ts)
// with intel/auto-round's defaults; exports auto-round's own format (auto_round:auto_gptq).

import { z } from "zod";
import {
  AUTOROUND_PRESETS,
  autoRoundLr,
  type AutoRoundResult,
  checkAutoRoundSamples,
  quantizeAutoRound,
} from "../quant/autoround.ts";
import { exportAutoRound } from "../quant/export_gptq.ts";
import { flagValues, type Method, type RunOptions, type Setting } from "./contract.ts";
import { checkUniformLayer, UNIFORM_BITS } from "./rtn.ts";

export const AUTOROUND_FLAGS = {
  recipe: {
    schema: z.enum(["default", "light", "best"]).default("default"),
    value: "NAME",
    help: "default (200 iters), light (50 iters, lr 5e-3) or best (1000 iters; with\n" +
      "512 samples when --nsamples is not given)",
  },
  iters: {
    schema: z.coerce.number().int().min(0, "must be ≥ 0").optional(),
    value: "N",
    help: "iterations per block (overrides the recipe; 0 = rounding to the same grid)",
  },
  lr: {
    schema: z.coerce.number().positive("must be > 0").optional(),
    value: "X",
    help: "learning rate (default 1/iters; 2/iters for ≤ 3 bits with ≥ 1000 iters)",
  },
  "minmax-lr": {
    schema: z.coerce.number().positive("must be > 0").optional(),
    value: "X",
    help: "learning rate of the min/max scale factors (default: lr)",
  },
  "autoround-asym": {
    schema: z.boolean().default(false),
    help: "asymmetric grid with zero-point (default symmetric, as the reference)",
  },
  "no-minmax": {
    schema: z.boolean().default(false),
    help: "tune only the rounding, not the min/max scale factors",
  },
};

/** AutoRound's options for setting `s` from the run's flags and recipe. */
export function autoRoundSettings(o: RunOptions, s: Setting) {
  const f = flagValues(o, AUTOROUND_FLAGS);
  const preset = AUTOROUND_PRESETS[f.recipe];
  return {
    bits: s.bits as 2 | 3 | 4 | 8,
    groupSize: s.groupSize!,
    sym: !f["autoround-asym"],
    iters: f.iters ?? preset.iters,
    lr: f.lr ?? ("lr" in preset ? preset.lr : undefined),
    minmaxLr: f["minmax-lr"],
    minmaxTuning: !f["no-minmax"],
  };
}

/** The row's method_options of an AutoRound run (its settings, and the reference's fixed ones). */
export function autoRoundRowOptions(o: RunOptions, a: ReturnType<typeof autoRoundSettings>) {
  const lr = autoRoundLr(a);
  return {
    recipe: flagValues(o, AUTOROUND_FLAGS).recipe,
    sym: a.sym,
    iters: a.iters,
    lr,
    minmax_lr: a.minmaxLr ?? lr,
    minmax_tuning: a.minmaxTuning,
    batch_size: 8,
    scale_dtype: "float16",
    sampler_seed: 42,
    calibration_chain: "quantized-prefix",
  };
}

/** auto-round's checkpoint of an AutoRound run (`folded`: norms an AWQ step changed, awq+autoround). */
export function exportAutoRoundRun(
  src: string,
  dir: string,
  meta: Record<string, string>,
  s: Setting,
  a: ReturnType<typeof autoRoundSettings>,
  r: AutoRoundResult,
  windows: number[][],
  folded?: Map<string, Float32Array>,
): Promise<void> {
  const settings = {
    bits: s.bits!,
    groupSize: s.groupSize!,
    sym: a.sym,
    iters: a.iters,
    lr: r.lr,
    nsamples: windows.length,
    seqlen: windows[0].length,
  };
  return exportAutoRound(src, dir, r.records, settings, meta, folded);
}

export const autoround: Method = {
  name: "autoround",
  summary: "AutoRound: rounding offsets and clipping tuned by signed gradient descent, block by block",
  help: {
    title:
      "AutoRound (intel/auto-round's defaults: 200 iterations of signed gradient descent per block, batch 8,\n" +
      "lr 1/iters, min/max tuning, symmetric full-range grid; its calibration is 128 windows of 2048):",
    notes: [
      "(--export writes auto-round's own format, auto_round:auto_gptq: DIR/<model>-autoround-w<b>-g<g>)",
    ],
  },
  flags: AUTOROUND_FLAGS,
  bits: UNIFORM_BITS,
  defaultGroupSize: 128,
  calibrated: true,
  quantizesHead: false,
  nsamples: (o) =>
    flagValues(o, AUTOROUND_FLAGS).recipe === "best" ? AUTOROUND_PRESETS.best.nsamples : undefined,
  quick: { iters: 10 },
  seeds: { autoround_sampler: 42 },
  memory: { chains: 4, trains: true },
  checkLayer: checkUniformLayer,
  checkCalibration: checkAutoRoundSamples,
  exportName: (s) => `autoround-w${s.bits}-g${s.groupSize}`,
  async quantize(model, s, o, ctx) {
    const a = autoRoundSettings(o, s);
    const cal = ctx.calibration!;
    const r = await quantizeAutoRound(model, cal.windows, { ...a, statesOnHost: ctx.statesOnHost }, ctx.log);
    const extra = {
      ...autoRoundRowOptions(o, a),
      quant_peak_gpu_bytes: r.peakBytes,
      block_seconds: r.blocks.map((b) => b.seconds),
      best_iters: r.blocks.map((b) => b.bestIter),
      loss_curves: r.blocks.map((b) => b.losses),
    };
    return {
      quant: r,
      methodOptions: () => Promise.resolve(extra),
      export: (src, dir, meta) => exportAutoRoundRun(src, dir, meta, s, a, r, cal.windows),
    };
  },
};
