// One cell's quantization stage: the setting's method (from the registry) quantizes the loaded
// model in place, its checkpoint is written under --export, and the row's method_options come
// back; a quantized checkpoint evaluated as loaded gets its row fields from its format instead.

import { basename } from "node:path";
import type { Calibration } from "../data/calibration.ts";
import type { QuantConfig } from "../io/config.ts";
import { formatOf } from "../model/format.ts";
import type { CausalLM } from "../model/model.ts";
import type { Quantized, Setting } from "../methods/contract.ts";
import { FORMATS, getMethod } from "../methods/registry.ts";
import type { BenchOptions } from "./options.ts";

export interface CellRun {
  modelDir: string;
  cal: Calibration | null;
  commit: string | null;
  label: string;
  log: (msg: string) => void;
  /** The memory plan's choice: calibration hidden states in host memory between uses. */
  statesOnHost: boolean;
}

/**
 * Quantize `model` in place for setting `s` (the baseline leaves it), then export it under
 * --export. An export its format refuses (Method.exportMayRefuse) leaves the model in memory
 * whole: the cell is still evaluated, and its row's method_options say why nothing was written.
 */
export async function quantizeCell(
  model: CausalLM,
  s: Setting,
  o: BenchOptions,
  c: CellRun,
): Promise<Quantized> {
  const m = getMethod(s.method);
  const q = await m.quantize(model, s, o, {
    calibration: m.calibrated ? c.cal : null,
    log: (msg) => c.log(`  ${c.label}: ${msg}`),
    statesOnHost: c.statesOnHost,
    gpuMemory: o["gpu-memory"],
    seed: o.seed,
  });
  if (q.quant) {
    c.log(`${c.label}: quantized ${q.quant.records.length} layers in ${q.quant.seconds.toFixed(1)} s`);
  }
  let exportError: string | null = null;
  if (o.export && q.export && m.exportName) {
    const dir = `${o.export}/${basename(c.modelDir)}-${m.exportName(s)}`;
    try {
      await q.export(c.modelDir, dir, { quantlab_commit: c.commit ?? "" });
      c.log(`${c.label}: ${m.name} checkpoint → ${dir}`);
    } catch (e) {
      if (!m.exportMayRefuse) throw e;
      exportError = (e as Error).message;
      c.log(`${c.label}: export failed, nothing written: ${exportError}`);
    }
  }
  if (exportError === null) return q;
  return {
    ...q,
    methodOptions: async () => ({ ...(await q.methodOptions()), export_error: exportError }),
  };
}

/** Row fields of a quantized checkpoint evaluated as loaded, from its quantization_config. */
export function loadedRow(q: QuantConfig) {
  return {
    ...formatOf(FORMATS, q).row(q),
    method_options: { ...q, loaded_checkpoint: true } as Record<string, unknown>,
  };
}
