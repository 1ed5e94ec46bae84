// How much GPU memory a run needs, resident or streamed, from config.json alone — so a run that
// cannot fit its --gpu-memory budget is refused before any work, with the arithmetic.
//
// Resident: every parameter on the GPU, plus the work of one forward (and of the method).
// Streamed (lib/model/stream.ts): embeddings, head and final norm stay; two blocks at a time (one
// entering while the pool still holds the one before), each block expanded to f32 while a method
// quantizes it; plus the same work. Weights are counted in the checkpoint's dtype (a quantized
// checkpoint is counted as its FP dtype: an upper bound).

import type { ModelConfig } from "../io/config.ts";
import { llamaLinearShapes, optLinearShapes } from "./shapes.ts";

const UNITS: Record<string, number> = {
  "": 1,
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
  TIB: 2 ** 40,
};

/** "24GB", "80 GiB", "512MiB", "1e9" → bytes. */
export function parseBytes(s: string): number {
  const m = s.trim().match(/^(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-z]*)$/i);
  const unit = m ? UNITS[m[2].toUpperCase()] : undefined;
  if (!m || unit === undefined) {
    throw new Error(`"${s}" is not a size: bytes, or a number with KB/MB/GB/TB or KiB/MiB/GiB/TiB`);
  }
  return Math.floor(Number(m[1]) * unit);
}

export function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

export function dtypeBytes(dtype: string): number {
  return /16/.test(dtype) ? 2 : 4;
}

/**
 * GPU bytes of the parameters: a block's (each; in f32 as a method expands it), and the rest —
 * embeddings, positions, head, final norm (`params`, what CausalLM.bytes() counts) plus the RoPE
 * table cos, sin [maxPositions, headDim/2] in f32 (`rest`).
 */
export function footprint(
  c: ModelConfig,
): { block: number; blockF32: number; params: number; rest: number; blocks: number } {
  const wb = dtypeBytes(c.dtype);
  const shapes = c.family === "llama" ? llamaLinearShapes(c) : optLinearShapes(c);
  let weights = 0, biases = 0;
  for (const [, out, inp, bias] of shapes) {
    weights += out * inp;
    if (bias) biases += out;
  }
  const norms = (c.family === "llama" ? 2 : 4) * c.hidden; // f32 on the GPU
  const vec = (biases + norms) * 4;
  const embedDim = c.family === "opt" ? c.wordEmbedDim : c.hidden;
  let params = c.vocab * embedDim * wb + (c.tied ? 0 : c.vocab * embedDim * wb);
  let rope = 0;
  if (c.family === "opt") {
    params += (c.maxPositions + 2) * c.hidden * 4 + (c.finalLayerNorm ? 2 * c.hidden * 4 : 0);
    if (c.wordEmbedDim !== c.hidden) params += 2 * c.hidden * c.wordEmbedDim * wb;
  } else {
    params += c.hidden * 4;
    rope = c.maxPositions * c.headDim * 4;
  }
  const block = weights * wb + vec, blockF32 = weights * 4 + vec;
  return { block, blockF32, params: params + c.layers * block, rest: params + rope, blocks: c.layers };
}

/**
 * GPU bytes of one forward over `rows` rows; `logits`: through the head (evaluation), not only
 * the blocks, with `logitRows` rows of logits at a time (perplexity's row chunks).
 */
export function forwardWork(c: ModelConfig, rows: number, logits = true, logitRows = rows): number {
  const inter = c.family === "llama" ? c.intermediate : c.ffn;
  // Hidden in/out, normed input, q/k/v/attention out, the MLP's intermediates, logits and NLL.
  return rows * 4 * (6 * c.hidden + 3 * inter) + (logits ? Math.min(rows, logitRows) * 4 * 2 * c.vocab : 0);
}

export interface MemoryPlan {
  mode: "resident" | "streamed";
  /** Evaluation: rows of a window whose logits exist at once (all of them unless that did not fit). */
  logitRows?: number;
  /** Calibration: the hidden states in host memory between uses (they did not fit beside the rest). */
  statesOnHost?: boolean;
  budget: number | null;
  resident: number;
  streamed: number;
  /** One line for the log: the mode, and why. */
  why: string;
}

/**
 * Resident when it fits the budget (or there is none), else streamed when that fits, else an
 * error with both sums. `work`: the bytes the stage needs besides the weights (forwardWork, a
 * method's calibration states and statistics); `quantizes`: blocks are expanded to f32.
 */
export function planMemory(
  c: ModelConfig,
  budget: number | null,
  work: number,
  quantizes: boolean,
): MemoryPlan {
  const f = footprint(c);
  const resident = f.rest + f.blocks * f.block + (quantizes ? f.blockF32 : 0) + work;
  const streamed = f.rest + 2 * (quantizes ? f.blockF32 : f.block) + work;
  const arith = (mode: string, n: number) =>
    mode === "resident"
      ? `${formatBytes(f.rest)} embeddings/head + ${f.blocks} blocks × ${formatBytes(f.block)}` +
        (quantizes ? ` + one block in f32 ${formatBytes(f.blockF32)}` : "") +
        ` + work ${formatBytes(work)} = ${formatBytes(n)}`
      : `${formatBytes(f.rest)} embeddings/head + 2 blocks × ${
        formatBytes(quantizes ? f.blockF32 : f.block)
      }` +
        ` + work ${formatBytes(work)} = ${formatBytes(n)}`;
  if (budget === null) {
    return {
      mode: "resident",
      budget,
      resident,
      streamed,
      why: `resident (no --gpu-memory): ${arith("resident", resident)}`,
    };
  }
  if (resident <= budget) {
    return {
      mode: "resident",
      budget,
      resident,
      streamed,
      why: `resident: ${arith("resident", resident)} fits --gpu-memory ${formatBytes(budget)}`,
    };
  }
  if (streamed <= budget) {
    return {
      mode: "streamed",
      budget,
      resident,
      streamed,
      why: `streamed: resident needs ${arith("resident", resident)}, over --gpu-memory ${
        formatBytes(budget)
      }; streamed needs ${arith("streamed", streamed)}`,
    };
  }
  throw new Error(
    `--gpu-memory ${formatBytes(budget)} (${budget} bytes) is too small: resident needs ${
      arith("resident", resident)
    }, streamed needs ${arith("streamed", streamed)} (${streamed} bytes)`,
  );
}
