// H[in, in] ← a·H + b·XᵀX for X [T, in]: GPTQ's running Hessian of a linear layer's inputs.
// Each thread owns a 4×4 tile of H and walks the T tokens, reusing each loaded x four times.
// With SYM (H in one binding), only tiles on or above the diagonal are computed and each is also
// stored mirrored: half the work. Otherwise the launcher binds a window of H's rows [row0, row0 + rows).
// LOAD4(o, c) reads x[o + c … o + c + 3] (clamped to the row for the scalar variant).

struct Params { T: u32, D: u32, row0: u32, rows: u32, a: f32, b: f32 }

@group(0) @binding(0) var<storage, read> x: array<{{XT}}>;
@group(0) @binding(1) var<storage, read_write> h: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

const SYM = {{SYM}}u;

fn load4(o: u32, c: u32) -> vec4<f32> {
  return {{LOAD4}};
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j0 = gid.x * 4u;
  let i0 = gid.y * 4u; // row within the window
  if (j0 >= p.D || i0 >= p.rows) { return; }
  if (SYM == 1u && i0 > j0) { return; }
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var t = 0u; t < p.T; t++) {
    let o = t * p.D;
    let xi = load4(o, p.row0 + i0);
    let xj = load4(o, j0);
    a0 += xi.x * xj;
    a1 += xi.y * xj;
    a2 += xi.z * xj;
    a3 += xi.w * xj;
  }
  let acc = mat4x4<f32>(a0, a1, a2, a3); // acc[r][c] = Σ x_i+r · x_j+c
  for (var r = 0u; r < 4u; r++) {
    if (i0 + r >= p.rows) { break; }
    for (var c = 0u; c < 4u; c++) {
      if (j0 + c >= p.D) { break; }
      let o = (i0 + r) * p.D + j0 + c;
      h[o] = p.a * h[o] + p.b * acc[r][c];
      if (SYM == 1u && i0 != j0) {
        let m = (j0 + c) * p.D + i0 + r;
        h[m] = p.a * h[m] + p.b * acc[r][c];
      }
    }
  }
}
