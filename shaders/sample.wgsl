// Next-token choice on the GPU, so a decode loop needs no readback per token: reads logits [V]
// of the last position, writes the chosen id to tokens[out_index] (the history) and to cur[0]
// (what the next step's embedding gather reads). One 256-thread workgroup.
//   greedy: argmax (the first index among equal maxima, as torch.argmax)
//   sample: p ∝ exp((l − max) / temperature); nucleus (top-p): keep the tokens with p ≥ τ, τ the
//           largest threshold whose kept mass is ≥ top_p (bisection, 32 steps); then draw u from a
//           PCG hash of (seed, step) and take the first index, in vocabulary order, where the
//           running kept mass exceeds u · kept mass. Reproducible for a seed; not torch's sampler.

struct Params { V: u32, step: u32, out_index: u32, seed: u32, greedy: u32, temperature: f32, top_p: f32 }

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> cur: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

const WG = 256u;
var<workgroup> rv: array<f32, WG>;
var<workgroup> ri: array<u32, WG>;
var<workgroup> pick: u32;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn sum_all(lid: u32, v: f32) -> f32 {
  rv[lid] = v;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) { rv[lid] += rv[lid + h]; }
    workgroupBarrier();
  }
  let s = rv[0];
  workgroupBarrier();
  return s;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  // Max and its first index.
  var bv = -3.4e38;
  var bi = 0xffffffffu;
  for (var j = lid; j < p.V; j += WG) {
    let l = logits[j];
    if (l > bv) { bv = l; bi = j; }
  }
  rv[lid] = bv;
  ri[lid] = bi;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) {
      let ov = rv[lid + h];
      let oi = ri[lid + h];
      if (ov > rv[lid] || (ov == rv[lid] && oi < ri[lid])) { rv[lid] = ov; ri[lid] = oi; }
    }
    workgroupBarrier();
  }
  let mx = rv[0];
  if (lid == 0u) { pick = ri[0]; }
  workgroupBarrier();
  if (p.greedy == 0u) {
    // Unnormalised probabilities, recomputed on the fly (no scratch buffer over the vocabulary).
    let it = 1.0 / p.temperature;
    var z = 0.0;
    for (var j = lid; j < p.V; j += WG) { z += exp((logits[j] - mx) * it); }
    z = sum_all(lid, z);
    var lo = 0.0; // mass(lo) ≥ top_p always holds (all tokens kept)
    var hi = 1.0; // the max has p ≤ 1
    if (p.top_p < 1.0) {
      for (var it2 = 0u; it2 < 32u; it2++) {
        let tau = 0.5 * (lo + hi);
        var m = 0.0;
        for (var j = lid; j < p.V; j += WG) {
          let q = exp((logits[j] - mx) * it) / z;
          if (q >= tau) { m += q; }
        }
        if (sum_all(lid, m) >= p.top_p) { lo = tau; } else { hi = tau; }
      }
    }
    // Kept mass per contiguous chunk, then a scan: thread 0 finds the chunk, its owner the index.
    let chunk = (p.V + WG - 1u) / WG;
    let a = lid * chunk;
    let e = min(p.V, a + chunk);
    var cm = 0.0;
    for (var j = a; j < e; j++) {
      let q = exp((logits[j] - mx) * it) / z;
      if (q >= lo) { cm += q; }
    }
    rv[lid] = cm;
    workgroupBarrier();
    if (lid == 0u) {
      var total = 0.0;
      for (var t = 0u; t < WG; t++) { total += rv[t]; }
      let u = f32(pcg(p.seed ^ pcg(p.step + 0x9e3779b9u)) >> 8u) / 16777216.0;
      var goal = u * total;
      var owner = WG - 1u;
      for (var t = 0u; t < WG; t++) {
        if (goal < rv[t]) { owner = t; break; }
        goal -= rv[t];
      }
      ri[0] = owner;
      rv[0] = goal; // remaining mass inside the owner's chunk
    }
    workgroupBarrier();
    if (lid == ri[0]) {
      var left = rv[0];
      var chosen = 0xffffffffu;
      for (var j = a; j < e; j++) {
        let q = exp((logits[j] - mx) * it) / z;
        if (q >= lo) {
          chosen = j; // the last kept index guards against rounding at the very end
          if (left < q) { break; }
          left -= q;
        }
      }
      if (chosen != 0xffffffffu) { pick = chosen; }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    tokens[p.out_index] = pick;
    cur[0] = pick;
  }
}
