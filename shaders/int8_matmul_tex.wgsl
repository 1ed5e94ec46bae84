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
@group(0) @binding(11) var xt: texture_2d<f32>;                     // x [T rows, K/4 texels]
@group(0) @binding(12) var<storage, read_write> flags4: array<vec4<u32>>; // flags [K] as K/4 vec4
@group(0) @binding(13) var<storage, read_write> seen4: array<vec4<u32>>;  // seen [K] as K/4 vec4
@group(0) @binding(14) var<storage, read_write> rowstat_w: array<f32>;    // [T]
@group(0) @binding(15) var<storage, read_write> ca4: array<vec4<i32>>;    // CA [T, K/4]

// Bytes of a CB word as signed values: byte j is column 4w + j.
fn bytes4(w: u32) -> vec4<i32> {
  return vec4<i32>(i32(w << 24u) >> 24u, i32(w << 16u) >> 24u, i32(w << 8u) >> 24u, i32(w) >> 24u);
}

fn code(n: u32, k: u32) -> f32 {
  let word = cb[n * (p.K / 4u) + k / 4u];
  return f32(i32(word << (24u - 8u * (k % 4u))) >> 24u);
}

// bitsandbytes quantizes the activations after casting them to float16 (MatMul8bitLt: A.to(fp16));
// the outlier columns' FP product uses x as it is.
{{include half_round}}

fn half4(v: vec4<f32>) -> vec4<f32> { return vec4<f32>(half(v.x), half(v.y), half(v.z), half(v.w)); }

fn outlier(v: f32) -> bool {
  return p.threshold > 0.0 && abs(v) >= p.threshold;
}

fn outlier4(v: vec4<f32>) -> vec4<u32> {
  return vec4<u32>(select(0u, 1u, outlier(v.x)), select(0u, 1u, outlier(v.y)), select(0u, 1u, outlier(v.z)),
                   select(0u, 1u, outlier(v.w)));
}

// int8_matmul.wgsl's `cols` and `rows` with x read through a texture, four columns per texel:
// the same flags (an OR), the same row absmax (a max) and the same CA values.
@compute @workgroup_size(8)
fn cols(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.K / 4u) { return; }
  var f = vec4<u32>(0u);
  for (var t = 0u; t < p.T; t++) { f = f | outlier4(half4(textureLoad(xt, vec2<u32>(c, t), 0))); }
  if (p.first == 0u) { f = f | flags4[c]; }
  flags4[c] = f;
  seen4[c] = seen4[c] | f;
}

@compute @workgroup_size(8)
fn rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= p.T) { return; }
  let K4 = p.K / 4u;
  var m = 0.0;
  for (var q = 0u; q < K4; q++) {
    let v = half4(textureLoad(xt, vec2<u32>(q, t), 0));
    let o = outlier4(v);
    if (o.x == 0u) { m = max(m, abs(v.x)); }
    if (o.y == 0u) { m = max(m, abs(v.y)); }
    if (o.z == 0u) { m = max(m, abs(v.z)); }
    if (o.w == 0u) { m = max(m, abs(v.w)); }
  }
  rowstat_w[t] = m;
  let inv = select(0.0, 127.0 / m, m > 0.0);
  for (var q = 0u; q < K4; q++) {
    let v = half4(textureLoad(xt, vec2<u32>(q, t), 0));
    let drop = (flags4[q] == vec4<u32>(1u)) | (outlier4(v) == vec4<u32>(1u));
    ca4[t * K4 + q] = select(vec4<i32>(round(v * inv)), vec4<i32>(0), drop);
  }
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
