// AutoRound's pieces on small shapes: the fake-quant kernel (ŵ, codes, scales, zeros) against the
// float64 reference of auto_round's int.py; its straight-through backward against the reference's
// analytic gradients, and those against finite differences of the STE surrogate; the block
// gradient of the tape (every backward kernel composed) against finite differences of the GPU
// forward, for a Llama block with grouped KV heads and an OPT block.

import assert from "node:assert";
import { randn } from "../../lib/cpu/random.ts";
import { directional, dot } from "../../lib/cpu/grad_ref.ts";
import { PyRandom } from "../../lib/data/pyrandom.ts";
import { Batch } from "../../lib/gpu/kernel.ts";
import { readF32, type Tensor, upload } from "../../lib/gpu/tensor.ts";
import { Tape } from "../../lib/grad/tape.ts";
import { arCodes, arQdq, arQdqBackward } from "../../lib/kernels/autoround.ts";
import { mse, mseValue } from "../../lib/kernels/mse.ts";
import { DenseLinear } from "../../lib/model/linear.ts";
import { loadModel } from "../../lib/load.ts";
import { ArLinear } from "../../lib/quant/autoround_linear.ts";
import { IndexSampler } from "../../lib/quant/autoround.ts";
import { assertClose, getGpu, relErr } from "../helpers.ts";
import { FIXTURES } from "../python.ts";
import { type Grid, qdqBackwardRef, qdqRef, Rounding } from "./autoround_ref.ts";

const gpu = await getGpu();
const [R, C] = [24, 128];

/** W [R, C] with outliers, V uniform in [−0.5, 0.5), min/max factors uniform in [0.6, 1) [R, C/g]. */
function layer(seed: number, g: Grid) {
  const w = randn(R * C, seed, 0.02);
  for (let i = 0; i < 20; i++) w[(i * 997) % w.length] *= 8; // outliers set some groups' ranges
  const r = new PyRandom(seed);
  const uniform = (n: number, lo: number, width: number) =>
    Float32Array.from({ length: n }, () => lo + width * (r.getrandbits(24) / 2 ** 24));
  const G = R * (C / g.groupSize);
  const v = uniform(R * C, -0.5, 1);
  return { w, v, ms: uniform(G, 0.6, 0.4), Ms: uniform(G, 0.6, 0.4), G };
}

const GRIDS: Grid[] = [
  { bits: 4, groupSize: 32, sym: true },
  { bits: 3, groupSize: 64, sym: true },
  { bits: 2, groupSize: 32, sym: false },
  { bits: 4, groupSize: 128, sym: false },
];

Deno.test("AutoRound fake-quant kernel = float64 reference of int.py (sym full range and asym, trained V and min/max)", async () => {
  for (const [n, g] of GRIDS.entries()) {
    const { w, v, ms, Ms, G } = layer(n + 1, g);
    const want = qdqRef(w, v, ms, Ms, R, C, g);
    const b = new Batch(gpu);
    const t = [
      upload(gpu, w, [R, C]),
      upload(gpu, v, [R, C]),
      upload(gpu, ms, [R, G / R]),
      upload(gpu, Ms, [R, G / R]),
    ];
    const wq = arQdq(b, t[0], t[1], t[2], t[3], g);
    const c = arCodes(b, t[0], t[1], t[2], t[3], g);
    await b.done();
    const [got, codes, scales, zeros] = await Promise.all([wq, c.codes, c.scales, c.zeros].map(readF32));
    const what = `${g.bits}-bit g${g.groupSize} ${g.sym ? "sym" : "asym"}`;
    assertClose(scales, want.scales, 1e-6, `scales ${what}`); // float16 values: equal
    assert.deepStrictEqual(Array.from(zeros), Array.from(want.zeros), `zeros ${what}`);
    let off = 0;
    for (let i = 0; i < codes.length; i++) off += codes[i] === want.codes[i] ? 0 : 1;
    // float32 w/s + V against float64: a code may differ only where the sum sits at a .5 tie.
    assert.ok(off <= codes.length * 0.002, `${what}: ${off} codes differ`);
    if (off === 0) assertClose(got, want.wq, 1e-6, `ŵ ${what}`);
    // The code range: sym levels −2^(b−1) … 2^(b−1) − 1 stored +2^(b−1); asym 0 … 2^b − 1.
    assert.ok(codes.every((q) => q >= 0 && q < 2 ** g.bits), `${what}: codes out of range`);
    t.forEach((x) => x.release());
  }
});

Deno.test("AutoRound backward: GPU = float64 STE gradients = finite differences of the straight-through surrogate", async () => {
  for (const [n, g] of GRIDS.entries()) {
    const { w, v, ms, Ms, G } = layer(n + 11, g);
    const dwq = randn(R * C, n + 21);
    // Weights whose level sits on the clamp's edge are a kink of the surrogate (every group's
    // extreme is): their one-sided STE gradient is not a two-sided difference, so they get no upstream gradient.
    const codes0 = qdqRef(w, v, ms, Ms, R, C, g).codes;
    codes0.forEach((q, i) => (q === 0 || q === 2 ** g.bits - 1) && (dwq[i] = 0));
    const want = qdqBackwardRef(w, v, ms, Ms, dwq, R, C, g);
    // Finite differences: every round/cast replaced by x + (its value − x) at the base point.
    const base = new Rounding();
    qdqRef(w, v, ms, Ms, R, C, g, base);
    const f = (x: Float64Array) => {
      const y = qdqRef(
        w,
        x.subarray(0, R * C),
        x.subarray(R * C, R * C + G),
        x.subarray(R * C + G),
        R,
        C,
        g,
        base.surrogate(),
      );
      return [dot(y.wq, dwq)];
    };
    const x0 = Float64Array.from([...v, ...ms, ...Ms]);
    const d = Float64Array.from(randn(x0.length, n + 31));
    const fd = directional(f, x0, d, [1], 1e-7);
    const an = dot(want.gv, d.subarray(0, R * C)) + dot(want.gms, d.subarray(R * C, R * C + G)) +
      dot(want.gMs, d.subarray(R * C + G));
    const what = `${g.bits}-bit g${g.groupSize} ${g.sym ? "sym" : "asym"}`;
    assert.ok(Math.abs(fd - an) <= 1e-5 * Math.abs(an), `${what}: surrogate FD ${fd} vs analytic ${an}`);
    // The min/max part alone (V's part dominates the sum above).
    const dmm = Float64Array.from(d, (x, i) => (i < R * C ? 0 : x));
    const fdm = directional(f, x0, dmm, [1], 1e-7);
    const anm = dot(want.gms, d.subarray(R * C, R * C + G)) + dot(want.gMs, d.subarray(R * C + G));
    assert.ok(Math.abs(fdm - anm) <= 1e-5 * Math.abs(anm), `${what}: min/max FD ${fdm} vs analytic ${anm}`);

    const b = new Batch(gpu);
    const up = (a: Float32Array<ArrayBuffer>, shape: number[]) => upload(gpu, a, shape);
    const out = arQdqBackward(
      b,
      up(w, [R, C]),
      up(v, [R, C]),
      up(ms, [R, G / R]),
      up(Ms, [R, G / R]),
      up(dwq, [R, C]),
      g,
    );
    await b.done();
    assertClose(await readF32(out.gv), want.gv, 1e-5, `dV ${what}`);
    assertClose(await readF32(out.gms), want.gms, 1e-3, `d min_scale ${what}`);
    assertClose(await readF32(out.gMs), want.gMs, 1e-3, `d max_scale ${what}`);
  }
});

Deno.test("IndexSampler: shuffled batches without repeats within a pass, reshuffled when short", () => {
  const s = new IndexSampler(10, 4, new PyRandom(42));
  const a = s.next(), b = s.next(), c = s.next();
  assert.strictEqual(new Set([...a, ...b]).size, 8);
  assert.strictEqual(c.length, 4);
  assert.throws(() => new IndexSampler(3, 4, new PyRandom(0)), /batch 4 must be in 1 … 3/);
});

for (const name of ["tiny-llama", "tiny-opt"]) {
  Deno.test(`block gradient through the tape = finite differences of the GPU forward: ${name} block 1`, async () => {
    const model = await loadModel(gpu, `${FIXTURES}/${name}`);
    const seq = 16, T = 2 * seq, H = model.config.hidden;
    const ar = new Map(
      model.blockLinears(1).map((
        l,
      ) => [l.name, new ArLinear(l as DenseLinear, { bits: 4, groupSize: 64, sym: true })]),
    );
    const x0 = randn(T * H, 5), target = randn(T * H, 6), d = randn(T * H, 7);
    const loss = async (x: Float32Array<ArrayBuffer>, grad: boolean) => {
      const b = new Batch(gpu);
      const tape = new Tape(gpu);
      const xt = upload(gpu, x, [T, H]), tt = upload(gpu, target, [T, H]);
      tape.requireGrad(xt);
      const y = model.gradBlock(tape, b, 1, xt, seq, (n) => ar.get(n)!);
      const m = mse(b, y, tt);
      let g: Tensor | undefined;
      if (grad) tape.backward(b, y, m.dy), (g = tape.grad(xt));
      await b.done();
      const out = { l: await mseValue(m), g: g ? await readF32(g) : null };
      tape.release(), xt.release(), tt.release();
      return out;
    };
    try {
      const { g } = await loss(x0, true);
      const eps = 1e-3; // small enough that few ReLU inputs change sign
      const lp = (await loss(Float32Array.from(x0, (v, i) => v + eps * d[i]), false)).l;
      const lm = (await loss(Float32Array.from(x0, (v, i) => v - eps * d[i]), false)).l;
      const fd = (lp - lm) / (2 * eps), an = dot(g!, d);
      assert.ok(relErr([an], [fd]) < 2e-2, `⟨dL/dx, d⟩ ${an} vs finite difference ${fd}`);
    } finally {
      for (const l of ar.values()) l.release();
      model.release();
    }
  });
}
