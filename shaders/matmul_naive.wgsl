// y[M, N] = x[M, K] · w[N, K]ᵀ, one output per thread: the baseline the tiled matmul is measured
// against in bench/kernels.ts (and checked against the same CPU reference).

struct Params { M: u32, N: u32, K: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  let m = gid.y;
  if (n >= p.N || m >= p.M) { return; }
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) { acc += x[m * p.K + k] * w[n * p.K + k]; }
  y[m * p.N + n] = acc;
}
