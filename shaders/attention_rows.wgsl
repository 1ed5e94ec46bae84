// Causal self-attention with grouped KV heads, variant 2 ("rows"): each thread owns R query rows
// of one head and one sequence and walks their keys in order with an online softmax per row.
// Same contract as attention.wgsl: q, out [B·seq, Hq·Dh]; k, v [B·seq, Hkv·Dh] (or the KV cache
// with pos0 > 0, B = 1).
//
// Why a second variant: on llvmpipe the 32-thread cooperative kernel spends its time in strided
// key gathers and workgroup barriers, and storage loads cost more than the arithmetic. Here a key
// and value vector, loaded once, serves all R rows of the thread (R = 16 at head_dim 64 measured
// 10× the one-row-per-thread version at T = 512, same bits: each row's sums run in the same order),
// and there is no barrier. The per-row code is unrolled by the launcher (the DECL, KEY and STORE
// blocks: llvmpipe keeps named variables in registers, indexed private arrays it does not).
// A thread's loop runs once per key, so llvmpipe's loop-iteration cap bounds the keys.

struct Params { T: u32, seq: u32, Hq: u32, Hkv: u32, Dh: u32, pos0: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
// k and v: storage arrays of vec4, or on a CPU adapter rgba32float textures [rows = tokens,
// Hkv·Dh/4 texels] (texel fetches gather without llvmpipe's per-lane branches; same values).
{{KV_DECL}}
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;

const R = {{R}}u;   // query rows per thread
const D4 = {{D4}}u; // Dh / 4

@compute @workgroup_size(8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // Thread → (sequence, group of R rows within it): a group never straddles two sequences.
  let groups = (p.seq + R - 1u) / R;
  let t0 = (gid.x / groups) * p.seq; // first token of this sequence
  if (t0 >= p.T) { return; }
  let g0 = (gid.x % groups) * R;     // first row of the group, within the sequence
  let h = gid.y;                     // query head
  let kvh = h / (p.Hq / p.Hkv);
  // Rows past the sequence's end read its last row and are not stored.
  {{DECL}}
  let last = min(g0 + R - 1u, p.seq - 1u);
  for (var j = 0u; j <= last + p.pos0; j++) {
    let ko = ((t0 + j) * p.Hkv + kvh) * D4; // k/v element of this key (storage variant)
    let kt = vec2<u32>(kvh * D4, t0 + j);      // its texel (texture variant)
    {{KEY}}
  }
  {{STORE}}
}
