// Seeded random data for tests and benchmarks (Mersenne Twister from @stdlib, so a seed gives
// the same numbers on every machine).

import normalFactory from "@stdlib/random-base-normal";
import mt19937 from "@stdlib/random-base-mt19937";

export function randn(n: number, seed: number, std = 1): Float32Array<ArrayBuffer> {
  const rng = normalFactory.factory({ seed });
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng(0, std);
  return out;
}

export function randInts(n: number, max: number, seed: number): Uint32Array<ArrayBuffer> {
  const rng = mt19937.factory({ seed });
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng() % max;
  return out;
}
