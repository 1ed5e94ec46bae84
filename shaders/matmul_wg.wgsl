// y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]), variant "workgroup" for hardware adapters: a 16×16
// workgroup computes a 64×64 tile of y, staging 64 rows of x and of w × 16 k in workgroup memory
// per step (each thread loads one vec4 of each), then every thread reads its 4×4 outputs' operands
// from there: each value fetched from memory once per workgroup instead of once per thread, the
// classic tiling discrete GPUs want. Same accessors and windows as matmul.wgsl, and the same sum
// order per output (k ascending, four at a time): the same bits as "tiled". Needs K % 4 == 0.

struct Params { M: u32, N: u32, K: u32, ldy: u32, n0: u32, has_bias: u32 }

@group(0) @binding(0) var<storage, read> x: array<{{XT}}>;
@group(0) @binding(1) var<storage, read> w: array<{{WST}}>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn x4(o: u32) -> vec4<f32> { return {{X4}}; }
fn w4(o: u32) -> vec4<f32> { return {{W4}}; }

const BM = 64u; // tile rows (of y: tokens)
const BN = 64u; // tile columns (outputs)
const BK4 = 4u; // vec4s of k per step (16 k)

var<workgroup> xs: array<vec4<f32>, 256>; // [BM rows, BK4]
var<workgroup> ws: array<vec4<f32>, 256>; // [BN rows, BK4]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  // This thread's share of each step's loads: row li / 4 of the tile, vec4 li % 4 of the step.
  let lr = li / BK4;
  let lk = li % BK4;
  let xrow = min(m0 + lr, p.M - 1u) * p.K;
  let wrow = min(n0 + lr, p.N - 1u) * p.K;
  var acc: array<array<f32, 4>, 4>;
  for (var i = 0u; i < 4u; i++) { for (var j = 0u; j < 4u; j++) { acc[i][j] = 0.0; } }
  let K4 = p.K / 4u;
  for (var k4 = 0u; k4 < K4; k4 += BK4) {
    let kk = k4 + lk;
    xs[li] = select(vec4<f32>(0.0), x4(xrow + 4u * kk), kk < K4);
    ws[li] = select(vec4<f32>(0.0), w4(wrow + 4u * kk), kk < K4);
    workgroupBarrier();
    let steps = min(BK4, K4 - k4);
    for (var s = 0u; s < steps; s++) {
      var xv: array<vec4<f32>, 4>;
      for (var i = 0u; i < 4u; i++) { xv[i] = xs[(lid.y * 4u + i) * BK4 + s]; }
      for (var j = 0u; j < 4u; j++) {
        let wv = ws[(lid.x * 4u + j) * BK4 + s];
        for (var i = 0u; i < 4u; i++) { acc[i][j] += dot(xv[i], wv); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y * 4u + i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x * 4u + j;
      if (n >= p.N) { break; }
      var v = acc[i][j];
      if (p.has_bias != 0u) { v += bias[p.n0 + n]; }
      y[m * p.ldy + p.n0 + n] = v;
    }
  }
}
