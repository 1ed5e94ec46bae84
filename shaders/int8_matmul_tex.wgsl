// int8_matmul.wgsl's `mm` for the CPU adapter: CA and CB read through textures (branchless
// gathers; storage loads in a loop go lane by lane on llvmpipe), a TM×TN tile of y per thread
// (unrolled by the launcher), 16 k per CB texel. The integer part sums every column (CA is 0 in
// outlier columns, and i32 sums do not depend on order); the FP part walks the outlier columns in
// ascending order from the list `outl` ([count, k…], written by `list` below), exactly the terms
// and order of `mm`. So y has mm's bits.

struct Params { T: u32, K: u32, N: u32, hasBias: u32, n0: u32, Ntot: u32, first: u32, threshold: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;             // [T, K] (outlier columns only)
@group(0) @binding(1) var<storage, read> flags: array<u32>;         // [K]
@group(0) @binding(2) var<storage, read_write> outl: array<u32>;    // [1 + K]: count, then columns
@group(0) @binding(3) var<storage, read> rowstat: array<f32>;       // [T]
@group(0) @binding(4) var cat: texture_2d<i32>;                     // CA [T rows, K/4 texels]
@group(0) @binding(5) var cbt: texture_2d<u32>;                     // CB [N rows, K/16 texels]
@group(0) @binding(6) var<storage, read> scb: array<f32>;           // [Ntot]
@group(0) @binding(7) var<storage, read> bias: array<f32>;          // [Ntot] or dummy
@group(0) @binding(8) var<storage, read_write> y: array<f32>;       // [T, Ntot]
@group(0) @binding(9) var<uniform> p: Params;
@group(0) @binding(10) var<storage, read> cb: array<u32>;           // [N, K/4] (outlier columns only)

// Bytes of a CB word as signed values: byte j is column 4w + j.
fn bytes4(w: u32) -> vec4<i32> {
  return vec4<i32>(i32(w << 24u) >> 24u, i32(w << 16u) >> 24u, i32(w << 8u) >> 24u, i32(w) >> 24u);
}

fn code(n: u32, k: u32) -> f32 {
  let word = cb[n * (p.K / 4u) + k / 4u];
  return f32(i32(word << (24u - 8u * (k % 4u))) >> 24u);
}

@compute @workgroup_size(1)
fn list() {
  var c = 0u;
  for (var k = 0u; k < p.K; k++) {
    if (flags[k] == 1u) {
      outl[1u + c] = k;
      c++;
    }
  }
  outl[0] = c;
}

@compute @workgroup_size(8)
fn mm(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n_base = gid.x * {{TN}}u;
  let t_base = gid.y * {{TM}}u;
  if (n_base >= p.N || t_base >= p.T) { return; }
  let t_last = p.T - 1u;
  let n_last = p.N - 1u;
  {{DECL}}
  for (var q = 0u; q < p.K / 16u; q++) {
    {{BODY}}
  }
  let count = outl[0];
  for (var o = 0u; o < count; o++) {
    let k = outl[1u + o];
    {{OUTLIER}}
  }
  {{STORE}}
}
