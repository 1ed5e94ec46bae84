// token_nll.wgsl's `nll` for the CPU adapter: a thread per row, logits read through a texture
// (branchless gathers; llvmpipe pays for the workgroup's barriers and lane-by-lane loads). The 64
// partial maxima and sums of token_nll.wgsl's workgroup (partial l covers columns l, l + 64, …
// in that order) are 64 named registers here, reduced by the same tree: the same bits. The
// launcher generates the code; V is a multiple of 64.

struct Params { rows: u32, V: u32 }

@group(0) @binding(0) var lt: texture_2d<f32>; // logits [rows, V/4 texels]
@group(0) @binding(1) var<storage, read> target_ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= p.rows) { return; }
  let V4 = p.V / 4u;
  {{DECL_MAX}}
  for (var q0 = 0u; q0 < V4; q0 += 16u) {
    {{MAX}}
  }
  {{TREE_MAX}}
  let mx = m0;
  {{DECL_SUM}}
  for (var q0 = 0u; q0 < V4; q0 += 16u) {
    {{SUM}}
  }
  {{TREE_SUM}}
  let tg = target_ids[r];
  let own = textureLoad(lt, vec2<u32>(tg / 4u, r), 0)[tg % 4u];
  out[r] = (mx + log(s0)) - own;
}
