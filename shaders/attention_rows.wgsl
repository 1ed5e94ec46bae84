// Causal self-attention with grouped KV heads, variant 2 ("rows"): one thread per (query row,
// head), walking its keys in order with an online softmax. Same contract as attention.wgsl:
// q, out [B·seq, Hq·Dh]; k, v [B·seq, Hkv·Dh] (or the KV cache with pos0 > 0, B = 1).
//
// Why a second variant: on llvmpipe the 32-thread cooperative kernel spends its time in strided
// key gathers and workgroup barriers. Here neighbouring lanes are neighbouring query rows of one
// head, so every lane reads the same key and value vectors (one load serves the SIMD group) and
// there is no barrier: 2.0–5× faster on llvmpipe at T = 64…512. A thread walks all its keys, so
// the launcher uses it only while keys × (1 + 2·D4) stays under llvmpipe's loop-iteration cap.

struct Params { T: u32, seq: u32, Hq: u32, Hkv: u32, Dh: u32, pos0: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;

const D4 = {{D4}}u; // Dh / 4, a compile-time constant so the per-key loops can be unrolled

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x; // query row
  let h = gid.y; // query head
  if (t >= p.T) { return; }
  let t0 = t - t % p.seq; // first token of this sequence
  let kvh = h / (p.Hq / p.Hkv);
  let qo = (t * p.Hq + h) * D4;
  var qv: array<vec4<f32>, D4>;
  var acc: array<vec4<f32>, D4>;
  for (var d = 0u; d < D4; d++) { qv[d] = q[qo + d] * p.scale; }
  var m = -3.0e38;
  var l = 0.0;
  for (var j = t0; j <= t + p.pos0; j++) {
    let ko = (j * p.Hkv + kvh) * D4;
    var s4 = vec4<f32>(0.0);
    for (var d = 0u; d < D4; d++) { s4 += qv[d] * k[ko + d]; }
    let s = s4.x + s4.y + s4.z + s4.w;
    let mNew = max(m, s);
    let corr = exp(m - mNew);
    let e = exp(s - mNew);
    l = l * corr + e;
    for (var d = 0u; d < D4; d++) { acc[d] = acc[d] * corr + e * v[ko + d]; }
    m = mNew;
  }
  for (var d = 0u; d < D4; d++) { out[qo + d] = acc[d] / l; }
}
