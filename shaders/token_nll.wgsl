// Per-row log-softmax over the vocabulary and the negative log-likelihood of a target token:
//   nll[r] = logsumexp(logits[r, :]) − logits[r, target[r]]
// `log_softmax` writes the whole normalised row instead. One 64-thread workgroup per row: a max
// pass, then a sum of exp(x − max), so large logits never overflow.

struct Params { rows: u32, V: u32 }

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> target_ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> part: array<f32, 64>;

fn row_lse(lid: u32, base: u32) -> f32 {
  var m = -3.4e38;
  for (var j = lid; j < p.V; j += 64u) { m = max(m, logits[base + j]); }
  part[lid] = m;
  workgroupBarrier();
  for (var h = 32u; h > 0u; h >>= 1u) {
    if (lid < h) { part[lid] = max(part[lid], part[lid + h]); }
    workgroupBarrier();
  }
  let mx = part[0];
  workgroupBarrier();
  var s = 0.0;
  for (var j = lid; j < p.V; j += 64u) { s += exp(logits[base + j] - mx); }
  part[lid] = s;
  workgroupBarrier();
  for (var h = 32u; h > 0u; h >>= 1u) {
    if (lid < h) { part[lid] += part[lid + h]; }
    workgroupBarrier();
  }
  return mx + log(part[0]);
}

@compute @workgroup_size(64)
fn nll(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  if (r >= p.rows) { return; }
  let lse = row_lse(lid, r * p.V);
  if (lid == 0u) { out[r] = lse - logits[r * p.V + target_ids[r]]; }
}

@compute @workgroup_size(64)
fn log_softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  if (r >= p.rows) { return; }
  let lse = row_lse(lid, r * p.V);
  for (var j = lid; j < p.V; j += 64u) { out[r * p.V + j] = logits[r * p.V + j] - lse; }
}
