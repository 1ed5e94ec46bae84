// out[m, j] = x[m, perm[j]] — reorders input columns for act-order (g_idx) layers, whose weight
// columns were sorted by group at load time so that groups are contiguous again.

struct Params { M: u32, K: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> perm: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.M * p.K) { return; }
  let m = i / p.K;
  out[i] = x[m * p.K + perm[i % p.K]];
}
