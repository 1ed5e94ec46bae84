// A quantized linear layer on the GPU: the record's codes in the run-time layout, read by the
// dequant-fused qmatmul kernels. The same Linear interface as the FP layer, so models swap them.

import type { Gpu } from "../gpu/device.ts";
import type { Batch } from "../gpu/kernel.ts";
import { type Tensor, upload } from "../gpu/tensor.ts";
import { gatherCols } from "../kernels/gather_cols.ts";
import {
  type PackedWeight,
  type QGemmVariant,
  type QGemvVariant,
  qmatmul,
  stripMajor,
  stripMajorFits,
  toStrips,
  wordsPerThread,
} from "../kernels/qmatmul.ts";
import type { Linear } from "../model/linear.ts";
import type { QuantRecord } from "./record.ts";
import { toRuntimeLayout } from "./runtime_layout.ts";

export class QuantLinear implements Linear {
  readonly inFeatures: number;
  readonly outFeatures: number;
  private constructor(
    readonly name: string,
    readonly packed: PackedWeight,
    private perm: Tensor | null,
    readonly record: QuantRecord,
  ) {
    this.inFeatures = packed.K;
    this.outFeatures = packed.N;
  }

  /** `opts.stripMajor` / `opts.codebookTexture` override the adapter's default word order and
   * codebook binding (tests run both). */
  static fromRecord(
    gpu: Gpu,
    r: QuantRecord,
    opts: { stripMajor?: boolean; codebookTexture?: boolean } = {},
  ): QuantLinear {
    const L = toRuntimeLayout(r);
    const strips = opts.stripMajor ?? (stripMajor(gpu.isFallback) && stripMajorFits(gpu, L));
    const words = strips ? toStrips(L.words, L.K, L.W, wordsPerThread(L.bits)) : L.words;
    const cbTex = !!L.codebook && (opts.codebookTexture ?? gpu.isFallback);
    const packed: PackedWeight = {
      bits: L.bits,
      per: L.per,
      W: L.W,
      K: L.K,
      N: L.N,
      G: L.G,
      groupSize: L.groupSize,
      words: upload(gpu, words, [L.K, L.W], `${r.name}.qwords`),
      stripMajor: strips,
      scale: upload(gpu, L.scale, [L.G, L.W * L.per], `${r.name}.qscale`),
      shift: L.codebook ? null : upload(gpu, L.shift, [L.G, L.W * L.per], `${r.name}.qshift`),
      codebook: L.codebook ? upload(gpu, L.codebook, [L.codebook.length], `${r.name}.codebook`) : null,
      codebookTex: cbTex ? codebookTexture(gpu, L.codebook!) : null,
      codebookQuadTex: cbTex && L.bits === 4 ? codebookTexture(gpu, L.codebook!, true) : null,
      codebookValues: cbTex ? Float32Array.from(L.codebook!) : null,
      bias: r.bias ? upload(gpu, Float32Array.from(r.bias), [r.bias.length], `${r.name}.bias`) : null,
    };
    const perm = L.perm ? upload(gpu, L.perm, [L.K], `${r.name}.perm`) : null;
    return new QuantLinear(r.name, packed, perm, r);
  }

  /** `gemm` / `gemv` force a variant (tests check each); by default chosen per adapter and shape. */
  forward(b: Batch, x: Tensor, gemm?: QGemmVariant, gemv?: QGemvVariant): Tensor {
    if (!this.perm) return qmatmul(b, x, this.packed, { gemm, gemv });
    const xp = gatherCols(b, x, this.perm);
    const y = qmatmul(b, xp, this.packed, { gemm, gemv });
    xp.release();
    return y;
  }

  bytes(): number {
    const p = this.packed;
    return [p.words, p.scale, p.shift, p.codebook, p.bias, this.perm].reduce(
      (n, t) => n + (t?.byteLength ?? 0),
      0,
    );
  }

  tensors(): Tensor[] {
    const p = this.packed;
    return [p.words, p.scale, p.shift, p.codebook, p.bias, this.perm].filter((t): t is Tensor => t !== null);
  }

  release(): void {
    for (const t of this.tensors()) t.release();
    this.packed.codebookTex = null; // its texture is shared by every layer with the same table
    this.packed.codebookQuadTex = null;
  }
}

/** One 2^bits × 1 r32float texture per distinct codebook (NF4 and FP4 tables): 64 bytes each, kept
 * for the device's life, shared by every layer (so streaming a block never touches it). With
 * `quads` (4-bit tables): the 65536 values of 16 bits as a 256 × 256 rgba32float texture, texel
 * (v & 255, v >> 8) = (cb[v & 15], cb[v >> 4 & 15], cb[v >> 8 & 15], cb[v >> 12]), 1 MiB. */
const cbTextures = new WeakMap<GPUDevice, Map<string, GPUTextureView>>();
function codebookTexture(gpu: Gpu, cb: Float32Array<ArrayBuffer>, quads = false): GPUTextureView {
  let byTable = cbTextures.get(gpu.device);
  if (!byTable) cbTextures.set(gpu.device, byTable = new Map());
  const key = `${quads ? "quads " : ""}${Array.from(cb).join(",")}`;
  let view = byTable.get(key);
  if (!view) {
    const data = quads ? new Float32Array(4 * 65536) : cb;
    if (quads) {
      for (let v = 0; v < 65536; v++) for (let j = 0; j < 4; j++) data[4 * v + j] = cb[(v >> (4 * j)) & 15];
    }
    const [width, height] = quads ? [256, 256] : [cb.length, 1];
    const tex = gpu.device.createTexture({
      size: [width, height],
      format: quads ? "rgba32float" : "r32float",
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
      label: quads ? "codebook quads" : "codebook",
    });
    gpu.device.queue.writeTexture({ texture: tex }, data, { bytesPerRow: width * (quads ? 16 : 4) }, [
      width,
      height,
    ]);
    byTable.set(key, view = tex.createView());
  }
  return view;
}
