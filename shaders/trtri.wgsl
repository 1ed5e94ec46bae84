// Inverse of a lower-triangular L[n, n] (row-major) into X[n, n], blocked by 16: block row r at a
// time (rows r0 … r0 + bs),
//   diag:  X_rr = L_rr⁻¹ (forward substitution in one workgroup)
//   row:   X_rj = −X_rr · Σ_{k=j}^{r−1} L_rk X_kj for every column j < r0 (a thread per element;
//          the dot over k runs at most n long, under llvmpipe's loop cap)
// l is bound as block row r's 16 rows only; x as a window of its rows [row0, row0 + rows), so a
// matrix over the binding limit is inverted window by window: the sum over k visits the windows
// in order, carrying the 16 partial sums of each column in t [16, n] between them (the same
// additions in the same order: the same bits), and the window holding block row r finishes it.
// x's strict upper triangle is left untouched (callers start from zeros).

struct Params { n: u32, r0: u32, bs: u32, row0: u32, rows: u32, last: u32 }

@group(0) @binding(0) var<storage, read> l: array<f32>; // L[r0 + i, k] at i·n + k
@group(0) @binding(1) var<storage, read_write> x: array<f32>; // X[k, j] at (k − row0)·n + j
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> t: array<f32>; // [B, n] partial sums

const B = 16u;

@compute @workgroup_size(16)
fn diag(@builtin(local_invocation_index) c: u32) {
  // Thread c solves column c of X_rr: L_rr · X[:, c] = e_c, rows c … bs − 1.
  let n = p.n;
  let r0 = p.r0;
  if (c >= p.bs) { return; }
  var col: array<f32, B>;
  for (var i = c; i < p.bs; i++) {
    var s = select(0.0, 1.0, i == c);
    for (var k = c; k < i; k++) { s -= l[i * n + r0 + k] * col[k]; }
    col[i] = s / l[i * n + r0 + i];
  }
  for (var i = c; i < p.bs; i++) { x[(r0 + i - p.row0) * n + r0 + c] = col[i]; }
}

@compute @workgroup_size(64)
fn row(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  // Element (r0 + i, j) for i < bs, j < r0: T_ij = Σ_{k=j}^{r0−1} L[r0+i, k] X[k, j], then
  // X[r0+i, j] = −Σ_{m≤i} X_rr[i, m] T_mj — each thread computes its column's T for all bs rows.
  let n = p.n;
  let r0 = p.r0;
  let row0 = p.row0;
  let kEnd = min(r0, row0 + p.rows);
  let j = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (j >= kEnd) { return; }
  // k outside, the 16 rows inside (a constant trip count, unrolled): the loop count stays ~n.
  var s16: array<f32, B>;
  let fresh = j >= row0; // k starts at j, inside this window: nothing carried in
  for (var i = 0u; i < B; i++) { s16[i] = select(t[i * n + j], 0.0, fresh); }
  for (var k = max(j, row0); k < kEnd; k++) {
    let xk = x[(k - row0) * n + j];
    for (var i = 0u; i < B; i++) { s16[i] += l[min(i, p.bs - 1u) * n + k] * xk; }
  }
  if (p.last == 0u) {
    for (var i = 0u; i < B; i++) { t[i * n + j] = s16[i]; }
    return;
  }
  for (var i = 0u; i < p.bs; i++) {
    var s = 0.0;
    for (var m = 0u; m <= i; m++) { s += x[(r0 + i - row0) * n + r0 + m] * s16[m]; }
    x[(r0 + i - row0) * n + j] = -s;
  }
}
