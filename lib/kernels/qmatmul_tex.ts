// Launcher for shaders/qmatmul_tex.wgsl: the fused quantized GEMM for CPU adapters — x and the
// strip-major words read through textures, codes decoded once per (k, output) for TM rows.
// Uniform formats (2/3/4/8-bit) and codebooks (NF4/FP4, from the layer's codebook texture).

import type { Batch } from "../gpu/kernel.ts";
import { rowWindows, type Tensor, windowBinding } from "../gpu/tensor.ts";
import type { PackedWeight } from "./qmatmul.ts";

/** Token rows per thread and strips per thread (so a thread owns about 16 outputs). */
export function texTile(bits: number): { TM: number; SPT: number; WPT: number; PER: number } {
  const PER = Math.floor(32 / bits);
  const WPT = bits === 2 ? 1 : 2; // wordsPerThread (qmatmul.ts): the strip width
  return { TM: bits === 3 ? 12 : 16, SPT: bits === 8 ? 2 : 1, WPT, PER };
}

/** Whether the layer's words can be its texture as they are (the texture GEMM's and GEMV's layout:
 * strip-major, rows of 256-byte multiples, within the texture size; groups of whole texels). */
export function textureWordsFit(gpu: { maxTexture2D: number }, w: PackedWeight): boolean {
  const { WPT } = texTile(w.bits);
  const S = w.W / WPT;
  return w.stripMajor && (w.codebook ? !!w.codebookTex : !!w.shift) && w.groupSize % 4 === 0 &&
    (w.K * WPT * 4) % 256 === 0 && w.K <= gpu.maxTexture2D && S <= gpu.maxTexture2D;
}

/** Whether this layer can run the texture GEMM as laid out (x's texture copy wants 256-byte rows too). */
export function textureQgemmFits(gpu: { maxTexture2D: number }, w: PackedWeight): boolean {
  return textureWordsFit(gpu, w) && (w.K * 4) % 256 === 0 && w.K / 4 <= gpu.maxTexture2D;
}

/** Unrolled tile code: accumulators a{i}_{o}, per-group s{o}/h{o}, guarded stores. */
function tileCode(bits: number, bias: boolean, codebook: boolean, quads: boolean) {
  const { TM, SPT, WPT, PER } = texTile(bits);
  const I = [...Array(TM).keys()], U = [...Array(SPT).keys()];
  // Output o of the thread: strip u, word c, code i → column (s_base + u)·WPT·PER + c·PER + i.
  const outs = U.flatMap((u) =>
    [...Array(WPT).keys()].flatMap((c) => [...Array(PER).keys()].map((i) => ({ u, c, i })))
  );
  const O = [...outs.keys()];
  const col = (o: number) => `(s${outs[o].u} * ${WPT * PER}u + ${outs[o].c * PER + outs[o].i}u)`;
  const decl = [
    I.map((i) => `let r${i} = min(m_base + ${i}u, m_last);`).join(" "),
    U.map((u) => `let s${u} = min(s_base + ${u}u, s_last);`).join(" "),
    ...I.map((i) => O.map((o) => `var a${i}_${o} = 0.0;`).join(" ")),
  ];
  const group = [
    O.map((o) =>
      `let sc${o} = scale[g * p.NP + ${col(o)}];` +
      (codebook ? "" : ` let h${o} = shift[g * p.NP + ${col(o)}] - sc${o} * C;`)
    ).join(" "),
  ];
  const body = [I.map((i) => `let x${i} = xload(k4, r${i});`).join(" ")];
  const comp = "xyzw";
  for (let t = 0; t < 4; t++) {
    body.push(U.map((u) => `let t${u}_${t} = wload(4u * k4 + ${t}u, s${u});`).join(" "));
    for (const o of O) {
      const { u, c, i } = outs[o];
      const word = `t${u}_${t}.${comp[c]}`;
      const fma = (w: string) => I.map((r) => `a${r}_${o} += x${r}.${comp[t]} * ${w};`).join(" ");
      if (quads) {
        // 4-bit codebook: one fetch of the 16-bit-value table gives codes i … i + 3.
        const q4 = `c4_${u}_${c}_${t}_${i - (i % 4)}`;
        const fetch = i % 4 === 0 ? `let ${q4} = cbquad((${word} >> ${4 * i}u) & 65535u); ` : "";
        body.push(`${fetch}{ let w = sc${o} * ${q4}.${comp[i % 4]}; ${fma("w")} }`);
        continue;
      }
      body.push(
        `{ let q = (${word} >> ${bits * i}u) & MASK; ` +
          (codebook ? `let w = sc${o} * cbload(q); ` : `let w = sc${o} * f32(q) + h${o}; `) +
          fma("w") + " }",
      );
    }
  }
  const store: string[] = [];
  if (bias) store.push(O.map((o) => `let b${o} = bias[min(${col(o)}, p.N - 1u)];`).join(" "));
  for (const i of I) {
    const row = O.map((o) =>
      `if (s_base + ${outs[o].u}u < p.S && ${col(o)} < p.N) { y[base${i} + ${col(o)}] = a${i}_${o}${
        bias ? ` + b${o}` : ""
      }; }`
    );
    store.push(`if (m_base + ${i}u < p.M) { let base${i} = (m_base + ${i}u) * p.N; ${row.join(" ")} }`);
  }
  return {
    DECL: decl.join("\n  "),
    GROUP: group.join("\n    "),
    BODY: body.join("\n      "),
    STORE: store.join("\n  "),
  };
}

/** The codebook texture at binding 7 and its reader: `cbquad(v)`, the four codes of the 16-bit
 * value v (4-bit tables), or `cbload(q)`, one code. Empty for uniform formats. */
export function codebookDecl(codebook: boolean, quads: boolean): string {
  if (!codebook) return "";
  return "@group(0) @binding(7) var cbt: texture_2d<f32>;\n" +
    (quads
      ? "fn cbquad(v: u32) -> vec4<f32> { return textureLoad(cbt, vec2<u32>(v & 255u, v >> 8u), 0); }"
      : "fn cbload(q: u32) -> f32 { return textureLoad(cbt, vec2<u32>(q, 0u), 0).x; }");
}

const codeCache = new Map<string, ReturnType<typeof tileCode>>();

export function qmatmulTexture(b: Batch, x: Tensor, w: PackedWeight, y: Tensor, sizes: string): void {
  const gpu = b.gpu;
  const { K, N, G } = w;
  const M = x.numel / K;
  const { TM, SPT, WPT, PER } = texTile(w.bits);
  const S = w.W / WPT;
  const cb = !!w.codebook, quads = cb && w.bits === 4 && !!w.codebookQuadTex;
  const key = `${w.bits} ${!!w.bias} ${cb} ${quads}`;
  let code = codeCache.get(key);
  if (!code) codeCache.set(key, code = tileCode(w.bits, !!w.bias, cb, quads));
  const defines = {
    BITS: w.bits,
    TM,
    SPT,
    CB_DECL: codebookDecl(cb, quads),
    ...code,
  };
  // The words laid out once as a texture kept with the layer (not copied per call).
  const wt = b.keptTexture(
    w.words,
    K,
    S,
    WPT === 1 ? "r32uint" : "rg32uint",
    K * WPT * 4,
  );
  // x windows: a texture is at most maxTexture2D rows, and y's window is one storage binding.
  const mws = rowWindows(M, [N * 4], Math.min(gpu.maxBinding, gpu.maxTexture2D * N * 4), gpu.offsetAlign);
  for (const mw of mws) {
    const xt = b.texture({ buffer: x.buffer, offset: mw.row0 * K * 4 }, K / 4, mw.rows, "rgba32float", K * 4);
    b.dispatch(
      { name: "qmatmul_tex", defines },
      [
        xt,
        wt,
        w.scale,
        w.shift,
        w.bias ?? null,
        windowBinding(y, mw, N),
        b.uniform([mw.rows, N, K, S, G, w.groupSize / 4, w.W * PER, w.bias ? 1 : 0]),
        quads ? w.codebookQuadTex! : w.codebookTex ?? null,
      ],
      [Math.ceil(S / (8 * SPT)), Math.ceil(mw.rows / TM), 1],
      sizes,
    );
  }
}
