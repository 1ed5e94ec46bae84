// LLM.int8() (Dettmers et al., 2022), as bitsandbytes' Linear8bitLt runs it: the weight in int8
// with one absmax per output row (SCB, "row" format); at run time activations in int8 per token,
// except input columns holding any |x| ≥ threshold (6.0 in the paper and transformers; 0 turns
// the decomposition off), which go through an FP product with the dequantized weight columns
// (shaders/int8_matmul.wgsl). Calibration-free.

import type { Gpu } from "../gpu/device.ts";
import { Batch } from "../gpu/kernel.ts";
import { read, readF32, type Tensor, upload } from "../gpu/tensor.ts";
import { int8Matmul, type Int8Weight } from "../kernels/int8_matmul.ts";
import type { Linear } from "../model/linear.ts";
import type { CausalLM } from "../model/model.ts";
import type { QuantRecord } from "./record.ts";
import type { QuantizeResult } from "./rtn.ts";
import { quantTargets, visitTargets } from "./targets.ts";
import { roundHalfEven } from "./uniform.ts";

const f = Math.fround;

/** Row-wise int8 of W [out, in]: CB = round(W · (127 / SCB)), SCB = max |W| of the row. */
export function quantizeInt8Rows(w: Float32Array, out: number, inp: number) {
  const cb = new Int8Array(out * inp), scb = new Float32Array(out);
  for (let n = 0; n < out; n++) {
    let m = 0;
    for (let k = 0; k < inp; k++) m = Math.max(m, Math.abs(w[n * inp + k]));
    scb[n] = m;
    const s = m > 0 ? f(127 / m) : 0;
    for (let k = 0; k < inp; k++) cb[n * inp + k] = roundHalfEven(f(w[n * inp + k] * s));
  }
  return { cb, scb };
}

export class Int8Linear implements Linear {
  readonly inFeatures: number;
  readonly outFeatures: number;
  private constructor(readonly name: string, readonly w: Int8Weight, readonly record: QuantRecord) {
    this.inFeatures = w.K;
    this.outFeatures = w.N;
  }

  static fromWeight(
    gpu: Gpu,
    name: string,
    cb: Int8Array,
    scb: Float32Array,
    shape: [number, number],
    threshold: number,
    bias?: Float32Array,
  ): Int8Linear {
    const [N, K] = shape;
    if (K % 4) throw new Error(`${name}: LLM.int8 here needs in-features divisible by 4, got ${K}`);
    if (!(threshold >= 0)) throw new Error(`${name}: the outlier threshold must be ≥ 0, got ${threshold}`);
    const w: Int8Weight = {
      N,
      K,
      cb: upload(gpu, new Uint32Array(Uint8Array.from(cb, (c) => c & 255).buffer), [N, K / 4], `${name}.CB`),
      scb: upload(gpu, Float32Array.from(scb), [N], `${name}.SCB`),
      bias: bias ? upload(gpu, Float32Array.from(bias), [N], `${name}.bias`) : null,
      seen: upload(gpu, new Uint32Array(K), [K], `${name}.outliers`),
      threshold,
    };
    // The record view (W ≈ SCB/127 · (code − 128)) serves dequantization and bit counts.
    const record: QuantRecord = {
      name,
      shape,
      dtype: "float32",
      bits: 8,
      groupSize: K,
      axis: 1,
      codes: Uint8Array.from(cb, (c) => c + 128),
      scales: Float32Array.from(scb, (s) => s / 127),
      zeros: new Float32Array(N).fill(128),
      zeroKind: "int",
      rowAbsmax: Float32Array.from(scb),
      bias,
      method: "bnb-int8",
    };
    return new Int8Linear(name, w, record);
  }

  forward(b: Batch, x: Tensor): Tensor {
    return int8Matmul(b, x, this.w);
  }

  /** How many input columns were outliers in at least one call so far. */
  async outlierColumns(): Promise<number> {
    let n = 0;
    for (const v of await read(this.w.seen)) n += v ? 1 : 0;
    return n;
  }

  bytes(): number {
    return this.w.cb.byteLength + this.w.scb.byteLength + (this.w.bias?.byteLength ?? 0);
  }

  /** `seen` (the outlier columns met so far) is written by every forward: it stays on the GPU. */
  tensors(): Tensor[] {
    return [this.w.cb, this.w.scb, ...(this.w.bias ? [this.w.bias] : [])];
  }

  release(): void {
    for (const t of [this.w.cb, this.w.scb, this.w.bias, this.w.seen]) t?.release();
  }
}

/** LLM.int8 on every linear of the decoder blocks (and lm_head with `quantizeHead`). */
export async function quantizeInt8(
  model: CausalLM,
  threshold = 6.0,
  quantizeHead = false,
): Promise<QuantizeResult & { layers: Int8Linear[] }> {
  const targets = quantTargets(model, quantizeHead);
  const t0 = performance.now();
  const records: QuantRecord[] = [], layers: Int8Linear[] = [];
  for await (const { linear: l, replace } of visitTargets(model, targets)) {
    const w = await readF32(l.weight);
    const { cb, scb } = quantizeInt8Rows(w, l.outFeatures, l.inFeatures);
    const bias = l.bias ? await readF32(l.bias) : undefined;
    const q = Int8Linear.fromWeight(
      model.gpu,
      l.name,
      cb,
      scb,
      [l.outFeatures, l.inFeatures],
      threshold,
      bias,
    );
    records.push(q.record);
    layers.push(q);
    replace(q);
  }
  await new Batch(model.gpu).done();
  return { records, layers, seconds: (performance.now() - t0) / 1000 };
}
