// AWQ's clipping search (lib/quant/awq.ts; launchers in lib/kernels/awq.ts):
//   gram      gm[j, a, b] = Σ_t x̂[t, j·g + a]·x̂[t, j·g + b] with x̂ = x / s: one g×g Gram block per
//             group of the sampled input rows
//   clip_err  for each (row r, group j, shrink i): d = Q(clamp(w, ±(1 − i/ngrid)·max|w|)) − w over the
//             group, and err = dᵀ·G_j·d = Σ_t (x̂_t·d)² — the squared output error of that clipped
//             group on the sampled rows — in chunks of CH rows of G_j (the fallback adapter's loop cap)
// GS (the group size) sizes the private copy of d.

struct Params { rows: u32, cols: u32, g: u32, maxq: u32, n: u32, slot: u32, ngrid: u32, nshrink: u32 }

@group(0) @binding(0) var<storage, read> w: array<f32>;          // [rows, cols]
@group(0) @binding(1) var<storage, read> s: array<f32>;          // [cols]
@group(0) @binding(3) var<storage, read> x: array<f32>;          // [N, cols]
@group(0) @binding(8) var<storage, read_write> gm: array<f32>;   // [G, g, g]
@group(0) @binding(9) var<storage, read_write> err: array<f32>;  // [rows, G, nshrink, chunks]
@group(0) @binding(10) var<uniform> p: Params;

fn tid(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, size: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * size + lid;
}

@compute @workgroup_size(64)
fn gram(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let gg = p.g * p.g;
  let t = tid(wid, nwg, lid, 64u);
  if (t >= (p.cols / p.g) * gg) { return; }
  let j = t / gg;
  let ca = j * p.g + (t % gg) / p.g;
  let cb = j * p.g + t % p.g;
  var sum = 0.0;
  for (var n = 0u; n < p.rows; n++) { sum += x[n * p.cols + ca] * x[n * p.cols + cb]; }
  gm[t] = sum / (s[ca] * s[cb]);
}

@compute @workgroup_size(64)
fn clip_err(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let G = p.cols / p.g;
  let chunks = (p.g + {{CH}}u - 1u) / {{CH}}u;
  let t = tid(wid, nwg, lid, 64u);
  if (t >= p.rows * G * p.nshrink * chunks) { return; }
  let ch = t % chunks;
  let i = (t / chunks) % p.nshrink;
  let j = (t / (chunks * p.nshrink)) % G;
  let r = t / (chunks * p.nshrink * G);
  let base = r * p.cols + j * p.g;
  var amax = 0.0;
  for (var k = 0u; k < p.g; k++) { amax = max(amax, abs(w[base + k])); }
  let mv = amax * (1.0 - f32(i) / f32(p.ngrid));
  var lo = 3.4e38;
  var hi = -3.4e38;
  for (var k = 0u; k < p.g; k++) {
    let v = clamp(w[base + k], -mv, mv);
    lo = min(lo, v);
    hi = max(hi, v);
  }
  let maxq = f32(p.maxq);
  let scale = max(hi - lo, 1e-5) / maxq;
  let zero = clamp(-round(lo / scale), 0.0, maxq);
  var d: array<f32, {{GS}}>;
  for (var k = 0u; k < p.g; k++) {
    let v = clamp(w[base + k], -mv, mv);
    d[k] = (clamp(round(v / scale) + zero, 0.0, maxq) - zero) * scale - w[base + k];
  }
  var sum = 0.0;
  let a1 = min(p.g, (ch + 1u) * {{CH}}u);
  for (var a = ch * {{CH}}u; a < a1; a++) {
    let row = j * p.g * p.g + a * p.g;
    var inner = 0.0;
    for (var b = 0u; b < p.g; b++) { inner += gm[row + b] * d[b]; }
    sum += d[a] * inner;
  }
  err[t] = sum;
}

