// Every non-matmul kernel against its float64 CPU reference on awkward sizes, outputs poisoned
// beforehand (an unwritten element is NaN and fails), and the split-across-bindings paths.

import assert from "node:assert/strict";
import * as ref from "../../lib/cpu/ref.ts";
import { randInts, randn } from "../../lib/cpu/random.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { readF32, type Tensor, upload } from "../../lib/gpu/tensor.ts";
import { gelu, relu } from "../../lib/kernels/activation.ts";
import { addInPlace } from "../../lib/kernels/add.ts";
import { attention } from "../../lib/kernels/attention.ts";
import { embedding } from "../../lib/kernels/embedding.ts";
import { layernorm } from "../../lib/kernels/layernorm.ts";
import { rmsnorm } from "../../lib/kernels/rmsnorm.ts";
import { rope, ropeTable } from "../../lib/kernels/rope.ts";
import { siluMul } from "../../lib/kernels/silu_mul.ts";
import { logSoftmax, tokenNll } from "../../lib/kernels/token_nll.ts";
import { assertClose, assertSameBits, getGpu, poisoned, poisonNext, withBindingLimit } from "../helpers.ts";

const TOL = 1e-5;
const gpu = await getGpu();

async function run(f: (b: Batch) => Tensor): Promise<Float32Array> {
  const b = new Batch(gpu);
  const t = f(b);
  await b.submit();
  return await readF32(t);
}

Deno.test("embedding gathers rows, also from a table split across bindings", async () => {
  const [V, D, T] = [97, 45, 11]; // output 1980 bytes: fits the lowered limit, the table does not
  const table = randn(V * D, 1), ids = randInts(T, V, 2);
  ids[0] = V - 1;
  ids[1] = 0;
  const want = ref.embedding(ids, table, D);
  for (const limit of [gpu.maxBinding, 2048]) {
    await withBindingLimit(gpu, limit, async () => {
      poisonNext(gpu, T * D);
      const got = await run((b) => embedding(b, upload(gpu, ids, [T]), upload(gpu, table, [V, D])));
      assertClose(got, want, TOL, `embedding (binding limit ${limit})`);
    });
  }
});

Deno.test("rmsnorm matches float64", async () => {
  for (const [rows, D] of [[1, 1], [7, 67], [33, 256]]) {
    const x = randn(rows * D, rows), w = randn(D, D);
    const got = await run((b) =>
      rmsnorm(b, upload(gpu, x, [rows, D]), upload(gpu, w, [D]), 1e-5, poisoned(gpu, [rows, D]))
    );
    assertClose(got, ref.rmsnorm(x, w, D, 1e-5), TOL, `rmsnorm ${rows}×${D}`);
  }
});

// The texture variant (a thread per row, the workgroup's 64 partials as registers, same tree)
// must give the workgroup kernel's bits; D a multiple of 64, rows off the 8-thread workgroups,
// and row windows (bindings of 8 rows).
Deno.test("rmsnorm variants (workgroup, texture) give the same bits, windowed too", async () => {
  for (const [rows, D] of [[1, 64], [13, 256], [37, 768]]) {
    const x = randn(rows * D, rows + D), w = randn(D, D + 1);
    const go = (v: "workgroup" | "texture") =>
      run((b) =>
        rmsnorm(b, upload(gpu, x, [rows, D]), upload(gpu, w, [D]), 1e-5, poisoned(gpu, [rows, D]), v)
      );
    const tex = await go("texture");
    assert.deepStrictEqual(tex, await go("workgroup"), `rmsnorm ${rows}×${D}`);
    assertClose(tex, ref.rmsnorm(x, w, D, 1e-5), TOL, `rmsnorm texture ${rows}×${D}`);
    await withBindingLimit(gpu, 8 * D * 4, async () => {
      assert.deepStrictEqual(await go("texture"), tex, `rmsnorm ${rows}×${D}, windows of 8 rows`);
    });
  }
});

Deno.test("rmsnorm and layernorm window rows past the binding limit", async () => {
  const [rows, D] = [50, 40];
  const x = randn(rows * D, 3), w = randn(D, 4), bias = randn(D, 5);
  await withBindingLimit(gpu, 1024, async () => {
    const r = await run((b) =>
      rmsnorm(b, upload(gpu, x, [rows, D]), upload(gpu, w, [D]), 1e-6, poisoned(gpu, [rows, D]))
    );
    assertClose(r, ref.rmsnorm(x, w, D, 1e-6), TOL, "rmsnorm windowed");
    const l = await run((b) =>
      layernorm(
        b,
        upload(gpu, x, [rows, D]),
        upload(gpu, w, [D]),
        upload(gpu, bias, [D]),
        1e-5,
        poisoned(gpu, [rows, D]),
      )
    );
    assertClose(l, ref.layernorm(x, w, bias, D, 1e-5), TOL, "layernorm windowed");
  });
});

Deno.test("layernorm matches float64, including rows with a large mean", async () => {
  for (const [rows, D] of [[3, 5], [9, 130]]) {
    const x = randn(rows * D, D).map((v) => v + 50); // centred variance keeps precision here
    const w = randn(D, 1), bias = randn(D, 2);
    const got = await run((b) =>
      layernorm(
        b,
        upload(gpu, x, [rows, D]),
        upload(gpu, w, [D]),
        upload(gpu, bias, [D]),
        1e-5,
        poisoned(gpu, [rows, D]),
      )
    );
    assertClose(got, ref.layernorm(x, w, bias, D, 1e-5), TOL, `layernorm ${rows}×${D}`);
  }
});

Deno.test("rope rotates halves with transformers' convention, per sequence", async () => {
  const [T, H, Dh, seq] = [12, 3, 10, 6]; // two sequences of 6
  const x = randn(T * H * Dh, 6);
  const table = ropeTable(gpu, Dh, 64, 10000);
  const X = upload(gpu, x, [T, H * Dh]);
  const got = await run((b) => (rope(b, X, table, H, seq, 5), X));
  assertClose(got, ref.rope(x, T, H, Dh, 10000, seq, 5), TOL, "rope");
});

// The 520-token case would exceed llvmpipe's 65535-loop-iterations-per-invocation cap if one
// thread walked all keys (it did, and rows past ~496 came out wrong).
Deno.test("causal attention with grouped KV heads matches float64 (both variants)", async () => {
  for (
    const [T, seq, Hq, Hkv, Dh, variant] of ([
      [1, 1, 1, 1, 4],
      [10, 5, 4, 2, 16],
      [75, 75, 6, 2, 36],
      [8, 8, 2, 2, 64],
      [520, 520, 2, 1, 64],
      [70, 35, 2, 2, 128], // "rows": 8 rows per thread, groups that end inside a sequence
      [18, 9, 1, 1, 256],
    ] as const).flatMap((c) => (["keys", "rows"] as const).map((v) => [...c, v] as const))
  ) {
    const q = randn(T * Hq * Dh, T), k = randn(T * Hkv * Dh, Dh), v = randn(T * Hkv * Dh, Hq);
    poisonNext(gpu, T * Hq * Dh);
    const got = await run((b) =>
      attention(
        b,
        upload(gpu, q, [T, Hq * Dh]),
        upload(gpu, k, [T, Hkv * Dh]),
        upload(gpu, v, [T, Hkv * Dh]),
        {
          seq,
          heads: Hq,
          kvHeads: Hkv,
          headDim: Dh,
          variant,
        },
      )
    );
    assertClose(
      got,
      ref.attention(q, k, v, T, seq, Hq, Hkv, Dh),
      TOL,
      `attention ${variant} T=${T} Hq=${Hq} Hkv=${Hkv} Dh=${Dh}`,
    );
  }
});

// The "rows" variant reads K/V from storage or through textures (the CPU adapter's default where
// rows are 256-byte multiples): the same values, so the same bits — with a KV cache longer than q.
Deno.test("attention rows: K/V through textures and from storage give the same bits", async () => {
  for (
    const [T, seq, Hq, Hkv, Dh, P] of [
      [8, 8, 2, 2, 64, 0],
      [70, 35, 2, 2, 128, 0],
      [18, 9, 1, 1, 256, 0],
      [5, 5, 4, 2, 32, 7],
    ] as const
  ) {
    const q = randn(T * Hq * Dh, T + 1),
      k = randn((P + T) * Hkv * Dh, Dh + 1),
      v = randn((P + T) * Hkv * Dh, 3);
    const go = (kvTexture: boolean) => {
      poisonNext(gpu, T * Hq * Dh);
      return run((b) =>
        attention(
          b,
          upload(gpu, q, [T, Hq * Dh]),
          upload(gpu, k, [P + T, Hkv * Dh]),
          upload(gpu, v, [P + T, Hkv * Dh]),
          { seq, heads: Hq, kvHeads: Hkv, headDim: Dh, pos0: P, variant: "rows", kvTexture },
        )
      );
    };
    const tex = await go(true);
    assert.deepStrictEqual(tex, await go(false), `T=${T} Dh=${Dh} pos0=${P}`);
    if (P === 0) assertClose(tex, ref.attention(q, k, v, T, seq, Hq, Hkv, Dh), TOL, `rows texture Dh=${Dh}`);
  }
});

Deno.test("attention and RoPE past the binding limit: split by sequences, a long sequence by query rows; same bits", async () => {
  // [T, seq, Hq, Hkv, Dh, limit]: 3 sequences with one per window; one sequence of 96 rows in
  // query windows of 48 (q rows are 1 KiB, K/V rows 512 B: K/V of the whole sequence fit 48 KiB).
  for (
    const [T, seq, Hq, Hkv, Dh, limit] of [[3 * 40, 40, 4, 2, 64, 40 * 1024], [
      96,
      96,
      4,
      2,
      64,
      48 * 1024,
    ]] as const
  ) {
    const q = randn(T * Hq * Dh, 41), k = randn(T * Hkv * Dh, 42), v = randn(T * Hkv * Dh, 43);
    const table = ropeTable(gpu, Dh, 128, 10000);
    for (const variant of ["keys", "rows"] as const) {
      const go = () => {
        poisonNext(gpu, T * Hq * Dh);
        return run((b) => {
          const qt = upload(gpu, q, [T, Hq * Dh]);
          rope(b, qt, table, Hq, seq);
          return attention(b, qt, upload(gpu, k, [T, Hkv * Dh]), upload(gpu, v, [T, Hkv * Dh]), {
            seq,
            heads: Hq,
            kvHeads: Hkv,
            headDim: Dh,
            variant,
          });
        });
      };
      const whole = await go();
      const split = await withBindingLimit(gpu, limit, go);
      assertSameBits(split, whole, `${variant} T=${T} seq=${seq} at ${limit} bytes`);
    }
    table.cos.release(), table.sin.release();
  }
  // K/V of one sequence over the limit: refused, naming it.
  const b = new Batch(gpu);
  const t = upload(gpu, randn(64 * 256, 1), [64, 256]);
  await withBindingLimit(gpu, 16384, () => {
    assert.throws(
      () => attention(b, t, t, t, { seq: 64, heads: 4, kvHeads: 4, headDim: 64 }),
      /K\/V of one sequence \(64 positions × 1024 bytes\) exceed the max storage binding/,
    );
    return Promise.resolve();
  });
  t.release();
});

Deno.test("attention: a KV-cache chunk (pos0 > 0) gives the same rows in both variants; rows refuses past the loop cap", async () => {
  const [P, T, Hq, Hkv, Dh] = [7, 5, 4, 2, 16];
  const q = randn(T * Hq * Dh, 31), k = randn((P + T) * Hkv * Dh, 32), v = randn((P + T) * Hkv * Dh, 33);
  const go = (variant: "keys" | "rows") =>
    run((b) =>
      attention(
        b,
        upload(gpu, q, [T, Hq * Dh]),
        upload(gpu, k, [P + T, Hkv * Dh]),
        upload(gpu, v, [P + T, Hkv * Dh]),
        {
          seq: T,
          heads: Hq,
          kvHeads: Hkv,
          headDim: Dh,
          pos0: P,
          variant,
        },
      )
    );
  assertClose(await go("rows"), await go("keys"), 1e-6, "attention rows vs keys with pos0");
  if (gpu.isFallback) {
    const n = 65536, D = 4; // a thread's loop runs once per key: 65536 keys are past the cap
    const big = upload(gpu, new Float32Array(n * D), [n, D]);
    const b = new Batch(gpu);
    assert.throws(
      () => attention(b, big, big, big, { seq: n, heads: 1, kvHeads: 1, headDim: D, variant: "rows" }),
      /loop cap/,
    );
    big.release();
  }
});

Deno.test("silu·mul, relu, gelu and residual add match float64", async () => {
  const n = 1001;
  const g = randn(n, 7, 4), u = randn(n, 8);
  poisonNext(gpu, n);
  assertClose(
    await run((b) => siluMul(b, upload(gpu, g, [n]), upload(gpu, u, [n]))),
    ref.siluMul(g, u),
    TOL,
    "silu_mul",
  );
  const R = upload(gpu, g, [n]);
  assertClose(await run((b) => (relu(b, R), R)), ref.relu(g), TOL, "relu");
  const G = upload(gpu, g, [n]);
  assertClose(await run((b) => (gelu(b, G), G)), ref.gelu(g), TOL, "gelu");
  const A = upload(gpu, g, [n]);
  assertClose(await run((b) => (addInPlace(b, A, upload(gpu, u, [n])), A)), ref.add(g, u), TOL, "add");
});

Deno.test("gelu is accurate in relative terms on its negative tail", async () => {
  const x = Float32Array.from({ length: 64 }, (_, i) => -8 + i * 0.125);
  const X = upload(gpu, x, [64]);
  const got = await run((b) => (gelu(b, X), X));
  const want = ref.gelu(x);
  for (let i = 0; i < x.length; i++) {
    const rel = Math.abs(got[i] - want[i]) / Math.max(Math.abs(want[i]), 1e-30);
    // Written so that NaN fails: !(rel <= tol) is true for NaN, rel > tol is not.
    if (!(rel <= 1e-5) && Math.abs(want[i]) > 1e-30) {
      throw new Error(`gelu(${x[i]}) = ${got[i]}, want ${want[i]}`);
    }
  }
});

Deno.test("elementwise ops window flat tensors past the binding limit", async () => {
  const n = 3000;
  const g = randn(n, 9), u = randn(n, 10);
  await withBindingLimit(gpu, 2048, async () => {
    poisonNext(gpu, n);
    assertClose(
      await run((b) => siluMul(b, upload(gpu, g, [n]), upload(gpu, u, [n]))),
      ref.siluMul(g, u),
      TOL,
      "silu_mul",
    );
    const A = upload(gpu, g, [n]);
    assertClose(
      await run((b) => (addInPlace(b, A, upload(gpu, u, [n])), A)),
      ref.add(g, u),
      TOL,
      "add windowed",
    );
  });
});

// The texture NLL (a thread per row, the workgroup's 64 partials as registers) must give the
// workgroup kernel's bits: large logits, V = 576, 300 rows in windows (texture height capped).
Deno.test("token NLL variants (workgroup, texture) give the same bits, windowed too", async () => {
  const [rows, V] = [300, 576];
  const logits = randn(rows * V, 13, 8).map((v, i) => (i % 89 === 0 ? v + 80 : v));
  const targets = randInts(rows, V, 14);
  const L = upload(gpu, logits, [rows, V]), Tg = upload(gpu, targets, [rows]);
  const go = (v: "workgroup" | "texture") => {
    poisonNext(gpu, rows);
    return run((b) => tokenNll(b, L, Tg, V, v));
  };
  const tex = await go("texture");
  assert.deepStrictEqual(tex, await go("workgroup"));
  assertClose(tex, ref.tokenNll(logits, targets, V), TOL, "token_nll texture");
  const saved = gpu.maxTexture2D;
  gpu.maxTexture2D = 150; // windows of 128 rows (aligned): 3
  try {
    assert.deepStrictEqual(await go("texture"), tex, "token_nll texture, windowed");
  } finally {
    gpu.maxTexture2D = saved;
  }
});

Deno.test("token NLL and log-softmax match float64, with large logits and split rows", async () => {
  const [rows, V] = [37, 515];
  const logits = randn(rows * V, 11, 8).map((v, i) => (i % 97 === 0 ? v + 80 : v)); // overflow without max shift
  const targets = randInts(rows, V, 12);
  for (const limit of [gpu.maxBinding, 20000]) {
    await withBindingLimit(gpu, limit, async () => {
      const L = upload(gpu, logits, [rows, V]);
      poisonNext(gpu, rows);
      const nll = await run((b) => tokenNll(b, L, upload(gpu, targets, [rows]), V));
      assertClose(nll, ref.tokenNll(logits, targets, V), TOL, `token_nll (limit ${limit})`);
      poisonNext(gpu, rows * V);
      assertClose(await run((b) => logSoftmax(b, L, V)), ref.logSoftmax(logits, V), TOL, "log_softmax");
    });
  }
});
