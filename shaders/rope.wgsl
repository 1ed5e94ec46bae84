// Rotary position embedding, rotate-half convention (transformers' Llama/Mistral/Qwen2), in place
// on x[T, H, Dh]: for i < Dh/2, (x_i, x_{i+Dh/2}) ← (x_i cos − x_{i+Dh/2} sin, x_{i+Dh/2} cos + x_i sin).
// cos/sin come from a [positions, Dh/2] table the launcher computes the way transformers does
// (f32 inverse frequencies times f32 positions), so long positions match its rounding.
// Token t of the batch sits at position pos0 + t % seq (rows are B sequences of seq tokens).
// `inverse` rotates by −angle: the transpose of the rotation, which is RoPE's backward pass.

struct Params { T: u32, H: u32, Dh: u32, seq: u32, pos0: u32, inverse: u32, t0: u32 }

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> cosT: array<f32>;
@group(0) @binding(2) var<storage, read> sinT: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let half = p.Dh / 2u;
  let idx = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (idx >= p.T * p.H * half) { return; }
  let i = idx % half;
  let th = idx / half; // t * H + h
  let t = th / p.H;
  let pos = p.pos0 + (p.t0 + t) % p.seq; // t0: the first row of this window of x
  let c = cosT[pos * half + i];
  let s = select(1.0, -1.0, p.inverse == 1u) * sinT[pos * half + i];
  let o = th * p.Dh + i;
  let a = x[o];
  let b = x[o + half];
  x[o] = a * c - b * s;
  x[o + half] = b * c + a * s;
}
