// Launcher for shaders/rope.wgsl, and the cos/sin table it reads.

import type { Gpu } from "../gpu/device.ts";
import { type Batch, grid } from "../gpu/kernel.ts";
import { type Tensor, upload, windowBinding } from "../gpu/tensor.ts";
import type { RopeScaling } from "../io/config.ts";
import { need, shapeStr, windows } from "./common.ts";

export interface RopeTable {
  cos: Tensor; // [positions, Dh/2]
  sin: Tensor;
  headDim: number;
  positions: number;
}

/**
 * RoPE's inverse frequencies θ^(−2i/Dh), i < Dh/2, rescaled as transformers rescales them, in
 * float32 step by step as torch computes them:
 *   linear: inv / factor
 *   llama3: wavelength λ = 2π / inv; λ > L/low → inv / factor (low frequencies stretched);
 *           λ < L/high → inv (high frequencies kept); between, a blend with
 *           s = (L/λ − low) / (high − low): (1 − s)·inv/factor + s·inv   (L = original max positions)
 */
export function ropeInvFreq(headDim: number, theta: number, scaling: RopeScaling = { type: "default" }) {
  const f = Math.fround, half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(theta ** f((2 * i) / headDim)));
  if (scaling.type === "linear") { for (let i = 0; i < half; i++) inv[i] = f(inv[i] / scaling.factor); }
  if (scaling.type === "llama3") {
    const { factor, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositions: L } = scaling;
    const lowWavelen = f(L / lo), highWavelen = f(L / hi); // compared as float32, as torch does
    for (let i = 0; i < half; i++) {
      const wavelen = f(f(2 * Math.PI) / inv[i]);
      const scaled = wavelen > lowWavelen ? f(inv[i] / factor) : inv[i];
      const smooth = f(f(f(L / wavelen) - lo) / (hi - lo));
      const blended = f(f(f(f(1 - smooth) * scaled) / factor) + f(smooth * scaled));
      inv[i] = !(wavelen < highWavelen) && !(wavelen > lowWavelen) ? blended : scaled;
    }
  }
  return inv;
}

/**
 * cos/sin of pos · inv_freq[i] rounded as transformers rounds them: the product of a position and
 * a float32 inverse frequency is float32, then cos/sin of that float32 angle. Host values are
 * [positions, Dh/2] float32.
 */
export function ropeAngles(headDim: number, positions: number, theta: number, scaling?: RopeScaling) {
  const half = headDim / 2;
  const f = Math.fround;
  const inv = ropeInvFreq(headDim, theta, scaling);
  const cos = new Float32Array(positions * half), sin = new Float32Array(positions * half);
  for (let i = 0; i < half; i++) {
    for (let p = 0; p < positions; p++) {
      const a = f(p * inv[i]);
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

export function ropeTable(
  gpu: Gpu,
  headDim: number,
  positions: number,
  theta: number,
  scaling?: RopeScaling,
): RopeTable {
  const { cos, sin } = ropeAngles(headDim, positions, theta, scaling);
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
  for (const w of windows(b.gpu, T, [heads * Dh * 4])) {
    b.dispatch(
      { name: "rope" },
      [
        windowBinding(x, w, heads * Dh),
        table.cos,
        table.sin,
        b.uniform([w.rows, heads, Dh, seq, pos0, inverse ? 1 : 0, w.row0]),
      ],
      grid(b.gpu, w.rows * heads * (Dh / 2), 256),
      `T=${T} H=${heads} Dh=${Dh}`,
    );
  }
}
