// Signed gradient descent step (auto_round's SignSGD without momentum): p ← p − lr · sign(g),
// sign(0) = 0; with `clamp01` the result is kept in [0, 1] (the min/max scale factors, which the
// reference clamps in place before every use).

struct Params { n: u32, clamp01: u32, lr: f32 }

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.n) { return; }
  let x = param[i] - p.lr * sign(grad[i]);
  param[i] = select(x, clamp(x, 0.0, 1.0), p.clamp01 == 1u);
}
