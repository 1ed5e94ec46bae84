// y[M, N] = x[M, K] · Ŵᵀ for uniform packed codes (2/3/4/8-bit), x and the strip-major words read
// through textures — the CPU adapter's branchless gather (see matmul_tex.wgsl for why). A thread
// owns TM token rows × SPT strips (a strip = WPT words = WPT·PER outputs, at every input k).
// Codes are decoded once per (k, output) into f32 — Ŵ = s·q + h with h = shift − s·C per group,
// held in registers for the group, or Ŵ = s·cb[q] from a codebook texture — and serve all TM rows: the "dequant + FP GEMM" variant wrote
// and re-read Ŵ as f32 [N, K], 8× the bytes of 4-bit codes.
//
//   xt   rgba32float [M rows, K/4 texels]   four consecutive k per texel
//   wt   r32uint / rg32uint [S rows, K texels]  strip s at input k (the strip-major words as they are)
//   scale, shift f32 [G, W·PER] as in qmatmul.wgsl; cbt (NF4/FP4) the 4-bit table's 16-bit values
//   as rgba32float [256 × 256] (four codes a fetch, as in qgemv_tex.wgsl), or r32float [2^BITS × 1]

struct Params { M: u32, N: u32, K: u32, S: u32, G: u32, gs4: u32, NP: u32, has_bias: u32 }

@group(0) @binding(0) var xt: texture_2d<f32>;
@group(0) @binding(1) var wt: texture_2d<u32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read> shift: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>; // [M, N] window
@group(0) @binding(6) var<uniform> p: Params;
{{CB_DECL}}

const MASK = (1u << {{BITS}}u) - 1u;
const C = f32(1u << ({{BITS}}u - 1u));

fn xload(k4: u32, m: u32) -> vec4<f32> { return textureLoad(xt, vec2<u32>(k4, m), 0); }
fn wload(k: u32, s: u32) -> vec4<u32> { return textureLoad(wt, vec2<u32>(k, s), 0); }

@compute @workgroup_size(8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s_base = gid.x * {{SPT}}u;
  let m_base = gid.y * {{TM}}u;
  if (s_base >= p.S || m_base >= p.M) { return; }
  // Rows and strips past the edge read the last valid one; their results are not stored.
  let m_last = p.M - 1u;
  let s_last = p.S - 1u;
  {{DECL}}
  for (var g = 0u; g < p.G; g++) {
    {{GROUP}}
    for (var k4 = g * p.gs4; k4 < (g + 1u) * p.gs4; k4++) {
      {{BODY}}
    }
  }
  {{STORE}}
}
