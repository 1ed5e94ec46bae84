// GPTQ's column sweep over one block of columns [i1, i1 + bs) of W [rows, cols] (columns already
// in act-order), and the lazy update of the columns after the block (lib/quant/gptq.ts).
//
// U, the upper Cholesky factor of H⁻¹, is held reversed: the caller factored J·H·J = L′L′ᵀ (J the
// reversal) and inverted L′ in place into X, so U[i, j] = X[n − 1 − i, n − 1 − j]. Only X's rows
// n − i1 − bs … n − i1 − 1 (U's rows of this block) are bound, starting at element `xOff`.
//
//   sweep:  a thread per row: for each column i of the block, quantize w_i with its group's scale
//           and zero, err = (w_i − q) / U_ii, w_j −= err · U_ij for the block's later columns
//   update: W[:, i2:] −= Err [rows, bs] · U[i1:i2, i2:]  (16×16 tiles through workgroup memory)

struct Params {
  rows: u32, cols: u32, i1: u32, bs: u32,
  g: u32, dynamic: u32, maxq: u32, sym: u32,
  G: u32, xOff: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read_write> w: array<f32>;      // [rows, cols] (a row window)
@group(0) @binding(1) var<storage, read> x: array<f32>;            // U's block rows, reversed
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;  // [rows, cols / 4], 4 codes per word
@group(0) @binding(3) var<storage, read_write> qp: array<f32>;     // [rows, G, 2]: scale, zero
@group(0) @binding(4) var<storage, read_write> err: array<f32>;    // [rows, bs]
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;   // [rows]: Σ err²
@group(0) @binding(6) var<storage, read> groupOf: array<u32>;      // [cols]: group of column i
@group(0) @binding(7) var<uniform> p: Params;

const MAXBS = {{MAXBS}}u;

fn u(i: u32, j: u32) -> f32 {
  let n = p.cols;
  return x[p.xOff + (p.i1 + p.bs - 1u - i) * n + (n - 1u - j)];
}

@compute @workgroup_size(64)
fn sweep(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= p.rows) { return; }
  let cols = p.cols;
  var w1: array<f32, MAXBS>;
  for (var k = 0u; k < p.bs; k++) { w1[k] = w[r * cols + p.i1 + k]; }
  let maxq = f32(p.maxq);
  var scale = 0.0;
  var zero = 0.0;
  var word = 0u;
  var acc = 0.0;
  for (var k = 0u; k < p.bs; k++) {
    let i = p.i1 + k;
    let grp = groupOf[i];
    let at = (r * p.G + grp) * 2u;
    // Dynamic groups: params at a group start; otherwise (and always for static or per-channel
    // params) the group's stored ones, which a group begun in an earlier block left in qp.
    if (p.dynamic == 1u && i % p.g == 0u) {
      // The group's range from W as it stood at the block start (the reference reads W, not W1).
      var lo = 0.0; // [min, max] widened to include 0
      var hi = 0.0;
      for (var c = i; c < min(i + p.g, cols); c++) {
        lo = min(lo, w[r * cols + c]);
        hi = max(hi, w[r * cols + c]);
      }
      if (p.sym == 1u) {
        hi = max(abs(lo), hi);
        if (lo < 0.0) { lo = -hi; }
      }
      if (lo == 0.0 && hi == 0.0) {
        lo = -1.0;
        hi = 1.0;
      }
      scale = (hi - lo) / maxq;
      zero = select(round(-lo / scale), (maxq + 1.0) / 2.0, p.sym == 1u);
      qp[at] = scale;
      qp[at + 1u] = zero;
    } else {
      scale = qp[at];
      zero = qp[at + 1u];
    }
    let wv = w1[k];
    let code = clamp(round(wv / scale) + zero, 0.0, maxq);
    let q = scale * (code - zero);
    let e = (wv - q) / u(i, i);
    acc += e * e;
    for (var j = k + 1u; j < p.bs; j++) { w1[j] -= e * u(i, p.i1 + j); }
    err[r * p.bs + k] = e;
    word |= u32(code) << (8u * (k % 4u));
    if (k % 4u == 3u) {
      codes[(r * cols + i) / 4u] = word;
      word = 0u;
    }
  }
  loss[r] += acc;
}

var<workgroup> ta: array<array<f32, 16>, 16>; // Err tile [row, k]
var<workgroup> tb: array<array<f32, 16>, 16>; // U tile [k, column]

@compute @workgroup_size(16, 16)
fn update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i2 = p.i1 + p.bs;
  let j = i2 + wid.x * 16u + lid.x;
  let r = wid.y * 16u + lid.y;
  var acc = 0.0;
  for (var k0 = 0u; k0 < p.bs; k0 += 16u) {
    let kA = k0 + lid.x;
    ta[lid.y][lid.x] = select(0.0, err[min(r, p.rows - 1u) * p.bs + min(kA, p.bs - 1u)], r < p.rows && kA < p.bs);
    let kB = k0 + lid.y;
    let jB = i2 + wid.x * 16u + lid.x;
    tb[lid.y][lid.x] = select(0.0, u(p.i1 + min(kB, p.bs - 1u), min(jB, p.cols - 1u)), kB < p.bs && jB < p.cols);
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) { acc += ta[lid.y][kk] * tb[kk][lid.x]; }
    workgroupBarrier();
  }
  if (r < p.rows && j < p.cols) { w[r * p.cols + j] -= acc; }
}
