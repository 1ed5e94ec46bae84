// Block-by-block calibration, as GPTQ's opt.py / llama.py run it: the calibration windows are
// embedded once, then for each decoder block the inputs of its linears are collected (a Hessian per
// group of linears sharing an input), the linears are quantized, and the block's outputs become the
// next block's inputs. Only one block's statistics live on the GPU beside the model and the hidden
// states of the calibration set [nsamples·seqlen, hidden].
//
// true-sequential: the groups of a block ([q, k, v] → o → [gate, up] → down) are quantized in that
// order, each one seeing inputs computed through the already-quantized groups before it (one block
// forward per group). Without it, one forward through the FP block collects every group's inputs.
// Inputs: by default each block sees the outputs of the quantized blocks before it (the reference);
// `fpInputs` feeds it the FP model's hidden states instead.

import { Batch } from "../gpu/kernel.ts";
import { type Tensor, upload } from "../gpu/tensor.ts";
import { HessianAccumulator } from "../kernels/hessian.ts";
import type { CausalLM } from "../model/model.ts";

export interface SequentialOptions {
  trueSequential: boolean;
  fpInputs: boolean;
  /** Windows per forward (default: as many as fit 4096 tokens). */
  samplesPerBatch?: number;
  /** Keep the calibration hidden states in host memory between uses (see `States`). */
  statesOnHost?: boolean;
}

/**
 * The calibration hidden states, on the GPU or — when they would not fit (GPTQ at 7B with
 * 128 × 2048 tokens holds 2 × 4 GiB of them) — in host memory between uses: `use` brings
 * tensors in before a batch reads them, `park` sends them out after (read back once, when a
 * kernel wrote them; an input already copied keeps its host copy). Same values either way.
 */
export class States {
  constructor(readonly onHost = false) {}
  async use(ts: Tensor[]): Promise<void> {
    await Promise.all(ts.map((t) => t.reload()));
  }
  async park(ts: Tensor[], written: boolean): Promise<void> {
    if (this.onHost) await Promise.all(ts.map((t) => t.offload(written)));
  }
}

/** Quantize the linears `names` (sharing one input) of block `block`, given their Hessian; must setLinear. */
export type QuantizeGroup = (block: number, names: string[], h: HessianAccumulator) => Promise<void>;

export async function quantizeSequential(
  model: CausalLM,
  windows: number[][],
  o: SequentialOptions,
  quantizeGroup: QuantizeGroup,
  log: (msg: string) => void = () => {},
  /** Called once block i's outputs are computed, before it leaves the GPU (a streamed model). */
  finishBlock?: (block: number) => Promise<void> | void,
): Promise<void> {
  const gpu = model.gpu;
  const st = new States(o.statesOnHost);
  const { seq, chunks } = calibrationChunks(model, windows, o.samplesPerBatch);
  let hs = await embedChunks(model, chunks, seq, st);
  try {
    for (let i = 0; i < model.numBlocks; i++) {
      const t0 = performance.now();
      await model.enterBlock(i);
      const groups = model.sequentialGroups(i);
      const stages = o.trueSequential ? groups.map((g) => [g]) : [groups];
      let next: Tensor[] | null = null;
      for (const [s, stage] of stages.entries()) {
        // One accumulator per group, fed by the first linear of the group (they share the input).
        const accs = new Map(
          stage.map((g) => [g[0], new HessianAccumulator(gpu, inFeatures(model, i, g[0]), g[0])]),
        );
        // The FP block's outputs come from the first pass when FP inputs are asked for; otherwise
        // the pass stops once the stage's last input is seen (the rest of the block is not needed).
        const keep = s === 0 && o.fpInputs ? [] as Tensor[] : null;
        const last = stage[stage.length - 1][0];
        for (const [j, h] of hs.entries()) {
          await st.use([h]);
          const b = new Batch(gpu);
          const out = model.block(b, i, h, seq, (name, x) => {
            accs.get(name)?.add(b, x, chunks[j].length);
            return !keep && name === last;
          });
          if (keep) keep.push(out!);
          await b.done();
          await st.park(keep ? [h, out!] : [h], false);
        }
        if (keep) next = keep;
        for (const g of stage) {
          const acc = accs.get(g[0])!;
          try {
            await quantizeGroup(i, g, acc);
          } finally {
            acc.release();
          }
        }
      }
      if (!next) {
        next = [];
        for (const h of hs) {
          await st.use([h]);
          const b = new Batch(gpu);
          const out = model.block(b, i, h, seq)!;
          next.push(out);
          await b.done();
          await st.park([h, out], false);
        }
      }
      for (const h of hs) h.release();
      hs = next;
      await finishBlock?.(i);
      await model.leaveBlock(i, true);
      log(`block ${i + 1}/${model.numBlocks} quantized in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    for (const h of hs) h.release();
  }
}

/** The windows checked and grouped into forward batches (default: as many as fit 4096 tokens). */
export function calibrationChunks(model: CausalLM, windows: number[][], samplesPerBatch?: number) {
  if (windows.length === 0) throw new Error("no calibration windows");
  const seq = windows[0].length;
  if (windows.some((w) => w.length !== seq)) throw new Error("calibration windows differ in length");
  if (seq > model.config.maxPositions) {
    throw new Error(
      `calibration windows of ${seq} tokens exceed the model's ${model.config.maxPositions} positions`,
    );
  }
  const per = samplesPerBatch ?? Math.max(1, Math.floor(4096 / seq));
  const chunks: number[][][] = [];
  for (let i = 0; i < windows.length; i += per) chunks.push(windows.slice(i, i + per));
  return { seq, chunks };
}

/** Embed each batch of windows once: the first block's inputs [windows·seq, hidden] per batch. */
export async function embedChunks(
  model: CausalLM,
  chunks: number[][][],
  seq: number,
  st = new States(),
): Promise<Tensor[]> {
  const hs: Tensor[] = [];
  let b = new Batch(model.gpu);
  for (const c of chunks) {
    const ids = upload(model.gpu, Uint32Array.from(c.flat()), [c.length * seq], "calib.ids");
    const h = model.embed(b, ids, seq);
    ids.release();
    hs.push(h);
    if (st.onHost) { // one batch of states on the GPU at a time
      await b.done();
      await st.park([h], true);
      b = new Batch(model.gpu);
    }
  }
  await b.done();
  return hs;
}

function inFeatures(model: CausalLM, block: number, name: string): number {
  const l = model.blockLinears(block).find((l) => l.name === name);
  if (!l) throw new Error(`block ${block} has no linear ${name}`);
  return l.inFeatures;
}
