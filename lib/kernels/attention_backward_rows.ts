// Launcher for shaders/attention_backward_rows.wgsl: the "rows" variant of the attention backward
// (CPU adapters) — a thread per R rows of one head and sequence, k/v or q/dO through textures,
// the per-row code unrolled here (named values: llvmpipe keeps them in registers).

import type { Batch, Binding } from "../gpu/kernel.ts";
import { LLVMPIPE_LOOP_CAP } from "./common.ts";

/** Rows per thread: registers hold about 4·R·Dh floats. */
export function backwardRowsPerThread(headDim: number): number {
  return headDim <= 64 ? 8 : headDim <= 128 ? 4 : 2;
}

/** Whether the rows variant can take this shape: texture rows of whole vec4s in 256-byte rows,
 * a window's tokens within the texture height, loops under llvmpipe's iteration cap. */
export function backwardRowsFit(
  gpu: { maxTexture2D: number },
  rows: number,
  s: { seq: number; heads: number; kvHeads: number; headDim: number },
): boolean {
  const { seq, heads, kvHeads, headDim } = s;
  return (heads * headDim) % 64 === 0 && (kvHeads * headDim) % 64 === 0 && rows <= gpu.maxTexture2D &&
    (heads * headDim) / 4 <= gpu.maxTexture2D && 2 * seq + 2 < LLVMPIPE_LOOP_CAP &&
    seq * (heads / kvHeads) + 2 < LLVMPIPE_LOOP_CAP;
}

const dot = (a: (d: number) => string, b: (d: number) => string, D4: number) =>
  `dot(${Array.from({ length: D4 }, (_, d) => `${a(d)} * ${b(d)}`).join(" + ")}, vec4<f32>(1.0))`;

function code(R: number, D4: number) {
  const I = [...Array(R).keys()], Ds = [...Array(D4).keys()];
  const tex = (t: string, d: number, at: string) => `textureLoad(${t}, ${at} + vec2<u32>(${d}u, 0u), 0)`;
  // entry dq: rows r{i} of head h; q{i} pre-scaled by c, g{i} = dO, a{i} the dq sums.
  const dqDecl = I.flatMap((i) => [
    `let r${i} = g0 + ${i}u; let qo${i} = ((t0 + min(r${i}, p.seq - 1u)) * p.Hq + h) * D4;`,
    Ds.map((d) => `let q${i}_${d} = q[qo${i} + ${d}u] * p.scale; let g${i}_${d} = dout[qo${i} + ${d}u];`)
      .join(" "),
    Ds.map((d) => `var a${i}_${d} = vec4<f32>(0.0);`).join(" ") + ` var m${i} = -3.0e38; var l${i} = 0.0;`,
  ]);
  const kLoad = Ds.map((d) => `let k${d} = ${tex("ta", d, "kt")};`).join(" ");
  const dqStats = [
    kLoad,
    ...I.map((i) =>
      `if (j <= r${i}) { let s = ${dot((d) => `q${i}_${d}`, (d) => `k${d}`, D4)}; let mn = max(m${i}, s); ` +
      `l${i} = l${i} * exp(m${i} - mn) + exp(s - mn); m${i} = mn; }`
    ),
  ];
  const dqMid = I.flatMap((i) => [
    `let ls${i} = m${i} + log(l${i}); let Dt${i} = ${
      dot((d) => `g${i}_${d}`, (d) => `o[qo${i} + ${d}u]`, D4)
    };`,
    `if (r${i} < p.seq) { lse[(t0 + r${i}) * p.Hq + h] = ls${i}; dd[(t0 + r${i}) * p.Hq + h] = Dt${i}; }`,
  ]);
  const dqKey = [
    kLoad,
    Ds.map((d) => `let v${d} = ${tex("tb", d, "kt")};`).join(" "),
    ...I.map((i) =>
      `if (j <= r${i}) { let P = exp(${dot((d) => `q${i}_${d}`, (d) => `k${d}`, D4)} - ls${i}); ` +
      `let ds = P * (${dot((d) => `g${i}_${d}`, (d) => `v${d}`, D4)} - Dt${i}); ` +
      Ds.map((d) => `a${i}_${d} += ds * k${d};`).join(" ") + " }"
    ),
  ];
  const dqStore = I.map((i) =>
    `if (r${i} < p.seq) { ` + Ds.map((d) => `ga[qo${i} + ${d}u] = a${i}_${d} * p.scale;`).join(" ") + " }"
  );
  // entry dkv: key rows r{i} of KV head kvh; k{i} pre-scaled by c, v{i}; ak/av the dk/dv sums.
  const kvDecl = I.flatMap((i) => [
    `let r${i} = g0 + ${i}u; let ko${i} = ((t0 + min(r${i}, p.seq - 1u)) * p.Hkv + kvh) * D4;`,
    Ds.map((d) => `let k${i}_${d} = k[ko${i} + ${d}u] * p.scale; let v${i}_${d} = v[ko${i} + ${d}u];`).join(
      " ",
    ),
    Ds.map((d) => `var ak${i}_${d} = vec4<f32>(0.0); var av${i}_${d} = vec4<f32>(0.0);`).join(" "),
  ]);
  const kvQuery = [
    Ds.map((d) => `let q${d} = ${tex("ta", d, "qt")}; let g${d} = ${tex("tb", d, "qt")};`).join(" "),
    ...I.map((i) =>
      `if (t >= r${i}) { let P = exp(${dot((d) => `k${i}_${d}`, (d) => `q${d}`, D4)} - ls); ` +
      `let ds = P * (${dot((d) => `v${i}_${d}`, (d) => `g${d}`, D4)} - D); ` +
      Ds.map((d) => `ak${i}_${d} += ds * q${d}; av${i}_${d} += P * g${d};`).join(" ") + " }"
    ),
  ];
  const kvStore = I.map((i) =>
    `if (r${i} < p.seq) { ` +
    Ds.map((d) => `ga[ko${i} + ${d}u] = ak${i}_${d} * p.scale; gb[ko${i} + ${d}u] = av${i}_${d};`).join(" ") +
    " }"
  );
  const j = (xs: string[], ind: string) => xs.join(`\n${ind}`);
  return {
    R,
    D4,
    DQ_DECL: j(dqDecl, "  "),
    DQ_STATS: j(dqStats, "    "),
    DQ_MID: j(dqMid, "  "),
    DQ_KEY: j(dqKey, "    "),
    DQ_STORE: j(dqStore, "  "),
    KV_DECL: j(kvDecl, "  "),
    KV_QUERY: j(kvQuery, "    "),
    KV_STORE: j(kvStore, "  "),
  };
}

const codeCache = new Map<string, ReturnType<typeof code>>();

/** Tensors of one window (bindings) and its sizes. */
export interface BackwardWindow {
  q: Binding;
  k: Binding;
  v: Binding;
  o: Binding;
  dout: Binding;
  lse: Binding;
  dd: Binding;
  dq: Binding;
  dk: Binding;
  dv: Binding;
  /** Buffers and byte offsets of q, k, v, dO's rows (texture copies). */
  src: { q: [GPUBuffer, number]; k: [GPUBuffer, number]; v: [GPUBuffer, number]; dout: [GPUBuffer, number] };
  rows: number;
}

export function attentionBackwardRows(
  b: Batch,
  w: BackwardWindow,
  s: { seq: number; heads: number; kvHeads: number; headDim: number },
  u: GPUBuffer,
  sizes: string,
): void {
  const { seq, heads, kvHeads, headDim } = s;
  const R = backwardRowsPerThread(headDim), D4 = headDim / 4;
  const key = `${R} ${D4}`;
  let defines = codeCache.get(key);
  if (!defines) codeCache.set(key, defines = code(R, D4));
  const qW = (heads * headDim) / 4, kW = (kvHeads * headDim) / 4, n = w.rows;
  const tex = ([buf, off]: [GPUBuffer, number], width: number) =>
    b.texture({ buffer: buf, offset: off }, width, n, "rgba32float", width * 16);
  const threads = (n / seq) * Math.ceil(seq / R);
  b.dispatch(
    { name: "attention_backward_rows", entry: "dq", defines },
    [w.q, null, null, w.o, w.dout, w.lse, w.dd, w.dq, null, u, tex(w.src.k, kW), tex(w.src.v, kW)],
    [Math.ceil(threads / 8), heads, 1],
    sizes,
  );
  b.dispatch(
    { name: "attention_backward_rows", entry: "dkv", defines },
    [null, w.k, w.v, null, null, w.lse, w.dd, w.dk, w.dv, u, tex(w.src.q, qW), tex(w.src.dout, qW)],
    [Math.ceil(threads / 8), kvHeads, 1],
    sizes,
  );
}
