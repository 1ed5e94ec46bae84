// The benchmark matrix: cells (model × setting, each evaluated on every dataset), their stable
// keys (what --resume and `bench merge` match rows by) and the deterministic split into shards.

import { createHash } from "node:crypto";
import { type Setting, uniformSettings } from "../methods/contract.ts";
import { getMethod } from "../methods/registry.ts";
import { benchFlags, type BenchOptions } from "./options.ts";

export interface Cell {
  /** Position in the whole (unsharded) matrix. */
  index: number;
  model: string;
  setting: Setting;
}

/** One setting per method × bits × group size (each method's own default group size; nf4/fp4: × double quant). */
export function settings(o: BenchOptions): Setting[] {
  return o.methods.flatMap((name) => {
    const m = getMethod(name);
    return m.settings ? m.settings(o) : uniformSettings(m, o);
  });
}

/** Models outermost (one download and tokenization each), settings in the order given. */
export function matrix(o: BenchOptions): Cell[] {
  const ss = settings(o);
  return o.model.flatMap((model, m) =>
    ss.map((setting, s) => ({ index: m * ss.length + s, model, setting }))
  );
}

/** Shard i of n takes cells i, i + n, i + 2n, ...: every cell in exactly one shard, each shard a mix. */
export function shardCells(cells: Cell[], shard: { index: number; count: number }): Cell[] {
  return cells.filter((c) => c.index % shard.count === shard.index);
}

/** The --list text: every cell with its index and shard, and the shard's size. */
export function listMatrix(o: BenchOptions): string {
  const all = matrix(o), mine = new Set(shardCells(all, o.shard).map((c) => c.index));
  const defaults = benchFlags().parse({ model: ["x"] }) as Record<string, unknown>;
  const lines = all.map((c) =>
    `${mine.has(c.index) ? "*" : " "} ${String(c.index).padStart(4)}  shard ${
      c.index % o.shard.count
    }/${o.shard.count}  ` +
    `${c.model}  ${settingLabel(c.setting)}${protocolLabel(c.setting, o, defaults)}`
  );
  const calibrated = o.methods.some((m) => getMethod(m).calibrated);
  return [
    `${all.length} cells × ${o.dataset.length} datasets (${o.dataset.join(", ")})${
      o.tasks ? ` + ${o.tasks.length} tasks (${o.tasks.map((t) => t.name).join(", ")})` : ""
    }${calibrated && o.calibration ? `, calibration ${o.calibration}` : ""}${
      o.preset ? `, preset ${o.preset}` : ""
    }; ` +
    `* = in shard ${o.shard.index}/${o.shard.count} (${mine.size} cells)`,
    ...lines,
  ].join("\n");
}

/** "  [act-order, static-groups]": a cell's protocol flags that differ from the defaults. */
function protocolLabel(s: Setting, o: BenchOptions, defaults: Record<string, unknown>): string {
  const m = getMethod(s.method);
  const set = (m.protocolFlags ?? Object.keys(m.flags)).flatMap((k) => {
    const v = (o as Record<string, unknown>)[k];
    if (v === undefined || JSON.stringify(v) === JSON.stringify(defaults[k])) return [];
    return [v === true ? k : `${k} ${v}`];
  });
  set.push(...m.protocol?.(s, o) ?? []);
  return set.length ? `  [${set.join(", ")}]` : "";
}

export function settingLabel(s: Setting): string {
  if (getMethod(s.method).baseline) return s.method;
  const dq = s.doubleQuant === undefined ? "" : s.doubleQuant ? " dq" : "";
  return `${s.method} W${s.bits} ${s.groupSize === -1 ? "per-channel" : `g${s.groupSize}`}${dq}`;
}

/** Options that do not change a row's numbers: where it goes, how it is split, how it talks. */
const PLUMBING = new Set([
  "model",
  "dataset",
  "tasks",
  "limit",
  "num-fewshot",
  "methods",
  "bits",
  "group-size",
  "double-quant",
  "out",
  "quiet",
  "no-figures",
  "list",
  "preset",
  "config",
  "shard",
  "resume",
  "force",
  "export",
  "quick",
]);

/** The options a row's numbers depend on, canonically ordered (stored in the manifest, hashed in keys). */
export function rowOptions(o: BenchOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort()) {
    if (!PLUMBING.has(k)) out[k] = (o as Record<string, unknown>)[k];
  }
  return out;
}

/** A row's identity: model, dataset, setting and every option that changes its numbers. */
export function cellKey(model: string, dataset: string, s: Setting, o: BenchOptions): string {
  const id = JSON.stringify([
    model,
    dataset,
    s.method,
    s.bits,
    s.groupSize,
    s.doubleQuant ?? null,
    rowOptions(o),
  ]);
  return createHash("sha256").update(id).digest("hex").slice(0, 16);
}
