// Backward of causal attention with grouped KV heads (shaders/attention.wgsl), rows are B
// sequences of `seq` tokens; q, o, dO, dq [B·seq, Hq·Dh], k, v, dk, dv [B·seq, Hkv·Dh].
// With c = 1/√Dh, S_tj = c·q_t·k_j (j ≤ t in t's sequence), P = softmax_j S, o_t = Σ_j P_tj v_j:
//   D_t   = dO_t · o_t                       (entry `stats`, with lse_t = log Σ_j exp S_tj)
//   dS_tj = P_tj (dO_t · v_j − D_t)
//   dq_t  = c Σ_j dS_tj k_j                  (entry `dq`: one workgroup per (t, query head))
//   dk_j  = c Σ_{t ≥ j, h in group} dS_tj q_t,  dv_j = Σ P_tj dO_t   (entry `dkv`: per (j, KV head))
// P is recomputed from lse rather than stored: the score matrix never exists. As in the forward
// kernel, the 32 threads of a workgroup split the keys (or queries) so no thread loops past
// llvmpipe's per-invocation cap, then merge their partial sums through workgroup memory.

struct Params { T: u32, seq: u32, Hq: u32, Hkv: u32, Dh: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> o: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>; // [T·Hq]
@group(0) @binding(6) var<storage, read_write> dd: array<f32>; // [T·Hq]: D_t
@group(0) @binding(7) var<storage, read_write> ga: array<vec4<f32>>; // dq, or dk
@group(0) @binding(8) var<storage, read_write> gb: array<vec4<f32>>; // dv (entry dkv)
@group(0) @binding(9) var<uniform> p: Params;

const WG = 32u;
const D4MAX = {{D4MAX}}u;

var<workgroup> sm: array<f32, WG>;
var<workgroup> chunk: array<vec4<f32>, 256>;

fn dot4(a: vec4<f32>) -> f32 { return a.x + a.y + a.z + a.w; }

/** Query row idx = t·Hq + h: its sequence start t0, KV head and offset (in vec4) into q/o/dO. */
struct QRow { t: u32, t0: u32, kvh: u32, qo: u32 }
fn qrow(idx: u32) -> QRow {
  let h = idx % p.Hq;
  let t = idx / p.Hq;
  return QRow(t, t - t % p.seq, h / (p.Hq / p.Hkv), idx * (p.Dh / 4u));
}

/** S = c·q·k of the query at qo against the key at ko. */
fn score(qo: u32, ko: u32) -> f32 {
  var s4 = vec4<f32>(0.0);
  for (var d = 0u; d < p.Dh / 4u; d++) { s4 += q[qo + d] * k[ko + d]; }
  return dot4(s4) * p.scale;
}

/** (P, dS) of one (query, key) pair from the query row's lse and D. */
fn prob_grad(qo: u32, ko: u32, ls: f32, D: f32) -> vec2<f32> {
  var s4 = vec4<f32>(0.0);
  var p4 = vec4<f32>(0.0);
  for (var d = 0u; d < p.Dh / 4u; d++) {
    s4 += q[qo + d] * k[ko + d];
    p4 += dout[qo + d] * v[ko + d];
  }
  let P = exp(dot4(s4) * p.scale - ls);
  return vec2<f32>(P, P * (dot4(p4) - D));
}

/** Sum of every thread's value through workgroup memory. */
fn wsum(lid: u32, x: f32) -> f32 {
  sm[lid] = x;
  workgroupBarrier();
  var s = 0.0;
  for (var i = 0u; i < WG; i++) { s += sm[i]; }
  workgroupBarrier();
  return s;
}

@compute @workgroup_size(32)
fn stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let idx = wid.y * nwg.x + wid.x;
  if (idx >= p.T * p.Hq) { return; }
  let r = qrow(idx);
  let d4 = p.Dh / 4u;
  var m = -3.0e38;
  var l = 0.0;
  for (var j = r.t0 + lid; j <= r.t; j += WG) {
    let s = score(r.qo, (j * p.Hkv + r.kvh) * d4);
    let mNew = max(m, s);
    l = l * exp(m - mNew) + exp(s - mNew);
    m = mNew;
  }
  sm[lid] = m;
  workgroupBarrier();
  var M = -3.0e38;
  for (var i = 0u; i < WG; i++) { M = max(M, sm[i]); }
  workgroupBarrier();
  let L = wsum(lid, select(0.0, l * exp(m - M), l > 0.0));
  var e = 0.0;
  for (var d = lid; d < d4; d += WG) { e += dot4(dout[r.qo + d] * o[r.qo + d]); }
  let D = wsum(lid, e);
  if (lid == 0u) {
    lse[idx] = M + log(L);
    dd[idx] = D;
  }
}

/** Write Σ over threads of acc (d4 vec4 each) times f to dst[off …], 32 dims per round. */
fn merge(lid: u32, acc: ptr<function, array<vec4<f32>, D4MAX>>, d4: u32, f: f32, which: u32, off: u32) {
  for (var c = 0u; c < d4; c += 8u) {
    for (var i = 0u; i < 8u; i++) { chunk[lid * 8u + i] = (*acc)[min(c + i, D4MAX - 1u)]; }
    workgroupBarrier();
    if (lid < 8u && c + lid < d4) {
      var s = vec4<f32>(0.0);
      for (var i = 0u; i < WG; i++) { s += chunk[i * 8u + lid]; }
      if (which == 0u) { ga[off + c + lid] = s * f; } else { gb[off + c + lid] = s * f; }
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(32)
fn dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
      @builtin(local_invocation_index) lid: u32) {
  let idx = wid.y * nwg.x + wid.x;
  if (idx >= p.T * p.Hq) { return; }
  let r = qrow(idx);
  let d4 = p.Dh / 4u;
  let ls = lse[idx];
  let D = dd[idx];
  var acc: array<vec4<f32>, D4MAX>;
  for (var d = 0u; d < D4MAX; d++) { acc[d] = vec4<f32>(0.0); }
  for (var j = r.t0 + lid; j <= r.t; j += WG) {
    let ko = (j * p.Hkv + r.kvh) * d4;
    let ds = prob_grad(r.qo, ko, ls, D).y;
    for (var d = 0u; d < d4; d++) { acc[d] += ds * k[ko + d]; }
  }
  merge(lid, &acc, d4, p.scale, 0u, r.qo);
}

@compute @workgroup_size(32)
fn dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  let idx = wid.y * nwg.x + wid.x;
  if (idx >= p.T * p.Hkv) { return; }
  let kvh = idx % p.Hkv;
  let j = idx / p.Hkv;
  let G = p.Hq / p.Hkv;
  let tEnd = j - j % p.seq + p.seq; // end of j's sequence
  let d4 = p.Dh / 4u;
  let ko = (j * p.Hkv + kvh) * d4;
  var ak: array<vec4<f32>, D4MAX>;
  var av: array<vec4<f32>, D4MAX>;
  for (var d = 0u; d < D4MAX; d++) { ak[d] = vec4<f32>(0.0); av[d] = vec4<f32>(0.0); }
  let n = (tEnd - j) * G;
  for (var i = lid; i < n; i += WG) {
    let t = j + i / G;
    let h = kvh * G + i % G;
    let r = t * p.Hq + h;
    let qo = r * d4;
    let pg = prob_grad(qo, ko, lse[r], dd[r]);
    for (var d = 0u; d < d4; d++) {
      ak[d] += pg.y * q[qo + d];
      av[d] += pg.x * dout[qo + d];
    }
  }
  merge(lid, &ak, d4, p.scale, 0u, ko);
  merge(lid, &av, d4, 1.0, 1u, ko);
}
