// awq_clip.wgsl's `gram` and `clip_err` for the CPU adapter: x, W and the Gram blocks read through
// textures (branchless gathers; storage loads in a loop go lane by lane on llvmpipe). clip_err's
// group of GS weights is unrolled by the launcher into named values (w texels, d), so the
// quadratic form's inner sums index no private array; every product and sum is awq_clip.wgsl's, in
// its order, so err has its bits. GS (the group size) is a multiple of 64 here.

struct Params { rows: u32, cols: u32, g: u32, maxq: u32, n: u32, slot: u32, ngrid: u32, nshrink: u32 }

@group(0) @binding(1) var<storage, read> s: array<f32>;          // [cols]
@group(0) @binding(3) var xt: texture_2d<f32>;                   // x [N, cols/4 texels]
@group(0) @binding(4) var wt: texture_2d<f32>;                   // W [rows, cols/4 texels]
@group(0) @binding(5) var gt: texture_2d<f32>;                   // Gram [G·g rows, g/4 texels]
@group(0) @binding(8) var<storage, read_write> gm: array<f32>;   // [G, g, g]
@group(0) @binding(9) var<storage, read_write> err: array<f32>;  // [rows, G, nshrink, chunks]
@group(0) @binding(10) var<uniform> p: Params;

fn tid(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, size: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * size + lid;
}

fn xat(n: u32, c: u32) -> f32 { return textureLoad(xt, vec2<u32>(c / 4u, n), 0)[c % 4u]; }

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
  for (var n = 0u; n < p.rows; n++) { sum += xat(n, ca) * xat(n, cb); }
  gm[t] = sum / (s[ca] * s[cb]);
}

@compute @workgroup_size(8)
fn clip_err(@builtin(global_invocation_id) gid: vec3<u32>) {
  let G = p.cols / p.g;
  let chunks = (p.g + {{CH}}u - 1u) / {{CH}}u;
  let t = gid.x;
  if (t >= p.rows * G * p.nshrink * chunks) { return; }
  let ch = t % chunks;
  let i = (t / chunks) % p.nshrink;
  let j = (t / (chunks * p.nshrink)) % G;
  let r = t / (chunks * p.nshrink * G);
  let jb = j * ({{GS}}u / 4u);
  {{LOADW}}
  var amax = 0.0;
  {{AMAX}}
  let mv = amax * (1.0 - f32(i) / f32(p.ngrid));
  var lo = 3.4e38;
  var hi = -3.4e38;
  {{LOHI}}
  let maxq = f32(p.maxq);
  let scale = max(hi - lo, 1e-5) / maxq;
  let zero = clamp(-round(lo / scale), 0.0, maxq);
  {{D}}
  var sum = 0.0;
  let a1 = min(p.g, (ch + 1u) * {{CH}}u);
  for (var a = ch * {{CH}}u; a < a1; a++) {
    let row = j * p.g + a;
    var inner = 0.0;
    {{INNER}}
    let wa = textureLoad(wt, vec2<u32>(jb + a / 4u, r), 0)[a % 4u];
    let da = (clamp(round(clamp(wa, -mv, mv) / scale) + zero, 0.0, maxq) - zero) * scale - wa;
    sum += da * inner;
  }
  err[t] = sum;
}
