// GPTQ (Frantar et al., 2022): quantize W [out, in] column by column, minimising ‖WX − ŴX‖² through
// the Hessian H = (2/n) Σ x xᵀ of the layer's inputs. As the reference (IST-DASLab/gptq's
// fasterquant, AutoGPTQ's GPTQ class) does it:
//   1. per-channel params from the whole W; dead columns (H_jj = 0): H_jj = 1, W[:, j] = 0
//   2. static groups: every group's params from this W; act-order: columns by descending diag H
//   3. damp: H_jj += percdamp · mean(diag H); U = the upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU)
//   4. blocks of `blocksize` columns: quantize column i, err = (w_i − q_i) / U_ii, push err·U[i, i:]
//      into the block's later columns; after the block, W[:, i2:] −= Err · U[i1:i2, i2:] (lazy update)
// Dynamic groups take their params when the sweep reaches a group start, from W as it stands then.
//
// U comes from one Cholesky and one triangular inverse on the GPU: with J the reversal,
// chol(J·H·J) = L′L′ᵀ gives H = V·Vᵀ for the upper V = J·L′·J, so H⁻¹ = V⁻ᵀV⁻¹ and U = V⁻¹ = J·L′⁻¹·J.

import { z } from "zod";
import type { Gpu } from "../gpu/device.ts";
import { Batch } from "../gpu/kernel.ts";
import { empty, f16ToF32, f32ToF16, read, readF32, type Tensor, upload } from "../gpu/tensor.ts";
import { cholesky } from "../kernels/cholesky.ts";
import { gptqBlock, MAX_BLOCKSIZE, type SweepParams } from "../kernels/gptq.ts";
import { trtri } from "../kernels/trtri.ts";
import { DenseLinear } from "../model/linear.ts";
import type { CausalLM } from "../model/model.ts";
import { QuantLinear } from "./quant_linear.ts";
import type { QuantRecord } from "./record.ts";
import { fakeLinear, type QuantizeResult } from "./rtn.ts";
import { quantizeSequential } from "./sequential.ts";
import {
  checkUniform,
  groupParams,
  GroupSize,
  UniformBits,
  type UniformOptions,
  uniformRecord,
} from "./uniform.ts";

export const GptqOptions = z.object({
  bits: UniformBits,
  /** Consecutive input columns per group; -1 = per-channel. */
  groupSize: GroupSize,
  /** The IST-DASLab CLI default is asymmetric; AutoGPTQ's config default is symmetric. */
  sym: z.boolean().default(false),
  /** desc_act: columns in order of descending diag H. */
  actOrder: z.boolean().default(false),
  /** Group params from the original W, so g_idx stays k / groupSize under act-order. */
  staticGroups: z.boolean().default(false),
  percdamp: z.number().min(0).max(1).default(0.01),
  blocksize: z.number().int().min(4).max(MAX_BLOCKSIZE).multipleOf(4).default(128),
}).strict();
export type GptqOptions = z.input<typeof GptqOptions>;
type Opts = z.output<typeof GptqOptions>;

export interface GptqLayerResult {
  record: QuantRecord;
  /** Σ over the layer of (w − q)² / (2 U_jj²): the reference's Losses. */
  loss: number;
  /** The damping that let the Cholesky through. */
  percdamp: number;
  /** The layer's time; with `timePhases`, U's (damp, Cholesky, inverse) and the sweep's apart. */
  seconds: { total: number; factor?: number; sweep?: number };
}

/** Dampings tried in turn: the requested one, then ten times more up to 1 (the whole mean diagonal). */
export function dampLadder(percdamp: number): number[] {
  const out = [percdamp];
  for (let d = percdamp === 0 ? 0.01 : percdamp * 10; d <= 1 + 1e-9; d *= 10) out.push(d);
  return out;
}

/**
 * Quantize one layer W [out, in] (host f32, not modified) with its Hessian H [in, in] (on the GPU,
 * or already read back: not modified either). `warn` hears about raised damping.
 */
export async function gptqLayer(
  gpu: Gpu,
  name: string,
  w0: Float32Array,
  shape: [number, number],
  h: Tensor | Float32Array,
  options: GptqOptions,
  warn: (msg: string) => void = console.warn,
  timePhases = false,
): Promise<GptqLayerResult> {
  const o: Opts = GptqOptions.parse(options);
  const [rows, cols] = shape;
  const uo: UniformOptions = { bits: o.bits, groupSize: o.groupSize, sym: o.sym, range: "include-zero" };
  const g = checkUniform(name, cols, uo), G = cols / g;
  if (cols % 4 !== 0) throw new Error(`${name}: GPTQ here needs in-features divisible by 4, got ${cols}`);
  if (w0.length !== rows * cols) throw new Error(`${name}: ${w0.length} weights do not fill [${shape}]`);
  const hn = h instanceof Float32Array ? h.length : h.numel;
  if (hn !== cols * cols) throw new Error(`${name}: H has ${hn} entries, expected ${cols}²`);
  const H = h instanceof Float32Array ? Float32Array.from(h) : await readF32(h);
  for (let i = 0; i < H.length; i++) {
    if (!Number.isFinite(H[i])) {
      throw new Error(
        `${name}: the Hessian is not finite at [${Math.floor(i / cols)}, ${i % cols}] ` +
          `(NaN/Inf in the layer's calibration inputs)`,
      );
    }
  }
  const W = Float32Array.from(w0);
  const rowParams = (r: number, c0: number, width: number) => {
    let min = Infinity, max = -Infinity;
    for (let k = c0; k < c0 + width; k++) {
      (min = Math.min(min, W[r * cols + k])), (max = Math.max(max, W[r * cols + k]));
    }
    return groupParams(min, max, uo);
  };
  // 1. Params fixed before the sweep: per-channel (from W before dead columns are zeroed, as the
  // reference's find_params runs first) or static groups (after).
  const qp = new Float32Array(rows * G * 2);
  const fill = (grp: number, c0: number) => {
    for (let r = 0; r < rows; r++) {
      const { scale, zero } = rowParams(r, c0, g);
      (qp[(r * G + grp) * 2] = scale), (qp[(r * G + grp) * 2 + 1] = zero);
    }
  };
  if (g === cols) fill(0, 0);
  for (let j = 0; j < cols; j++) {
    if (H[j * cols + j] === 0) {
      H[j * cols + j] = 1;
      for (let r = 0; r < rows; r++) W[r * cols + j] = 0;
    }
  }
  const dynamic = g < cols && !o.staticGroups;
  if (g < cols && o.staticGroups) { for (let grp = 0; grp < G; grp++) fill(grp, grp * g); }

  // 2. Quantization order and each position's group.
  const perm = Array.from({ length: cols }, (_, j) => j);
  if (o.actOrder) perm.sort((a, b) => H[b * cols + b] - H[a * cols + a] || a - b);
  const groupOf = Uint32Array.from(perm, (orig, i) => (dynamic ? Math.floor(i / g) : Math.floor(orig / g)));

  // 3–4. U on the GPU (damped H → Cholesky → triangular inverse), then the sweep block by block,
  // all in one submission whose status, codes, params and losses come back in one readback wait
  // (each wait costs ≥ 11 ms on Deno; a layer used to pay seven). A Cholesky that meets a
  // non-positive pivot is retried with more damping; that attempt's inverse and sweep are dropped.
  // `timePhases` (bench/gptq.ts) waits after the Cholesky and after the inverse instead, so the two
  // phases can be timed apart; same kernels, same bits.
  const t0 = performance.now();
  let mean = 0;
  for (let j = 0; j < cols; j++) mean += H[j * cols + j] / cols;
  const Hr = new Float32Array(cols * cols); // J·P·H·Pᵀ·J
  for (let a = 0; a < cols; a++) {
    const pa = perm[cols - 1 - a] * cols;
    for (let c = 0; c < cols; c++) Hr[a * cols + c] = H[pa + perm[cols - 1 - c]];
  }
  const Wp = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let i = 0; i < cols; i++) Wp[r * cols + i] = W[r * cols + perm[i]];
  const bs = o.blocksize;
  const p: SweepParams = { rows, cols, G, g, dynamic, bits: o.bits, sym: o.sym, blocksize: bs };
  let out: { words: Uint32Array; qp: Float32Array; loss: Float32Array } | null = null;
  let damp = 0, failedAt = -1, t1 = t0;
  const ladder = dampLadder(o.percdamp);
  for (const d of ladder) {
    const Ad = Float32Array.from(Hr);
    for (let j = 0; j < cols; j++) Ad[j * cols + j] += d * mean;
    const a = upload(gpu, Ad, [cols, cols], `${name}.L`);
    const status = upload(gpu, new Uint32Array(1), [1], `${name}.chol_status`);
    const t = {
      w: upload(gpu, Wp, [rows, cols], `${name}.W`), // the sweep updates W and the params in place
      x: upload(gpu, new Float32Array(cols * cols), [cols, cols], `${name}.Linv`),
      codes: empty(gpu, [rows, cols / 4], "u32", `${name}.codes`),
      qp: upload(gpu, qp, [rows, G, 2], `${name}.qparams`),
      err: empty(gpu, [rows, bs], "f32", `${name}.err`),
      loss: upload(gpu, new Float32Array(rows), [rows], `${name}.loss`),
      groupOf: upload(gpu, groupOf, [cols], `${name}.groups`),
    };
    let failed = false;
    try {
      let b = new Batch(gpu);
      cholesky(b, a, status);
      if (timePhases) {
        await b.submit();
        const st = (await read(status))[0];
        if (st !== 0) {
          (failedAt = perm[cols - st]), (failed = true);
          continue;
        }
        b = new Batch(gpu);
        trtri(b, a, t.x);
        await b.done();
        t1 = performance.now();
        b = new Batch(gpu);
      } else trtri(b, a, t.x);
      for (let i1 = 0; i1 < cols; i1 += bs) gptqBlock(b, t, p, i1);
      await b.submit();
      const [st, words, qpOut, loss] = await Promise.all([
        read(status),
        read(t.codes),
        read(t.qp),
        read(t.loss),
      ]);
      if (st[0] !== 0) {
        (failedAt = perm[cols - st[0]]), (failed = true); // status: 1 + the pivot's row, reversed order
        continue;
      }
      (out = { words: words as Uint32Array, qp: qpOut as Float32Array, loss: loss as Float32Array }),
        (damp = d);
      break;
    } finally {
      a.release();
      status.release();
      for (const x of Object.values(t)) x.release();
      if (failed && d !== ladder[ladder.length - 1]) {
        warn(`${name}: Cholesky failed at column ${failedAt} with percdamp ${d}; retrying with ${d * 10}`);
      }
    }
  }
  if (!out) {
    throw new Error(
      `${name}: H is not positive-definite even after damping (percdamp tried: ${ladder.join(", ")}; ` +
        `Cholesky failed at column ${failedAt})`,
    );
  }
  const t2 = performance.now();
  const packed = new Uint8Array(out.words.buffer, out.words.byteOffset, rows * cols);
  const qpOut = out.qp, lossRows = out.loss;

  // Back to the original column order.
  const codes = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < cols; i++) codes[r * cols + perm[i]] = packed[r * cols + i];
  }
  const scales = new Float32Array(rows * G), zeros = new Float32Array(rows * G);
  for (let i = 0; i < rows * G; i++) (scales[i] = qpOut[2 * i]), (zeros[i] = qpOut[2 * i + 1]);
  let gIdx: Int32Array | undefined;
  if (o.actOrder && dynamic) {
    gIdx = new Int32Array(cols);
    for (let i = 0; i < cols; i++) gIdx[perm[i]] = groupOf[i];
  }
  let loss = 0;
  for (const l of lossRows) loss += l / 2;
  const record = uniformRecord(name, shape, o.bits, g, { codes, scales, zeros, gIdx }, "gptq");
  const seconds = timePhases
    ? { total: (t2 - t0) / 1000, factor: (t1 - t0) / 1000, sweep: (t2 - t1) / 1000 }
    : { total: (t2 - t0) / 1000 };
  return { record, loss, percdamp: damp, seconds };
}

export const GptqRunOptions = GptqOptions.extend({
  /** Quantize [q, k, v] → o → [gate, up] → down in turn, each on inputs through the quantized ones. */
  trueSequential: z.boolean().default(true),
  /** Calibration hidden states in host memory between uses (they would not fit the GPU budget). */
  statesOnHost: z.boolean().default(false),
  /** Feed every block the FP model's hidden states instead of the quantized prefix's. */
  fpInputs: z.boolean().default(false),
  /** Keep dequantized FP layers instead of the packed run-time ones. */
  fake: z.boolean().default(false),
}).strict();
export type GptqRunOptions = z.input<typeof GptqRunOptions>;

export interface GptqLayerReport {
  name: string;
  loss: number;
  percdamp: number;
  seconds: number;
}

export interface GptqRunResult extends QuantizeResult {
  layers: GptqLayerReport[];
}

/**
 * GPTQ over every linear of the decoder blocks (embeddings and lm_head stay FP), streamed block by
 * block on the calibration windows. While calibrating, quantized layers run as dequantized FP
 * weights (the reference's fake quantization); at the end they become packed run-time layers.
 */
export async function quantizeGptq(
  model: CausalLM,
  windows: number[][],
  options: GptqRunOptions,
  log: (msg: string) => void = () => {},
): Promise<GptqRunResult> {
  const { trueSequential, fpInputs, statesOnHost, fake, ...rest } = GptqRunOptions.parse(options);
  const layerOpts: Opts = rest;
  const uo: UniformOptions = {
    bits: rest.bits,
    groupSize: rest.groupSize,
    sym: rest.sym,
    range: "include-zero",
  };
  for (let i = 0; i < model.numBlocks; i++) {
    for (const l of model.blockLinears(i)) {
      if (!(l instanceof DenseLinear)) throw new Error(`${l.name} is already quantized`);
      checkUniform(l.name, l.inFeatures, uo);
      if (l.inFeatures % 4) throw new Error(`${l.name}: GPTQ here needs in-features divisible by 4`);
    }
  }
  const t0 = performance.now();
  const records: QuantRecord[] = [], layers: GptqLayerReport[] = [];
  await quantizeSequential(
    model,
    windows,
    { trueSequential, fpInputs, statesOnHost },
    async (block, names, acc) => {
      // The group's H, weights and biases in one readback wait (H read once for q, k, v).
      const ls = names.map((name) => model.blockLinears(block).find((l) => l.name === name) as DenseLinear);
      const [H, ...wb] = await Promise.all([
        readF32(acc.h),
        ...ls.flatMap((l) => [readF32(l.weight), l.bias ? readF32(l.bias) : Promise.resolve(null)]),
      ]);
      for (const [k, name] of names.entries()) {
        const l = ls[k], w = wb[2 * k]!, bias = wb[2 * k + 1];
        const r = await gptqLayer(model.gpu, name, w, [l.outFeatures, l.inFeatures], H!, layerOpts, log);
        if (bias) r.record.bias = bias;
        records.push(r.record);
        layers.push({ name, loss: r.loss, percdamp: r.percdamp, seconds: r.seconds.total });
        model.setLinear(name, fakeLinear(model, r.record));
      }
    },
    log,
    (block) => {
      // Block done (its outputs, the next block's inputs, came through the unrounded fake-quant
      // layers): scales as the exchange format stores them (fp16), so the model here and the
      // exported checkpoint loaded back are the same weights; packed before the block leaves the
      // GPU, so a streamed model keeps packed codes in host memory, never f32 fake weights.
      const mine = new Set(model.blockLinears(block).map((l) => l.name));
      for (const r of records) {
        if (!mine.has(r.name)) continue;
        r.scales = f16ToF32(f32ToF16(r.scales));
        model.setLinear(r.name, fake ? fakeLinear(model, r) : QuantLinear.fromRecord(model.gpu, r));
      }
    },
  );
  await new Batch(model.gpu).done();
  return { records, layers, seconds: (performance.now() - t0) / 1000 };
}
