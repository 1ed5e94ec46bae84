// Buffer pool: reuses freed GPU buffers of the same size and usage, and counts bytes.
//
// `inUse` is what live tensors hold; `peak` is its high-water mark since the last `resetPeak()`;
// `reserved` adds the freed buffers kept for reuse. The memory tables read these figures, so
// every storage allocation in lib goes through here.
//
// Reuse and ordering: a tensor may be released as soon as its last use is *encoded*; kernels
// encoded later in the same batch may reuse its buffer, because dispatches run in order. But a
// host write (queue.writeBuffer) runs at once on the queue, ahead of the batch still being
// encoded, so a buffer for an upload is only taken from those released before the last submit
// (tracked by `epoch`, bumped at every submit).

export interface PoolStats {
  inUse: number;
  peak: number;
  reserved: number;
  /** High-water mark of inUse + reserved: what the device really held for us. */
  peakHeld: number;
  buffers: number;
  budget: number | null;
}

/** A GPU allocation that the --gpu-memory budget does not allow. */
export class BudgetError extends Error {}

export class BufferPool {
  #free = new Map<string, { buf: GPUBuffer; epoch: number }[]>();
  #epoch = 0;
  #inUse = 0;
  #peak = 0;
  #reserved = 0;
  #peakHeld = 0;
  #count = 0;
  #textureBytes = new Map<GPUTexture, number>();
  #retired: GPUTexture[] = [];
  /**
   * Bytes the run may hold on the device (--gpu-memory), or null. Over it, cached free buffers
   * are destroyed first; an allocation live tensors alone would push over it is refused.
   */
  budget: number | null = null;

  constructor(private device: GPUDevice, private maxBufferSize: number) {}

  /** `hostWrite`: the caller will writeBuffer into it before the next submit. */
  acquire(byteLength: number, usage: number, label: string, hostWrite = false): GPUBuffer {
    // WebGPU wants sizes in multiples of 4; round to 16 so vec4 views are always in bounds.
    const size = Math.max(16, Math.ceil(byteLength / 16) * 16);
    if (size > this.maxBufferSize) {
      throw new Error(
        `buffer ${label}: ${size} bytes exceeds the adapter's maxBufferSize ${this.maxBufferSize}`,
      );
    }
    const key = `${size}:${usage}`;
    const list = this.#free.get(key);
    let buf: GPUBuffer | undefined;
    if (list?.length) {
      const i = hostWrite ? list.findIndex((f) => f.epoch < this.#epoch) : list.length - 1;
      if (i >= 0) buf = list.splice(i, 1)[0].buf;
    }
    if (buf) {
      this.#reserved -= size;
    } else {
      if (this.budget !== null && this.#inUse + this.#reserved + size > this.budget) this.#trimSubmitted();
      if (this.budget !== null && this.#inUse + size > this.budget) {
        throw new BudgetError(
          `buffer ${label}: ${size} bytes on top of ${this.#inUse} in use exceeds the GPU memory budget of ${this.budget} bytes (--gpu-memory)`,
        );
      }
      buf = this.device.createBuffer({ size, usage, label });
      this.#count++;
    }
    this.#inUse += size;
    if (this.#inUse > this.#peak) this.#peak = this.#inUse;
    if (this.#inUse + this.#reserved > this.#peakHeld) this.#peakHeld = this.#inUse + this.#reserved;
    return buf;
  }

  release(buf: GPUBuffer): void {
    const key = `${buf.size}:${buf.usage}`;
    this.#inUse -= buf.size;
    this.#reserved += buf.size;
    const list = this.#free.get(key);
    const entry = { buf, epoch: this.#epoch };
    if (list) list.push(entry);
    else this.#free.set(key, [entry]);
  }

  /** Called after every queue.submit: buffers released before it are safe for host writes. */
  submitted(): void {
    this.#epoch++;
    // Textures released before this submit may have been named by it: destroying them now is safe
    // (WebGPU frees them once the queued work is done).
    for (const t of this.#retired.splice(0)) t.destroy();
  }

  /**
   * A texture counted like a buffer (a weight laid out for the CPU adapter's texture kernels, kept
   * as long as its tensor): the budget applies and `inUse`/`peak` include it.
   */
  acquireTexture(desc: GPUTextureDescriptor, byteLength: number): GPUTexture {
    if (this.budget !== null && this.#inUse + this.#reserved + byteLength > this.budget) {
      this.#trimSubmitted();
    }
    if (this.budget !== null && this.#inUse + byteLength > this.budget) {
      throw new BudgetError(
        `texture ${
          desc.label ?? ""
        }: ${byteLength} bytes on top of ${this.#inUse} in use exceeds the GPU memory budget of ${this.budget} bytes (--gpu-memory)`,
      );
    }
    const tex = this.device.createTexture(desc);
    this.#textureBytes.set(tex, byteLength);
    this.#inUse += byteLength;
    if (this.#inUse > this.#peak) this.#peak = this.#inUse;
    if (this.#inUse + this.#reserved > this.#peakHeld) this.#peakHeld = this.#inUse + this.#reserved;
    return tex;
  }

  /** Give a texture back: uncounted now, destroyed after the next submit (work encoded so far may read it). */
  releaseTexture(tex: GPUTexture): void {
    this.#inUse -= this.#textureBytes.get(tex) ?? 0;
    this.#textureBytes.delete(tex);
    this.#retired.push(tex);
  }

  /** Destroy the free buffers released before the last submit (no unsubmitted work names them). */
  #trimSubmitted(): void {
    for (const [key, list] of this.#free) {
      const keep = list.filter((f) => f.epoch >= this.#epoch);
      for (const f of list) {
        if (f.epoch < this.#epoch) {
          f.buf.destroy();
          this.#reserved -= f.buf.size;
          this.#count--;
        }
      }
      if (keep.length) this.#free.set(key, keep);
      else this.#free.delete(key);
    }
  }

  /** Destroy every cached free buffer (returns the device memory to the driver). */
  trim(): void {
    for (const list of this.#free.values()) for (const f of list) f.buf.destroy();
    this.#count -= [...this.#free.values()].reduce((n, l) => n + l.length, 0);
    this.#free.clear();
    this.#reserved = 0;
  }

  resetPeak(): void {
    this.#peak = this.#inUse;
    this.#peakHeld = this.#inUse + this.#reserved;
  }

  stats(): PoolStats {
    return {
      inUse: this.#inUse,
      peak: this.#peak,
      reserved: this.#reserved,
      peakHeld: this.#peakHeld,
      buffers: this.#count,
      budget: this.budget,
    };
  }
}
