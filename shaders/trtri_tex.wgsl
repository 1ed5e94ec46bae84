// The "row" step of trtri.wgsl with L and the finished rows of X read through r32float textures
// (the CPU adapter's branchless gather; storage loads inside a loop go lane by lane there). Same
// products in the same order as trtri.wgsl's row, so the same bits. The launcher copies each
// finished block row of X into the texture before the next block row reads it.

struct Params { n: u32, r0: u32, bs: u32 }

@group(0) @binding(0) var lt: texture_2d<f32>; // L [n, n]
@group(0) @binding(1) var xt: texture_2d<f32>; // X [n, n]: rows < r0 final
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

const B = 16u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let n = p.n;
  let r0 = p.r0;
  let j = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (j >= r0) { return; }
  var t: array<f32, B>;
  for (var i = 0u; i < B; i++) { t[i] = 0.0; }
  for (var k = j; k < r0; k++) {
    let xk = textureLoad(xt, vec2<u32>(j, k), 0).x;
    for (var i = 0u; i < B; i++) { t[i] += textureLoad(lt, vec2<u32>(k, r0 + min(i, p.bs - 1u)), 0).x * xk; }
  }
  for (var i = 0u; i < p.bs; i++) {
    var s = 0.0;
    for (var m = 0u; m <= i; m++) { s += x[(r0 + i) * n + r0 + m] * t[m]; }
    x[(r0 + i) * n + j] = -s;
  }
}
