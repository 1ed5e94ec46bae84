// y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]) — activations times a row-major [out, in] weight.
//
// Register blocking: each thread owns a TM×TN tile of y and walks K four at a time, so every
// loaded x and w value is reused TN and TM times from registers. No workgroup memory: on llvmpipe
// barriers cost more than they save, and this shape reaches 3–5 GFLOP/s there.
// The launcher may bind a window of w's rows (a slice of the N outputs, starting at column n0 of y)
// and a window of x/y rows, which is how tensors larger than one storage binding are used.
{{ENABLE_F16}}

struct Params { M: u32, N: u32, K: u32, ldy: u32, n0: u32, has_bias: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<{{WT}}>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const TM = 4u;
const TN = 4u;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n_base = gid.x * TN;
  let m_base = gid.y * TM;
  if (n_base >= p.N || m_base >= p.M) { return; }
  // Rows past the edge read the last valid row (always in bounds); their results are not stored.
  var xr: array<u32, TM>;
  var wr: array<u32, TN>;
  for (var i = 0u; i < TM; i++) { xr[i] = min(m_base + i, p.M - 1u) * p.K; }
  for (var j = 0u; j < TN; j++) { wr[j] = min(n_base + j, p.N - 1u) * p.K; }
  var acc: array<array<f32, TN>, TM>;
  var k = 0u;
  for (; k + 4u <= p.K; k += 4u) {
    var xv: array<vec4<f32>, TM>;
    for (var i = 0u; i < TM; i++) {
      let o = xr[i] + k;
      xv[i] = vec4<f32>(x[o], x[o + 1u], x[o + 2u], x[o + 3u]);
    }
    for (var j = 0u; j < TN; j++) {
      let o = wr[j] + k;
      let wv = vec4<f32>(f32(w[o]), f32(w[o + 1u]), f32(w[o + 2u]), f32(w[o + 3u]));
      for (var i = 0u; i < TM; i++) { acc[i][j] += dot(xv[i], wv); }
    }
  }
  for (; k < p.K; k++) {
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) { acc[i][j] += x[xr[i] + k] * f32(w[wr[j] + k]); }
    }
  }
  for (var i = 0u; i < TM; i++) {
    let m = m_base + i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < TN; j++) {
      let n = n_base + j;
      if (n >= p.N) { break; }
      var v = acc[i][j];
      if (p.has_bias != 0u) { v += bias[p.n0 + n]; }
      y[m * p.ldy + p.n0 + n] = v;
    }
  }
}
