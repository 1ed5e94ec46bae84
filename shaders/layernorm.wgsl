// out[r, :] = (x[r, :] − mean) / sqrt(var + eps) * w + b — OPT's LayerNorm (biased variance,
// as torch). One 64-thread workgroup per row; mean first, then the centred sum of squares, which
// is more accurate than E[x²] − E[x]².

struct Params { rows: u32, D: u32, eps: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
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
  workgroupBarrier(); // everyone has read part[0] before it is overwritten
  return total;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  if (r >= p.rows) { return; }
  let base = r * p.D;
  var s = 0.0;
  for (var d = lid; d < p.D; d += 64u) { s += x[base + d]; }
  let mean = reduce(lid, s) / f32(p.D);
  var q = 0.0;
  for (var d = lid; d < p.D; d += 64u) { let c = x[base + d] - mean; q += c * c; }
  let inv = inverseSqrt(reduce(lid, q) / f32(p.D) + p.eps);
  for (var d = lid; d < p.D; d += 64u) { out[base + d] = (x[base + d] - mean) * inv * w[d] + b[d]; }
}
