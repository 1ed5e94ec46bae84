// Exchange formats: byte-exact pack → unpack round trips over odd shapes for each format, and a
// hand-computed vector per format.

import assert from "node:assert";
import { randInts, randn } from "../../lib/cpu/random.ts";
import { AWQ_ORDER, packAwq, unpackAwq } from "../../lib/quant/pack/awq.ts";
import { packBnb4, unpackBnb4 } from "../../lib/quant/pack/bnb.ts";
import { packBits, unpackBit } from "../../lib/quant/pack/bitstream.ts";
import { packGptq, unpackGptq } from "../../lib/quant/pack/gptq.ts";
import { packHqq, unpackHqq } from "../../lib/quant/pack/hqq.ts";
import type { QuantRecord } from "../../lib/quant/record.ts";
import { quantizeUniform } from "../../lib/quant/uniform.ts";

const rec = (bits: number, out: number, inp: number, gs: number, seed: number): QuantRecord =>
  quantizeUniform("l", randn(out * inp, seed), [out, inp], {
    bits,
    groupSize: gs,
    sym: false,
    range: "include-zero",
  });

Deno.test("GPTQ v1: hand-computed words, 3-bit values straddling word boundaries", () => {
  // 4-bit: codes 1..8 down a column → one word, code k at bits 4k.
  assert.deepStrictEqual([...packBits(8, 4, (i) => i + 1)], [0x87654321]);
  // 3-bit: value 10 = 0b101 straddles words 0/1, value 21 = 0b110 straddles words 1/2.
  const v = new Array(32).fill(0);
  v[10] = 5;
  v[21] = 6;
  assert.deepStrictEqual([...packBits(32, 3, (i) => v[i])], [0x40000000, 0x1, 0x3]);
  assert.deepStrictEqual([...packBits(32, 3, () => 7)], [0xffffffff, 0xffffffff, 0xffffffff]);
  assert.strictEqual(unpackBit(new Uint32Array([0x40000000, 1, 3]), 3, 10), 5);
  assert.strictEqual(unpackBit(new Uint32Array([0x40000000, 1, 3]), 3, 21), 6);
});

Deno.test("GPTQ v1: zeros stored minus one, scales and g_idx; round trips at 2/3/4/8 bits", () => {
  const r = rec(4, 8, 16, 8, 1);
  r.zeros!.fill(0).set([3, 7], 0); // row 0: zeros 3, 7 (groups 0, 1); other rows 0 (stored as −1 & 15 = 15)
  const t = packGptq(r);
  assert.strictEqual(t.qzeros[0] & 0xf, 2, "row 0, group 0: zero 3 is stored as 2");
  assert.strictEqual((t.qzeros[0] >>> 4) & 0xf, 15, "row 1, group 0: zero 0 wraps to 15");
  assert.strictEqual(t.qzeros[1] & 0xf, 6, "row 0, group 1: zero 7 is stored as 6");
  for (const bits of [2, 3, 4, 8]) {
    for (const [out, inp, gs] of [[32, 64, 32], [96, 96, 96], [64, 160, 32]]) {
      const a = rec(bits, out, inp, gs, out + inp + bits);
      const b = unpackGptq("l", packGptq(a), [out, inp], bits, gs);
      assert.deepStrictEqual(b.codes, a.codes, `codes W${bits} [${out}, ${inp}]`);
      assert.deepStrictEqual(b.zeros, a.zeros, `zeros W${bits}`);
      assert.deepStrictEqual(b.scales, a.scales, `scales W${bits}`);
    }
  }
  const ao = rec(3, 32, 64, 32, 9);
  ao.gIdx = Int32Array.from({ length: 64 }, (_, k) => (k * 5) % 2);
  assert.deepStrictEqual(unpackGptq("l", packGptq(ao), [32, 64], 3, 32).gIdx, ao.gIdx);
  assert.throws(
    () => packGptq(rec(3, 32, 40, 40, 2)),
    /in·bits and out·bits divisible by 32, got \[32, 40\] at 3 bits/,
  );
});

Deno.test("AWQ GEMM: [0,2,4,6,1,3,5,7] nibble order, hand-computed, and round trips", () => {
  const r = rec(4, 8, 4, 4, 3);
  for (let n = 0; n < 8; n++) r.codes[n * 4] = n; // input 0: output n has code n
  assert.strictEqual(packAwq(r).qweight[0] >>> 0, 0x75316420);
  assert.deepStrictEqual(AWQ_ORDER, [0, 2, 4, 6, 1, 3, 5, 7]);
  for (const [out, inp, gs] of [[8, 4, 4], [24, 96, 32], [40, 128, 128]]) {
    const a = rec(4, out, inp, gs, out * inp);
    const b = unpackAwq("l", packAwq(a), [out, inp], gs);
    assert.deepStrictEqual([b.codes, b.zeros, b.scales], [a.codes, a.zeros, a.scales]);
  }
  assert.throws(() => packAwq(rec(4, 12, 8, 8, 4)), /out-features divisible by 8, got 12/);
  assert.throws(() => packAwq(rec(3, 8, 8, 8, 4)), /4-bit only, got 3/);
});

Deno.test("HQQ planar: hand-computed 4/3/2/1-bit words and round trips over odd shapes", () => {
  assert.deepStrictEqual([...packHqq(Uint8Array.from([3, 9]), 2, 1, 4)], [0x39]); // first half → high nibble
  assert.deepStrictEqual([...packHqq(Uint8Array.from([1, 2, 3, 0]), 4, 1, 2)], [0b01101100]);
  assert.deepStrictEqual([...packHqq(Uint8Array.from([1, 0, 1, 1, 0, 0, 1, 0]), 8, 1, 1)], [0b10110010]);
  const v = [1, 2, 3, 4, 5, 6, 7, 0, 1, 2];
  assert.deepStrictEqual([...packHqq(Uint8Array.from(v), 10, 1, 3)], [
    v.reduce((w, x, s) => w | (x << (27 - 3 * s)), 0),
  ]);
  for (const bits of [1, 2, 3, 4, 8]) {
    for (const [rows, cols] of [[8, 3], [40, 7], [24, 1], [bits === 3 ? 13 : 16, 5]]) {
      const codes = Uint8Array.from(randInts(rows * cols, 1 << bits, rows * cols + bits));
      const packed = packHqq(codes, rows, cols, bits);
      assert.deepStrictEqual(unpackHqq(packed, rows, cols, bits), codes, `W${bits} [${rows}, ${cols}]`);
    }
  }
  assert.throws(() => packHqq(new Uint8Array(6), 3, 2, 4), /4bit_u8 needs rows divisible by 2, got 3/);
});

Deno.test("bitsandbytes 4-bit: even element in the high nibble; round trips, odd lengths", () => {
  assert.deepStrictEqual([...packBnb4(Uint8Array.from([1, 2, 3]))], [0x12, 0x30]);
  for (const n of [1, 2, 63, 64, 1001]) {
    const codes = Uint8Array.from(randInts(n, 16, n));
    assert.deepStrictEqual(unpackBnb4(packBnb4(codes), n), codes);
  }
  assert.throws(() => unpackBnb4(new Uint8Array(2), 5), /2 bytes cannot hold 5 codes/);
});
