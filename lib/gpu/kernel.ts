// Kernels: WGSL from shaders/, a tiny preprocessor, a pipeline cache, and the Batch that
// encodes many dispatches into one submit.
//
// Deno's WebGPU waits ≥ ~11 ms for every onSubmittedWorkDone/mapAsync (it polls with a 10 ms
// sleep), so launchers never wait: they append dispatches to a Batch; the caller submits once per
// block or window and reads back once. Shader compile errors are checked asynchronously and
// reported at submit, naming the kernel and its defines.

import { assertAlive, type Gpu, GpuError } from "./device.ts";
import { Tensor } from "./tensor.ts";

export type Defines = Record<string, string | number>;

interface CacheEntry {
  pipeline: GPUComputePipeline;
  check: Promise<string | null>;
}
const cache = new WeakMap<GPUDevice, Map<string, CacheEntry>>();
const sources = new Map<string, string>();

/** The WGSL text of shaders/<name>.wgsl. */
export function shaderSource(name: string): string {
  let src = sources.get(name);
  if (src === undefined) {
    const url = new URL(`../../shaders/${name}.wgsl`, import.meta.url);
    try {
      src = Deno.readTextFileSync(url);
    } catch (e) {
      throw new GpuError(`kernel ${name}: cannot read ${url.pathname}: ${(e as Error).message}`);
    }
    sources.set(name, src);
  }
  return src;
}

/**
 * `{{include NAME}}` → the text of shaders/NAME.wgsl (helper functions several shaders share),
 * then `{{KEY}}` → defines[KEY]. A shader may start with `{{ENABLE_F16}}`, which becomes
 * `enable f16;` when defines.F16 is set. An unknown key is an error, not an empty string.
 */
export function preprocess(name: string, src: string, defines: Defines): string {
  const all: Defines = { ENABLE_F16: defines.F16 ? "enable f16;" : "", ...defines };
  const withIncludes = src.replace(/\{\{include (\w+)\}\}/g, (_, file: string) => shaderSource(file));
  return withIncludes.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in all)) throw new GpuError(`kernel ${name}: shader uses {{${key}}} but no value was given`);
    return String(all[key]);
  });
}

/** A cached compute pipeline for shaders/<name>.wgsl (or `source`, for tests) with these defines. */
export function pipeline(gpu: Gpu, name: string, entry = "main", defines: Defines = {}, source?: string) {
  let byDevice = cache.get(gpu.device);
  if (!byDevice) cache.set(gpu.device, byDevice = new Map());
  const key = `${name}|${entry}|${JSON.stringify(defines)}|${source ?? ""}`;
  let hit = byDevice.get(key);
  if (!hit) {
    const code = preprocess(name, source ?? shaderSource(name), defines);
    // Generated code blocks in defines are cut short: the kernel and its small defines name it.
    const shown = Object.fromEntries(
      Object.entries(defines).map(([k, v]) => [k, String(v).length > 40 ? `${String(v).slice(0, 40)}…` : v]),
    );
    const what = `kernel ${name}:${entry}${Object.keys(defines).length ? " " + JSON.stringify(shown) : ""}`;
    const device = gpu.device;
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code, label: name });
    const p = device.createComputePipeline({
      layout: "auto",
      compute: { module, entryPoint: entry },
      label: name,
    });
    const scope = device.popErrorScope();
    const check = (async () => {
      const info = await module.getCompilationInfo();
      const errs = info.messages.filter((m) => m.type === "error").map((m) => m.message.trim());
      const err = await scope;
      if (errs.length) return `${what} failed to compile:\n${errs.join("\n")}`;
      if (err) return `${what} failed to build its pipeline: ${err.message.trim()}`;
      return null;
    })();
    hit = { pipeline: p, check };
    byDevice.set(key, hit);
  }
  return hit;
}

export interface Timing {
  label: string;
  ms: number;
}

/** Dispatch grid for n threads in workgroups of `wg`, folded into y past the per-dimension limit. */
export function grid(gpu: Gpu, n: number, wg: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / wg));
  const max = gpu.maxWorkgroupsPerDim;
  if (groups <= max) return [groups, 1, 1];
  const y = Math.ceil(groups / max);
  if (y > max) throw new GpuError(`dispatch of ${n} threads is too large for one launch`);
  return [max, y, 1];
}

export type Binding = Tensor | { buffer: GPUBuffer; offset?: number; size?: number } | GPUTextureView;

/**
 * Every kernel (and entry point) dispatched since the last clear: result rows record which
 * variants ran (e.g. "matmul_tex", "attention_rows"), since the choice depends on adapter and shape.
 */
export const kernelsUsed = new Set<string>();

/** Many dispatches, one submit. With `timing`, each dispatch gets a timestamp-query pair. */
export class Batch {
  readonly enc: GPUCommandEncoder;
  #pass: GPUComputePassEncoder | null = null;
  #temps: (GPUBuffer | GPUTexture)[] = [];
  #checks: Promise<string | null>[] = [];
  #labels: string[] = [];
  #query: GPUQuerySet | null = null;
  #submitted = false;
  #timingsBuf: GPUBuffer | null = null;

  constructor(readonly gpu: Gpu, opts: { timing?: boolean; maxTimed?: number } = {}) {
    this.enc = gpu.device.createCommandEncoder();
    if (opts.timing) {
      if (!gpu.hasTimestamps) throw new GpuError("timing requested but the adapter has no timestamp-query");
      this.#query = gpu.device.createQuerySet({ type: "timestamp", count: 2 * (opts.maxTimed ?? 512) });
    }
  }

  /** A uniform buffer of u32 fields followed by f32 fields (the WGSL Params struct convention). */
  uniform(u32s: number[], f32s: number[] = []): GPUBuffer {
    const n = Math.max(4, Math.ceil((u32s.length + f32s.length) / 4) * 4);
    const data = new ArrayBuffer(n * 4);
    const u = new Uint32Array(data), f = new Float32Array(data);
    u32s.forEach((v, i) => {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new GpuError(`uniform field ${i}: ${v} is not a u32`);
      }
      u[i] = v;
    });
    f32s.forEach((v, i) => (f[u32s.length + i] = v));
    const buf = this.gpu.device.createBuffer({
      size: n * 4,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.gpu.device.queue.writeBuffer(buf, 0, data);
    this.#temps.push(buf);
    return buf;
  }

  /** Encode one dispatch. `bindings[i]` goes to @binding(i) of @group(0). */
  dispatch(
    kernel: { name: string; entry?: string; defines?: Defines; source?: string },
    bindings: (Binding | GPUBuffer | null)[],
    workgroups: [number, number, number],
    sizes: string,
  ): void {
    const gpu = this.gpu;
    if (this.#submitted) throw new GpuError(`kernel ${kernel.name}: batch already submitted`);
    assertAlive(gpu, kernel.name, sizes);
    const { pipeline: p, check } = pipeline(gpu, kernel.name, kernel.entry, kernel.defines, kernel.source);
    const entries: GPUBindGroupEntry[] = [];
    bindings.forEach((b, i) => {
      if (b !== null) entries.push(entry(b, i));
    });
    function entry(b: Binding | GPUBuffer, i: number): GPUBindGroupEntry {
      if (b instanceof GPUBuffer) return { binding: i, resource: { buffer: b } };
      if (b instanceof GPUTextureView) return { binding: i, resource: b };
      if (b instanceof Tensor && b.released) {
        throw new GpuError(
          `kernel ${kernel.name} (${sizes}): binding ${i} (${b.label}) was already released`,
        );
      }
      const size = b instanceof Tensor
        ? Math.max(4, Math.ceil(b.byteLength / 4) * 4)
        : b.size ?? b.buffer.size - (b.offset ?? 0);
      if (size > gpu.maxBinding) {
        throw new GpuError(
          `kernel ${kernel.name} (${sizes}): binding ${i} is ${size} bytes, over the adapter's ` +
            `max storage binding of ${gpu.maxBinding} bytes`,
        );
      }
      return {
        binding: i,
        resource: { buffer: b.buffer, offset: b instanceof Tensor ? 0 : b.offset ?? 0, size },
      };
    }
    const id = `${kernel.name}${kernel.entry && kernel.entry !== "main" ? ":" + kernel.entry : ""}`;
    kernelsUsed.add(id);
    const label = `${id} ${sizes}`;
    let pass: GPUComputePassEncoder;
    if (this.#query) {
      const i = this.#labels.length;
      if (2 * i + 2 > this.#query.count) throw new GpuError("too many timed dispatches in one batch");
      this.#endPass();
      pass = this.enc.beginComputePass({
        timestampWrites: {
          querySet: this.#query,
          beginningOfPassWriteIndex: 2 * i,
          endOfPassWriteIndex: 2 * i + 1,
        },
      });
    } else {
      pass = this.#pass ??= this.enc.beginComputePass();
    }
    this.#labels.push(label);
    // Validation errors (a bad bind group) are collected and reported at submit, naming the kernel.
    gpu.device.pushErrorScope("validation");
    const bg = gpu.device.createBindGroup({ layout: p.getBindGroupLayout(0), entries });
    const scope = gpu.device.popErrorScope();
    this.#checks.push(check.then(async (c) => {
      const e = await scope;
      return c ?? (e ? `kernel ${label}: ${e.message.trim()}` : null);
    }));
    pass.setPipeline(p);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(...workgroups);
    if (this.#query) pass.end();
  }

  copy(src: GPUBuffer, srcOff: number, dst: GPUBuffer, dstOff: number, size: number): void {
    this.#endPass();
    this.enc.copyBufferToBuffer(src, srcOff, dst, dstOff, size);
  }

  /**
   * A texture of `height` rows × `width` texels filled from `src` (rows `bytesPerRow` apart, a
   * multiple of 256), destroyed after submit. Texture reads are how the CPU adapter gathers fast.
   */
  texture(
    src: { buffer: GPUBuffer; offset: number },
    width: number,
    height: number,
    format: GPUTextureFormat,
    bytesPerRow: number,
  ): GPUTextureView {
    const tex = this.emptyTexture(width, height, format);
    this.copyToTexture(src, tex, 0, width, height, bytesPerRow);
    return tex.createView();
  }

  /**
   * `t`'s bytes as a texture kept with `t` (made and filled in this batch the first time, reused by
   * later batches until t's buffer is offloaded or released): a weight laid out once for the
   * texture kernels instead of copied per call. Only for tensors whose contents never change.
   * A streamed tensor (its block comes and goes) gets a per-batch copy instead: a kept texture
   * would hold a second copy of every block the budget has already let go.
   */
  keptTexture(
    t: Tensor,
    width: number,
    height: number,
    format: GPUTextureFormat,
    bytesPerRow: number,
  ): GPUTextureView {
    if (t.streamed) return this.texture({ buffer: t.buffer, offset: 0 }, width, height, format, bytesPerRow);
    const key = `${width}x${height} ${format} ${bytesPerRow}`;
    const have = t.keptTexture(key);
    if (have) return have;
    const tex = this.gpu.pool.acquireTexture({
      size: [width, height],
      format,
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
      label: `${t.label} (texture)`,
    }, height * bytesPerRow);
    this.copyToTexture({ buffer: t.buffer, offset: 0 }, tex, 0, width, height, bytesPerRow);
    return t.keepTexture(key, tex);
  }

  /** An uninitialised texture, destroyed after submit; fill it with copyToTexture. */
  emptyTexture(width: number, height: number, format: GPUTextureFormat): GPUTexture {
    const tex = this.gpu.device.createTexture({
      size: [width, height],
      format,
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    });
    this.#temps.push(tex);
    return tex;
  }

  /** Copy `rows` rows from `src` into texture rows [y0, y0 + rows); ordered with the dispatches. */
  copyToTexture(
    src: { buffer: GPUBuffer; offset: number },
    tex: GPUTexture,
    y0: number,
    width: number,
    rows: number,
    bytesPerRow: number,
  ): void {
    this.#endPass();
    this.enc.copyBufferToTexture(
      { buffer: src.buffer, offset: src.offset, bytesPerRow, rowsPerImage: rows },
      { texture: tex, origin: [0, y0] },
      [width, rows],
    );
  }

  #endPass() {
    if (this.#pass) this.#pass.end();
    this.#pass = null;
  }

  /** Check shader compilation, then submit. Does not wait for the GPU. */
  async submit(): Promise<void> {
    if (this.#submitted) throw new GpuError("batch submitted twice");
    this.#submitted = true;
    this.#endPass();
    for (const msg of await Promise.all(this.#checks)) if (msg) throw new GpuError(msg);
    if (this.#query) {
      const n = this.#labels.length;
      const resolve = this.gpu.device.createBuffer({
        size: Math.max(16, 16 * n),
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
      this.#timingsBuf = this.gpu.device.createBuffer({
        size: Math.max(16, 16 * n),
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      if (n) {
        this.enc.resolveQuerySet(this.#query, 0, 2 * n, resolve, 0);
        this.enc.copyBufferToBuffer(resolve, 0, this.#timingsBuf, 0, 16 * n);
      }
      this.#temps.push(resolve);
    }
    this.gpu.device.pushErrorScope("validation");
    this.gpu.device.queue.submit([this.enc.finish()]);
    this.gpu.pool.submitted();
    // Destroying after submit is safe: WebGPU frees them once the queued work is done.
    for (const b of this.#temps) b.destroy();
    const err = await this.gpu.device.popErrorScope();
    if (err) {
      const kernels = [...new Set(this.#labels)].slice(0, 8).join("; ");
      throw new GpuError(
        `WebGPU rejected a batch of ${this.#labels.length} dispatches (${kernels}): ${err.message}`,
      );
    }
  }

  /** Wait until the GPU finished this batch (and everything before it). Never hangs on device loss. */
  async done(): Promise<void> {
    if (!this.#submitted) await this.submit();
    const lost = this.gpu.lostPromise.then((why) => {
      throw new GpuError(`waiting for ${this.#labels.at(-1) ?? "batch"}: GPU device lost (${why})`);
    });
    await Promise.race([this.gpu.device.queue.onSubmittedWorkDone(), lost]);
  }

  /** Per-dispatch GPU time from timestamp queries (batch created with `timing: true`). */
  async timings(): Promise<Timing[]> {
    if (!this.#timingsBuf) {
      throw new GpuError("timings(): batch was not created with timing, or not submitted");
    }
    await this.#timingsBuf.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(this.#timingsBuf.getMappedRange().slice(0));
    this.#timingsBuf.unmap();
    return this.#labels.map((label, i) => ({ label, ms: Number(t[2 * i + 1] - t[2 * i]) / 1e6 }));
  }
}
