// bitsandbytes' 4-bit storage: codes of the flattened (row-major) weight, two per byte, the even
// element in the high nibble. An odd count leaves the last low nibble zero.

export function packBnb4(codes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(codes.length / 2));
  for (let i = 0; i < codes.length; i++) out[i >> 1] |= (codes[i] & 15) << (i & 1 ? 0 : 4);
  return out;
}

export function unpackBnb4(packed: Uint8Array, n: number): Uint8Array {
  if (packed.length !== Math.ceil(n / 2)) {
    throw new Error(`bitsandbytes 4-bit: ${packed.length} bytes cannot hold ${n} codes`);
  }
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (packed[i >> 1] >> (i & 1 ? 0 : 4)) & 15;
  return out;
}
