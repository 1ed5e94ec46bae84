// Backward of causal attention with grouped KV heads, variant "rows" (CPU adapters): the contract
// of attention_backward.wgsl (q, o, dO, dq [B·seq, Hq·Dh]; k, v, dk, dv [B·seq, Hkv·Dh]; lse, D
// [B·seq·Hq]), each thread owning R rows of one head and one sequence, as attention_rows.wgsl does
// for the forward pass: a key (or query) vector fetched once serves all R rows, there is no
// barrier, and the per-row code is unrolled by the launcher (named values stay in registers).
//   dq:  R query rows of head h: pass 1 over their keys gives lse (online softmax) and D = dO·o,
//        written for dkv; pass 2 accumulates dq_t = c Σ_j P_tj (dO_t·v_j − D_t) k_j.
//   dkv: R key rows of KV head kvh: over the queries t ≥ j of the sequence and the G query heads of
//        the group, dk_j = c Σ dS_tj q_t and dv_j = Σ P_tj dO_t.
// k, v (entry dq) and q, dO (entry dkv) are read through rgba32float textures [tokens, heads·Dh/4]
// (llvmpipe's texel fetch is a branchless gather; a per-lane storage load is a branchy loop).

struct Params { T: u32, seq: u32, Hq: u32, Hkv: u32, Dh: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> o: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> dd: array<f32>;
@group(0) @binding(7) var<storage, read_write> ga: array<vec4<f32>>; // dq, or dk
@group(0) @binding(8) var<storage, read_write> gb: array<vec4<f32>>; // dv (entry dkv)
@group(0) @binding(9) var<uniform> p: Params;
@group(0) @binding(10) var ta: texture_2d<f32>; // k (dq) or q (dkv)
@group(0) @binding(11) var tb: texture_2d<f32>; // v (dq) or dO (dkv)

const R = {{R}}u;   // rows per thread
const D4 = {{D4}}u; // Dh / 4

@compute @workgroup_size(8)
fn dq(@builtin(global_invocation_id) gid: vec3<u32>) {
  let groups = (p.seq + R - 1u) / R;
  let t0 = (gid.x / groups) * p.seq;
  if (t0 >= p.T) { return; }
  let g0 = (gid.x % groups) * R;
  let h = gid.y;
  let kvh = h / (p.Hq / p.Hkv);
  // Rows past the sequence's end read its last row and are not stored.
  {{DQ_DECL}}
  let last = min(g0 + R - 1u, p.seq - 1u);
  for (var j = 0u; j <= last; j++) {
    let kt = vec2<u32>(kvh * D4, t0 + j);
    {{DQ_STATS}}
  }
  {{DQ_MID}}
  for (var j = 0u; j <= last; j++) {
    let kt = vec2<u32>(kvh * D4, t0 + j);
    {{DQ_KEY}}
  }
  {{DQ_STORE}}
}

@compute @workgroup_size(8)
fn dkv(@builtin(global_invocation_id) gid: vec3<u32>) {
  let groups = (p.seq + R - 1u) / R;
  let t0 = (gid.x / groups) * p.seq;
  if (t0 >= p.T) { return; }
  let g0 = (gid.x % groups) * R;
  let kvh = gid.y;
  let G = p.Hq / p.Hkv;
  {{KV_DECL}}
  for (var it = g0 * G; it < p.seq * G; it++) {
    let t = it / G;
    let h = kvh * G + it % G;
    let row = (t0 + t) * p.Hq + h;
    let ls = lse[row];
    let D = dd[row];
    let qt = vec2<u32>(h * D4, t0 + t);
    {{KV_QUERY}}
  }
  {{KV_STORE}}
}
