// The method contract: everything the harness, the CLI, the presets, the loader and the notebooks
// need to know of a quantization method, in one object (lib/methods/<name>.ts each define one; the
// registry, lib/methods/registry.ts, holds them). The math stays in lib/quant; a method module
// binds it to flags, settings, rows and a checkpoint format.

import type { z } from "zod";
import type { Calibration } from "../data/calibration.ts";
import type { CausalLM } from "../model/model.ts";
import type { QuantizeResult } from "../quant/rtn.ts";

/** One cell's quantization setting: a method at bits × group size (bitsandbytes: × double quant). */
export interface Setting {
  method: string;
  bits: number | null;
  groupSize: number | null;
  doubleQuant?: boolean;
}

/**
 * The parsed options of a run. The harness's own flags are typed (lib/bench/options.ts); each
 * method's flags are there too, under their flag names, read through `flagValues`.
 */
export interface RunOptions {
  methods: string[];
  bits?: number[];
  "group-size"?: number[];
  export?: string;
  "quantize-head": boolean;
  seed: number;
  [flag: string]: unknown;
}

/** A flag of a method: its zod schema (with its default) and its --help lines. */
export interface MethodFlag<S extends z.ZodType = z.ZodType> {
  schema: S;
  /** The text after the flag name in --help (continuation lines are indented by the composer). */
  help: string;
  /** What the flag's value is called in --help ("N", "X", "0|1"); none for a switch. */
  value?: string;
}

export type Flags = Record<string, MethodFlag>;
export type FlagValues<F extends Flags> = { [K in keyof F]: z.output<F[K]["schema"]> };

/** A method's flags, as parsed: the run's options hold them under their names. */
export function flagValues<F extends Flags>(o: RunOptions, flags: F): FlagValues<F> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(flags)) out[k] = o[k];
  return out as FlagValues<F>;
}

/** What a quantizer is handed besides the model and its setting. */
export interface MethodContext {
  /** Calibration windows (token ids) for methods that calibrate; null otherwise. */
  calibration: Calibration | null;
  /** Progress lines (already prefixed with the cell's label by the harness). */
  log: (msg: string) => void;
  /** The memory plan's choice: calibration hidden states in host memory between uses. */
  statesOnHost: boolean;
  /** The GPU memory budget in bytes the run honours (null: none); the GPU pool enforces it. */
  gpuMemory: number | null;
  /** The run's seed (calibration sampling). */
  seed: number;
}

/** A quantized model's side of a row, and how to write it as a checkpoint. */
export interface Quantized {
  quant: QuantizeResult | null;
  /** The row's method_options (read after the evaluation: LLM.int8 counts its outlier columns then). */
  methodOptions(): Promise<Record<string, unknown> | null>;
  /** Write the checkpoint to `dir` (the harness names it); `meta` goes into its config. */
  export?(modelDir: string, dir: string, meta: Record<string, string>): Promise<void>;
}

export interface Method {
  /** What --methods calls it. */
  name: string;
  /** One line for --help's method list. */
  summary: string;
  /** The model as loaded (fp): nothing quantized, nothing to export. */
  baseline?: boolean;
  /** Its --help section: a heading, then its flags (and `notes` lines after them). */
  help?: { title: string; notes?: string[] };
  /** Its own flags (flag name → schema and help); a flag may be shared only by the same object. */
  flags: Flags;
  /** Bit widths it takes (checked before work); null: fixed by the method (fp, nf4, int8). */
  bits: readonly number[] | null;
  /** Group size when --group-size is absent (its reference's default). */
  defaultGroupSize?: number;
  /** It draws calibration windows from --calibration. */
  calibrated: boolean;
  /** It can quantize lm_head (--quantize-head). */
  quantizesHead: boolean;
  /** Flags shown beside a cell by --list when not at their defaults (default: its own flags). */
  protocolFlags?: string[];
  /** More of a cell's protocol for --list, which its flags alone do not say (e.g. a recipe's parts). */
  protocol?(s: Setting, o: RunOptions): string[];
  /** Calibration sample count when --nsamples is absent (default 128). */
  nsamples?(o: RunOptions): number | undefined;
  /** --quick's caps on its flags (flag → at most). */
  quick?: Record<string, number>;
  /** Seeds besides the calibration's that its rows record. */
  seeds?: Record<string, number>;
  /** How much calibration state it holds at once, for the memory plan (see lib/bench/checks.ts). */
  memory?: { chains: number; trains: boolean };
  /** Its settings for the run's bits and group sizes (default: bits × group sizes). */
  settings?(o: RunOptions): Setting[];
  /** A refusal of the run's options (before any work), or null. */
  refuse?(o: RunOptions): string | null;
  /** Check one layer [out, in] it would quantize (throws a message naming the layer). */
  checkLayer?(name: string, shape: [number, number], s: Setting, o: RunOptions): void;
  /** Check the calibration text (tokens available) before work. */
  checkCalibration?(tokens: number, nsamples: number, seqlen: number, file: string): void;
  /**
   * An export its format refuses for these weights (GPTQ v1's zero-point wrap, AWQ GEMM's packs)
   * is recorded in the row (method_options.export_error) and the cell still evaluated; otherwise
   * a failed export fails the cell.
   */
  exportMayRefuse?: boolean;
  /** The checkpoint folder's suffix under --export (after "<model>-"); absent: no export format. */
  exportName?(s: Setting): string;
  /**
   * A row's labels: its table column ("W4 g128") and its figure series ("gptq W4 g128");
   * default by bits and group size (bitsandbytes names its own).
   */
  label?(r: RowSetting): { column: string; series: string };
  /** Quantize `model` in place for setting `s`. */
  quantize(model: CausalLM, s: Setting, o: RunOptions, ctx: MethodContext): Promise<Quantized>;
}

/** The default settings: bits × group sizes (the method's default group size when none given). */
export function uniformSettings(m: Method, o: RunOptions): Setting[] {
  const out: Setting[] = [];
  for (const bits of o.bits ?? [4]) {
    for (const groupSize of o["group-size"] ?? [m.defaultGroupSize ?? 128]) {
      out.push({ method: m.name, bits, groupSize });
    }
  }
  return out;
}

/** What a row says of its setting. */
export interface RowSetting {
  method: string;
  bits: number | null;
  group_size: number | null;
  method_options: Record<string, unknown> | null;
}

/** "g128" or "per-channel". */
export const groupLabel = (g: number | null) => (g === -1 ? "per-channel" : `g${g}`);
