// Blocked right-looking Cholesky, in place on the lower triangle of a symmetric positive-definite
// a[n, n] (row-major): A = L·Lᵀ. For each block column k0 … k0 + bs (bs ≤ 16), three launches:
//   diag:   factor the bs×bs diagonal block in one workgroup (in workgroup memory)
//   panel:  rows below: L[i, blk] = A[i, blk] · L_blk⁻ᵀ (forward substitution, a thread per row)
//   update: trailing lower triangle: A[i, j] −= Σ_blk L[i, c]·L[j, c] (4×4 tiles per thread)
// `a` is bound as a window of rows [row0, row0 + rows) (a matrix over the adapter's binding limit
// is factored window by window); the block column just factored is also written to pnl [n, 16],
// from which panel and update read L[j, blk] of any row j — the same values, so the same bits.
// Every per-thread loop is bounded by the block size or the tile, far under llvmpipe's loop cap.
// A non-positive pivot writes 1 + its column to status[0] (first one wins) and leaves NaNs behind.

struct Params { n: u32, k0: u32, bs: u32, row0: u32, rows: u32 }

@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> status: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> pnl: array<f32>;

const B = 16u;
var<workgroup> blk: array<f32, 256>; // [B, B]

/** Element (i, j) of A inside the bound window (row i must lie in it). */
fn at(i: u32, j: u32) -> u32 { return (i - p.row0) * p.n + j; }

@compute @workgroup_size(64)
fn diag(@builtin(local_invocation_index) lid: u32) {
  let k0 = p.k0;
  let bs = p.bs;
  for (var e = lid; e < B * B; e += 64u) {
    let r = e / B;
    let c = e % B;
    blk[e] = select(0.0, a[at(k0 + r, k0 + c)], r < bs && c < bs);
  }
  workgroupBarrier();
  for (var j = 0u; j < bs; j++) {
    let d = blk[j * B + j];
    let s = sqrt(max(d, 0.0));
    workgroupBarrier();
    if (lid == 0u) {
      if (!(d > 0.0)) {
        // Record the first failing column only (a weak exchange may fail spuriously: retry).
        loop {
          let r = atomicCompareExchangeWeak(&status[0], 0u, k0 + j + 1u);
          if (r.exchanged || r.old_value != 0u) { break; }
        }
      }
      blk[j * B + j] = select(s, bitcast<f32>(0x7fc00000u), !(d > 0.0));
    }
    workgroupBarrier();
    let piv = blk[j * B + j];
    for (var i = j + 1u + lid; i < bs; i += 64u) { blk[i * B + j] /= piv; }
    workgroupBarrier();
    // rank-1 update of the rest of the block's lower triangle
    for (var e = lid; e < B * B; e += 64u) {
      let r = e / B;
      let c = e % B;
      if (r < bs && c > j && c <= r) { blk[e] -= blk[r * B + j] * blk[c * B + j]; }
    }
    workgroupBarrier();
  }
  for (var e = lid; e < B * B; e += 64u) {
    let r = e / B;
    let c = e % B;
    if (r < bs && c <= r) {
      a[at(k0 + r, k0 + c)] = blk[e];
      pnl[(k0 + r) * B + c] = blk[e];
    }
  }
}

@compute @workgroup_size(64)
fn panel(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let k0 = p.k0;
  let bs = p.bs;
  let i = max(k0 + bs, p.row0) + (wid.y * nwg.x + wid.x) * 64u + lid;
  if (i >= min(p.n, p.row0 + p.rows)) { return; }
  var x: array<f32, B>;
  for (var c = 0u; c < bs; c++) { x[c] = a[at(i, k0 + c)]; }
  for (var c = 0u; c < bs; c++) {
    var s = x[c];
    for (var m = 0u; m < c; m++) { s -= x[m] * pnl[(k0 + c) * B + m]; }
    x[c] = s / pnl[(k0 + c) * B + c];
  }
  for (var c = 0u; c < bs; c++) {
    a[at(i, k0 + c)] = x[c];
    pnl[i * B + c] = x[c];
  }
}

@compute @workgroup_size(8, 8)
fn update(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = p.n;
  let k0 = p.k0;
  let bs = p.bs;
  let t0 = k0 + bs; // first trailing row/column
  let end = min(n, p.row0 + p.rows); // rows of this window
  let i0 = max(t0, p.row0) + gid.y * 4u;
  let j0 = t0 + gid.x * 4u;
  if (i0 >= end || j0 >= n || j0 > i0 + 3u) { return; } // tiles wholly above the diagonal
  var acc: array<array<f32, 4>, 4>;
  for (var c = 0u; c < bs; c++) {
    var li: array<f32, 4>;
    var lj: array<f32, 4>;
    for (var r = 0u; r < 4u; r++) {
      li[r] = pnl[min(i0 + r, n - 1u) * B + c];
      lj[r] = pnl[min(j0 + r, n - 1u) * B + c];
    }
    for (var r = 0u; r < 4u; r++) {
      for (var q = 0u; q < 4u; q++) { acc[r][q] += li[r] * lj[q]; }
    }
  }
  for (var r = 0u; r < 4u; r++) {
    let i = i0 + r;
    if (i >= end) { break; }
    for (var q = 0u; q < 4u; q++) {
      let j = j0 + q;
      if (j < n && j <= i) { a[at(i, j)] -= acc[r][q]; }
    }
  }
}
