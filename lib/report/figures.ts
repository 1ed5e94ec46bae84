// Vega-Lite specs of a run, from its result rows alone: perplexity by bits per method (log scale),
// perplexity against bits per weight with the Pareto front, decode tokens/s and GEMV GB/s against
// the adapter's copy-bandwidth roofline, weight memory and quantization time per setting.

import type { TopLevelSpec } from "vega-lite";
import type { ResultRow } from "../eval/results.ts";
import { rowLabels } from "../methods/registry.ts";

const CONFIG = { font: "DejaVu Sans", view: { stroke: "#ddd" } };

/** A short label of a row's setting: "fp", "gptq W4 g128", "nf4 g64 dq" (its method's labels). */
export const settingOf = (r: ResultRow) => rowLabels(r).series;

const shortModel = (m: string) => m.replace(/\/+$/, "").split("/").pop()!;
const shortData = (d: string) => d.replace(/\/+$/, "").split("/").pop()!;
export const panelOf = (r: ResultRow) => `${shortModel(r.model)} · ${shortData(r.dataset)}`;

/** Bits per weight of a row: its quantized linears' figure, or the FP weights' dtype width. */
export function bpwOf(r: ResultRow): number {
  if (r.bits_per_weight !== null) return r.bits_per_weight;
  return /16/.test(r.weights_dtype) ? 16 : 32;
}

interface Datum {
  panel: string;
  setting: string;
  method: string;
  bits: number | null;
  group: string;
  ppl: number;
  bpw: number;
  front: boolean;
  [k: string]: unknown;
}

export function data(rows: ResultRow[]): Datum[] {
  const out: Datum[] = rows.map((r) => ({
    panel: panelOf(r),
    setting: settingOf(r),
    method: r.method,
    bits: r.bits,
    group: r.group_size === null ? "—" : r.group_size === -1 ? "per-channel" : `g${r.group_size}`,
    ppl: r.ppl,
    bpw: bpwOf(r),
    front: false,
    weight_mb: (r.weight_bytes ?? r.model_gpu_bytes) / 1e6,
    peak_mb: r.peak_gpu_bytes / 1e6,
    needed_mb: r.gpu_bytes_needed === null ? null : r.gpu_bytes_needed / 1e6,
    quant_seconds: r.quant_seconds,
    decode: r.decode_tokens_per_second,
    roofline_decode: r.copy_gbps && r.weight_bytes ? (r.copy_gbps * 1e9) / r.weight_bytes : null,
    gemv_gbps: r.gemv_gbps,
    copy_gbps: r.copy_gbps,
  }));
  // The Pareto front per panel: no other point has fewer bits per weight and a lower ppl.
  for (const panel of new Set(out.map((d) => d.panel))) {
    const ps = out.filter((d) => d.panel === panel).sort((a, b) => a.bpw - b.bpw || a.ppl - b.ppl);
    let best = Infinity;
    for (const d of ps) if (d.ppl < best) (best = d.ppl), (d.front = true);
  }
  return out;
}

const facet = { field: "panel", type: "nominal", title: null } as const;

/** Perplexity on a log axis (the y of both perplexity figures). */
const LOG_PPL = {
  field: "ppl",
  type: "quantitative",
  scale: { type: "log", nice: false, padding: 8 },
  title: "perplexity (log)",
} as const;

/** One panel per model · dataset in two columns, each with its own scale on `axis`. */
function facetted(
  title: string,
  values: Datum[],
  spec: { layer: unknown[]; [k: string]: unknown },
  axis: "x" | "y",
): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    data: { values },
    facet,
    columns: 2,
    spec,
    resolve: { scale: { [axis]: "independent" } },
    config: CONFIG,
  } as TopLevelSpec;
}

/** The perplexity figures: layers in 320×220 panels, each its own perplexity scale. */
const panels = (title: string, values: Datum[], layer: unknown[]) =>
  facetted(title, values, { width: 320, height: 220, layer }, "y");

export function pplByBits(rows: ResultRow[]): TopLevelSpec {
  return panels("Perplexity by bits per method (FP as the dashed line)", data(rows), [
    {
      transform: [{ filter: "datum.method === 'fp'" }],
      mark: { type: "rule", strokeDash: [4, 4], color: "#444" },
      encoding: { y: LOG_PPL },
    },
    {
      transform: [{ filter: "datum.bits !== null && datum.method !== 'fp'" }],
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "bits", type: "ordinal", title: "bits", sort: "descending", axis: { labelAngle: 0 } },
        y: LOG_PPL,
        color: { field: "method", type: "nominal" },
        strokeDash: { field: "group", type: "nominal", title: "group" },
        tooltip: [{ field: "setting" }, { field: "ppl", format: ".4f" }],
      },
    },
  ]);
}

export function pareto(rows: ResultRow[]): TopLevelSpec {
  return panels("Perplexity against bits per weight (line: the Pareto front)", data(rows), [
    {
      transform: [{ filter: "datum.front" }],
      mark: { type: "line", color: "#999" },
      encoding: { x: { field: "bpw", type: "quantitative", scale: { type: "log", base: 2 } }, y: LOG_PPL },
    },
    {
      mark: { type: "point", filled: true, size: 60 },
      encoding: {
        x: {
          field: "bpw",
          type: "quantitative",
          scale: { type: "log", base: 2 },
          title: "bits per weight (log₂)",
        },
        y: LOG_PPL,
        color: { field: "method", type: "nominal" },
        tooltip: [{ field: "setting" }, { field: "bpw", format: ".3f" }, { field: "ppl", format: ".4f" }],
      },
    },
  ]);
}

/** Bars of one column per setting, with an optional tick/rule for a per-row reference value. */
function bars(
  rows: ResultRow[],
  field: string,
  title: string,
  axis: string,
  ref?: { field: string; label: string },
) {
  const values = data(rows).filter((d) => d[field] !== null && d[field] !== undefined);
  const layer: unknown[] = [{
    mark: { type: "bar" },
    encoding: {
      y: { field: "setting", type: "nominal", sort: null, title: null },
      x: { field, type: "quantitative", title: axis },
      color: { field: "method", type: "nominal", legend: null },
      tooltip: [{ field: "setting" }, { field, format: ".3~f" }],
    },
  }];
  if (ref) {
    layer.push({
      mark: { type: "tick", color: "black", thickness: 2 },
      encoding: {
        y: { field: "setting", type: "nominal", sort: null },
        x: { field: ref.field, type: "quantitative" },
        tooltip: [{ field: ref.field, title: ref.label, format: ".3~f" }],
      },
    });
  }
  return facetted(title, values, { width: 300, layer }, "x");
}

export const decodeSpeed = (rows: ResultRow[]) =>
  bars(
    rows,
    "decode",
    "Decode tokens/s at batch 1 (tick: the copy-bandwidth roofline, weights read once per token)",
    "tokens/s",
    {
      field: "roofline_decode",
      label: "roofline tokens/s",
    },
  );

export const gemvBandwidth = (rows: ResultRow[]) =>
  bars(
    rows,
    "gemv_gbps",
    "Block-0 GEMV weight bandwidth (tick: the adapter's measured copy bandwidth)",
    "GB/s",
    {
      field: "copy_gbps",
      label: "copy GB/s",
    },
  );

export const weightMemory = (rows: ResultRow[]) =>
  bars(
    rows,
    "weight_mb",
    "Weight memory on the GPU (tick: GPU bytes the run needs as planned — weights, work, caches)",
    "MB",
    rows.some((r) => r.gpu_bytes_needed !== null)
      ? { field: "needed_mb", label: "GPU MB needed" }
      : undefined,
  );

export const quantTime = (rows: ResultRow[]) =>
  bars(rows.filter((r) => r.quant_seconds !== null), "quant_seconds", "Quantization time", "seconds");

export const FIGURES: Record<string, (rows: ResultRow[]) => TopLevelSpec> = {
  "ppl-by-bits": pplByBits,
  "ppl-vs-bpw": pareto,
  "decode-speed": decodeSpeed,
  "gemv-bandwidth": gemvBandwidth,
  "weight-memory": weightMemory,
  "quant-time": quantTime,
};
