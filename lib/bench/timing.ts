// Timing GPU work in Deno: one warm-up, then the median of `reps` runs, each its own batch and
// submit; GPU time from timestamp queries where the adapter has them, wall time otherwise.

import type { Gpu } from "../gpu/device.ts";
import { Batch } from "../gpu/kernel.ts";

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Median wall and GPU (timestamp) time of `reps` runs of `encode`, after one warm-up run. With
 * `k` > 1, each run encodes k times and the times are per encode (amortises the ~11 ms wait).
 */
export async function time(gpu: Gpu, reps: number, encode: (b: Batch) => void, k = 1) {
  const warm = new Batch(gpu);
  encode(warm);
  await warm.done();
  const wall: number[] = [], ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const b = new Batch(gpu, { timing: gpu.hasTimestamps });
    const t0 = performance.now();
    for (let j = 0; j < k; j++) encode(b);
    await b.done();
    wall.push((performance.now() - t0) / k);
    if (gpu.hasTimestamps) ts.push((await b.timings()).reduce((s, t) => s + t.ms, 0) / k);
  }
  const g = ts.length && ts.some((t) => t > 0) ? median(ts) : null;
  return { wall: median(wall), gpu: g };
}

/** The peak resident set size of this process while `stop` is not called (sampled every 50 ms). */
export function rssSampler(): { stop(): number } {
  let peak = Deno.memoryUsage().rss;
  const id = setInterval(() => (peak = Math.max(peak, Deno.memoryUsage().rss)), 50);
  return {
    stop() {
      clearInterval(id);
      return Math.max(peak, Deno.memoryUsage().rss);
    },
  };
}
