// The backward kernels against their float64 CPU references (lib/cpu/grad_ref.ts), and those
// references against directional finite differences of the float64 forward references.

import assert from "node:assert";
import * as ref from "../../lib/cpu/ref.ts";
import * as gref from "../../lib/cpu/grad_ref.ts";
import { randn } from "../../lib/cpu/random.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { readF32, type Tensor, upload } from "../../lib/gpu/tensor.ts";
import { attentionBackward } from "../../lib/kernels/attention_backward.ts";
import { backwardRowsFit } from "../../lib/kernels/attention_backward_rows.ts";
import { attention } from "../../lib/kernels/attention.ts";
import { reluBackward, siluMulBackward } from "../../lib/kernels/elementwise_backward.ts";
import { mse, mseValue } from "../../lib/kernels/mse.ts";
import { layernormBackward, rmsnormBackward } from "../../lib/kernels/norm_backward.ts";
import { rope, ropeTable } from "../../lib/kernels/rope.ts";
import { signSgdStep } from "../../lib/kernels/sign_sgd.ts";
import { transpose } from "../../lib/kernels/transpose.ts";
import { assertClose, assertSameBits, getGpu, poisonNext, withBindingLimit } from "../helpers.ts";

const gpu = await getGpu();
const TOL = 2e-5;
const up = (x: ArrayLike<number>, shape: number[]) => upload(gpu, Float32Array.from(x), shape, "in");

async function run(f: (b: Batch) => Tensor[]): Promise<Float32Array[]> {
  const b = new Batch(gpu);
  const ts = f(b);
  await b.done();
  return await Promise.all(ts.map((t) => readF32(t)));
}

/** ⟨analytic dx, d⟩ against the finite difference of the float64 forward along d. */
function assertFd(
  f: (x: Float64Array) => ArrayLike<number>,
  x: ArrayLike<number>,
  dx: ArrayLike<number>,
  dy: ArrayLike<number>,
  what: string,
) {
  const d = randn(x.length, 99);
  const fd = gref.directional(f, x, d, dy);
  const an = gref.dot(dx, d);
  if (!(Math.abs(fd - an) <= 1e-6 * Math.max(1, Math.abs(fd)))) {
    throw new Error(`${what}: finite difference ${fd} vs analytic ${an}`);
  }
}

Deno.test("rmsnorm and layernorm backward: float64 reference = finite differences, GPU = reference (rows split across bindings too)", async () => {
  const [R, D, eps] = [7, 48, 1e-5];
  const x = randn(R * D, 1), w = randn(D, 2), bias = randn(D, 3), dy = randn(R * D, 4);
  const rms = gref.rmsnormBackward(x, w, dy, D, eps);
  assertFd((v) => ref.rmsnorm(v, w, D, eps), x, rms, dy, "rmsnorm");
  const ln = gref.layernormBackward(x, w, dy, D, eps);
  assertFd((v) => ref.layernorm(v, w, bias, D, eps), x, ln, dy, "layernorm");
  for (const limit of [undefined, 3 * D * 4]) {
    const go = async () => {
      const [a, c] = await run((b) => [
        rmsnormBackward(b, up(x, [R, D]), up(w, [D]), up(dy, [R, D]), eps),
        layernormBackward(b, up(x, [R, D]), up(w, [D]), up(dy, [R, D]), eps),
      ]);
      assertClose(a, rms, TOL, `rmsnorm_backward (limit ${limit})`);
      assertClose(c, ln, TOL, `layernorm_backward (limit ${limit})`);
    };
    if (limit) await withBindingLimit(gpu, limit, go);
    else await go();
  }
});

Deno.test("RoPE backward is the inverse rotation: reference = finite differences, GPU = reference", async () => {
  const [T, H, Dh, seq, theta] = [10, 3, 8, 5, 10000];
  const x = randn(T * H * Dh, 5), dy = randn(T * H * Dh, 6);
  const dx = gref.ropeBackward(dy, T, H, Dh, theta, seq);
  assertFd((v) => ref.rope(v, T, H, Dh, theta, seq), x, dx, dy, "rope");
  const table = ropeTable(gpu, Dh, 64, theta);
  const [g] = await run((b) => {
    const t = up(dy, [T, H * Dh]);
    rope(b, t, table, H, seq, 0, true);
    return [t];
  });
  assertClose(g, dx, 1e-5, "rope inverse");
});

Deno.test("attention backward with grouped KV heads: reference = finite differences in q, k, v; GPU = reference", async () => {
  // The last three fit the "rows" variant (heads·Dh in 64s); seq 21 and 13 leave a partial group of R rows.
  const shapes = [
    [9, 2, 4, 2, 8],
    [40, 1, 2, 1, 36],
    [70, 1, 3, 3, 4],
    [21, 2, 4, 2, 64],
    [13, 3, 2, 2, 32],
    [
      10,
      1,
      2,
      1,
      128,
    ],
  ];
  for (const [seq, B, Hq, Hkv, Dh] of shapes) {
    const T = seq * B;
    const q = randn(T * Hq * Dh, 7), k = randn(T * Hkv * Dh, 8), v = randn(T * Hkv * Dh, 9);
    const dout = randn(T * Hq * Dh, 10);
    const r = gref.attentionBackward(q, k, v, dout, T, seq, Hq, Hkv, Dh);
    const att = (a: ArrayLike<number>, bb: ArrayLike<number>, c: ArrayLike<number>) =>
      ref.attention(a, bb, c, T, seq, Hq, Hkv, Dh);
    assertFd((x) => att(x, k, v), q, r.dq, dout, "attention dq");
    assertFd((x) => att(q, x, v), k, r.dk, dout, "attention dk");
    assertFd((x) => att(q, k, x), v, r.dv, dout, "attention dv");
    const s = { seq, heads: Hq, kvHeads: Hkv, headDim: Dh };
    const rows = backwardRowsFit(gpu, T, s);
    for (const backward of ["keys", ...(rows ? ["rows"] as const : [])] as const) {
      const [dq, dk, dv] = await run((b) => {
        const [tq, tk, tv] = [up(q, [T, Hq * Dh]), up(k, [T, Hkv * Dh]), up(v, [T, Hkv * Dh])];
        const o = attention(b, tq, tk, tv, s);
        // Outputs start as NaN: every element must be written.
        for (const n of [T * Hq * Dh, T * Hkv * Dh, T * Hkv * Dh]) poisonNext(gpu, n);
        const g = attentionBackward(b, tq, tk, tv, o, up(dout, [T, Hq * Dh]), { ...s, backward });
        return [g.dq, g.dk, g.dv];
      });
      const what = `${backward} seq=${seq} B=${B} Hq=${Hq} Hkv=${Hkv} Dh=${Dh}`;
      assertClose(dq, r.dq, 1e-4, `dq ${what}`);
      assertClose(dk, r.dk, 1e-4, `dk ${what}`);
      assertClose(dv, r.dv, 1e-4, `dv ${what}`);
    }
    if ((Hq * Dh) % 64 === 0 && (Hkv * Dh) % 64 === 0) {
      assert.ok(rows, `seq=${seq} Dh=${Dh}: rows should fit`);
    }
  }
});

Deno.test("attention backward past the binding limit: split by whole sequences, same bits", async () => {
  // 4 sequences of 16 rows; q rows of 1 KiB: a 16 KiB limit holds one sequence per window.
  const [seq, B, Hq, Hkv, Dh] = [16, 4, 4, 2, 64], T = seq * B;
  const q = randn(T * Hq * Dh, 17), k = randn(T * Hkv * Dh, 18), v = randn(T * Hkv * Dh, 19);
  const dout = randn(T * Hq * Dh, 20);
  const s = { seq, heads: Hq, kvHeads: Hkv, headDim: Dh, variant: "keys" as const };
  for (const backward of ["keys", "rows"] as const) {
    const go = () =>
      run((b) => {
        const [tq, tk, tv] = [up(q, [T, Hq * Dh]), up(k, [T, Hkv * Dh]), up(v, [T, Hkv * Dh])];
        const o = attention(b, tq, tk, tv, s);
        const g = attentionBackward(b, tq, tk, tv, o, up(dout, [T, Hq * Dh]), { ...s, backward });
        return [g.dq, g.dk, g.dv];
      });
    const whole = await go();
    const split = await withBindingLimit(gpu, 16384, go);
    for (const [i, name] of ["dq", "dk", "dv"].entries()) {
      assertSameBits(split[i], whole[i], `${backward} ${name}`);
    }
  }
  await withBindingLimit(gpu, 8192, () => {
    const [tq, tk] = [up(q, [T, Hq * Dh]), up(k, [T, Hkv * Dh])];
    assert.throws(
      () => attentionBackward(new Batch(gpu), tq, tk, tk, tq, tq, s),
      /one sequence \(16 rows × 1024 bytes\) exceeds the max storage binding/,
    );
    return Promise.resolve();
  });
});

Deno.test("SiLU·mul and ReLU backward: reference = finite differences, GPU = reference", async () => {
  const n = 1000;
  const g = randn(n, 11, 3), u = randn(n, 12), dh = randn(n, 13);
  const r = gref.siluMulBackward(g, u, dh);
  assertFd((x) => ref.siluMul(x, u), g, r.dg, dh, "silu·mul d gate");
  assertFd((x) => ref.siluMul(g, x), u, r.du, dh, "silu·mul d up");
  const rl = gref.reluBackward(g, dh);
  assertFd((x) => ref.relu(x), g, rl, dh, "relu");
  const [dg, du, dr] = await run((b) => {
    const [a, c] = siluMulBackward(b, up(g, [n]), up(u, [n]), up(dh, [n]));
    const y = up(ref.relu(g), [n]);
    return [a, c, reluBackward(b, y, up(dh, [n]))];
  });
  assertClose(dg, r.dg, TOL, "silu_mul dgate");
  assertClose(du, r.du, TOL, "silu_mul dup");
  assertClose(dr, rl, 1e-12, "relu_backward"); // exact: a copy or a zero
});

Deno.test("MSE loss and gradient, transpose, signed SGD step", async () => {
  const n = 1234;
  const y = randn(n, 14), t = randn(n, 15);
  const b = new Batch(gpu);
  const m = mse(b, up(y, [n]), up(t, [n]));
  const tr = transpose(b, up(y.subarray(0, 37 * 33), [37, 33]), 37, 33);
  const p = up([0.3, -0.2, 0.5, 1, 0], [5]), pc = up([0.3, 0.9, 0.05, 1, 0.5], [5]);
  const gr = up([1, -2, 0, -1, 3], [5]);
  signSgdStep(b, p, gr, 0.1, false);
  signSgdStep(b, pc, gr, 0.1, true);
  await b.done();
  let want = 0;
  for (let i = 0; i < n; i++) want += (y[i] - t[i]) ** 2 / n;
  const loss = await mseValue(m);
  if (!(Math.abs(loss - want) < 1e-5 * want)) throw new Error(`mse ${loss} vs ${want}`);
  assertClose(await readF32(m.dy), Float64Array.from(y, (v, i) => (2 * (v - t[i])) / n), TOL, "mse grad");
  const T = await readF32(tr);
  for (let r = 0; r < 37; r++) {
    for (let c = 0; c < 33; c++) {
      if (T[c * 37 + r] !== y[r * 33 + c]) throw new Error(`transpose [${r}, ${c}]`);
    }
  }
  assertClose(await readF32(p), [0.2, -0.1, 0.5, 1.1, -0.1], 1e-6, "sign step");
  assertClose(await readF32(pc), [0.2, 1, 0.05, 1, 0.4], 1e-6, "sign step clamped to [0, 1]");
});

Deno.test("MSE, transpose and signed SGD split over a lowered binding limit equal their unsplit results", async () => {
  const n = 5000, [R, C] = [128, 36];
  const y = randn(n, 21), t = randn(n, 22), g = randn(n, 23), p0 = randn(n, 24, 0.5);
  const go = async () => {
    const b = new Batch(gpu);
    const m = mse(b, up(y, [n]), up(t, [n]));
    const tr = transpose(b, up(y.subarray(0, R * C), [R, C]), R, C);
    const p = up(p0, [n]), pc = up(p0, [n]), gr = up(g, [n]);
    signSgdStep(b, p, gr, 0.01, false);
    signSgdStep(b, pc, gr, 0.01, true);
    await b.done();
    return [await mseValue(m), await readF32(m.dy), await readF32(tr), await readF32(p), await readF32(pc)];
  };
  const whole = await go();
  // 8 KiB: mse in 3 windows of 8 workgroups, x [128, 36] in 3 row windows × out [36, 128] in 3,
  // the SGD steps in 3 flat windows.
  const split = await withBindingLimit(gpu, 8192, go);
  assert.deepStrictEqual(split, whole);
  const T = whole[2] as Float32Array;
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      assert.strictEqual(T[c * R + r], Math.fround(y[r * C + c]), `transpose [${r}, ${c}]`);
    }
  }
});
