// Little-endian bit streams in 32-bit words: value i occupies bits [b·i, b·i + b) of the stream,
// word ⌊b·i / 32⌋; a value may straddle two words (3-bit). This is GPTQ's int32 packing, 3-bit
// included (32 values in 3 words, values 10 and 21 split across word boundaries).

/** Pack `n` values (each < 2^bits) read by `get(i)` into ⌈n·bits/32⌉ words. */
export function packBits(n: number, bits: number, get: (i: number) => number): Uint32Array<ArrayBuffer> {
  const out = new Uint32Array(Math.ceil((n * bits) / 32));
  for (let i = 0; i < n; i++) {
    const v = get(i), pos = i * bits, w = pos >>> 5, s = pos & 31;
    out[w] = (out[w] | (v << s)) >>> 0;
    if (s + bits > 32) out[w + 1] = (out[w + 1] | (v >>> (32 - s))) >>> 0;
  }
  return out;
}

/** Read value i of a stream packed by packBits. */
export function unpackBit(words: ArrayLike<number>, bits: number, i: number): number {
  const pos = i * bits, w = pos >>> 5, s = pos & 31, mask = (1 << bits) - 1;
  let v = words[w] >>> s;
  if (s + bits > 32) v |= words[w + 1] << (32 - s);
  return v & mask;
}
