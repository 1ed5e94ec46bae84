// Kernel variants chosen by measurement (lib/bench/tune.ts fills this table; the launchers read
// it before their per-adapter rule). Keyed per device, then by op and shape: the same GEMM at
// prefill (M ≥ 16 rows) and at a few rows may want different variants.

import type { Gpu } from "../gpu/device.ts";

const tables = new WeakMap<GPUDevice, Map<string, string>>();

/** The shape key of a GEMM: op, row regime (one row is a GEMV), N, K and the weight's format. */
export function gemmKey(op: "matmul" | "qgemm", M: number, N: number, K: number, format: string): string {
  return `${op} ${M === 1 ? "gemv" : M >= 16 ? "prefill" : "rows<16"} N=${N} K=${K} ${format}`;
}

/** The measured variant for `key` on this device, if a sweep chose one. */
export function chosen(gpu: Gpu, key: string): string | undefined {
  return tables.get(gpu.device)?.get(key);
}

export function choose(gpu: Gpu, key: string, variant: string): void {
  let t = tables.get(gpu.device);
  if (!t) tables.set(gpu.device, t = new Map());
  t.set(key, variant);
}

/** Forget every measured choice (back to the per-adapter rules). */
export function clearChoices(gpu: Gpu): void {
  tables.delete(gpu.device);
}
