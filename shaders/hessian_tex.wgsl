// H[in, in] ← a·H + b·XᵀX for X [T, in] read through a texture (rows = tokens, one texel = four
// consecutive inputs): the texture-read variant of hessian.wgsl for the CPU adapter, where texel
// fetches gather without the per-lane branches of storage-buffer loads. A thread owns a TI×TI
// tile of H (unrolled by the launcher into named accumulators) and walks the tokens in order, so
// each entry is the same sum as hessian.wgsl's. Only tiles on or above the diagonal are computed;
// each is also stored mirrored.

struct Params { T: u32, D: u32, a: f32, b: f32 }

@group(0) @binding(0) var xt: texture_2d<f32>; // [T rows, in/4 texels] rgba32float
@group(0) @binding(1) var<storage, read_write> h: array<f32>; // [in, in]
@group(0) @binding(2) var<uniform> p: Params;

fn upd(o: u32, v: f32) { h[o] = p.a * h[o] + p.b * v; }

@compute @workgroup_size(8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j0 = gid.x * {{TI}}u;
  let i0 = gid.y * {{TI}}u;
  if (j0 >= p.D || i0 >= p.D || i0 > j0) { return; }
  let c_last = p.D / 4u - 1u;
  {{DECL}}
  for (var t = 0u; t < p.T; t++) {
    {{BODY}}
  }
  {{STORE}}
}
