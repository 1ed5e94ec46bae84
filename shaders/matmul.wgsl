// y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]) — activations times a row-major [out, in] weight.
//
// Register blocking: each thread owns a TM×TN tile of y and walks K four at a time, so every
// loaded x and w value is reused TN and TM times from registers. No workgroup memory: on llvmpipe
// barriers cost more than they save. When K % 4 == 0 the launcher binds x and w as vec4 arrays
// (the X4/W4 accessors read one vec4); otherwise the same accessors gather four scalars.
// The launcher may bind a window of w's rows (a slice of the N outputs, starting at column n0 of y)
// and a window of x/y rows, which is how tensors larger than one storage binding are used.

struct Params { M: u32, N: u32, K: u32, ldy: u32, n0: u32, has_bias: u32 }

@group(0) @binding(0) var<storage, read> x: array<{{XT}}>;
@group(0) @binding(1) var<storage, read> w: array<{{WST}}>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn x4(o: u32) -> vec4<f32> { return {{X4}}; }
fn x1(o: u32) -> f32 { return {{X1}}; }
fn w4(o: u32) -> vec4<f32> { return {{W4}}; }
fn w1(o: u32) -> f32 { return {{W1}}; }

const TM = {{TM}}u; // rows of y per thread (the launcher picks the tile per adapter)
const TN = {{TN}}u; // columns of y per thread

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
    for (var i = 0u; i < TM; i++) { xv[i] = x4(xr[i] + k); }
    for (var j = 0u; j < TN; j++) {
      let wv = w4(wr[j] + k);
      for (var i = 0u; i < TM; i++) { acc[i][j] += dot(xv[i], wv); }
    }
  }
  for (; k < p.K; k++) {
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) { acc[i][j] += x1(xr[i] + k) * w1(wr[j] + k); }
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
