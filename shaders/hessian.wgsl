// H[in, in] ← a·H + b·XᵀX for X [T, in]: GPTQ's running Hessian of a linear layer's inputs.
// Each thread owns a 4×4 tile of H and walks the T tokens, reusing each loaded x four times.
// The launcher may bind a window of H's rows [row0, row0 + rows) when H exceeds one binding.

struct Params { T: u32, D: u32, row0: u32, rows: u32, a: f32, b: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> h: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j0 = gid.x * 4u;
  let i0 = gid.y * 4u; // row within the window
  if (j0 >= p.D || i0 >= p.rows) { return; }
  // Columns past the edge read the last valid one (in bounds); their results are not stored.
  var ci: array<u32, 4>;
  var cj: array<u32, 4>;
  for (var r = 0u; r < 4u; r++) {
    ci[r] = min(p.row0 + i0 + r, p.D - 1u);
    cj[r] = min(j0 + r, p.D - 1u);
  }
  var acc: array<array<f32, 4>, 4>;
  for (var t = 0u; t < p.T; t++) {
    let o = t * p.D;
    let xi = vec4<f32>(x[o + ci[0]], x[o + ci[1]], x[o + ci[2]], x[o + ci[3]]);
    let xj = vec4<f32>(x[o + cj[0]], x[o + cj[1]], x[o + cj[2]], x[o + cj[3]]);
    for (var r = 0u; r < 4u; r++) {
      for (var c = 0u; c < 4u; c++) { acc[r][c] += xi[r] * xj[c]; }
    }
  }
  for (var r = 0u; r < 4u; r++) {
    if (i0 + r >= p.rows) { break; }
    for (var c = 0u; c < 4u; c++) {
      if (j0 + c >= p.D) { break; }
      let o = (i0 + r) * p.D + j0 + c;
      h[o] = p.a * h[o] + p.b * acc[r][c];
    }
  }
}
