// out[C, R] = x[R, C]ᵀ through 16×16 tiles in workgroup memory, so reads and writes both walk
// rows. The backward pass of a linear uses it: dW = dYᵀ·X and dX = dY·W become the forward
// matmul (x · wᵀ) on transposed operands.

// A block of the transpose: x's rows [r0, r0 + R) are bound (all Ct columns), out's rows
// [c0, c0 + C) are bound (all Rt columns); the tiles cover the block's R × C.
struct Params { R: u32, C: u32, Rt: u32, Ct: u32, r0: u32, c0: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> tile: array<f32, 272>; // 16 × 17: the padding column avoids bank conflicts

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wid.y * 16u + lid.y;
  let c = wid.x * 16u + lid.x;
  if (r < p.R && c < p.C) { tile[lid.y * 17u + lid.x] = x[r * p.Ct + p.c0 + c]; }
  workgroupBarrier();
  let oc = wid.y * 16u + lid.x; // a column of x = a column index of out
  let orow = wid.x * 16u + lid.y;
  if (orow < p.C && oc < p.R) { out[orow * p.Rt + p.r0 + oc] = tile[lid.x * 17u + lid.y]; }
}
