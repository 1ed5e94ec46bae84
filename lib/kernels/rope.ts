// Launcher for shaders/rope.wgsl, and the cos/sin table it reads.

import type { Gpu } from "../gpu/device.ts";
import { type Batch, grid } from "../gpu/kernel.ts";
import { type Tensor, upload } from "../gpu/tensor.ts";
import { need, shapeStr } from "./common.ts";

export interface RopeTable {
  cos: Tensor; // [positions, Dh/2]
  sin: Tensor;
  headDim: number;
  positions: number;
}

/**
 * cos/sin of pos · θ^(−2i/Dh) for i < Dh/2, rounded as transformers rounds them: inverse
 * frequencies and their products with positions are float32, then cos/sin of that float32 angle.
 * Host values are [positions, Dh/2] float32.
 */
export function ropeAngles(headDim: number, positions: number, theta: number) {
  const half = headDim / 2;
  const f = Math.fround;
  const cos = new Float32Array(positions * half), sin = new Float32Array(positions * half);
  for (let i = 0; i < half; i++) {
    const inv = f(1 / f(theta ** f((2 * i) / headDim)));
    for (let p = 0; p < positions; p++) {
      const a = f(p * inv);
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

export function ropeTable(gpu: Gpu, headDim: number, positions: number, theta: number): RopeTable {
  const { cos, sin } = ropeAngles(headDim, positions, theta);
  const half = headDim / 2;
  return {
    cos: upload(gpu, cos, [positions, half], "rope.cos"),
    sin: upload(gpu, sin, [positions, half], "rope.sin"),
    headDim,
    positions,
  };
}

/**
 * In place on x [T, heads·Dh]; rows are sequences of `seq` tokens starting at position pos0.
 * `inverse` rotates back (the backward pass: dL/dx = Rᵀ · dL/dy).
 */
export function rope(
  b: Batch,
  x: Tensor,
  table: RopeTable,
  heads: number,
  seq: number,
  pos0 = 0,
  inverse = false,
): void {
  const Dh = table.headDim;
  need(Dh % 2 === 0 && x.numel % (heads * Dh) === 0, "rope", `x ${shapeStr(x)} is not [T, ${heads}×${Dh}]`);
  const T = x.numel / (heads * Dh);
  need(
    pos0 + Math.min(seq, T) <= table.positions,
    "rope",
    `positions up to ${pos0 + seq} exceed the table's ${table.positions}`,
  );
  b.dispatch(
    { name: "rope" },
    [x, table.cos, table.sin, b.uniform([T, heads, Dh, seq, pos0, inverse ? 1 : 0])],
    grid(b.gpu, T * heads * (Dh / 2), 256),
    `T=${T} H=${heads} Dh=${Dh}`,
  );
}
