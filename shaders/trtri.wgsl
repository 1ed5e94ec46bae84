// Inverse of a lower-triangular l[n, n] (row-major) into x[n, n], blocked by 16: block row r at a
// time (rows r0 … r0 + bs),
//   diag:  X_rr = L_rr⁻¹ (forward substitution in one workgroup)
//   row:   X_rj = −X_rr · Σ_{k=j}^{r−1} L_rk X_kj for every column j < r0 (a thread per element;
//          the dot over k runs at most n long, under llvmpipe's loop cap)
// x's strict upper triangle is left untouched (callers start from zeros).

struct Params { n: u32, r0: u32, bs: u32 }

@group(0) @binding(0) var<storage, read> l: array<f32>;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

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
    for (var k = c; k < i; k++) { s -= l[(r0 + i) * n + r0 + k] * col[k]; }
    col[i] = s / l[(r0 + i) * n + r0 + i];
  }
  for (var i = c; i < p.bs; i++) { x[(r0 + i) * n + r0 + c] = col[i]; }
}

@compute @workgroup_size(64)
fn row(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  // Element (r0 + i, j) for i < bs, j < r0: T_ij = Σ_{k=j}^{r0−1} L[r0+i, k] X[k, j], then
  // X[r0+i, j] = −Σ_{m≤i} X_rr[i, m] T_mj — each thread computes its column's T for all bs rows.
  let n = p.n;
  let r0 = p.r0;
  let j = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (j >= r0) { return; }
  // k outside, the 16 rows inside (a constant trip count, unrolled): the loop count stays ~n.
  var t: array<f32, B>;
  for (var i = 0u; i < B; i++) { t[i] = 0.0; }
  for (var k = j; k < r0; k++) {
    let xk = x[k * n + j];
    for (var i = 0u; i < B; i++) { t[i] += l[(r0 + min(i, p.bs - 1u)) * n + k] * xk; }
  }
  for (var i = 0u; i < p.bs; i++) {
    var s = 0.0;
    for (var m = 0u; m <= i; m++) { s += x[(r0 + i) * n + r0 + m] * t[m]; }
    x[(r0 + i) * n + j] = -s;
  }
}
