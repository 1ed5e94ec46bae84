// dx = dy where the ReLU passed its input (y = max(x, 0) > 0), else 0 — OPT's MLP activation.
// Reads the output y: y > 0 exactly where x > 0 (torch's threshold_backward uses the same test).

struct Params { n: u32 }

@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i < p.n) { dx[i] = select(0.0, dy[i], y[i] > 0.0); }
}
