// WebGPU adapter and device acquisition: one device per process, shared by every kernel.
//
// We prefer a hardware adapter, accept the fallback (llvmpipe on CI machines) and always say
// which one ran: every result row carries `adapterName()`. We ask for the adapter's largest
// storage-binding and buffer limits so big layers fit in as few bindings as possible, and for
// `shader-f16` / `timestamp-query` where the adapter offers them.

import { BufferPool } from "./pool.ts";

export class GpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GpuError";
  }
}

export interface Gpu {
  adapter: GPUAdapter;
  device: GPUDevice;
  /** "llvmpipe (LLVM 15.0.6, 256 bits) [fallback]" — what ran, for provenance. */
  name: string;
  isFallback: boolean;
  hasF16: boolean;
  hasTimestamps: boolean;
  /** Largest byte size of one storage binding. Tests may lower it to exercise splitting. */
  maxBinding: number;
  maxBufferSize: number;
  /** Storage-buffer offsets must be a multiple of this (bytes). */
  offsetAlign: number;
  maxWorkgroupsPerDim: number;
  /** Largest width and height of a 2D texture (the texture-read matmul variant's row windows). */
  maxTexture2D: number;
  /** Set once the device is lost; every later launch throws with this reason. */
  lost: string | null;
  /** Resolves when the device is lost; readbacks race against it so they never hang. */
  lostPromise: Promise<string>;
  /** Every storage buffer comes from here, so bytes in use and peak bytes are known. */
  pool: BufferPool;
}

let current: Promise<Gpu> | null = null;
let currentGpu: Gpu | null = null;

/**
 * The shared GPU. The first call picks the adapter; later calls return the same device, or a
 * new one if the old device was lost.
 */
export function getGpu(): Promise<Gpu> {
  if (!current || currentGpu?.lost) {
    current = createGpu();
    current.then((g) => (currentGpu = g), () => (current = null));
  }
  return current;
}

/** A device of its own (not the shared one): for tests that destroy it on purpose. */
export async function createGpu(): Promise<Gpu> {
  if (!("gpu" in navigator) || !navigator.gpu) {
    throw new GpuError("WebGPU is not available in this runtime (navigator.gpu is missing)");
  }
  const hw = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  let adapter = hw;
  if (!adapter || adapterIsFallback(adapter)) {
    // No hardware adapter: take whatever is there (a CPU rasteriser such as llvmpipe).
    adapter = (await navigator.gpu.requestAdapter({ forceFallbackAdapter: true })) ?? hw;
  }
  if (!adapter) {
    throw new GpuError(
      "no WebGPU adapter found: install a Vulkan or GL driver (on Debian: mesa-vulkan-drivers libvulkan1)",
    );
  }
  const isFallback = adapterIsFallback(adapter);
  if (Deno.env.get("QUANTLAB_REQUIRE_HW_GPU") === "1" && isFallback) {
    throw new GpuError(`QUANTLAB_REQUIRE_HW_GPU=1 but the only adapter is a fallback: ${describe(adapter)}`);
  }
  const features: GPUFeatureName[] = [];
  const hasF16 = adapter.features.has("shader-f16") && Deno.env.get("QUANTLAB_NO_F16") !== "1";
  const hasTimestamps = adapter.features.has("timestamp-query");
  if (hasF16) features.push("shader-f16");
  if (hasTimestamps) features.push("timestamp-query");
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
      maxTextureDimension2D: l.maxTextureDimension2D,
    },
  });
  const gpu: Gpu = {
    adapter,
    device,
    name: describe(adapter),
    isFallback,
    hasF16,
    hasTimestamps,
    maxBinding: Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize),
    maxBufferSize: device.limits.maxBufferSize,
    offsetAlign: device.limits.minStorageBufferOffsetAlignment,
    maxWorkgroupsPerDim: device.limits.maxComputeWorkgroupsPerDimension,
    maxTexture2D: device.limits.maxTextureDimension2D,
    lost: null,
    lostPromise: Promise.resolve(""),
    pool: new BufferPool(device, device.limits.maxBufferSize),
  };
  gpu.lostPromise = device.lost.then((info) => {
    gpu.lost = `${info.reason ?? "unknown"}: ${info.message || "no message"}`;
    return gpu.lost;
  });
  device.addEventListener("uncapturederror", (ev) => {
    // Validation errors outside an error scope: surface them rather than computing garbage.
    console.error(`WebGPU error: ${(ev as GPUUncapturedErrorEvent).error.message}`);
  });
  return gpu;
}

function adapterIsFallback(a: GPUAdapter): boolean {
  // Deno exposes the flag on adapter.info (newer spec); older builds on the adapter itself.
  const info = a.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return Boolean(
    info.isFallbackAdapter ?? (a as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter,
  );
}

function describe(a: GPUAdapter): string {
  const i = a.info;
  const what = i.description || [i.vendor, i.architecture, i.device].filter(Boolean).join(" ") ||
    "unknown adapter";
  return `${what}${adapterIsFallback(a) ? " [fallback]" : ""}`;
}

/** Throws a clear error if the device is gone; called by every launcher before it encodes. */
export function assertAlive(gpu: Gpu, kernel: string, sizes: string): void {
  if (gpu.lost) throw new GpuError(`kernel ${kernel} (${sizes}): GPU device lost (${gpu.lost})`);
}
