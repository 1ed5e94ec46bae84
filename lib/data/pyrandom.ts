// Python's `random` module, bit for bit, for the parts calibration sampling uses: Mersenne
// Twister MT19937 seeded like random.seed(int) (init_by_array over the integer's 32-bit words),
// getrandbits(k ≤ 32), random() and randint(a, b) by rejection (_randbelow). The reference implementations
// draw calibration windows with random.seed(0) + randint, so the same seed picks the same windows.
// (@stdlib's MT19937 seeds a one-word key with init_genrand and rejects 0, so it cannot do this.)

const N = 624, M = 397;

export class PyRandom {
  #mt = new Uint32Array(N);
  #i = N + 1;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new Error(`PyRandom: seed must be a safe integer, got ${seed}`);
    // random.seed(n): the key is |n| in 32-bit little-endian words (at least one word).
    let n = Math.abs(seed);
    const key: number[] = [];
    do {
      key.push(n % 2 ** 32);
      n = Math.floor(n / 2 ** 32);
    } while (n > 0);
    this.#initByArray(key);
  }

  #initGenrand(s: number) {
    const mt = this.#mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.#i = N;
  }

  #initByArray(key: number[]) {
    const mt = this.#mt;
    this.#initGenrand(19650218);
    let i = 1, j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = ((mt[i] ^ Math.imul(prev, 1664525)) + key[j] + j) >>> 0;
      i++, j++;
      if (i >= N) (mt[0] = mt[N - 1]), (i = 1);
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = ((mt[i] ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) (mt[0] = mt[N - 1]), (i = 1);
    }
    mt[0] = 0x80000000;
  }

  /** The next 32-bit output (genrand_uint32). */
  uint32(): number {
    const mt = this.#mt;
    if (this.#i >= N) {
      for (let k = 0; k < N; k++) {
        const y = (mt[k] & 0x80000000) | (mt[(k + 1) % N] & 0x7fffffff);
        mt[k] = mt[(k + M) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.#i = 0;
    }
    let y = mt[this.#i++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  getrandbits(k: number): number {
    if (!(Number.isInteger(k) && k >= 1 && k <= 32)) throw new Error(`getrandbits: 1 ≤ k ≤ 32, got ${k}`);
    return this.uint32() >>> (32 - k);
  }

  /** random.random(): 53 random bits as a float in [0, 1) (genrand_res53). */
  random(): number {
    const a = this.uint32() >>> 5, b = this.uint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** random.randint(a, b): uniform on [a, b], by rejection on bit_length(b − a + 1) bits. */
  randint(a: number, b: number): number {
    const n = b - a + 1;
    if (!(Number.isInteger(n) && n >= 1 && n <= 2 ** 32)) {
      throw new Error(`randint: empty or too wide range [${a}, ${b}]`);
    }
    const k = n.toString(2).length; // int.bit_length()
    let r = this.getrandbits(Math.min(k, 32));
    while (r >= n) r = this.getrandbits(Math.min(k, 32));
    return a + r;
  }
}
