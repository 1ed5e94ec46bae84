// y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]) with x and w read through textures, one texel = four
// consecutive k. On llvmpipe a storage-buffer load whose address differs across lanes becomes a
// per-lane loop with a branch for each lane and component, while a texel fetch is a branchless
// gather: the same register tile measured 4–6× faster this way (same products, same sum order as
// matmul.wgsl, so the same bits). The launcher copies each window of x and w into a texture
// (rows = tokens or outputs, width = K/4 texels) and generates the unrolled tile code: named
// accumulators, which llvmpipe keeps in registers where indexed private arrays it would not.

struct Params { M: u32, N: u32, K4: u32, ldy: u32, n0: u32 }

@group(0) @binding(0) var xt: texture_2d<f32>; // [M rows, K/4 texels] rgba32float
@group(0) @binding(1) var wt: texture_2d<{{WTT}}>; // [N rows, K/4 texels]: rgba32float, or rg32uint of four 16-bit weights
@group(0) @binding(2) var<storage, read> bias: array<f32>; // [N] (bound only when the tile code reads it)
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // [M, ldy], columns n0.. of this window
@group(0) @binding(4) var<uniform> p: Params;

fn xload(k: u32, m: u32) -> vec4<f32> { return textureLoad(xt, vec2<u32>(k, m), 0); }
fn wload(k: u32, n: u32) -> vec4<f32> { let t = textureLoad(wt, vec2<u32>(k, n), 0); return {{W4}}; }

@compute @workgroup_size(8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n_base = gid.x * {{TN}}u;
  let m_base = gid.y * {{TM}}u;
  if (n_base >= p.N || m_base >= p.M) { return; }
  // Rows and columns past the edge read the last valid one; their results are not stored.
  let m_last = p.M - 1u;
  let n_last = p.N - 1u;
  {{DECL}}
  for (var k = 0u; k < p.K4; k++) {
    {{BODY}}
  }
  {{STORE}}
}
