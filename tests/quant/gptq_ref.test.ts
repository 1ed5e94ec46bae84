// The float64 GPTQ reference checks itself against what must hold whatever the implementation:
// the Cholesky factor inverts H, a diagonal H makes GPTQ round-to-nearest, and on correlated
// inputs GPTQ's output error is below RTN's on the same grid.

import assert from "node:assert";
import { randn } from "../../lib/cpu/random.ts";
import { quantizeUniform } from "../../lib/quant/uniform.ts";
import { gptqRef, type GptqRefOptions, upperCholeskyOfInverse } from "./gptq_ref.ts";

const base: GptqRefOptions = {
  bits: 3,
  groupSize: 32,
  sym: false,
  range: "include-zero",
  actOrder: false,
  staticGroups: false,
  percdamp: 0.01,
  blocksize: 16,
};

/** H = (2/n) XᵀX for X [n, d] with correlated columns. */
function hessian(n: number, d: number, seed: number): { h: Float64Array; x: Float32Array } {
  const z = randn(n * d, seed), x = new Float32Array(n * d);
  for (let t = 0; t < n; t++) {
    for (let j = 0; j < d; j++) {
      x[t * d + j] = z[t * d + j] + 0.8 * (j ? x[t * d + j - 1] : 0) * (1 + (j % 3));
    }
  }
  const h = new Float64Array(d * d);
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) h[i * d + j] += (2 / n) * x[t * d + i] * x[t * d + j];
    }
  }
  return { h, x };
}

Deno.test("UᵀU inverts H", () => {
  const d = 12, { h } = hessian(40, d, 1);
  const u = upperCholeskyOfInverse(h, d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let s = 0; // (H · UᵀU)[i, j]
      for (let k = 0; k < d; k++) {
        let inv = 0;
        for (let m = 0; m < d; m++) inv += u[m * d + k] * u[m * d + j];
        s += h[i * d + k] * inv;
      }
      assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-8, `(${i}, ${j}): ${s}`);
    }
  }
});

Deno.test("with a diagonal H, GPTQ is round-to-nearest (grouped and per-channel)", () => {
  const [rows, cols] = [9, 64];
  const w = randn(rows * cols, 2, 0.1);
  const h = new Float64Array(cols * cols);
  for (let j = 0; j < cols; j++) h[j * cols + j] = 1 + j / 7;
  for (const groupSize of [32, -1]) {
    const g = gptqRef(w, h, rows, cols, { ...base, groupSize });
    const r = quantizeUniform("l", w, [rows, cols], {
      bits: 3,
      groupSize,
      sym: false,
      range: "include-zero",
    });
    assert.deepStrictEqual(g.codes, r.codes, `group size ${groupSize}`);
  }
});

Deno.test("on correlated inputs GPTQ's output error is below RTN's (with and without act-order)", () => {
  const [rows, cols, n] = [16, 64, 256];
  const w = randn(rows * cols, 3, 0.1);
  const { h, x } = hessian(n, cols, 4);
  const outErr = (
    codes: Uint8Array,
    scales: ArrayLike<number>,
    zeros: ArrayLike<number>,
    gIdx: ArrayLike<number>,
    G: number,
  ) => {
    let e = 0;
    for (let t = 0; t < n; t++) {
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let k = 0; k < cols; k++) {
          const q = scales[r * G + gIdx[k]] * (codes[r * cols + k] - zeros[r * G + gIdx[k]]);
          s += (w[r * cols + k] - q) * x[t * cols + k];
        }
        e += s * s;
      }
    }
    return e;
  };
  const rtn = quantizeUniform("l", w, [rows, cols], {
    bits: 3,
    groupSize: 32,
    sym: false,
    range: "include-zero",
  });
  const rtnErr = outErr(
    rtn.codes,
    rtn.scales,
    rtn.zeros!,
    Int32Array.from({ length: cols }, (_, k) => k >> 5),
    2,
  );
  for (const [actOrder, staticGroups] of [[false, false], [true, false], [true, true]]) {
    const g = gptqRef(w, h, rows, cols, { ...base, actOrder, staticGroups });
    const e = outErr(g.codes, g.scales, g.zeros, g.gIdx, 2);
    assert.ok(e < 0.9 * rtnErr, `act-order ${actOrder}, static ${staticGroups}: GPTQ ${e} vs RTN ${rtnErr}`);
    if (!actOrder || staticGroups) assert.ok(g.gIdx.every((q, k) => q === k >> 5), "g_idx is k / g");
  }
});
