// Launcher for shaders/int8_matmul_tex.wgsl: LLM.int8()'s passes (cols, rows, the outlier list,
// mm) on the CPU adapter, reading x, CA and CB through textures; the contract and the bits of
// int8_matmul.wgsl (lib/kernels/int8_matmul.ts chooses). Measured on llvmpipe (all passes):
// 1046 → 19 ms at T 512, N 768, K 256; 2910 → 47 ms at T 16, N = K = 4096.

import type { Gpu } from "../gpu/device.ts";
import type { Batch } from "../gpu/kernel.ts";
import { empty, type RowWindow, rowWindows, type Tensor, windowBinding } from "../gpu/tensor.ts";
import { dummy } from "./common.ts";
import type { Int8Weight } from "./int8_matmul.ts";

/**
 * "texture" (int8_matmul_tex.wgsl: x, CA and CB through textures, a tile of y per thread, same
 * bits) on a CPU adapter when rows copy into textures as they are (K a multiple of 256); else
 * "buffer" (int8_matmul.wgsl, one output per thread).
 */
export function int8Variant(gpu: Gpu, K: number): "buffer" | "texture" {
  return gpu.isFallback && int8TextureFits(gpu, K) ? "texture" : "buffer";
}

/** CB rows (K bytes) and x/CA rows (4K bytes) copy into textures as they are. */
export function int8TextureFits(gpu: Gpu, K: number): boolean {
  return K % 256 === 0 && K / 4 <= gpu.maxTexture2D;
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

type Bind = Parameters<Batch["dispatch"]>[1][number];

/** Bindings of int8_matmul_tex.wgsl by index (unused ones null: layouts are per entry point). */
function binds(m: Record<number, Bind>): Bind[] {
  return Array.from({ length: 16 }, (_, i) => m[i] ?? null);
}

/** All passes of the texture variant into `out.y`; `params(tw, nw)` is int8Matmul's uniform. */
export function int8MatmulTexture(
  b: Batch,
  x: Tensor,
  w: Int8Weight,
  out: { flags: Tensor; rowstat: Tensor; ca: Tensor; y: Tensor },
  params: (tw: RowWindow, nw: RowWindow | null) => GPUBuffer,
  sizes: string,
): void {
  const { N, K } = w, T = x.numel / K, { flags, rowstat, ca, y } = out;
  const tile = tileCode(T >= 8 ? 8 : 1, 16); // 8×16 measured 1.2× 4×8 on llvmpipe
  const cap = (rowBytes: number) => b.gpu.maxTexture2D * rowBytes;
  // Token windows that fit a binding (y, CA, rowstat) and a texture's height (x, CA).
  const rowBytes = [K * 4, 4, N * 4], widest = Math.max(...rowBytes);
  const tws = rowWindows(T, rowBytes, Math.min(b.gpu.maxBinding, cap(widest)), b.gpu.offsetAlign);
  const xt = tws.map((tw) =>
    b.texture({ buffer: x.buffer, offset: tw.row0 * K * 4 }, K / 4, tw.rows, "rgba32float", K * 4)
  );
  const k = { name: "int8_matmul_tex", defines: tile };
  // Every token window's columns are scanned before any row pass: flags cover the whole x.
  tws.forEach((tw, i) => {
    b.dispatch({ ...k, entry: "cols" }, binds({ 9: params(tw, null), 11: xt[i], 12: flags, 13: w.seen }), [
      Math.ceil(K / 32),
      1,
      1,
    ], sizes);
  });
  tws.forEach((tw, i) => {
    b.dispatch(
      { ...k, entry: "rows" },
      binds({
        9: params(tw, null),
        11: xt[i],
        12: flags,
        14: windowBinding(rowstat, tw, 1),
        15: windowBinding(ca, tw, K),
      }),
      [Math.ceil(tw.rows / 8), 1, 1],
      sizes,
    );
  });
  const outl = empty(b.gpu, [K + 1], "u32", "int8.outliers");
  b.dispatch(
    { ...k, entry: "list" },
    binds({ 1: flags, 2: outl, 9: params(tws[0], null) }),
    [1, 1, 1],
    sizes,
  );
  const nws = rowWindows(N, [K], Math.min(b.gpu.maxBinding, cap(K)), 256);
  // CB whole: the layer's kept texture (laid out once, as the quantized GEMV's words); in windows, copies.
  const cbt = nws.map((nw) =>
    nws.length === 1
      ? b.keptTexture(w.cb, K / 16, nw.rows, "rgba32uint", K)
      : b.texture({ buffer: w.cb.buffer, offset: nw.row0 * K }, K / 16, nw.rows, "rgba32uint", K)
  );
  for (const tw of tws) {
    const cat = b.texture(
      { buffer: ca.buffer, offset: tw.row0 * K * 4 },
      K / 4,
      tw.rows,
      "rgba32sint",
      K * 4,
    );
    nws.forEach((nw, i) => {
      b.dispatch(
        { ...k, entry: "mm" },
        binds({
          0: windowBinding(x, tw, K),
          2: outl,
          3: windowBinding(rowstat, tw, 1),
          4: cat,
          5: cbt[i],
          6: w.scb,
          7: w.bias ?? dummy(b.gpu),
          8: windowBinding(y, tw, N),
          9: params(tw, nw),
          10: windowBinding(w.cb, nw, K / 4),
        }),
        [Math.ceil(nw.rows / (8 * (tile.TN as number))), Math.ceil(tw.rows / (tile.TM as number)), 1],
        sizes,
      );
    });
  }
  outl.release();
}
