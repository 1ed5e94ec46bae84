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
