// Launcher for shaders/int8_matmul.wgsl: LLM.int8()'s mixed-precision decomposition.

import type { Batch } from "../gpu/kernel.ts";
import { empty, type Tensor } from "../gpu/tensor.ts";
import { checkLoopBudget, dummy, need, shapeStr } from "./common.ts";

export interface Int8Weight {
  N: number;
  K: number;
  cb: Tensor; // u32 [N, K / 4], int8 codes
  scb: Tensor; // f32 [N], row absmax
  bias: Tensor | null;
  seen: Tensor; // u32 [K], columns that were outliers in any call
  threshold: number;
}

/** y [T, N] = LLM.int8(x [T, K]). */
export function int8Matmul(b: Batch, x: Tensor, w: Int8Weight): Tensor {
  const { N, K } = w;
  need(x.numel % K === 0 && K % 4 === 0, "int8_matmul", `x ${shapeStr(x)} against K=${K}`);
  const T = x.numel / K;
  checkLoopBudget(b.gpu, "int8_matmul", Math.max(T, 2 * K), `T=${T} K=${K}`);
  const flags = empty(b.gpu, [K], "u32", "int8.flags");
  const rowstat = empty(b.gpu, [T], "f32", "int8.rowstat");
  const ca = empty(b.gpu, [T, K], "i32", "int8.ca");
  const y = empty(b.gpu, [T, N], "f32", "int8.out");
  const params = b.uniform([T, K, N, w.bias ? 1 : 0], [w.threshold]);
  const bind = [x, flags, null, rowstat, ca, w.cb, w.scb, w.bias ?? dummy(b.gpu), y, params];
  const sizes = `T=${T} K=${K} N=${N}`;
  b.dispatch({ name: "int8_matmul", entry: "cols" }, [
    x,
    flags,
    w.seen,
    null,
    null,
    null,
    null,
    null,
    null,
    params,
  ], [
    Math.ceil(K / 64),
    1,
    1,
  ], sizes);
  b.dispatch(
    { name: "int8_matmul", entry: "rows" },
    [x, flags, null, rowstat, ca, null, null, null, null, params],
    [Math.ceil(T / 64), 1, 1],
    sizes,
  );
  b.dispatch({ name: "int8_matmul", entry: "mm" }, bind, [Math.ceil(N / 8), Math.ceil(T / 8), 1], sizes);
  flags.release(), rowstat.release(), ca.release();
  return y;
}
