// Speed columns of a row: the adapter's copy bandwidth (the roofline a batch-1 decode is bound by),
// each linear of block 0 at batch 1 (GEMV µs and the GB/s of its weight bytes, as quantized), and
// greedy decode tokens/s with the KV cache. Medians of repeated runs, GPU timestamps where offered.

import type { Gpu } from "../gpu/device.ts";
import { empty, type Tensor, upload } from "../gpu/tensor.ts";
import { copy } from "../kernels/copy.ts";
import { generate } from "../model/generate.ts";
import type { CausalLM } from "../model/model.ts";
import { time } from "./timing.ts";

/** Read + write GB/s of a plain copy of `mib` MiB (capped to one storage binding). */
export async function copyBandwidth(gpu: Gpu, reps = 5, mib = 64): Promise<number> {
  const n = Math.min(mib << 18, Math.floor(gpu.device.limits.maxStorageBufferBindingSize / 4)) & ~3;
  const src = upload(gpu, new Float32Array(n).fill(1), [n], "copy-src"),
    dst = empty(gpu, [n], "f32", "copy-dst");
  try {
    const t = await time(gpu, reps, (b) => copy(b, src, dst));
    return (2 * n * 4) / (1000 * (t.gpu ?? t.wall)) / 1e3;
  } finally {
    src.release(), dst.release();
  }
}

export interface GemvTiming {
  layer: string;
  n: number;
  k: number;
  us: number;
  gbps: number;
}

/** Each linear of block 0 applied to one token (x [1, in]), as the model holds it now. */
export async function gemvTimings(model: CausalLM, reps: number): Promise<GemvTiming[]> {
  const out: GemvTiming[] = [];
  for (const l of model.blockLinears(0)) {
    const [n, k] = [l.outFeatures, l.inFeatures];
    const x = upload(model.gpu, Float32Array.from({ length: k }, (_, i) => Math.sin(i)), [1, k], "gemv-x");
    let y: Tensor | null = null;
    try {
      const t = await time(model.gpu, reps, (b) => (y?.release(), (y = l.forward(b, x))));
      const us = 1000 * (t.gpu ?? t.wall);
      out.push({ layer: l.name, n, k, us, gbps: l.bytes() / us / 1e3 });
    } finally {
      (y as Tensor | null)?.release();
      x.release();
    }
  }
  return out;
}

/** Greedy decode of `tokens` new tokens after `prompt`: tokens/s after the first. */
export async function decodeSpeed(model: CausalLM, prompt: number[], tokens: number): Promise<number> {
  const P = Math.max(1, Math.min(prompt.length, model.config.maxPositions - tokens - 1));
  const r = await generate(model, prompt.slice(0, P), { maxNewTokens: tokens, stepsPerSubmit: 16 });
  return r.decodeTokensPerSecond;
}
