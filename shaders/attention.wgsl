// Causal self-attention with grouped KV heads: out[b, t, h] = softmax_j≤t(q·k_j / √Dh) v_j, where
// query head h reads KV head h / (Hq / Hkv). Rows are B sequences of `seq` tokens:
// q, out [B·seq, Hq·Dh]; k, v [B·seq, Hkv·Dh].
// With a KV cache (B = 1): query row t sits at position pos0 + t, k/v are the cache [≥ pos0 + T,
// Hkv·Dh] holding every position so far, and query t attends to keys 0 … pos0 + t.
//
// One 32-thread workgroup per (token, query head). Thread i takes keys t0+i, t0+i+32, … with an
// online softmax (running max m and sum l) over its keys, so scores are never materialised; then
// the 32 partial (m, l, acc) are merged in workgroup memory. Splitting keys across threads matters
// beyond speed: llvmpipe ends any shader invocation after 65535 loop iterations in total, which a
// thread walking 2048 keys × Dh would exceed.

struct Params { T: u32, seq: u32, Hq: u32, Hkv: u32, Dh: u32, pos0: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;

const WG = 32u;
const D4MAX = {{D4MAX}}u; // Dh / 4, rounded up to a multiple of 8

var<workgroup> sm: array<f32, WG>;
var<workgroup> sl: array<f32, WG>;
var<workgroup> chunk: array<vec4<f32>, 256>; // [WG threads][8 vec4] = 32 dims per merge round

@compute @workgroup_size(32)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = wid.y * nwg.x + wid.x;
  if (idx >= p.T * p.Hq) { return; } // uniform per workgroup
  let h = idx % p.Hq;
  let t = idx / p.Hq;
  let t0 = t - t % p.seq; // first token of this sequence
  let kvh = h / (p.Hq / p.Hkv);
  let d4 = p.Dh / 4u;
  let qo = (t * p.Hq + h) * d4;
  var qv: array<vec4<f32>, D4MAX>;
  var acc: array<vec4<f32>, D4MAX>;
  for (var d = 0u; d < d4; d++) { qv[d] = q[qo + d] * p.scale; }
  var m = -3.0e38;
  var l = 0.0;
  for (var j = t0 + lid; j <= t + p.pos0; j += WG) {
    let ko = (j * p.Hkv + kvh) * d4;
    var s4 = vec4<f32>(0.0);
    for (var d = 0u; d < d4; d++) { s4 += qv[d] * k[ko + d]; }
    let s = s4.x + s4.y + s4.z + s4.w;
    let mNew = max(m, s);
    let corr = exp(m - mNew);
    let e = exp(s - mNew);
    l = l * corr + e;
    for (var d = 0u; d < d4; d++) { acc[d] = acc[d] * corr + e * v[ko + d]; }
    m = mNew;
  }
  // Merge: global max M, each thread's share rescaled by exp(m − M); threads without keys have l = 0.
  sm[lid] = m;
  workgroupBarrier();
  var M = -3.0e38;
  for (var i = 0u; i < WG; i++) { M = max(M, sm[i]); }
  let f = select(0.0, exp(m - M), l > 0.0);
  sl[lid] = l * f;
  workgroupBarrier();
  var L = 0.0;
  for (var i = 0u; i < WG; i++) { L += sl[i]; }
  let oo = (t * p.Hq + h) * d4;
  for (var c = 0u; c < d4; c += 8u) { // 8 vec4 = 32 dims per round
    for (var i = 0u; i < 8u; i++) { chunk[lid * 8u + i] = acc[min(c + i, D4MAX - 1u)] * f; }
    workgroupBarrier();
    if (lid < 8u && c + lid < d4) {
      var s = vec4<f32>(0.0);
      for (var i = 0u; i < WG; i++) { s += chunk[i * 8u + lid]; }
      out[oo + c + lid] = s / L;
    }
    workgroupBarrier();
  }
}
