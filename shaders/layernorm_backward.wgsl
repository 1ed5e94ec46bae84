// dx of y = x̂ · w + b with x̂ = (x − mean) · r, r = (var + eps)^(−1/2) (biased variance), per row
// of D (OPT's LayerNorm; weight and bias frozen):
//   g = dy ⊙ w,  dx = r · (g − mean(g) − x̂ · mean(g ⊙ x̂))
// One 64-thread workgroup per row; mean, centred variance, then the two gradient means.

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
  if (r >= p.rows) { return; }
  let base = r * p.D;
  let n = f32(p.D);
  var s = 0.0;
  for (var d = lid; d < p.D; d += 64u) { s += x[base + d]; }
  let mean = reduce(lid, s) / n;
  var q = 0.0;
  for (var d = lid; d < p.D; d += 64u) { let c = x[base + d] - mean; q += c * c; }
  let inv = inverseSqrt(reduce(lid, q) / n + p.eps);
  var sg = 0.0;
  var sgx = 0.0;
  for (var d = lid; d < p.D; d += 64u) {
    let g = dy[base + d] * w[d];
    sg += g;
    sgx += g * (x[base + d] - mean) * inv;
  }
  let mg = reduce(lid, sg) / n;
  let mgx = reduce(lid, sgx) / n;
  for (var d = lid; d < p.D; d += 64u) {
    let xh = (x[base + d] - mean) * inv;
    dx[base + d] = inv * (dy[base + d] * w[d] - mg - xh * mgx);
  }
}
