// y[N] = w[N, K] · x[K] (+ bias[N]) — the decode-time product, bandwidth-bound: every weight is
// read once. One output row per thread, four k at a time. When K % 4 == 0 the launcher binds x
// and w as vec4 arrays (X4/W4 read one vec4), which llvmpipe loads ~1.6× faster than four
// scalars; otherwise the same accessors gather scalars. On llvmpipe one row per thread beats a
// workgroup reduction, which pays for barriers. The launcher may bind a window of w's rows
// starting at output n0.

struct Params { N: u32, K: u32, n0: u32, has_bias: u32 }

@group(0) @binding(0) var<storage, read> x: array<{{XT}}>;
@group(0) @binding(1) var<storage, read> w: array<{{WST}}>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn x4(o: u32) -> vec4<f32> { return {{X4}}; }
fn x1(o: u32) -> f32 { return {{X1}}; }
fn w4(o: u32) -> vec4<f32> { return {{W4}}; }
fn w1(o: u32) -> f32 { return {{W1}}; }

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let n = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (n >= p.N) { return; }
  let base = n * p.K;
  var acc = vec4<f32>(0.0);
  var k = 0u;
  for (; k + 4u <= p.K; k += 4u) { acc += x4(k) * w4(base + k); }
  var s = acc.x + acc.y + acc.z + acc.w;
  for (; k < p.K; k++) { s += x1(k) * w1(base + k); }
  if (p.has_bias != 0u) { s += bias[p.n0 + n]; }
  y[p.n0 + n] = s;
}
