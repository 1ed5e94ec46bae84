// AutoRound's weight fake-quantization with trainable rounding and range (auto_round/data_type/
// int.py with wrapper.py), on W [rows, cols] in groups of g consecutive columns; one 64-thread
// workgroup per (row, group). V [rows, cols] is the rounding offset, ms/Ms [rows, G] the min/max
// scale factors (kept in [0, 1] by the optimiser). With wmin = min(min w, 0), wmax = max(max w, 0):
//   asym (maxq = 2^b − 1): s = f16((wmax·Ms − wmin·ms) / maxq) ≥ t, zp = round(−wmin·ms / s),
//                          ŵ = s · (clamp(round(w/s + V) + zp, 0, maxq) − zp)
//   sym, full range (maxq = 2^(b−1)): a = −wmin·ms, b = wmax·Ms,
//                          s = f16(±max(a, b) / maxq) with + when b < a, |s| ≥ t,
//                          ŵ = s · clamp(round(w/s + V), −maxq, maxq − 1)
// (the larger side lands on −maxq). f16(): the reference keeps scales in float16; t = f16(1e-5).
// Entries: `qdq` writes ŵ (mode 0) or the integer codes with each group's scale and zero
// (mode 1); `qdq_backward` takes dL/dŵ and writes dL/dV and the groups' dL/dms, dL/dMs, with
// round() passed straight through (STE) and clamps cutting the gradient outside their range.

struct Params { rows: u32, cols: u32, g: u32, G: u32, sym: u32, maxq: u32, mode: u32, thresh: f32 }

@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> vv: array<f32>;
@group(0) @binding(2) var<storage, read> ms: array<f32>;
@group(0) @binding(3) var<storage, read> Ms: array<f32>;
@group(0) @binding(4) var<storage, read_write> wq: array<f32>; // ŵ or codes (qdq); dL/dŵ (backward)
@group(0) @binding(5) var<storage, read_write> gv: array<f32>; // dL/dV
@group(0) @binding(6) var<storage, read_write> ga: array<f32>; // dL/dms, or the group's scale (mode 1)
@group(0) @binding(7) var<storage, read_write> gb: array<f32>; // dL/dMs, or the group's zero (mode 1)
@group(0) @binding(8) var<uniform> p: Params;

var<workgroup> red: array<f32, 64>;

fn f16r(x: f32) -> f32 { return unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x; }

/** op 0: sum, 1: min, 2: max over the workgroup. */
fn reduce(lid: u32, v: f32, op: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var h = 32u; h > 0u; h >>= 1u) {
    if (lid < h) {
      let a = red[lid];
      let b = red[lid + h];
      red[lid] = select(select(max(a, b), min(a, b), op == 1u), a + b, op == 0u);
    }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

struct Group { wminT: f32, wmaxT: f32, s: f32, zp: f32, live: f32 }

/** The group's range (clamped to include 0), scale, zero and whether the scale escaped its clamp. */
fn group(lid: u32, base: u32, idx: u32) -> Group {
  var lo = 3.0e38;
  var hi = -3.0e38;
  for (var k = lid; k < p.g; k += 64u) { let x = w[base + k]; lo = min(lo, x); hi = max(hi, x); }
  var r: Group;
  r.wminT = min(reduce(lid, lo, 1u), 0.0);
  r.wmaxT = max(reduce(lid, hi, 2u), 0.0);
  let maxq = f32(p.maxq);
  if (p.sym == 1u) {
    let a = -r.wminT * ms[idx];
    let b = r.wmaxT * Ms[idx];
    let s = f16r(select(-1.0, 1.0, b < a) * max(a, b) / maxq);
    r.live = select(0.0, 1.0, abs(s) >= p.thresh);
    r.s = select(max(s, p.thresh), min(s, -p.thresh), s < 0.0);
    r.zp = 0.0;
  } else {
    let s = f16r((r.wmaxT * Ms[idx] - r.wminT * ms[idx]) / maxq);
    r.live = select(0.0, 1.0, s >= p.thresh);
    r.s = max(s, p.thresh);
    r.zp = round(-(r.wminT * ms[idx]) / r.s);
  }
  return r;
}

/** round(w/s + V) + zp before the clamp, the clamp's bounds. */
fn level(gr: Group, i: u32) -> f32 { return round(w[i] / gr.s + vv[i]) + gr.zp; }
fn lower() -> f32 { return select(0.0, -f32(p.maxq), p.sym == 1u); }
fn upper() -> f32 { return select(f32(p.maxq), f32(p.maxq) - 1.0, p.sym == 1u); }

@compute @workgroup_size(64)
fn qdq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  let idx = wid.y * nwg.x + wid.x; // row · G + group
  if (idx >= p.rows * p.G) { return; }
  let base = (idx / p.G) * p.cols + (idx % p.G) * p.g;
  let gr = group(lid, base, idx);
  for (var k = lid; k < p.g; k += 64u) {
    let q = clamp(level(gr, base + k), lower(), upper());
    wq[base + k] = select(gr.s * (q - gr.zp), q - lower(), p.mode == 1u);
  }
  if (p.mode == 1u && lid == 0u) {
    ga[idx] = gr.s;
    gb[idx] = gr.zp - lower();
  }
}

@compute @workgroup_size(64)
fn qdq_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let idx = wid.y * nwg.x + wid.x;
  if (idx >= p.rows * p.G) { return; }
  let base = (idx / p.G) * p.cols + (idx % p.G) * p.g;
  let gr = group(lid, base, idx);
  var ds = 0.0; // Σ dŵ · ∂ŵ/∂s with zp held
  var dz = 0.0; // Σ dŵ · ∂ŵ/∂zp
  for (var k = lid; k < p.g; k += 64u) {
    let i = base + k;
    let c = level(gr, i);
    let inr = select(0.0, 1.0, c >= lower() && c <= upper());
    let q = clamp(c, lower(), upper());
    let d = wq[i];
    gv[i] = d * gr.s * inr;
    ds += d * ((q - gr.zp) - inr * w[i] / gr.s);
    dz += d * gr.s * (inr - 1.0);
  }
  ds = reduce(lid, ds, 0u);
  dz = reduce(lid, dz, 0u);
  if (lid != 0u) { return; }
  let maxq = f32(p.maxq);
  if (p.sym == 1u) {
    let a = -gr.wminT * ms[idx];
    let b = gr.wmaxT * Ms[idx];
    let dmv = gr.live * ds / maxq; // dL/d(±max(a, b))
    // max(a, b) sends its gradient to the larger side, half to each on a tie (torch.maximum).
    let da = select(select(0.0, -0.5 * dmv, a == b), dmv, b < a);
    let db = select(select(0.0, -0.5 * dmv, a == b), -dmv, b > a);
    ga[idx] = da * -gr.wminT;
    gb[idx] = db * gr.wmaxT;
  } else {
    let wmin = gr.wminT * ms[idx];
    let dst = gr.live * (ds + dz * wmin / (gr.s * gr.s)); // zp = round(−wmin / s) also moves with s
    ga[idx] = (-dst / maxq - dz / gr.s) * gr.wminT;
    gb[idx] = (dst / maxq) * gr.wmaxT;
  }
}
