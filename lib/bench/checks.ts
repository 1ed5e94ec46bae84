// What the bench checks of each model before any cell starts (exit 2, nothing written): every
// setting's group size against every layer it would quantize, a quantized checkpoint's layers
// against its quantization_config, and the token ids of the texts against the vocabulary.

import { dirname } from "node:path";
import type { Checkpoint } from "../io/checkpoint.ts";
import type { ModelConfig } from "../io/config.ts";
import { footprint, forwardWork, type MemoryPlan, planMemory } from "../model/memory.ts";
import { modelLinears, otherTensors } from "../model/shapes.ts";
import { formatOf } from "../model/format.ts";
import type { Setting } from "../methods/contract.ts";
import { FORMATS, getMethod } from "../methods/registry.ts";
import type { BenchOptions } from "./options.ts";

/** Each setting's group size against every decoder linear (and lm_head with --quantize-head). */
export function checkSettings(
  spec: string,
  c: ModelConfig,
  ckpt: Checkpoint,
  settings: Setting[],
  o: BenchOptions,
) {
  const layers = modelLinears(c, (n) => ckpt.has(n));
  if (o["quantize-head"]) {
    layers.push(["lm_head", c.vocab, c.family === "opt" ? c.wordEmbedDim : c.hidden, false]);
  }
  for (const s of settings) {
    const m = getMethod(s.method);
    for (const [name, out, inp] of layers) {
      try {
        m.checkLayer?.(name, [out, inp], s, o);
      } catch (e) {
        throw new Error(
          `--model ${spec}, --methods ${s.method} --group-size ${s.groupSize}: ${(e as Error).message}`,
        );
      }
    }
  }
}

/**
 * A checkpoint with a quantization_config must hold each decoder layer either packed, with every
 * tensor its format needs, or as a plain FP weight (a layer the quantizer skipped).
 */
export function checkQuantizedLayers(dir: string, c: ModelConfig, ckpt: Checkpoint) {
  const q = c.quant;
  if (!q) return;
  const need = formatOf(FORMATS, q).tensors(q);
  for (const [name] of modelLinears(c, (n) => ckpt.has(n))) {
    const present = need.filter((t) => ckpt.has(`${name}.${t}`));
    if (present.length === need.length) continue;
    // A plain .weight with none of the format's tensors is an FP layer left unquantized — except
    // where the format keeps its codes under .weight too (bitsandbytes): there it is a layer
    // missing its state.
    if (!need.includes("weight") && !present.length && ckpt.has(`${name}.weight`)) continue;
    const missing = need.filter((t) => !ckpt.has(`${name}.${t}`)).map((t) => `${name}.${t}`);
    throw new Error(
      `${dir}: config.json's quantization_config is ${q.quant_method}, but layer ${name} has ` +
        `${
          present.length ? `only ${present.map((t) => `${name}.${t}`).join(", ")}` : "none of its tensors"
        } ` +
        `(missing ${missing.join(", ")})`,
    );
  }
}

/** Token ids must index the embedding table (a tokenizer with more ids than vocab_size). */
export function checkIdsInVocab(spec: string, what: string, ids: ArrayLike<number>, vocab: number) {
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < vocab)) {
      throw new Error(
        `--model ${spec}: ${what} has token id ${ids[i]} at position ${i}, outside config.json's ` +
          `vocab_size ${vocab} (the tokenizer does not match the model)`,
      );
    }
  }
}

/**
 * Every tensor config.json implies is in the checkpoint with its shape (embeddings, norms, every
 * block's FP linears with their biases, the head unless tied): a missing or misshapen tensor is
 * named now rather than when a cell loads it. Quantized layers are checkQuantizedLayers' job.
 */
export function checkTensors(dir: string, c: ModelConfig, ckpt: Checkpoint) {
  const has = (n: string) => ckpt.has(n);
  const want: [string, number[]][] = otherTensors(c, has);
  // A packed layer (any format's tensors present) is checkQuantizedLayers' job; bnb keeps its codes
  // under .weight, with another shape.
  const packed = (n: string) => !!c.quant && FORMATS.some((f) => f.packed(ckpt, n, c.quant!));
  for (const [name, out, inp, bias] of modelLinears(c, has)) {
    if (bias) want.push([`${name}.bias`, [out]]);
    if (!packed(name)) want.push([`${name}.weight`, [out, inp]]);
  }
  if (!c.tied && !packed("lm_head")) {
    want.push(["lm_head.weight", [c.vocab, c.family === "opt" ? c.wordEmbedDim : c.hidden]]);
  }
  for (const [name, shape] of want) {
    if (!ckpt.has(name)) {
      throw new Error(`${dir}: checkpoint has no tensor ${name} (expected [${shape}] from config.json)`);
    }
    const { shape: got, dtype } = ckpt.info(name);
    if (!["F32", "F16", "BF16", "F64"].includes(dtype)) {
      throw new Error(
        `${ckpt.fileOf(name).path}: unsupported dtype ${dtype} in tensor ${name} ` +
          "(FP weights are read as F32, F16, BF16 or F64)",
      );
    }
    if (got.join() !== shape.join()) {
      throw new Error(
        `${ckpt.fileOf(name).path}: tensor ${name} has shape [${got}], but config.json implies [${shape}]`,
      );
    }
  }
}

/**
 * --out / --export must be a folder that can be written, or not exist yet under one that can: the
 * nearest existing ancestor is probed with a temporary file (removed at once), so nothing stays.
 */
export async function checkWritable(flag: string, path: string) {
  let d = path;
  for (;;) {
    const st = await Deno.stat(d).catch(() => null);
    if (st) {
      if (!st.isDirectory) throw new Error(`${flag} ${path}: ${d} is a file, not a folder`);
      break;
    }
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  try {
    await Deno.remove(await Deno.makeTempFile({ dir: d, prefix: ".quantlab-probe-" }));
  } catch (e) {
    throw new Error(`${flag} ${path}: cannot write into ${d} (${(e as Error).message})`);
  }
}

/**
 * AutoGPTQ-style folders carry quantize_config.json beside config.json's quantization_config;
 * loaders read the latter. Where both give a setting and they differ, say so (both values).
 */
export async function quantizeConfigClashes(dir: string, c: ModelConfig): Promise<string[]> {
  if (!c.quant) return [];
  let side: Record<string, unknown>;
  try {
    side = JSON.parse(await Deno.readTextFile(`${dir}/quantize_config.json`));
  } catch {
    return [];
  }
  const main = c.quant as Record<string, unknown>;
  const out: string[] = [];
  for (const k of ["bits", "group_size", "sym", "desc_act", "zero_point", "version", "checkpoint_format"]) {
    if (k in side && k in main && JSON.stringify(side[k]) !== JSON.stringify(main[k])) {
      out.push(
        `warning: ${dir}: quantize_config.json has ${k} = ${JSON.stringify(side[k])}, config.json's ` +
          `quantization_config ${JSON.stringify(main[k])}; using config.json's`,
      );
    }
  }
  return out;
}

/**
 * The memory plan of a setting on a model (lib/model/memory.ts): resident, streamed, or refused
 * now with the arithmetic. Work besides the weights: one evaluation window's forward, and for a
 * calibrated method its calibration hidden states (two chains of them for AutoRound, in and out
 * for the others), a forward batch and two Hessians of the widest input (AutoRound: the backward
 * pass's activations and the trained block); for a data-free method
 * three f32 copies of the largest layer (weight, codes, dequantized).
 */
export function checkMemory(
  spec: string,
  c: ModelConfig,
  s: Setting,
  o: BenchOptions,
  seqlen: number,
  cal: { n: number; seq: number } | null,
): MemoryPlan {
  const shapes = modelLinears(c, () => true);
  const widest = Math.max(...shapes.map(([, , inp]) => inp));
  const largest = Math.max(...shapes.map(([, out, inp]) => out * inp));
  // Evaluation's work with `rows` rows of logits at a time; the quantization stage's below.
  const evalWork = (rows: number) => forwardWork(c, seqlen, true, rows);
  // The quantization stage's work, with the calibration states on the GPU or in host memory.
  let work = 0, workHost: number | null = null;
  const m = getMethod(s.method);
  if (m.calibrated && cal) {
    // In and out (AutoRound: FP and quantized chains), as the method declares.
    const chains = m.memory?.chains ?? 2;
    const batchTokens = Math.min(cal.n * cal.seq, Math.max(cal.seq, 4096));
    const states = cal.n * cal.seq * c.hidden * 4 * chains;
    const batch = forwardWork(c, batchTokens, false);
    // AutoRound keeps a batch's activations for the backward pass and trains a block's
    // rounding offsets and clipping (with gradients) beside its f32 weights.
    const train = m.memory?.trains ? 3 * batch + 2 * footprint(c).blockF32 : 0;
    const rest = batch + train + 2 * widest * widest * 4;
    work = states + rest;
    // In host memory, a batch's states (in and out, each chain) visit the GPU at a time.
    workHost = batchTokens * c.hidden * 4 * chains + rest;
  } else if (!m.baseline) work = 3 * largest * 4;
  // A window's logits [seqlen, vocab] may not fit beside the rest (1 GiB at 2048 × 128256): then
  // the head and the NLL run over row chunks, halved until the plan fits. Resident with chunked
  // logits beats streaming the blocks (a chunk costs one more dispatch; a streamed block a copy).
  // Then, for a calibrated method, the states in host memory (a readback per batch and block)
  // — after streaming the blocks, which the block-by-block methods do at no extra cost.
  let error: Error | null = null;
  for (const w of workHost === null ? [work] : [work, workHost]) {
    let streamed: MemoryPlan | null = null;
    for (let rows = seqlen; rows >= 1; rows = rows > 1 ? Math.max(1, Math.floor(rows / 2)) : 0) {
      try {
        let plan = planMemory(c, o["gpu-memory"], Math.max(w, evalWork(rows)), !m.baseline);
        if (rows < seqlen) {
          plan = { ...plan, logitRows: rows, why: `${plan.why}; logits in chunks of ${rows} rows` };
        }
        if (w !== work) {
          plan = { ...plan, statesOnHost: true, why: `${plan.why}; calibration states in host memory` };
        }
        if (plan.mode === "resident") return plan;
        streamed ??= plan;
      } catch (e) {
        error ??= e as Error; // the message of the first plan says what the model needs
      }
      if (evalWork(rows) <= w) break; // the logits are no longer what decides
    }
    if (streamed) return streamed;
  }
  throw new Error(`--model ${spec}, --methods ${s.method}: ${error!.message}`);
}
