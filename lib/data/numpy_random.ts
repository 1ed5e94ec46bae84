// numpy's default generator, bit for bit: `np.random.default_rng(seed)` (SeedSequence → PCG64)
// and `Generator.permutation(n)`. Hugging Face datasets' `Dataset.shuffle(seed=s)` is
// `default_rng(s).permutation(len)`, which is how AutoAWQ, llm-awq and auto-round order their
// calibration documents (seed 42): reproducing their calibration means reproducing this.
//
// SeedSequence: numpy/random/bit_generator.pyx (hashmix over a pool of 4 uint32 words);
// PCG64: the 128-bit LCG with XSL-RR output, seeded by pcg64_set_seed(state = words 0–1,
// increment = words 2–3); 32-bit draws split a 64-bit output low half first; permutation is a
// Fisher–Yates shuffle from the end with masked rejection sampling (random_interval).

const M32 = 0xffffffff;
const mul32 = (a: number, b: number) => Math.imul(a, b) >>> 0;

/** SeedSequence(entropy).generate_state(words) as uint32 words (entropy: a non-negative integer). */
export function seedSequenceState(entropy: number, words: number): Uint32Array {
  if (!(Number.isSafeInteger(entropy) && entropy >= 0)) {
    throw new Error(`SeedSequence: entropy must be a non-negative integer, got ${entropy}`);
  }
  // _coerce_to_uint32_array: little-endian 32-bit words of the integer (at least one).
  const ent: number[] = [];
  for (let v = entropy; ent.length === 0 || v > 0; v = Math.floor(v / 2 ** 32)) ent.push(v % 2 ** 32);
  let hashA = 0x43b0d7e5;
  const hashmix = (value: number) => {
    value = (value ^ hashA) >>> 0;
    hashA = mul32(hashA, 0x931e8875);
    value = mul32(value, hashA);
    return (value ^ (value >>> 16)) >>> 0;
  };
  const mix = (x: number, y: number) => {
    const r = (mul32(0xca01f9dd, x) - mul32(0x4973f715, y)) >>> 0;
    return (r ^ (r >>> 16)) >>> 0;
  };
  const pool = new Uint32Array(4);
  for (let i = 0; i < 4; i++) pool[i] = hashmix(i < ent.length ? ent[i] : 0);
  for (let s = 0; s < 4; s++) {
    for (let d = 0; d < 4; d++) if (s !== d) pool[d] = mix(pool[d], hashmix(pool[s]));
  }
  for (let s = 4; s < ent.length; s++) {
    for (let d = 0; d < 4; d++) pool[d] = mix(pool[d], hashmix(ent[s]));
  }
  const out = new Uint32Array(words);
  let hashB = 0x8b51f9dd;
  for (let i = 0; i < words; i++) {
    let v = (pool[i % 4] ^ hashB) >>> 0;
    hashB = mul32(hashB, 0x58f38ded);
    v = mul32(v, hashB);
    out[i] = (v ^ (v >>> 16)) >>> 0;
  }
  return out;
}

const MASK128 = (1n << 128n) - 1n;
const MASK64 = (1n << 64n) - 1n;
const PCG_MULT = 0x2360ed051fc65da44385df649fcc_f645n;

/** numpy's PCG64 bit generator seeded as default_rng(seed) seeds it. */
export class Pcg64 {
  #state = 0n;
  #inc = 0n;
  #half: number | null = null;

  constructor(seed: number) {
    const w = seedSequenceState(seed, 8);
    const u64 = (k: number) => BigInt(w[2 * k]) | (BigInt(w[2 * k + 1]) << 32n);
    const initState = (u64(0) << 64n) | u64(1), initSeq = (u64(2) << 64n) | u64(3);
    this.#inc = ((initSeq << 1n) | 1n) & MASK128;
    this.#step();
    this.#state = (this.#state + initState) & MASK128;
    this.#step();
  }

  #step() {
    this.#state = (this.#state * PCG_MULT + this.#inc) & MASK128;
  }

  /** next_uint64: step, then XSL-RR of the new state. */
  nextU64(): bigint {
    this.#step();
    const s = this.#state;
    const x = ((s >> 64n) ^ s) & MASK64, rot = s >> 122n;
    return ((x >> rot) | (x << ((64n - rot) & 63n))) & MASK64;
  }

  /** next_uint32: the low half of a 64-bit draw, then its high half. */
  nextU32(): number {
    if (this.#half !== null) {
      const h = this.#half;
      this.#half = null;
      return h;
    }
    const v = this.nextU64();
    this.#half = Number(v >> 32n);
    return Number(v & 0xffffffffn);
  }

  /** random_interval(max): uniform in [0, max] by masked rejection. */
  interval(max: number): number {
    if (max === 0) return 0;
    if (max > M32) throw new Error(`Pcg64.interval: ${max} needs 64-bit draws (not implemented)`);
    let mask = max;
    for (const s of [1, 2, 4, 8, 16]) mask |= mask >>> s;
    mask >>>= 0;
    for (;;) {
      const v = (this.nextU32() & mask) >>> 0;
      if (v <= max) return v;
    }
  }
}

/** `np.random.default_rng(seed).permutation(n)` (and so `Dataset.shuffle(seed)`'s row order). */
export function numpyPermutation(n: number, seed: number): Uint32Array {
  const rng = new Pcg64(seed), a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = n - 1; i >= 1; i--) {
    const j = rng.interval(i);
    const t = a[i];
    (a[i] = a[j]), (a[j] = t);
  }
  return a;
}
