// y[N] = w[N, K] · x[K] (+ bias[N]) — the decode-time product, bandwidth-bound: every weight is
// read once. One output row per thread, four k at a time (on llvmpipe this beats a workgroup
// reduction, which pays for barriers). The launcher may bind a window of w's rows starting at n0.
{{ENABLE_F16}}

struct Params { N: u32, K: u32, n0: u32, has_bias: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<{{WT}}>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let n = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (n >= p.N) { return; }
  let base = n * p.K;
  var acc = vec4<f32>(0.0);
  var k = 0u;
  for (; k + 4u <= p.K; k += 4u) {
    let o = base + k;
    acc += vec4<f32>(x[k], x[k + 1u], x[k + 2u], x[k + 3u]) *
           vec4<f32>(f32(w[o]), f32(w[o + 1u]), f32(w[o + 2u]), f32(w[o + 3u]));
  }
  var s = acc.x + acc.y + acc.z + acc.w;
  for (; k < p.K; k++) { s += x[k] * f32(w[base + k]); }
  if (p.has_bias != 0u) { s += bias[p.n0 + n]; }
  y[p.n0 + n] = s;
}
