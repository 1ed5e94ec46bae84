// The methods of `deno task bench`: quantize a loaded model for one setting (and export it when
// asked), the method's row options, and the row fields of a quantized checkpoint evaluated as loaded.

import { basename } from "node:path";
import type { Calibration } from "../data/calibration.ts";
import type { BnbQuantConfig, QuantConfig } from "../io/config.ts";
import type { CausalLM } from "../model/model.ts";
import { quantizeBnb4 } from "../quant/bnb.ts";
import { quantizeAwq } from "../quant/awq.ts";
import { AUTOROUND_PRESETS, autoRoundLr, quantizeAutoRound } from "../quant/autoround.ts";
import { exportAutoRound } from "../quant/export_gptq.ts";
import { exportAwq } from "../quant/export_awq.ts";
import { exportBnb } from "../quant/export_bnb.ts";
import { exportGptq } from "../quant/export_gptq.ts";
import { exportHqq } from "../quant/export_hqq.ts";
import { quantizeGptq } from "../quant/gptq.ts";
import { HQQ_SLOW, quantizeHqq } from "../quant/hqq.ts";
import { type Int8Linear, quantizeInt8 } from "../quant/llm_int8.ts";
import { type QuantizeResult, quantizeRtn } from "../quant/rtn.ts";
import type { BenchOptions } from "../bench/options.ts";

export interface Setting {
  method: string;
  bits: number | null;
  groupSize: number | null;
  doubleQuant?: boolean;
}

export interface Quantized {
  quant: QuantizeResult | null;
  /** The row's method_options (LLM.int8's outlier counts are read after the evaluation). */
  methodOptions: () => Promise<Record<string, unknown> | null>;
}

/** Quantize `model` in place for setting `s` ("fp" leaves it), exporting it under --export. */
export async function quantizeSetting(
  model: CausalLM,
  modelDir: string,
  s: Setting,
  o: BenchOptions,
  cal: Calibration | null,
  commit: string | null,
  label: string,
  log: (msg: string) => void,
  /** The memory plan's choice: calibration hidden states in host memory between uses. */
  statesOnHost = false,
): Promise<Quantized> {
  let quant: QuantizeResult | null = null;
  let int8Layers: Int8Linear[] = [];
  let extraInfo: Record<string, unknown> = {};
  if (s.method === "rtn") {
    quant = await quantizeRtn(model, {
      bits: s.bits!,
      groupSize: s.groupSize!,
      range: o["rtn-grid"],
      quantizeHead: o["quantize-head"],
    });
    log(`${label}: quantized ${quant.records.length} layers in ${quant.seconds.toFixed(1)} s`);
  } else if (s.method === "bnb-int8") {
    const r = await quantizeInt8(model, o["int8-threshold"], o["quantize-head"]);
    (quant = r), (int8Layers = r.layers);
    log(`${label}: quantized ${quant.records.length} layers in ${quant.seconds.toFixed(1)} s`);
    if (o.export) {
      const dir = `${o.export}/${basename(modelDir)}-bnb-int8`;
      await exportBnb(modelDir, dir, r.records, { threshold: o["int8-threshold"] }, {
        quantlab_commit: commit ?? "",
      });
      log(`${label}: bitsandbytes checkpoint → ${dir}`);
    }
  } else if (s.method === "nf4" || s.method === "fp4") {
    quant = await quantizeBnb4(model, {
      type: s.method,
      blocksize: s.groupSize!,
      doubleQuant: s.doubleQuant,
      quantizeHead: o["quantize-head"],
    });
    log(`${label}: quantized ${quant.records.length} layers in ${quant.seconds.toFixed(1)} s`);
    if (o.export) {
      const dir = `${o.export}/${basename(modelDir)}-${s.method}-g${s.groupSize}${
        s.doubleQuant ? "-dq" : ""
      }`;
      await exportBnb(modelDir, dir, quant.records, null, { quantlab_commit: commit ?? "" });
      log(`${label}: bitsandbytes checkpoint → ${dir}`);
    }
  } else if (s.method === "hqq") {
    const h = {
      bits: s.bits!,
      groupSize: s.groupSize!,
      axis: o.axis,
      metaQuant: o["hqq-meta"],
      ...(o["hqq-slow"] ? HQQ_SLOW : {}),
    };
    quant = await quantizeHqq(model, { ...h, quantizeHead: o["quantize-head"] });
    log(`${label}: quantized ${quant.records.length} layers in ${quant.seconds.toFixed(1)} s`);
    if (o.export) {
      const dir = `${o.export}/${basename(modelDir)}-hqq-w${s.bits}-g${s.groupSize}`;
      await exportHqq(modelDir, dir, quant.records, hqqRowOptions(o), {
        quantlab_commit: commit ?? "",
      });
      log(`${label}: HQQ checkpoint → ${dir}`);
    }
  } else if (s.method === "awq") {
    const r = await quantizeAwq(
      model,
      cal!.windows,
      { ...awqSettings(o, s), statesOnHost },
      (m) => log(`  ${label}: ${m}`),
    );
    quant = r;
    extraInfo = { quant_peak_gpu_bytes: r.peakBytes };
    log(`${label}: quantized ${r.records.length} layers in ${r.seconds.toFixed(1)} s`);
    if (o.export) {
      const dir = `${o.export}/${basename(modelDir)}-awq-w${s.bits}-g${s.groupSize}`;
      try {
        await exportAwq(modelDir, dir, r.records, r.folded, { quantlab_commit: commit ?? "" });
        log(`${label}: AutoAWQ GEMM checkpoint → ${dir}`);
      } catch (e) {
        // The quantized model in memory is still whole: evaluate it, record why nothing was written.
        extraInfo.export_error = (e as Error).message;
        log(`${label}: export failed, nothing written: ${(e as Error).message}`);
      }
    }
  } else if (s.method === "autoround") {
    const a = autoRoundSettings(o, s);
    const r = await quantizeAutoRound(
      model,
      cal!.windows,
      { ...a, statesOnHost },
      (m) => log(`  ${label}: ${m}`),
    );
    quant = r;
    extraInfo = {
      ...autoRoundRowOptions(o, a),
      quant_peak_gpu_bytes: r.peakBytes,
      block_seconds: r.blocks.map((b) => b.seconds),
      best_iters: r.blocks.map((b) => b.bestIter),
      loss_curves: r.blocks.map((b) => b.losses),
    };
    log(`${label}: quantized ${r.records.length} layers in ${r.seconds.toFixed(1)} s`);
    if (o.export) {
      const dir = `${o.export}/${basename(modelDir)}-autoround-w${s.bits}-g${s.groupSize}`;
      await exportAutoRound(modelDir, dir, r.records, {
        bits: s.bits!,
        groupSize: s.groupSize!,
        sym: a.sym,
        iters: a.iters,
        lr: r.lr,
        nsamples: cal!.windows.length,
        seqlen: cal!.windows[0].length,
      }, { quantlab_commit: commit ?? "" });
      log(`${label}: auto-round checkpoint → ${dir}`);
    }
  } else if (s.method === "gptq") {
    const g = gptqSettings(o, s);
    quant = await quantizeGptq(model, cal!.windows, { ...g, statesOnHost }, (m) => log(`  ${label}: ${m}`));
    log(`${label}: quantized ${quant.records.length} layers in ${quant.seconds.toFixed(1)} s`);
    if (o.export) {
      const dir = `${o.export}/${basename(modelDir)}-gptq-w${s.bits}-g${s.groupSize}`;
      try {
        await exportGptq(modelDir, dir, quant.records, { ...g, groupSize: s.groupSize! }, {
          quantlab_commit: commit ?? "",
        });
        log(`${label}: AutoGPTQ checkpoint → ${dir}`);
      } catch (e) {
        // The quantized model in memory is still whole: evaluate it, record why nothing was written.
        extraInfo.export_error = (e as Error).message;
        log(`${label}: export failed, nothing written: ${(e as Error).message}`);
      }
    }
  }
  return {
    quant,
    methodOptions: async () => {
      if (s.method === "rtn") return { grid: o["rtn-grid"] };
      if (s.method === "gptq") return gptqRowOptions(o);
      if (s.method === "awq") return { ...awqRowOptions(o), ...extraInfo };
      if (s.method === "autoround") return extraInfo;
      if (s.method === "hqq") return hqqRowOptions(o);
      if (s.method === "bnb-int8") {
        const counts = await Promise.all(int8Layers.map(async (l) => [l.name, await l.outlierColumns()]));
        return {
          threshold: o["int8-threshold"],
          // bitsandbytes' MatMul8bitLt quantizes A.to(float16); the outlier columns stay in x's dtype
          activations_quantized_from: "float16",
          outlier_columns: Object.fromEntries(counts),
        };
      }
      if (s.doubleQuant !== undefined) {
        return { double_quant: s.doubleQuant, blocksize: s.groupSize, nested_blocksize: 256 };
      }
      return null;
    },
  };
}

/** Row fields of a quantized checkpoint evaluated as loaded, from its quantization_config. */
export function loadedRow(q: QuantConfig) {
  return {
    method: q.quant_method === "bitsandbytes"
      ? bnbMethod(q)
      : q.quant_method === "auto-round"
      ? "autoround"
      : q.quant_method,
    bits: quantBits(q),
    group_size: q.quant_method === "bitsandbytes" ? null : q.group_size,
    method_options: { ...q, loaded_checkpoint: true } as Record<string, unknown>,
  };
}

function awqSettings(o: BenchOptions, s: Setting) {
  return {
    bits: s.bits as 2 | 3 | 4 | 8,
    groupSize: s.groupSize!,
    duoScaling: !o["no-duo-scaling"],
    clip: !o["no-clip"],
  };
}

function awqRowOptions(o: BenchOptions): Record<string, unknown> {
  return {
    zero_point: true,
    n_grid: 20,
    duo_scaling: !o["no-duo-scaling"],
    clip: !o["no-clip"],
    max_shrink: 0.5,
    clip_tokens: 512,
    calibration_chain: "fp",
  };
}

function autoRoundSettings(o: BenchOptions, s: Setting) {
  const preset = AUTOROUND_PRESETS[o.recipe];
  return {
    bits: s.bits as 2 | 3 | 4 | 8,
    groupSize: s.groupSize!,
    sym: !o["autoround-asym"],
    iters: o.iters ?? preset.iters,
    lr: o.lr ?? ("lr" in preset ? preset.lr : undefined),
    minmaxLr: o["minmax-lr"],
    minmaxTuning: !o["no-minmax"],
  };
}

function autoRoundRowOptions(o: BenchOptions, a: ReturnType<typeof autoRoundSettings>) {
  const lr = autoRoundLr(a);
  return {
    recipe: o.recipe,
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

function gptqSettings(o: BenchOptions, s: Setting) {
  return {
    bits: s.bits as 2 | 3 | 4 | 8,
    groupSize: s.groupSize!,
    sym: o.sym,
    actOrder: o["act-order"],
    staticGroups: o["static-groups"],
    percdamp: o.percdamp,
    blocksize: o.blocksize,
    trueSequential: !o["no-true-sequential"],
    fpInputs: o["fp-inputs"],
  };
}

function quantBits(q: QuantConfig): number {
  if (q.quant_method === "gptq" || q.quant_method === "awq" || q.quant_method === "auto-round") return q.bits;
  return q.quant_method === "hqq" ? q.nbits : q.load_in_8bit ? 8 : 4;
}

function bnbMethod(q: BnbQuantConfig): string {
  return q.load_in_8bit ? "bnb-int8" : q.bnb_4bit_quant_type ?? "fp4";
}

function hqqRowOptions(o: BenchOptions): Record<string, unknown> {
  const slow = o["hqq-slow"];
  return {
    axis: o.axis,
    lp_norm: 0.7,
    beta: 10,
    kappa: 1.01,
    iters: slow ? 100 : 20,
    early_stop: !slow,
    meta_quant: o["hqq-meta"],
  };
}

function gptqRowOptions(o: BenchOptions): Record<string, unknown> {
  return {
    sym: o.sym,
    act_order: o["act-order"],
    static_groups: o["static-groups"],
    true_sequential: !o["no-true-sequential"],
    fp_inputs: o["fp-inputs"],
    percdamp: o.percdamp,
    blocksize: o.blocksize,
  };
}
