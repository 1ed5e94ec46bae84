// AWQ's scale-search kernels (lib/quant/awq.ts; launchers in lib/kernels/awq.ts; the clipping
// search is awq_clip.wgsl). Each entry uses its own bindings; the launcher passes null for the others.
//   fake_quant  wq[r, c] = Q(w[r, c]·s[c]) / s[c]: AutoAWQ's pseudo_quantize_tensor of W·diag(s)
//               (asymmetric, raw min/max per (row, group), scale ≥ 1e-5/maxq, zero clamped), a
//               thread per (row, group) — what one grid point of the scale search evaluates
//   col_abs_sum acc[c] += Σ_t |x[t, c]|: the per-channel mean |x| of the scale search, streamed
//   sq_err      part[slot·NWG + wg] += Σ (y − y0)² over workgroup wg's share of the elements
//   mul_cols / div_cols / div_rows   fold the chosen scales: W·diag(s), v / s, diag(s)⁻¹·W

struct Params { rows: u32, cols: u32, g: u32, maxq: u32, n: u32, slot: u32, ngrid: u32, nshrink: u32 }

@group(0) @binding(0) var<storage, read> w: array<f32>;          // [rows, cols]
@group(0) @binding(1) var<storage, read> s: array<f32>;          // [cols] (or [rows] for div_rows)
@group(0) @binding(2) var<storage, read_write> wq: array<f32>;   // [rows, cols]
@group(0) @binding(3) var<storage, read> x: array<f32>;          // [T, cols]
@group(0) @binding(4) var<storage, read_write> acc: array<f32>;  // [cols]
@group(0) @binding(5) var<storage, read> y: array<f32>;          // [n]
@group(0) @binding(6) var<storage, read> y0: array<f32>;         // [n]
@group(0) @binding(7) var<storage, read_write> part: array<f32>; // [slots, NWG]
@group(0) @binding(10) var<uniform> p: Params;

const NWG = 64u;  // workgroups of sq_err, each owning one partial sum per slot

fn tid(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, size: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * size + lid;
}

@compute @workgroup_size(64)
fn fake_quant(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let G = p.cols / p.g;
  let t = tid(wid, nwg, lid, 64u);
  if (t >= p.rows * G) { return; }
  let base = (t / G) * p.cols + (t % G) * p.g;
  let c0 = (t % G) * p.g;
  var lo = 3.4e38;
  var hi = -3.4e38;
  for (var k = 0u; k < p.g; k++) {
    let v = w[base + k] * s[c0 + k];
    lo = min(lo, v);
    hi = max(hi, v);
  }
  let maxq = f32(p.maxq);
  let scale = max(hi - lo, 1e-5) / maxq;
  let zero = clamp(-round(lo / scale), 0.0, maxq);
  for (var k = 0u; k < p.g; k++) {
    let v = w[base + k] * s[c0 + k];
    let q = (clamp(round(v / scale) + zero, 0.0, maxq) - zero) * scale;
    wq[base + k] = q / s[c0 + k];
  }
}

@compute @workgroup_size(64)
fn col_abs_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let c = tid(wid, nwg, lid, 64u);
  if (c >= p.cols) { return; }
  var sum = 0.0;
  for (var t = 0u; t < p.rows; t++) { sum += abs(x[t * p.cols + c]); }
  acc[c] += sum;
}

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn sq_err(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var sum = 0.0;
  for (var i = wid.x * 256u + lid; i < p.n; i += NWG * 256u) {
    let d = y[i] - y0[i];
    sum += d * d;
  }
  red[lid] = sum;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { part[p.slot * NWG + wid.x] += red[0]; }
}

@compute @workgroup_size(64)
fn mul_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let e = tid(wid, nwg, lid, 64u);
  if (e >= p.rows * p.cols) { return; }
  wq[e] = wq[e] * s[e % p.cols];
}

@compute @workgroup_size(64)
fn div_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let e = tid(wid, nwg, lid, 64u);
  if (e >= p.rows * p.cols) { return; }
  wq[e] = wq[e] / s[e % p.cols];
}

// Rows of a window starting at row p.n of the whole tensor.
@compute @workgroup_size(64)
fn div_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let e = tid(wid, nwg, lid, 64u);
  if (e >= p.rows * p.cols) { return; }
  wq[e] = wq[e] / s[p.n + e / p.cols];
}
