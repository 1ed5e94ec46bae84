// dx of y = x · r · w with r = (mean(x²) + eps)^(−1/2), per row of D (Llama's RMSNorm; the
// weight is frozen, so only the input gradient is needed):
//   g = dy ⊙ w,  dx = r · g − x · r³ · Σ(g ⊙ x) / D
// One 64-thread workgroup per row, two tree reductions (Σx², Σg·x) in shared memory.

struct Params { rows: u32, D: u32, eps: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> part: array<f32, 64>;

fn reduce(lid: u32, v: f32) -> f32 {
  part[lid] = v;
  workgroupBarrier();
  for (var h = 32u; h > 0u; h >>= 1u) {
    if (lid < h) { part[lid] += part[lid + h]; }
    workgroupBarrier();
  }
  let total = part[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  if (r >= p.rows) { return; } // uniform per workgroup
  let base = r * p.D;
  var s = 0.0;
  var gx = 0.0;
  for (var d = lid; d < p.D; d += 64u) {
    let v = x[base + d];
    s += v * v;
    gx += dy[base + d] * w[d] * v;
  }
  let inv = inverseSqrt(reduce(lid, s) / f32(p.D) + p.eps);
  let c = reduce(lid, gx) * inv * inv * inv / f32(p.D);
  for (var d = lid; d < p.D; d += 64u) {
    dx[base + d] = inv * dy[base + d] * w[d] - x[base + d] * c;
  }
}
