// Launcher for shaders/embedding.wgsl: out[T, D] = table[ids]. The table (the largest tensor of
// most models) is split into row windows that each fit one binding; one dispatch per window.

import { type Batch, grid } from "../gpu/kernel.ts";
import { BYTES, empty, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { FP_WEIGHT_DTYPES, need, shapeStr, weightDefines, windows } from "./common.ts";

export function embedding(b: Batch, ids: Tensor, table: Tensor): Tensor {
  need(ids.dtype === "u32", "embedding", `ids must be u32, got ${ids.dtype}`);
  need(table.shape.length === 2, "embedding", `table must be [V, D], got ${shapeStr(table)}`);
  const [V, D] = table.shape;
  const T = ids.numel;
  const out = empty(b.gpu, [T, D], "f32", "embedding.out");
  need(FP_WEIGHT_DTYPES.includes(table.dtype), "embedding", `table dtype ${table.dtype} unsupported`);
  const defines = weightDefines(table.dtype);
  for (const w of windows(b.gpu, V, [D * BYTES[table.dtype]])) {
    b.dispatch(
      { name: "embedding", defines },
      [ids, windowBinding(table, w, D), out, b.uniform([T, D, w.row0, w.rows])],
      grid(b.gpu, T * D, 256),
      `T=${T} V=${V} D=${D}`,
    );
  }
  return out;
}
