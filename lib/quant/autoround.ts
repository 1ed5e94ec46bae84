// AutoRound / SignRound (Cheng et al., 2023; intel/auto-round): per decoder block, tune each
// linear's rounding offset V and its groups' min/max scale factors by signed gradient descent on
//   L = MSE(block_q(X_q), block_fp(X_fp))
// where X_fp are the FP model's inputs to the block and X_q those of the already-quantized
// prefix (enable_quanted_input). As the reference's defaults:
//   - sym full-range int grid (levels −2^(b−1) … 2^(b−1) − 1), g128, fp16 scales; asym as option
//   - 200 iterations, batch 8 calibration windows per step drawn by a reshuffling sampler
//   - lr = 1/iters (2/iters for ≤ 3 bits with ≥ 1000 iters), min/max the same, linear decay to 0
//     (step i uses lr·(1 − i/iters)), no momentum; the parameters with the lowest loss are kept
//   - iters = 0 is plain rounding to the same grid (RTN)
// The block is differentiated on the GPU (grad/tape.ts); per step one batch is submitted and
// its loss read back (the loss curve is returned per block).

import { z } from "zod";
import { Batch } from "../gpu/kernel.ts";
import { empty, read, readF32, type Tensor } from "../gpu/tensor.ts";
import { Tape } from "../grad/tape.ts";
import { mse, mseValue } from "../kernels/mse.ts";
import { PyRandom } from "../data/pyrandom.ts";
import { DenseLinear } from "../model/linear.ts";
import type { CausalLM } from "../model/model.ts";
import { ArLinear } from "./autoround_linear.ts";
import { QuantLinear } from "./quant_linear.ts";
import type { QuantRecord } from "./record.ts";
import { fakeLinear, type QuantizeResult } from "./rtn.ts";
import { calibrationChunks, embedChunks, States } from "./sequential.ts";
import { f32Block } from "./targets.ts";
import { checkUniform, GroupSize, UniformBits, type UniformOptions, uniformRecord } from "./uniform.ts";

export const AutoRoundOptions = z.object({
  bits: UniformBits,
  /** Consecutive input columns per group; -1 = per-channel. */
  groupSize: GroupSize,
  sym: z.boolean().default(true),
  iters: z.number().int().min(0, "AutoRound: iters must be ≥ 0").default(200),
  /** Default 1/iters (2/iters for ≤ 3 bits and ≥ 1000 iters). */
  lr: z.number().positive("AutoRound: lr must be > 0").optional(),
  /** Default: lr. */
  minmaxLr: z.number().positive("AutoRound: minmax lr must be > 0").optional(),
  minmaxTuning: z.boolean().default(true),
  batchSize: z.number().int().positive().default(8),
  /** The sampler's seed (the reference seeds Python's random with 42). */
  seed: z.number().int().nonnegative().default(42),
  fake: z.boolean().default(false),
  /** Bins of a histogram of each block's final V over [−0.5, 0.5] (0 = none; it costs a readback of V). */
  vHistogramBins: z.number().int().min(0).default(0),
  /** Calibration hidden states in host memory between uses (they would not fit the GPU budget). */
  statesOnHost: z.boolean().default(false),
}).strict();
export type AutoRoundOptions = z.input<typeof AutoRoundOptions>;
type Opts = z.output<typeof AutoRoundOptions>;

/** The reference's recipes (auto-round --light / --best): iterations and calibration samples. */
export const AUTOROUND_PRESETS = {
  default: { iters: 200, nsamples: 128 },
  light: { iters: 50, nsamples: 128, lr: 5e-3 },
  best: { iters: 1000, nsamples: 512 },
} as const;

export interface BlockLog {
  block: number;
  /** Loss of every iteration (the parameters before that iteration's step). */
  losses: number[];
  bestIter: number;
  bestLoss: number;
  seconds: number;
  /** With vHistogramBins: counts of the kept V over the block's layers, bins over [−0.5, 0.5]. */
  vHistogram?: number[];
}

export interface AutoRoundResult extends QuantizeResult {
  blocks: BlockLog[];
  lr: number;
  peakBytes: number;
}

export function autoRoundLr(o: Pick<Opts, "iters" | "bits" | "lr">): number {
  if (o.lr !== undefined) return o.lr;
  if (o.iters === 0) return 0;
  return o.iters >= 1000 && o.bits <= 3 ? 2 / o.iters : 1 / o.iters;
}

/** Windows must not overlap more than the text allows: nsamples × seqlen ≤ tokens. */
export function checkAutoRoundSamples(tokens: number, nsamples: number, seqlen: number, file: string): void {
  if (nsamples * seqlen > tokens) {
    throw new Error(
      `AutoRound: ${file} has ${tokens} tokens, enough for ${Math.floor(tokens / seqlen)} windows of ` +
        `${seqlen}; nsamples ${nsamples} asks for more (lower --nsamples or --calib-seqlen)`,
    );
  }
}

/** auto_round's IndexSampler: shuffled batches; when fewer than a batch remain, reshuffle. */
export class IndexSampler {
  #order: number[];
  #pos = 0;
  constructor(readonly n: number, readonly batch: number, readonly rng: PyRandom) {
    if (!(batch > 0 && batch <= n)) throw new Error(`sampler: batch ${batch} must be in 1 … ${n}`);
    this.#order = Array.from({ length: n }, (_, i) => i);
    this.#shuffle();
  }
  #shuffle() { // random.shuffle
    const a = this.#order;
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.rng.randint(0, i);
      [a[i], a[j]] = [a[j], a[i]];
    }
  }
  next(): number[] {
    if (this.#pos + this.batch > this.n) this.#shuffle(), (this.#pos = 0);
    const out = this.#order.slice(this.#pos, this.#pos + this.batch);
    this.#pos += this.batch;
    return out;
  }
}

export async function quantizeAutoRound(
  model: CausalLM,
  windows: number[][],
  options: AutoRoundOptions,
  log: (msg: string) => void = () => {},
): Promise<AutoRoundResult> {
  const o: Opts = AutoRoundOptions.parse(options);
  const gpu = model.gpu;
  const t0 = performance.now();
  const lr = autoRoundLr(o), minmaxLr = o.minmaxLr ?? lr;
  const { seq, chunks } = calibrationChunks(model, windows, o.batchSize);
  const n = windows.length, batch = Math.min(o.batchSize, n);
  // Check every layer before any work: FP weights, groups dividing the inputs.
  const uo: UniformOptions = { bits: o.bits, groupSize: o.groupSize, sym: o.sym, range: "include-zero" };
  for (let i = 0; i < model.numBlocks; i++) {
    for (const l of model.blockLinears(i)) {
      if (!(l instanceof DenseLinear)) throw new Error(`AutoRound: ${l.name} is already quantized`);
      checkUniform(`AutoRound: ${l.name}`, l.inFeatures, uo);
    }
  }
  gpu.pool.resetPeak();
  const hidden = model.config.hidden;
  const rowBytes = seq * hidden * 4;
  // Per-window hidden states: the FP chain and the quantized-prefix chain (the same at block 0).
  const st = new States(o.statesOnHost);
  let fpIn = await split(await embedChunks(model, chunks, seq, st));
  let qIn: Tensor[] | null = null; // null: same as fpIn
  const records: QuantRecord[] = [];
  const blocks: BlockLog[] = [];
  const rng = new PyRandom(o.seed);
  try {
    for (let i = 0; i < model.numBlocks; i++) {
      const tb = performance.now();
      await model.enterBlock(i);
      await f32Block(model, i); // the trainable layers read f32 weights
      // Targets: the FP block on FP inputs.
      const fpOut = await forwardAll(i, fpIn);
      const xs = qIn ?? fpIn;
      const ar = new Map(
        model.blockLinears(i).map((l) => {
          const g = checkUniform(l.name, l.inFeatures, uo);
          return [
            l.name,
            new ArLinear(l as DenseLinear, { bits: o.bits, groupSize: g, sym: o.sym }, o.minmaxTuning),
          ];
        }),
      );
      const losses: number[] = [];
      let bestLoss = Infinity, bestIter = -1;
      let vHistogram: number[] | null = null;
      try {
        const sampler = o.iters > 0 ? new IndexSampler(n, batch, rng) : null;
        for (let it = 0; it < o.iters; it++) {
          const idx = sampler!.next();
          const used = [...new Set([...idx.map((j) => xs[j]), ...idx.map((j) => fpOut[j])])];
          await st.use(used);
          const b = new Batch(gpu);
          const x = gather(b, xs, idx), target = gather(b, fpOut, idx);
          const tape = new Tape(gpu);
          const y = model.gradBlock(tape, b, i, x, seq, (name) => ar.get(name)!);
          const m = mse(b, y, target);
          tape.backward(b, y, m.dy);
          const step = lr * (1 - it / o.iters), mstep = minmaxLr * (1 - it / o.iters);
          for (const l of ar.values()) l.step(b, step, mstep);
          await b.done();
          await st.park(used, false);
          const loss = await mseValue(m);
          tape.release(), x.release(), target.release(), m.partial.release();
          if (!Number.isFinite(loss)) {
            throw new Error(
              `AutoRound: block ${i}: the loss is ${loss} at iteration ${it} (NaN/Inf in the block's ` +
                `activations or weights); blocks 0 … ${i - 1} stay quantized`,
            );
          }
          losses.push(loss);
          if (loss < bestLoss) {
            (bestLoss = loss), (bestIter = it);
            for (const l of ar.values()) l.keepStashAsBest();
          }
          if ((it + 1) % 50 === 0 || it === o.iters - 1) {
            log(`block ${i + 1}/${model.numBlocks}: iter ${it + 1}/${o.iters} loss ${loss.toExponential(4)}`);
          }
        }
        if (o.vHistogramBins > 0) vHistogram = await histogramOfV([...ar.values()], o.vHistogramBins);
        // The block's quantized layers from the best parameters.
        for (const l of ar.values()) {
          const r = await record(l);
          records.push(r);
          model.setLinear(l.name, o.fake ? fakeLinear(model, r) : QuantLinear.fromRecord(gpu, r));
        }
      } finally {
        for (const l of ar.values()) l.release();
      }
      // Next block's inputs: FP chain from the FP block, quantized chain through the quantized block.
      const qOut = await forwardAll(i, xs);
      if (qIn) { for (const t of qIn) t.release(); }
      for (const t of fpIn) t.release();
      (fpIn = fpOut), (qIn = qOut);
      await model.leaveBlock(i, true);
      const seconds = (performance.now() - tb) / 1000;
      blocks.push({ block: i, losses, bestIter, bestLoss, seconds, ...(vHistogram ? { vHistogram } : {}) });
      log(
        `block ${i + 1}/${model.numBlocks} in ${seconds.toFixed(1)} s` +
          (losses.length
            ? `, loss ${losses[0].toExponential(3)} → ${bestLoss.toExponential(3)} (iter ${bestIter})`
            : ""),
      );
    }
  } finally {
    for (const t of fpIn) t.release();
    if (qIn) { for (const t of qIn) t.release(); }
  }
  await new Batch(gpu).done();
  return {
    records,
    seconds: (performance.now() - t0) / 1000,
    blocks,
    lr,
    peakBytes: gpu.pool.stats().peak,
  };

  /** Batched forward tensors [k·seq, hidden] → one tensor per window. */
  async function split(batches: Tensor[]): Promise<Tensor[]> {
    const out: Tensor[] = [];
    let b = new Batch(gpu);
    for (const t of batches) {
      await st.use([t]);
      const mine: Tensor[] = [];
      for (let s = 0; s < t.numel / (seq * hidden); s++) {
        const w = empty(gpu, [seq, hidden], "f32", "autoround.h");
        b.copy(t.buffer, s * rowBytes, w.buffer, 0, rowBytes);
        mine.push(w);
      }
      t.release();
      out.push(...mine);
      if (st.onHost) { // one batch of states on the GPU at a time
        await b.done();
        await st.park(mine, true);
        b = new Batch(gpu);
      }
    }
    await b.done();
    return out;
  }

  function gather(b: Batch, hs: Tensor[], idx: number[]): Tensor {
    const x = empty(gpu, [idx.length * seq, hidden], "f32", "autoround.batch");
    idx.forEach((j, k) => b.copy(hs[j].buffer, 0, x.buffer, k * rowBytes, rowBytes));
    return x;
  }

  /** Block i (as the model holds it now) on every window, batch by batch. */
  async function forwardAll(i: number, hs: Tensor[]): Promise<Tensor[]> {
    const outs: Tensor[] = [];
    for (let s = 0; s < hs.length; s += batch) {
      const idx = Array.from({ length: Math.min(batch, hs.length - s) }, (_, k) => s + k);
      await st.use(idx.map((j) => hs[j]));
      const b = new Batch(gpu);
      const x = gather(b, hs, idx);
      const y = model.block(b, i, x, seq)!;
      x.release();
      await b.done();
      await st.park(idx.map((j) => hs[j]), false);
      outs.push(...await split([y]));
    }
    return outs;
  }

  async function record(l: ArLinear): Promise<QuantRecord> {
    const b = new Batch(gpu);
    const c = l.codes(b);
    await b.done();
    const codes = Uint8Array.from(await readF32(c.codes));
    const scales = await readF32(c.scales), zeros = await readF32(c.zeros);
    c.codes.release(), c.scales.release(), c.zeros.release();
    const r = uniformRecord(
      l.name,
      [l.out, l.inp],
      o.bits,
      l.grid.groupSize,
      { codes, scales, zeros },
      "autoround",
    );
    if (l.fp.bias) r.bias = (await read(l.fp.bias)) as Float32Array;
    return r;
  }
}

/** Counts of the kept rounding offsets V of `layers` in `bins` equal bins over [−0.5, 0.5]. */
async function histogramOfV(layers: ArLinear[], bins: number): Promise<number[]> {
  const counts = new Array(bins).fill(0);
  for (const l of layers) {
    for (const v of await readF32(l.best.v)) {
      counts[Math.min(bins - 1, Math.max(0, Math.floor((v + 0.5) * bins)))]++;
    }
  }
  return counts;
}
