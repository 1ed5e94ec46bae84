// rmsnorm.wgsl's result with one thread per row and x, w read through textures (the CPU
// adapter's branchless gather). The 64 partial sums of rmsnorm.wgsl's workgroup (partial l holds
// x[l]² + x[l + 64]² + … in that order) become 64 named registers of one thread, reduced by the
// same tree (32, 16, … 1), so the statistic — and every output — has the same bits. The launcher
// generates the code (one partial per element position mod 64; D is a multiple of 64).

struct Params { rows: u32, D: u32, eps: f32 }

@group(0) @binding(0) var xt: texture_2d<f32>; // x [rows, D/4 texels]
@group(0) @binding(1) var wt: texture_2d<f32>; // w [1, D/4 texels]
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>; // [rows, D/4]
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= p.rows) { return; }
  let D4 = p.D / 4u;
  {{DECL}}
  for (var q0 = 0u; q0 < D4; q0 += 16u) {
    {{SUM}}
  }
  {{TREE}}
  let inv = inverseSqrt(s0 / f32(p.D) + p.eps);
  for (var q = 0u; q < D4; q++) {
    out[r * D4 + q] = textureLoad(xt, vec2<u32>(q, r), 0) * inv * textureLoad(wt, vec2<u32>(q, 0u), 0);
  }
}
