// Launcher for shaders/qgemv_tex.wgsl: the quantized GEMV (one token row) for CPU adapters — the
// strip-major words through a texture kept with the layer, x from storage. Uniform formats
// (2/3/4/8-bit) and codebooks (NF4/FP4: four codes from one fetch of a 16-bit-value table, or,
// the "select" variant, each code decoded by a tree of selects over the values baked in).

import { type Batch, grid } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { PackedWeight } from "./qmatmul.ts";
import { codebookDecl, texTile, textureWordsFit } from "./qmatmul_tex.ts";

/** Words per thread: 4 (2 at 2-bit, whose words hold 16 codes), so a thread owns 32–40 outputs.
 * 4096² W4 on llvmpipe: 4 words 2.0–2.6 ms against 2.9 with 2 and 5.3 with 8 (fewer threads);
 * NF4 "select" 4.1 ms with 4 words, 5.2 with 2. */
export function gemvWords(bits: number): number {
  return bits === 2 ? 2 : 4;
}

/** Whether this layer can run the texture GEMV as laid out (x is read from storage as vec4s). */
export function textureQgemvFits(
  gpu: { maxTexture2D: number; maxBinding: number },
  w: PackedWeight,
): boolean {
  return textureWordsFit(gpu, w) && w.K % 4 === 0 && w.scale.byteLength <= gpu.maxBinding;
}

/** Unrolled code: per-group accumulators a{j} and outputs o{j} for the thread's outputs j. */
function gemvCode(bits: number, codebook: boolean, quads: boolean, bias: boolean) {
  const { WPT, PER } = texTile(bits);
  const OW = gemvWords(bits), SPT = OW / WPT, OUTS = OW * PER;
  const J = [...Array(OUTS).keys()], U = [...Array(SPT).keys()];
  const comp = "xyzw";
  const decl = [
    U.map((u) => `let r${u} = min(t * ${SPT}u + ${u}u, p.S - 1u);`).join(" "),
    J.map((j) => `var o${j} = 0.0;`).join(" "),
  ];
  const body: string[] = [];
  for (let t = 0; t < 4; t++) {
    body.push(U.map((u) => `let v${u}_${t} = wload(4u * k4 + ${t}u, r${u});`).join(" "));
    for (const u of U) {
      for (let c = 0; c < WPT; c++) {
        const word = `v${u}_${t}.${comp[c]}`, j0 = (u * WPT + c) * PER, x = `xv.${comp[t]}`;
        if (quads) {
          for (let j = 0; j < PER / 4; j++) {
            body.push(
              `{ let c4 = cbquad((${word} >> ${16 * j}u) & 65535u); ` +
                [0, 1, 2, 3].map((i) => `a${j0 + 4 * j + i} += ${x} * c4.${comp[i]};`).join(" ") + " }",
            );
          }
        } else {
          const line = [...Array(PER).keys()].map((i) => {
            const q = `((${word} >> ${bits * i}u) & MASK)`;
            return `a${j0 + i} += ${x} * ${codebook ? `cbload(${q})` : `f32(${q})`};`;
          });
          body.push(line.join(" "));
        }
      }
    }
  }
  const groupEnd = J.map((j) => {
    const at = `min(go + ${j}u, glast)`;
    return codebook
      ? `o${j} += scale[${at}] * a${j};`
      : `o${j} += scale[${at}] * (a${j} - C * xs) + shift[${at}] * xs;`;
  });
  const store = J.map((j) =>
    `if (n0 + ${j}u < p.N) { y[n0 + ${j}u] = o${j}${bias ? ` + bias[n0 + ${j}u]` : ""}; }`
  );
  return {
    OUTS,
    SPT,
    DECL: decl.join("\n  "),
    ZERO: J.map((j) => `var a${j} = 0.0;`).join(" "),
    BODY: body.join("\n      "),
    GROUP_END: groupEnd.join("\n    "),
    STORE: store.join("\n  "),
  };
}

const codeCache = new Map<string, ReturnType<typeof gemvCode>>();

/** A codebook code → value by a tree of selects on its bits (depth = bits), the values as exact
 * f32 bit patterns: branchless, no memory access (llvmpipe: a texel fetch costs more than the
 * 15 selects of a 16-entry tree, and an indexed constant array is a per-lane loop, 50× slower). */
export function codebookSelectDecl(values: Float32Array, bits: number): string {
  const u = new Uint32Array(Float32Array.from({ length: 1 << bits }, (_, i) => values[i] ?? 0).buffer);
  let level = [...u].map((v) => `bitcast<f32>(${v}u)`);
  const lines: string[] = [];
  for (let b = 0; b < bits; b++) {
    const next: string[] = [];
    for (let i = 0; i < level.length; i += 2) {
      lines.push(`let s${b}_${i / 2} = select(${level[i]}, ${level[i + 1]}, (q & ${1 << b}u) != 0u);`);
      next.push(`s${b}_${i / 2}`);
    }
    level = next;
  }
  return `fn cbload(q: u32) -> f32 {\n  ${lines.join("\n  ")}\n  return ${level[0]};\n}`;
}

export function qgemvTexture(
  b: Batch,
  x: Tensor,
  w: PackedWeight,
  y: Tensor,
  sizes: string,
  select = false,
): void {
  const { K, N, G } = w;
  const { WPT, PER } = texTile(w.bits);
  const S = w.W / WPT;
  const cb = !!w.codebook, quads = cb && !select && w.bits === 4 && !!w.codebookQuadTex;
  const key = `${w.bits} ${cb} ${quads} ${!!w.bias}`;
  let code = codeCache.get(key);
  if (!code) codeCache.set(key, code = gemvCode(w.bits, cb, quads, !!w.bias));
  const T = Math.ceil(S / code.SPT);
  const defines = {
    BITS: w.bits,
    CB_DECL: select ? codebookSelectDecl(w.codebookValues!, w.bits) : codebookDecl(cb, quads),
    ...code,
  };
  const wt = b.keptTexture(w.words, K, S, WPT === 1 ? "r32uint" : "rg32uint", K * WPT * 4);
  b.dispatch(
    { name: "qgemv_tex", defines },
    [
      x,
      wt,
      w.scale,
      cb ? null : w.shift,
      w.bias ?? null,
      y,
      b.uniform([N, K, S, G, w.groupSize / 4, w.W * PER, T, w.bias ? 1 : 0]),
      cb && !select ? (quads ? w.codebookQuadTex! : w.codebookTex!) : null,
    ],
    grid(b.gpu, T, 64),
    sizes,
  );
}
