// Launcher for shaders/int8_matmul.wgsl: LLM.int8()'s mixed-precision decomposition.

import type { Gpu } from "../gpu/device.ts";
import type { Batch } from "../gpu/kernel.ts";
import { empty, type RowWindow, rowWindows, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { checkLoopBudget, dummy, need, shapeStr, windows } from "./common.ts";

export interface Int8Weight {
  N: number;
  K: number;
  cb: Tensor; // u32 [N, K / 4], int8 codes
  scb: Tensor; // f32 [N], row absmax
  bias: Tensor | null;
  seen: Tensor; // u32 [K], columns that were outliers in any call
  threshold: number;
}

/**
 * "texture" (int8_matmul_tex.wgsl's mm: CA and CB through textures, a tile per thread, same bits)
 * on a CPU adapter when CB's rows copy into a texture as they are (K a multiple of 256); else
 * "buffer" (int8_matmul.wgsl's mm, one output per thread).
 */
export function int8Variant(gpu: Gpu, K: number): "buffer" | "texture" {
  return gpu.isFallback && K % 256 === 0 && K / 16 <= gpu.maxTexture2D ? "texture" : "buffer";
}

/** The unrolled TM×TN tile of the texture mm: integer and outlier accumulators, guarded stores. */
function tileCode(TM: number, TN: number): Record<string, string | number> {
  const I = Array.from({ length: TM }, (_, i) => i), J = Array.from({ length: TN }, (_, j) => j);
  const both = (f: (i: number, j: number) => string) => I.map((i) => J.map((j) => f(i, j)).join(" "));
  const decl = [
    I.map((i) => `let t${i} = min(t_base + ${i}u, t_last);`).join(" "),
    J.map((j) => `let n${j} = min(n_base + ${j}u, n_last);`).join(" "),
    ...both((i, j) => `var a${i}_${j} = 0i; var f${i}_${j} = 0.0;`),
  ];
  const body = [J.map((j) => `let c${j} = textureLoad(cbt, vec2<u32>(q, n${j}), 0);`).join(" ")];
  "xyzw".split("").forEach((ch, s) => {
    body.push(
      `{ ${J.map((j) => `let b${j} = bytes4(c${j}.${ch});`).join(" ")} ` +
        `${I.map((i) => `let x${i} = textureLoad(cat, vec2<u32>(4u * q + ${s}u, t${i}), 0);`).join(" ")} ` +
        `${both((i, j) => `a${i}_${j} += dot(x${i}, b${j});`).join(" ")} }`,
    );
  });
  const outlier = [
    I.map((i) => `let xv${i} = x[t${i} * p.K + k];`).join(" "),
    J.map((j) => `let cv${j} = code(n${j}, k);`).join(" "),
    ...both((i, j) => `f${i}_${j} += xv${i} * cv${j};`),
  ];
  const store = [J.map((j) => `let s${j} = scb[p.n0 + n${j}];`).join(" ")];
  for (const i of I) {
    for (const j of J) {
      store.push(
        `if (t_base + ${i}u < p.T && n_base + ${j}u < p.N) { ` +
          `var o = f32(a${i}_${j}) * (rowstat[t${i}] * s${j}) * 6.200124e-05 + f${i}_${j} * (s${j} / 127.0); ` +
          `if (p.hasBias == 1u) { o += bias[p.n0 + n${j}]; } ` +
          `y[(t_base + ${i}u) * p.Ntot + p.n0 + n_base + ${j}u] = o; }`,
      );
    }
  }
  return {
    TM,
    TN,
    DECL: decl.join("\n  "),
    BODY: body.join("\n    "),
    OUTLIER: outlier.join("\n    "),
    STORE: store.join("\n  "),
  };
}

/**
 * y [T, N] = LLM.int8(x [T, K]). Tensors over the adapter's binding limit are split: token rows
 * into windows (x, ca, rowstat, y), output rows into windows of cb; the outlier columns are
 * those of the whole x (every token window is scanned before any row pass).
 */
export function int8Matmul(
  b: Batch,
  x: Tensor,
  w: Int8Weight,
  variant = int8Variant(b.gpu, w.K),
): Tensor {
  const { N, K } = w;
  need(x.numel % K === 0 && K % 4 === 0, "int8_matmul", `x ${shapeStr(x)} against K=${K}`);
  const T = x.numel / K;
  checkLoopBudget(b.gpu, "int8_matmul", Math.max(T, 2 * K), `T=${T} K=${K}`);
  const flags = empty(b.gpu, [K], "u32", "int8.flags");
  const rowstat = empty(b.gpu, [T], "f32", "int8.rowstat");
  const ca = empty(b.gpu, [T, K], "i32", "int8.ca");
  const y = empty(b.gpu, [T, N], "f32", "int8.out");
  const sizes = `T=${T} K=${K} N=${N}`;
  const tws = windows(b.gpu, T, [K * 4, K * 4, 4, N * 4]);
  const params = (tw: RowWindow, nw: RowWindow | null) =>
    b.uniform([tw.rows, K, nw?.rows ?? N, w.bias ? 1 : 0, nw?.row0 ?? 0, N, tw.row0 === 0 ? 1 : 0], [
      w.threshold,
    ]);
  for (const tw of tws) {
    b.dispatch(
      { name: "int8_matmul", entry: "cols" },
      [windowBinding(x, tw, K), flags, w.seen, null, null, null, null, null, null, params(tw, null)],
      [Math.ceil(K / 64), 1, 1],
      sizes,
    );
  }
  for (const tw of tws) {
    b.dispatch(
      { name: "int8_matmul", entry: "rows" },
      [
        windowBinding(x, tw, K),
        flags,
        null,
        windowBinding(rowstat, tw, 1),
        windowBinding(ca, tw, K),
        null,
        null,
        null,
        null,
        params(tw, null),
      ],
      [Math.ceil(tw.rows / 64), 1, 1],
      sizes,
    );
  }
  if (variant === "texture") {
    need(K % 256 === 0, "int8_matmul", `texture variant cannot take K=${K}`);
    const outl = empty(b.gpu, [K + 1], "u32", "int8.outliers");
    const tile = tileCode(T >= 4 ? 4 : 1, 8);
    b.dispatch(
      { name: "int8_matmul_tex", entry: "list", defines: tile },
      [null, flags, outl, null, null, null, null, null, null, params(tws[0], null)],
      [1, 1, 1],
      sizes,
    );
    const cap = (rowBytes: number) => b.gpu.maxTexture2D * rowBytes;
    const nws = rowWindows(N, [K], Math.min(b.gpu.maxBinding, cap(K)), 256);
    const cbt = nws.map((nw) =>
      b.texture({ buffer: w.cb.buffer, offset: nw.row0 * K }, K / 16, nw.rows, "rgba32uint", K)
    );
    // Token windows that fit a binding and a texture's height (CA is copied, not bound).
    const rowBytes = [K * 4, 4, N * 4], widest = Math.max(...rowBytes);
    const mws = rowWindows(T, rowBytes, Math.min(b.gpu.maxBinding, cap(widest)), b.gpu.offsetAlign);
    for (const tw of mws) {
      const cat = b.texture(
        { buffer: ca.buffer, offset: tw.row0 * K * 4 },
        K / 4,
        tw.rows,
        "rgba32sint",
        K * 4,
      );
      nws.forEach((nw, i) => {
        b.dispatch(
          { name: "int8_matmul_tex", entry: "mm", defines: tile },
          [
            windowBinding(x, tw, K),
            null, // flags: the outlier list carries them
            outl,
            windowBinding(rowstat, tw, 1),
            cat,
            cbt[i],
            w.scb,
            w.bias ?? dummy(b.gpu),
            windowBinding(y, tw, N),
            params(tw, nw),
            windowBinding(w.cb, nw, K / 4),
          ],
          [Math.ceil(nw.rows / 64), Math.ceil(tw.rows / (tile.TM as number)), 1],
          sizes,
        );
      });
    }
    outl.release();
  } else {
    for (const tw of tws) {
      for (const nw of windows(b.gpu, N, [K])) {
        b.dispatch(
          { name: "int8_matmul", entry: "mm" },
          [
            windowBinding(x, tw, K),
            flags,
            null,
            windowBinding(rowstat, tw, 1),
            windowBinding(ca, tw, K),
            windowBinding(w.cb, nw, K / 4),
            w.scb,
            w.bias ?? dummy(b.gpu),
            windowBinding(y, tw, N),
            params(tw, nw),
          ],
          [Math.ceil(nw.rows / 8), Math.ceil(tw.rows / 8), 1],
          sizes,
        );
      }
    }
  }
  flags.release(), rowstat.release(), ca.release();
  return y;
}
