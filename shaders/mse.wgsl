// Mean squared error of y against a target t over n values, and its gradient:
//   partial[wg] = Σ over the workgroup's 256 values of (y − t)²   (the host sums the partials)
//   dy = 2 (y − t) / n
// AutoRound's block loss (torch.nn.MSELoss, reduction "mean").

// n: the values in this dispatch's window; g0: its first workgroup's index in `partial` (a
// tensor over the binding limit is split into windows of whole workgroups); inv_n: 1 / all values.
struct Params { n: u32, g0: u32, inv_n: f32 }

@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> t: array<f32>;
@group(0) @binding(2) var<storage, read_write> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.y * nwg.x + wid.x;
  let i = g * 256u + lid;
  var e = 0.0;
  if (i < p.n) {
    let d = y[i] - t[i];
    dy[i] = 2.0 * d * p.inv_n;
    e = d * d;
  }
  part[lid] = e;
  workgroupBarrier();
  for (var h = 128u; h > 0u; h >>= 1u) {
    if (lid < h) { part[lid] += part[lid + h]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partial[p.g0 + g] = part[0]; }
}
