// Shared launcher plumbing: shape checks that name the kernel, flat windows for elementwise ops,
// and the dummy buffer bound where an optional input (a bias) is absent.

import { type Gpu, GpuError } from "../gpu/device.ts";
import type { Defines } from "../gpu/kernel.ts";
import { type RowWindow, rowWindows, type Tensor } from "../gpu/tensor.ts";

export function need(cond: boolean, kernel: string, what: string): asserts cond {
  if (!cond) throw new GpuError(`kernel ${kernel}: ${what}`);
}

export function shapeStr(...ts: Tensor[]): string {
  return ts.map((t) => `${t.label}[${t.shape.join("×")}]`).join(" ");
}

const dummies = new WeakMap<GPUDevice, GPUBuffer>();
/** A 16-byte f32 buffer for optional bindings the shader skips (guarded by a flag). */
export function dummy(gpu: Gpu): GPUBuffer {
  let b = dummies.get(gpu.device);
  if (!b) {
    b = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: "dummy" });
    dummies.set(gpu.device, b);
  }
  return b;
}

/** Windows over `rows` rows shared by tensors whose rows are `rowBytes` bytes. */
export function windows(gpu: Gpu, rows: number, rowBytes: number[]): RowWindow[] {
  return rowWindows(rows, rowBytes, gpu.maxBinding, gpu.offsetAlign);
}

/**
 * Windows of an [n, n] f32 matrix's rows made of whole `block`-row blocks, each within one
 * storage binding (one window when it all fits): the blocked factorizations' row windows.
 */
export function blockRowWindows(gpu: Gpu, n: number, block: number): RowWindow[] {
  const blocks = windows(gpu, Math.ceil(n / block), [block * n * 4]);
  return blocks.map((w) => ({ row0: w.row0 * block, rows: Math.min(w.rows * block, n - w.row0 * block) }));
}

/** One 16-bit value of packed u32 word `u`, half `h` (0 = low), as f32. */
function half16(dtype: "f16" | "bf16", u: string, h: string): string {
  return dtype === "f16"
    ? `unpack2x16float(${u})[${h}]`
    : `bitcast<f32>(select(${u} << 16u, ${u} & 0xffff0000u, ${h} == 1u))`;
}

/**
 * Generated code for a thread that does a 64-thread workgroup's row reduction alone, in the same
 * order (the texture variants of RMSNorm and token NLL): `pass` visits 16 texels of `tex` row r
 * from texel q0, element e of the row feeding partial e mod 64; `tree` folds the 64 partials
 * 32, 16, … 1, as the workgroup's shared-memory tree does.
 */
export const rowPartials = {
  pass(tex: string, f: (v: string, l: number) => string): string {
    return Array.from(
      { length: 16 },
      (_, u) =>
        `{ let v = textureLoad(${tex}, vec2<u32>(q0 + ${u}u, r), 0); ` +
        "xyzw".split("").map((c, i) => f(`v.${c}`, 4 * u + i)).join(" ") + " }",
    ).join("\n    ");
  },
  tree(f: (l: number, h: number) => string): string {
    const t: string[] = [];
    for (let h = 32; h > 0; h >>= 1) t.push(Array.from({ length: h }, (_, l) => f(l, h)).join(" "));
    return t.join("\n  ");
  },
  decl(name: string, init: string): string {
    return Array.from({ length: 64 }, (_, l) => `var ${name}${l} = ${init};`).join(" ");
  },
};

/** Both values of packed word `u` as vec2<f32>. */
export function pair16(dtype: "f16" | "bf16", u: string): string {
  return dtype === "f16"
    ? `unpack2x16float(${u})`
    : `vec2<f32>(bitcast<f32>(${u} << 16u), bitcast<f32>(${u} & 0xffff0000u))`;
}

/**
 * Defines for a weight table read element by element: WT is the bound array's element type and
 * T1 the f32 value at element index `i` (f16/bf16 are packed two per u32).
 */
export function weightDefines(dtype: string): Defines {
  if (dtype === "f16" || dtype === "bf16") {
    return { WT: "u32", T1: half16(dtype, "table[i / 2u]", "(i % 2u)") };
  }
  return { WT: "f32", T1: "table[i]" };
}

/**
 * Accessors for x [.., K] (f32) and w [.., K] (f32, or f16/bf16 packed in pairs) in matmul/GEMV:
 * vec4 arrays when K % 4 == 0 (every row starts on a vec4 — for 16-bit weights a vec2<u32> holds
 * four), scalar gathers otherwise. `o` is an element offset.
 */
export function rowAccessDefines(K: number, wdtype: string): Defines {
  const packed = wdtype === "f16" || wdtype === "bf16" ? wdtype : null;
  if (K % 4 === 0) {
    const x = { XT: "vec4<f32>", X4: "x[o / 4u]", X1: "x[o / 4u][o % 4u]" };
    if (packed) {
      return {
        ...x,
        WST: "vec2<u32>",
        W4: `vec4<f32>(${pair16(packed, "w[o / 4u].x")}, ${pair16(packed, "w[o / 4u].y")})`,
        W1: half16(packed, "w[o / 4u][(o % 4u) / 2u]", "(o % 2u)"),
      };
    }
    return { ...x, WST: "vec4<f32>", W4: "w[o / 4u]", W1: "w[o / 4u][o % 4u]" };
  }
  return {
    XT: "f32",
    X4: "vec4<f32>(x[o], x[o + 1u], x[o + 2u], x[o + 3u])",
    X1: "x[o]",
    WST: packed ? "u32" : "f32",
    W4: "vec4<f32>(w1(o), w1(o + 1u), w1(o + 2u), w1(o + 3u))",
    W1: packed ? half16(packed, "w[o / 2u]", "(o % 2u)") : "w[o]",
  };
}

/** Weight dtypes the FP kernels (matmul, GEMV, embedding) read. */
export const FP_WEIGHT_DTYPES = ["f32", "f16", "bf16"];

/**
 * llvmpipe ends a shader invocation after 65535 loop iterations in total (Mesa's loop limiter),
 * silently leaving wrong results. Kernels whose per-thread loops scale with an input dimension
 * check their count here; on hardware adapters there is no such cap.
 */
export const LLVMPIPE_LOOP_CAP = 65535;
export function checkLoopBudget(gpu: Gpu, kernel: string, iterations: number, what: string): void {
  if (gpu.isFallback && iterations >= LLVMPIPE_LOOP_CAP) {
    throw new GpuError(
      `kernel ${kernel}: ${what} needs ${iterations} loop iterations per thread, over the fallback adapter's cap of ${LLVMPIPE_LOOP_CAP}`,
    );
  }
}
