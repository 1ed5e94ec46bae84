// One step of HQQ's zero-point solver (hqq/core/optimize.py, the proximal "legacy" solver) for
// every group of W at once; a thread per group. With s the inverse scale:
//   W_q = clamp(round(W·s + z), 0, maxq),  W_r = (W_q − z) / s
//   W_e = shrink_p(W − W_r, β) = sign·max(|x| − |x|^(p−1) / β, 0)   (generalised soft threshold)
//   z ← mean over the group of (W_q − (W − W_e)·s)
// and err[j] = Σ |W − W_r| over group j (the launcher's caller sums it for the early stop).
// W is laid out group by group ([nG, g]: group j's element e at j·g + e; the caller transposes an
// axis-0 view first), so a window of whole groups is one contiguous range: the launcher splits W,
// s, z and err into windows of groups that fit one binding.

struct Params { nG: u32, g: u32, maxq: u32, pad: u32, p: f32, invBeta: f32 }

@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> s: array<f32>;          // [nG] inverse scales
@group(0) @binding(2) var<storage, read_write> z: array<f32>;    // [nG] zero-points, updated
@group(0) @binding(3) var<storage, read_write> err: array<f32>;  // [nG]
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let j = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (j >= p.nG) { return; }
  let sj = s[j];
  let zj = z[j];
  let maxq = f32(p.maxq);
  var sum = 0.0;
  var e1 = 0.0;
  for (var e = 0u; e < p.g; e++) {
    let wv = w[j * p.g + e];
    let q = clamp(round(wv * sj + zj), 0.0, maxq);
    let d = wv - (q - zj) / sj;
    let a = abs(d);
    e1 += a;
    // |x|^(p−1) is infinite at 0, where the shrink gives 0 anyway.
    var we = 0.0;
    if (a > 0.0) { we = sign(d) * max(a - p.invBeta * pow(a, p.p - 1.0), 0.0); }
    sum += q - (wv - we) * sj;
  }
  z[j] = sum / f32(p.g);
  err[j] = e1;
}
