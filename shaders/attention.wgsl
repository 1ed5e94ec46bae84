// Causal self-attention with grouped KV heads: out[b, t, h] = softmax_j≤t(q·k_j / √Dh) v_j, where
// query head h reads KV head h / (Hq / Hkv). Rows are B sequences of `seq` tokens:
// q, out [B·seq, Hq·Dh]; k, v [B·seq, Hkv·Dh]. One thread per (token, query head), online softmax
// (running max and sum) so scores are never materialised: memory stays O(tokens), not O(tokens²).

struct Params { T: u32, seq: u32, Hq: u32, Hkv: u32, Dh: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const DMAX = {{DMAX}}u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (idx >= p.T * p.Hq) { return; }
  let h = idx % p.Hq;
  let t = idx / p.Hq;
  let t0 = t - t % p.seq; // first token of this sequence
  let kvh = h / (p.Hq / p.Hkv);
  let qo = t * p.Hq * p.Dh + h * p.Dh;
  let kvStride = p.Hkv * p.Dh;
  var qv: array<f32, DMAX>;
  var acc: array<f32, DMAX>;
  for (var d = 0u; d < p.Dh; d++) { qv[d] = q[qo + d] * p.scale; }
  var m = -3.0e38;
  var l = 0.0;
  for (var j = t0; j <= t; j++) {
    let ko = j * kvStride + kvh * p.Dh;
    var s = 0.0;
    for (var d = 0u; d < p.Dh; d++) { s += qv[d] * k[ko + d]; }
    let mNew = max(m, s);
    let corr = exp(m - mNew);
    let e = exp(s - mNew);
    l = l * corr + e;
    for (var d = 0u; d < p.Dh; d++) { acc[d] = acc[d] * corr + e * v[ko + d]; }
    m = mNew;
  }
  for (var d = 0u; d < p.Dh; d++) { out[qo + d] = acc[d] / l; }
}
