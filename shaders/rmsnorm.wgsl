// out[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) * w — Llama's RMSNorm, f32 statistics as
// transformers computes them. One 64-thread workgroup per row, tree reduction in shared memory.

struct Params { rows: u32, D: u32, eps: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> part: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  if (r >= p.rows) { return; } // uniform per workgroup, so barriers below stay uniform
  let base = r * p.D;
  var s = 0.0;
  for (var d = lid; d < p.D; d += 64u) { let v = x[base + d]; s += v * v; }
  part[lid] = s;
  workgroupBarrier();
  for (var h = 32u; h > 0u; h >>= 1u) {
    if (lid < h) { part[lid] += part[lid + h]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(part[0] / f32(p.D) + p.eps);
  for (var d = lid; d < p.D; d += 64u) { out[base + d] = x[base + d] * inv * w[d]; }
}
