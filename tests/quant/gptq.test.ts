// GPTQ on the GPU against the float64 CPU version (gptq_ref.ts) on a random 96×160 layer with a
// random positive-definite H: the same integer codes and the same layer error tr(ΔHΔᵀ).

import assert from "node:assert";
import { randn } from "../../lib/cpu/random.ts";
import { upload } from "../../lib/gpu/tensor.ts";
import { dampLadder, gptqLayer, type GptqOptions } from "../../lib/quant/gptq.ts";
import { dequantize } from "../../lib/quant/record.ts";
import { getGpu, withBindingLimit } from "../helpers.ts";
import { gptqRef } from "./gptq_ref.ts";

const gpu = await getGpu();
const ROWS = 96, COLS = 160;

/** H = (2/n) XᵀX, X [n, d] with neighbouring columns correlated and column scales spread out. */
function randomHessian(d: number, seed: number): Float32Array<ArrayBuffer> {
  const n = 4 * d, z = randn(n * d, seed), s = randn(d, seed + 1, 0.7).map(Math.exp);
  const x = new Float64Array(n * d);
  for (let t = 0; t < n; t++) {
    for (let j = 0; j < d; j++) x[t * d + j] = s[j] * (z[t * d + j] + (j ? 0.6 * z[t * d + j - 1] : 0));
  }
  const h = new Float32Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let acc = 0;
      for (let t = 0; t < n; t++) acc += x[t * d + i] * x[t * d + j];
      h[i * d + j] = (2 / n) * acc;
    }
  }
  return h;
}

/** tr((W − Ŵ) H (W − Ŵ)ᵀ) in float64: the layer's output error up to the factor n/2. */
function layerError(w: Float32Array, wq: ArrayLike<number>, h: ArrayLike<number>, rows: number[]): number {
  let e = 0;
  for (const r of rows) {
    const d = Array.from({ length: COLS }, (_, k) => w[r * COLS + k] - wq[r * COLS + k]);
    for (let i = 0; i < COLS; i++) {
      let s = 0;
      for (let j = 0; j < COLS; j++) s += h[i * COLS + j] * d[j];
      e += d[i] * s;
    }
  }
  return e;
}

async function compare(label: string, o: Required<GptqOptions>, dead: number[] = []) {
  const w = randn(ROWS * COLS, 11, 0.05);
  const h = randomHessian(COLS, 5);
  for (const j of dead) for (let k = 0; k < COLS; k++) h[j * COLS + k] = h[k * COLS + j] = 0;
  const ht = upload(gpu, h, [COLS, COLS], "H");
  const got = await gptqLayer(gpu, "test", w, [ROWS, COLS], ht, o);
  ht.release();
  const want = gptqRef(w, h, ROWS, COLS, { ...o, range: "include-zero" });
  // Ties aside: a row may part from the reference only where it meets a rounding tie (w / scale
  // within 1e-4 of x.5), after which its error feedback differs; every other row must agree exactly.
  const rows: number[] = [];
  for (let r = 0; r < ROWS; r++) {
    const k = Array.from({ length: COLS }, (_, k) => k).find((k) =>
      got.record.codes[r * COLS + k] !== want.codes[r * COLS + k]
    );
    if (k === undefined) rows.push(r);
    else assert.ok(want.ties[r * COLS + k], `${label}: row ${r} differs first at column ${k}, not a tie`);
  }
  assert.ok(rows.length >= ROWS * 0.9, `${label}: only ${rows.length} of ${ROWS} rows agree`);
  const G = got.record.scales.length / ROWS;
  const wqRef = new Float64Array(ROWS * COLS);
  for (let r = 0; r < ROWS; r++) {
    for (let k = 0; k < COLS; k++) {
      const g = want.gIdx[k];
      wqRef[r * COLS + k] = want.scales[r * G + g] * (want.codes[r * COLS + k] - want.zeros[r * G + g]);
    }
  }
  const eGot = layerError(w, dequantize(got.record), h, rows), eRef = layerError(w, wqRef, h, rows);
  const rel = Math.abs(eGot - eRef) / eRef;
  assert.ok(rel < 1e-6, `${label}: layer error ${eGot} vs float64 ${eRef} (rel ${rel})`);
  // The sweep's own loss (Σ err² / 2, all rows) follows f32 arithmetic through U: a looser check.
  assert.ok(Math.abs(got.loss - want.loss) / want.loss < 1e-3, `${label}: loss ${got.loss} vs ${want.loss}`);
  const gIdx = got.record.gIdx;
  if (o.actOrder && !o.staticGroups && o.groupSize !== -1) {
    assert.deepStrictEqual(Array.from(got.record.gIdx!), Array.from(want.gIdx), `${label}: g_idx`);
  } else assert.strictEqual(got.record.gIdx, undefined, `${label}: g_idx is k / groupSize`);
  for (const j of dead) {
    for (let r = 0; r < ROWS; r++) {
      const g = gIdx ? gIdx[j] : Math.floor(j / got.record.groupSize);
      assert.strictEqual(
        got.record.codes[r * COLS + j],
        got.record.zeros![r * G + g],
        `${label}: dead column`,
      );
    }
  }
  return ROWS - rows.length;
}

const base: Required<GptqOptions> = {
  bits: 4,
  groupSize: 32,
  sym: false,
  actOrder: false,
  staticGroups: false,
  percdamp: 0.01,
  blocksize: 128,
};

Deno.test("GPTQ layer = float64 reference: W4 g32 (dynamic groups, a partial last block)", async () => {
  await compare("W4 g32", base);
});

Deno.test("GPTQ layer = float64 reference: W3 per-channel, blocksize 64", async () => {
  await compare("W3 per-channel", { ...base, bits: 3, groupSize: -1, blocksize: 64 });
});

Deno.test("GPTQ layer = float64 reference: W4 g32 act-order (non-monotone g_idx)", async () => {
  await compare("W4 g32 act-order", { ...base, actOrder: true });
});

Deno.test("GPTQ layer = float64 reference: W3 g32 act-order + static groups", async () => {
  await compare("W3 g32 act-order static", { ...base, bits: 3, actOrder: true, staticGroups: true });
});

Deno.test("GPTQ layer = float64 reference: W2 g32 symmetric, blocksize 32", async () => {
  // Symmetric 2-bit meets exact ties (a group's largest |w| sits at ±1.5 steps): some rows part.
  const parted = await compare("W2 g32 sym", { ...base, bits: 2, groupSize: 32, sym: true, blocksize: 32 });
  assert.ok(parted > 0 && parted < ROWS / 10, `${parted} rows parted at ties`);
});

Deno.test("GPTQ layer = float64 reference: dead columns are zeroed and quantize to the zero point", async () => {
  await compare("W4 g32 dead", { ...base, actOrder: true }, [7, 100]);
});

Deno.test("GPTQ: damping ladder (a retried layer equals one asked at the raised damping), and an indefinite H fails naming the layer and the dampings", async () => {
  assert.deepStrictEqual(dampLadder(0.01).map((d) => +d.toPrecision(6)), [0.01, 0.1, 1]);
  const n = 8, h = new Float32Array(n * n);
  for (let i = 0; i < n; i++) h[i * n + i] = 1;
  for (let i = 0; i < n; i++) h[i * n + i] = 10;
  h[3 * n + 3] = -50; // mean diag 2.5: no damping up to 1 makes this pivot positive
  const ht = upload(gpu, h, [n, n], "H");
  const warnings: string[] = [];
  await assert.rejects(
    gptqLayer(
      gpu,
      "model.layers.0.mlp.up_proj",
      randn(4 * n, 1),
      [4, n],
      ht,
      { bits: 4, groupSize: -1 },
      (m) => warnings.push(m),
    ),
    /model\.layers\.0\.mlp\.up_proj: H is not positive-definite.*0\.01, 0\.1, 1.*column 3/,
  );
  assert.strictEqual(warnings.length, 2);
  // A pivot that 0.01 leaves negative and 0.1 makes positive: the retry's layer is the one asked
  // at 0.1 directly, whether the phases share one submission or are waited on apart.
  h[3 * n + 3] = -0.5; // mean diag 8.69: 0.01 adds 0.087, 0.1 adds 0.87
  const w = randn(4 * n, 2);
  const retried = await gptqLayer(
    gpu,
    "retry",
    w,
    [4, n],
    h,
    { bits: 4, groupSize: -1 },
    (m) => warnings.push(m),
  );
  assert.strictEqual(warnings.length, 3);
  assert.match(warnings[2], /retry: Cholesky failed at column 3 with percdamp 0\.01; retrying with 0\.1/);
  assert.strictEqual(retried.percdamp, 0.1);
  for (const timePhases of [false, true]) {
    const direct = await gptqLayer(
      gpu,
      "direct",
      w,
      [4, n],
      h,
      { bits: 4, groupSize: -1, percdamp: 0.1 },
      () => {
        throw new Error("no retry expected");
      },
      timePhases,
    );
    assert.deepStrictEqual(retried.record.codes, direct.record.codes);
    assert.deepStrictEqual(retried.record.scales, direct.record.scales);
    assert.strictEqual(retried.loss, direct.loss);
    assert.strictEqual(direct.seconds.factor === undefined, !timePhases);
  }
  h[0] = NaN;
  const hn = upload(gpu, h, [n, n], "H");
  await assert.rejects(
    gptqLayer(gpu, "blk.q_proj", randn(4 * n, 1), [4, n], hn, { bits: 4, groupSize: -1 }),
    /blk\.q_proj: the Hessian is not finite at \[0, 0\]/,
  );
});

Deno.test("GPTQ sweep split into row windows (binding limit lowered) gives the same codes", async () => {
  // 512 rows × 68 columns: W is 136 KiB, H 18 KiB; a 40 KiB limit splits W's rows, and rows of
  // 272 bytes put U's block windows at unaligned offsets. Group size 17 does not divide a block.
  const rows = 512, cols = 68;
  const w = randn(rows * cols, 3, 0.05), h = randomHessian(cols, 9);
  const o = { bits: 3 as const, groupSize: 17, blocksize: 16 };
  const run = async () => {
    const ht = upload(gpu, h, [cols, cols], "H");
    const r = await gptqLayer(gpu, "windows", w, [rows, cols], ht, o);
    ht.release();
    return r.record;
  };
  const whole = await run();
  const split = await withBindingLimit(gpu, 40 * 1024, run);
  assert.deepStrictEqual(split.codes, whole.codes);
  assert.deepStrictEqual(split.scales, whole.scales);
  const want = gptqRef(w, h, rows, cols, { ...base, ...o, range: "include-zero" });
  let same = 0;
  for (let i = 0; i < want.codes.length; i++) same += want.codes[i] === whole.codes[i] ? 1 : 0;
  assert.ok(same > 0.99 * want.codes.length, `${same} of ${want.codes.length} codes equal the reference`);
});

Deno.test("GPTQ on a Hessian over the binding limit (Cholesky, inverse and sweep in windows) gives the same codes", async () => {
  // H [200, 200] is 156 KiB against a 40 KiB limit: the factorizations run in windows of 48 rows
  // (the sweep binds U's block rows only: 16 of them here, 5.6 MB at K = 11008 with 128).
  const rows = 24, cols = 200;
  const w = randn(rows * cols, 5, 0.05), h = randomHessian(cols, 11);
  const o = { bits: 4 as const, groupSize: 40, actOrder: true, blocksize: 16 };
  const run = async () => {
    const ht = upload(gpu, h, [cols, cols], "H");
    const r = await gptqLayer(gpu, "big-H", w, [rows, cols], ht, o);
    ht.release();
    return r;
  };
  const whole = await run();
  const split = await withBindingLimit(gpu, 40 * 1024, run);
  assert.deepStrictEqual(split.record.codes, whole.record.codes);
  assert.deepStrictEqual(split.record.scales, whole.record.scales);
  assert.strictEqual(split.loss, whole.loss);
});
