// Shared launcher plumbing: shape checks that name the kernel, flat windows for elementwise ops,
// and the dummy buffer bound where an optional input (a bias) is absent.

import { type Gpu, GpuError } from "../gpu/device.ts";
import type { Defines } from "../gpu/kernel.ts";
import { type RowWindow, rowWindows, type Tensor } from "../gpu/tensor.ts";

export function need(cond: boolean, kernel: string, what: string): asserts cond {
  if (!cond) throw new GpuError(`kernel ${kernel}: ${what}`);
}

export function shapeStr(...ts: Tensor[]): string {
  return ts.map((t) => `${t.label}[${t.shape.join("×")}]`).join(" ");
}

const dummies = new WeakMap<GPUDevice, GPUBuffer>();
/** A 16-byte f32 buffer for optional bindings the shader skips (guarded by a flag). */
export function dummy(gpu: Gpu): GPUBuffer {
  let b = dummies.get(gpu.device);
  if (!b) {
    b = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: "dummy" });
    dummies.set(gpu.device, b);
  }
  return b;
}

/** Windows over `rows` rows shared by tensors whose rows are `rowBytes` bytes. */
export function windows(gpu: Gpu, rows: number, rowBytes: number[]): RowWindow[] {
  return rowWindows(rows, rowBytes, gpu.maxBinding, gpu.offsetAlign);
}

/** Defines selecting the weight element type: f16 storage needs `enable f16;`. */
export function weightDefines(dtype: string): Defines {
  return dtype === "f16" ? { WT: "f16", F16: 1 } : { WT: "f32" };
}

/**
 * Accessors for x [.., K] (f32) and w [.., K] (f32 or f16) in matmul/GEMV: vec4 arrays when
 * K % 4 == 0 (every row starts on a vec4), scalar gathers otherwise. `o` is an element offset.
 */
export function rowAccessDefines(K: number, wdtype: string): Defines {
  const base = weightDefines(wdtype);
  const WT = base.WT;
  if (K % 4 === 0) {
    return {
      ...base,
      XT: "vec4<f32>",
      WST: `vec4<${WT}>`,
      X4: "x[o / 4u]",
      X1: "x[o / 4u][o % 4u]",
      W4: "vec4<f32>(w[o / 4u])",
      W1: "f32(w[o / 4u][o % 4u])",
    };
  }
  return {
    ...base,
    XT: "f32",
    WST: `${WT}`,
    X4: "vec4<f32>(x[o], x[o + 1u], x[o + 2u], x[o + 3u])",
    X1: "x[o]",
    W4: "vec4<f32>(f32(w[o]), f32(w[o + 1u]), f32(w[o + 2u]), f32(w[o + 3u]))",
    W1: "f32(w[o])",
  };
}

/**
 * llvmpipe ends a shader invocation after 65535 loop iterations in total (Mesa's loop limiter),
 * silently leaving wrong results. Kernels whose per-thread loops scale with an input dimension
 * check their count here; on hardware adapters there is no such cap.
 */
export const LLVMPIPE_LOOP_CAP = 65535;
export function checkLoopBudget(gpu: Gpu, kernel: string, iterations: number, what: string): void {
  if (gpu.isFallback && iterations >= LLVMPIPE_LOOP_CAP) {
    throw new GpuError(
      `kernel ${kernel}: ${what} needs ${iterations} loop iterations per thread, over the fallback adapter's cap of ${LLVMPIPE_LOOP_CAP}`,
    );
  }
}
