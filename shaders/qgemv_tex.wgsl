// y[N] = Ŵ · x (+ bias) for one token row, CPU adapters: the strip-major words read through a
// texture made once per layer (kept with it: the weight's layout for this variant); x from storage
// (every lane reads the same k, and a texture per call costs more CPU than it saves: tiny-llama's
// W4 decode 115 tok/s with x as a texture, 164 from storage, equal speed at 4096²). A thread owns OW adjacent words (OW·PER outputs: SPT strips of WPT words) and walks
// all of K; codes are decoded in unrolled, named code (llvmpipe keeps named values in registers,
// indexed private arrays it does not) — 3.6–5× the buffer GEMV at 4096², 11008×4096 (llvmpipe).
//
//   x4   vec4<f32> [K/4]             four consecutive k
//   wt   r32uint / rg32uint [S, K]   strip s at input k (the strip-major words as they are)
//   scale, shift f32 [G, W·PER]      as in qmatmul.wgsl: Ŵ = s·(q − C) + shift, or s·cb[q]
//   cbt  codebooks: 4-bit tables as rgba32float [256, 256], texel (v & 255, v >> 8) = the four
//        codes of the 16-bit value v (one fetch serves four codes: NF4 is fetch-bound here), else
//        r32float [2^BITS, 1]; none for the "select" variant, whose CB_DECL is a cbload() that
//        picks the code's value from the codebook's constants by a tree of selects

struct Params { N: u32, K: u32, S: u32, G: u32, gs4: u32, NP: u32, T: u32, has_bias: u32 }

@group(0) @binding(0) var<storage, read> x4: array<vec4<f32>>; // x [K/4]: every lane reads the same k
@group(0) @binding(1) var wt: texture_2d<u32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read> shift: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;
{{CB_DECL}}

const MASK = (1u << {{BITS}}u) - 1u;
const C = f32(1u << ({{BITS}}u - 1u));

fn wload(k: u32, s: u32) -> vec4<u32> { return textureLoad(wt, vec2<u32>(k, s), 0); }

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (t >= p.T) { return; }
  let n0 = t * {{OUTS}}u; // first output of this thread
  // Strips past the last read the last one; their outputs are not stored.
  {{DECL}}
  for (var g = 0u; g < p.G; g++) {
    {{ZERO}}
    var xs = 0.0;
    for (var k4 = g * p.gs4; k4 < (g + 1u) * p.gs4; k4++) {
      let xv = x4[k4];
      xs += xv.x + xv.y + xv.z + xv.w;
      {{BODY}}
    }
    let go = g * p.NP + n0;
    let glast = g * p.NP + p.NP - 1u;
    {{GROUP_END}}
  }
  {{STORE}}
}
