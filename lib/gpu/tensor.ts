// GPU tensors: one storage buffer from the pool, a shape, a dtype. Plus upload, readback and
// the row-window split that lets a tensor larger than one storage binding be used by kernels.

import { type Gpu, GpuError } from "./device.ts";

// f16 and bf16 hold 2-byte values packed in pairs (bound as u32 words and expanded to f32 in the
// shader, so every adapter reads them — shader-f16 is not needed): FP weights keep the
// checkpoint's dtype on the GPU.
export type DType = "f32" | "f16" | "bf16" | "u32" | "i32";
export const BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, u32: 4, i32: 4 };

const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export class Tensor {
  #released = false;
  #buffer: GPUBuffer | null;
  /** The contents in host memory while offloaded (and kept after a reload, until they change). */
  #host: Uint8Array<ArrayBuffer> | null = null;
  /** Textures made from this tensor's bytes (`Batch.keptTexture`) by layout key, dropped with its buffer. */
  #textures = new Map<string, { tex: GPUTexture; view: GPUTextureView }>();
  /** Where unchanged contents can be read again (a checkpoint tensor, by offset): no host copy needed. */
  #source: (() => Promise<Bytes>) | null = null;
  constructor(
    readonly gpu: Gpu,
    buffer: GPUBuffer | null,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly label: string,
  ) {
    this.#buffer = buffer;
  }

  /** A tensor whose contents start in host memory (a streamed block's weight): no GPU memory yet. */
  static onHost(gpu: Gpu, data: Bytes, shape: readonly number[], dtype: DType, label: string): Tensor {
    const t = new Tensor(gpu, null, shape, dtype, label);
    if (data.byteLength !== t.byteLength) {
      throw new GpuError(
        `tensor ${label}: ${data.byteLength} bytes do not fill [${shape.join(", ")}] ${dtype}`,
      );
    }
    t.#host = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return t;
  }

  /**
   * A tensor held neither on the GPU nor in host memory: `fetch` reads its bytes (from the
   * checkpoint) each time it is reloaded, so a streamed FP model costs host memory per block only.
   */
  static fromSource(
    gpu: Gpu,
    shape: readonly number[],
    dtype: DType,
    label: string,
    fetch: () => Promise<Bytes>,
  ): Tensor {
    const t = new Tensor(gpu, null, shape, dtype, label);
    t.#source = fetch;
    return t;
  }

  get buffer(): GPUBuffer {
    if (!this.#buffer) {
      throw new GpuError(`tensor ${this.label} is offloaded to host memory (its block is not on the GPU)`);
    }
    return this.#buffer;
  }
  /** Bytes of the host copy this tensor keeps (0 when its source is the checkpoint). */
  get hostBytes(): number {
    return this.#host?.byteLength ?? 0;
  }
  /** Whether the contents also live elsewhere (a host copy or the checkpoint): a streamed block's. */
  get streamed(): boolean {
    return this.#host !== null || this.#source !== null;
  }
  /** Whether the contents are on the GPU now. */
  get resident(): boolean {
    return this.#buffer !== null;
  }
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get byteLength(): number {
    return this.numel * BYTES[this.dtype];
  }
  /**
   * Give the GPU buffer back to the pool, keeping the contents where they can be had again.
   * `changed`: a kernel may have written the tensor since it came in, so it is read back into
   * host memory (and its source forgotten); otherwise the host copy or the source kept from
   * before serves (weights during evaluation never change).
   */
  async offload(changed = true): Promise<void> {
    if (this.#released || !this.#buffer) return;
    if (changed || (!this.#host && !this.#source)) {
      const d = await read(this);
      this.#host = new Uint8Array(d.buffer as ArrayBuffer, d.byteOffset, d.byteLength);
      this.#source = null;
    }
    this.gpu.pool.release(this.#buffer);
    this.#buffer = null;
    this.#dropTextures();
  }

  /** A texture kept with this tensor under `key` (its bytes in a texture layout), if made. */
  keptTexture(key: string): GPUTextureView | undefined {
    return this.#textures.get(key)?.view;
  }
  /** Keep `tex` (made from this tensor's current bytes) until the buffer goes: offload or release. */
  keepTexture(key: string, tex: GPUTexture): GPUTextureView {
    const view = tex.createView();
    this.#textures.set(key, { tex, view });
    return view;
  }
  #dropTextures(): void {
    for (const { tex } of this.#textures.values()) this.gpu.pool.releaseTexture(tex);
    this.#textures.clear();
  }
  /** Upload the host copy, or the source's bytes, into a fresh buffer (a no-op when resident). */
  async reload(): Promise<void> {
    if (this.#released || this.#buffer) return;
    const data = this.#host ?? await this.#source!();
    if (data.byteLength !== this.byteLength) {
      throw new GpuError(
        `tensor ${this.label}: its source gave ${data.byteLength} bytes, expected ${this.byteLength}`,
      );
    }
    if (this.#buffer || this.#released) return; // a concurrent reload won
    const buf = this.gpu.pool.acquire(this.byteLength, STORAGE, this.label, true);
    if (data.byteLength) writeInChunks(this.gpu, buf, data);
    this.#buffer = buf;
  }
  /** Return the buffer to the pool (and drop a host copy). The tensor must not be used afterwards. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    // The buffer reference stays (as before offloading existed): the pool owns it now.
    if (this.#buffer) this.gpu.pool.release(this.#buffer);
    this.#dropTextures();
    this.#host = null;
    this.#source = null;
  }
  get released(): boolean {
    return this.#released;
  }
}

/**
 * An uninitialised tensor (contents are whatever the pooled buffer held). `hostWrite` asks for a
 * buffer no encoded-but-unsubmitted kernel still uses (see pool.ts).
 */
export function empty(
  gpu: Gpu,
  shape: readonly number[],
  dtype: DType = "f32",
  label = "tensor",
  hostWrite = false,
): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new GpuError(`tensor ${label}: bad shape [${shape.join(", ")}]`);
  }
  const buf = gpu.pool.acquire(n * BYTES[dtype], STORAGE, label, hostWrite);
  return new Tensor(gpu, buf, shape, dtype, label);
}

type Typed =
  | Float32Array<ArrayBuffer>
  | Uint32Array<ArrayBuffer>
  | Int32Array<ArrayBuffer>
  | Uint16Array<ArrayBuffer>;
type Bytes = Typed | Uint8Array<ArrayBuffer>;

/** Upload host data. Uint16Array data is taken as raw 16-bit float bits: f16, or bf16 when `half` says so. */
export function upload(
  gpu: Gpu,
  data: Typed,
  shape: readonly number[],
  label = "tensor",
  half: "f16" | "bf16" = "f16",
): Tensor {
  const dtype: DType = data instanceof Float32Array
    ? "f32"
    : data instanceof Uint32Array
    ? "u32"
    : data instanceof Int32Array
    ? "i32"
    : half;
  const t = empty(gpu, shape, dtype, label, true);
  if (t.numel !== data.length) {
    t.release();
    throw new GpuError(`tensor ${label}: ${data.length} values do not fill shape [${shape.join(", ")}]`);
  }
  writeInChunks(gpu, t.buffer, data);
  return t;
}

function writeInChunks(gpu: Gpu, buf: GPUBuffer, data: Bytes): void {
  // Copy at most 64 MiB per writeBuffer so the staging copy never doubles a huge tensor.
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const step = 64 << 20;
  for (let off = 0; off < bytes.length; off += step) {
    const end = Math.min(bytes.length, off + step);
    // writeBuffer needs 4-byte multiples: pad the (odd f16) tail.
    if ((end - off) % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil((end - off) / 4) * 4);
      padded.set(bytes.subarray(off, end));
      gpu.device.queue.writeBuffer(buf, off, padded);
    } else {
      gpu.device.queue.writeBuffer(buf, off, bytes, off, end - off);
    }
  }
}

/** f16 bits → f32 (exact). */
export function f16ToF32(bits: Uint16Array): Float32Array<ArrayBuffer> {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfToFloat(bits[i]);
  return out;
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** bf16 bits → f32 (exact: bf16 is the top half of an f32). */
export function bf16ToF32(bits: Uint16Array): Float32Array<ArrayBuffer> {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i] << 16;
  return new Float32Array(out.buffer);
}

/** f32 → f16 bits, round to nearest even (for f16 weight storage on adapters with shader-f16). */
export function f32ToF16(x: Float32Array): Uint16Array<ArrayBuffer> {
  // Float16Array does the IEEE rounding for us (Deno 2.9 / V8 ships it).
  const F16 =
    (globalThis as unknown as { Float16Array: new (a: ArrayLike<number>) => { buffer: ArrayBuffer } })
      .Float16Array;
  return new Uint16Array(new F16(x).buffer);
}

/** f32 → bf16 bits, round to nearest even (NaN stays a quiet NaN), as torch's .bfloat16(). */
export function f32ToBf16(x: Float32Array): Uint16Array<ArrayBuffer> {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < u.length; i++) {
    out[i] = Number.isNaN(x[i]) ? 0x7fc0 : ((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/** Read a tensor back to the host. Waits for all submitted work (≥ ~11 ms in Deno): batch reads. */
export async function read(t: Tensor): Promise<Float32Array | Uint32Array | Int32Array | Uint16Array> {
  const { gpu } = t;
  if (gpu.lost) throw new GpuError(`readback of ${t.label}: GPU device lost (${gpu.lost})`);
  const size = Math.ceil(t.byteLength / 4) * 4;
  const staging = gpu.device.createBuffer({
    size: Math.max(size, 4),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    label: `readback ${t.label}`,
  });
  const enc = gpu.device.createCommandEncoder();
  if (size > 0) enc.copyBufferToBuffer(t.buffer, 0, staging, 0, size);
  gpu.device.queue.submit([enc.finish()]);
  gpu.pool.submitted();
  const lost = gpu.lostPromise.then((why) => {
    throw new GpuError(`readback of ${t.label} [${t.shape.join(", ")}]: GPU device lost (${why})`);
  });
  try {
    await Promise.race([staging.mapAsync(GPUMapMode.READ), lost]);
  } catch (e) {
    if (e instanceof GpuError) throw e;
    throw new GpuError(`readback of ${t.label} [${t.shape.join(", ")}] failed: ${(e as Error).message}`);
  }
  const bytes = staging.getMappedRange().slice(0, t.byteLength);
  staging.unmap();
  staging.destroy();
  switch (t.dtype) {
    case "f32":
      return new Float32Array(bytes);
    case "u32":
      return new Uint32Array(bytes);
    case "i32":
      return new Int32Array(bytes);
    case "f16":
    case "bf16":
      return new Uint16Array(bytes);
  }
}

export async function readF32(t: Tensor): Promise<Float32Array> {
  const d = await read(t);
  if (d instanceof Float32Array) return d;
  if (d instanceof Uint16Array) return t.dtype === "bf16" ? bf16ToF32(d) : f16ToF32(d);
  throw new GpuError(`readF32: tensor ${t.label} is ${t.dtype}`);
}

/** A contiguous run of rows of row-major tensors that fits one storage binding. */
export interface RowWindow {
  row0: number;
  rows: number;
}

/**
 * Split `rows` rows into windows such that, for every tensor sharing those rows (row sizes in
 * `rowBytes`), a window is at most `maxBinding` bytes and starts at a multiple of `align`.
 * This is how a tensor larger than the adapter's binding limit (a 32000×4096 f32 embedding is
 * 500 MiB; llvmpipe binds 128 MiB) is used: one dispatch per window, never a rejection.
 */
export function rowWindows(rows: number, rowBytes: number[], maxBinding: number, align: number): RowWindow[] {
  const widest = Math.max(...rowBytes);
  if (widest > maxBinding) {
    throw new GpuError(`one row of ${widest} bytes exceeds the adapter's max storage binding ${maxBinding}`);
  }
  // All rows in one binding need no aligned starts (rows of 2068 bytes would otherwise ask for
  // 64-row steps even when every tensor fits).
  if (rows * widest <= maxBinding) return [{ row0: 0, rows }];
  // Rows per window must keep every window start aligned for every tensor.
  const step = rowBytes.map((b) => align / gcd(b, align)).reduce((a, b) => (a * b) / gcd(a, b), 1);
  let per = Math.floor(maxBinding / widest);
  per -= per % step;
  if (per < 1) {
    throw new GpuError(
      `cannot split rows of ${widest} bytes into ${align}-aligned windows under ${maxBinding} bytes`,
    );
  }
  if (rows <= per) return [{ row0: 0, rows }];
  const out: RowWindow[] = [];
  for (let r = 0; r < rows; r += per) out.push({ row0: r, rows: Math.min(per, rows - r) });
  return out;
}

/** The binding for rows [w.row0, w.row0 + w.rows) of a row-major tensor with `rowElems` per row. */
export function windowBinding(t: Tensor, w: RowWindow, rowElems: number) {
  const rowBytes = rowElems * BYTES[t.dtype];
  const offset = w.row0 * rowBytes;
  // Storage bindings are sized in 4-byte words; the pool rounds buffers up to 16 bytes, so the
  // rounded size stays inside the buffer.
  const size = Math.max(4, Math.ceil((w.rows * rowBytes) / 4) * 4);
  return { buffer: t.buffer, offset, size: Math.min(size, t.buffer.size - offset) };
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
