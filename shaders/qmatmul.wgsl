// y[M, N] = x[M, K] · Ŵᵀ with Ŵ dequantized in registers from packed codes — never materialised.
//
// Run-time layout (ours, chosen for speed; exchange formats are converted on load):
//   w      u32 [K, W]      word (k, j) holds PER = ⌊32 / BITS⌋ adjacent outputs n = j·PER + i at
//                          input k, code i in bits [BITS·i, BITS·i + BITS). W is a multiple of 4.
//                          Stored k-major, or strip-major [W/WPT, K, WPT] on CPU rasterisers.
//   scale  f32 [G, W·PER]  per group g (K / G consecutive inputs) and output
//   shift  f32 [G, W·PER]  uniform: s·(C − z) with C = 2^(BITS−1), so Ŵ = s·(q − C) + shift
//   cb     f32 [2^BITS]    codebook formats (NF4/FP4): Ŵ = s · cb[q], shift unused
// Sums run over (q − C) rather than q: the group's correction s·(C − z)·Σx is then small, and
// little precision is lost to cancellation.
//
// gemv (M = 1): a thread owns WPT words (WPT·PER outputs), loads them as one vecWPT<u32>, and walks
// the groups of its K-slice (2/4/8-bit codes are decoded four at a time: one vector shift and mask per four codes); with a K-split (hardware adapters need the threads) each slice
// writes partial sums and `reduce` adds them. gemm: a thread owns TM rows × one word.
//
// Windows (weights over the adapter's max storage binding): a dispatch covers inputs [k0, k1) and
// strips [s0, s0 + sn). k-major words are bound from row k0 (and scale/shift from group sg0),
// strip-major words from strip s0. With `acc` set a dispatch continues the sums the previous
// window left in y (in the unsplit order when windows end on group boundaries: the same bits);
// only the last window adds the bias.
{{ENABLE_F16}}

struct Params {
  M: u32, N: u32, K: u32, W: u32, G: u32, gsize: u32, ksplit: u32, has_bias: u32,
  k0: u32, k1: u32, s0: u32, sn: u32, sg0: u32, acc: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<{{WVEC}}>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read> shift: array<f32>;
{{CB_DECL}} // codebook [2^BITS]: storage, or (CPU adapters) a 2^BITS × 1 r32float texture
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

const BITS = {{BITS}}u;
const PER = {{PER}}u;
const MASK = (1u << BITS) - 1u;
const C = f32(1u << (BITS - 1u));
const CODEBOOK = {{CODEBOOK}};
const TM = 4u;
const WPT = {{WPT}}u; // words per GEMV thread (and per w element)
const STRIP_MAJOR = {{STRIP_MAJOR}};
// Byte-lane decoding (2/4/8-bit): SUB codes per byte; shifting a word by BYTE_SHIFTS and masking
// with MASK yields the codes of one sub-field in every byte.
const BYTE_LANES = {{BYTE_LANES}};
const SUB = {{SUB}}u;
const BYTE_SHIFTS = vec4<u32>(0u, 8u, 16u, 24u);

fn code(word: u32, i: u32) -> f32 {
  let q = (word >> (BITS * i)) & MASK;
  if (CODEBOOK) { return {{CB_LOOKUP}}; }
  return f32(q) - C;
}

// Element (k, strip s) of w, a strip being WPT adjacent words. k-major (GPUs: neighbouring
// threads read neighbouring words at the same k) or strip-major (CPU rasterisers: each thread
// walks its own contiguous strip, friendly to prefetchers and the TLB).
fn welem(k: u32, s: u32) -> {{WVEC}} {
  if (STRIP_MAJOR) { return w[(s - p.s0) * p.K + k]; }
  return w[(k - p.k0) * (p.W / WPT) + s];
}

fn word_at(k: u32, j: u32) -> u32 {
  return wsel(welem(k, j / WPT), j % WPT);
}

// Word c of what one w element holds (WPT words: a u32, vec2<u32> or vec4<u32>).
fn wsel(v: {{WVEC}}, c: u32) -> u32 { return {{WSEL}}; }

@compute @workgroup_size({{GEMV_WG}})
fn gemv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = (wid.y * nwg.x + wid.x) * {{GEMV_WG}}u + lid;
  if (t >= p.sn * p.ksplit) { return; }
  let j4 = p.s0 + t % p.sn; // which strip of WPT words
  let slice = t / p.sn;     // which K-slice
  // Inputs [ka, kb) of this thread: the window's, or (K-split, one window) its slice's groups.
  var ka = p.k0;
  var kb = p.k1;
  if (p.ksplit > 1u) {
    let gPer = (p.G + p.ksplit - 1u) / p.ksplit;
    ka = min(p.G, slice * gPer) * p.gsize;
    kb = min(p.G, slice * gPer + gPer) * p.gsize;
  }
  let n0 = j4 * WPT * PER;
  var out: array<f32, WPT * PER>;
  for (var i = 0u; i < WPT * PER; i++) {
    out[i] = select(0.0, y[min(n0 + i, p.N - 1u)], p.acc != 0u);
  }
  // Byte-lane path: partial outputs kept as vec4s in the acc4 layout, remapped once at the end.
  var out4: array<vec4<f32>, WPT * SUB>;
  for (var c = 0u; c < WPT; c++) {
    for (var sf = 0u; sf < SUB; sf++) {
      var v = vec4<f32>(0.0);
      for (var b = 0u; b < 4u; b++) { v[b] = out[c * PER + b * SUB + sf]; }
      out4[c * SUB + sf] = v;
    }
  }
  for (var g = ka / p.gsize; g * p.gsize < kb; g++) {
    let gk0 = max(g * p.gsize, ka);
    let gk1 = min((g + 1u) * p.gsize, kb);
    let go = (g - p.sg0) * p.W * PER + n0; // this group's scales/shifts for our outputs
    var xs = 0.0;
    if (BYTE_LANES) {
      // 2/4/8-bit: sub-field s of every byte holds outputs b·SUB + s (b = byte 0…3); one
      // vector shift by (0, 8, 16, 24) and mask turns four codes into a vec4 (measured faster than
      // unpack4xU8 on llvmpipe), so the inner loop works on vectors. Raw codes
      // are summed; the centring C·Σx comes off once per group.
      var acc4: array<vec4<f32>, WPT * SUB>;
      for (var i = 0u; i < WPT * SUB; i++) { acc4[i] = vec4<f32>(0.0); }
      for (var k = gk0; k < gk1; k++) {
        let xk = x[k];
        xs += xk;
        let v = welem(k, j4);
        for (var c = 0u; c < WPT; c++) {
          for (var sf = 0u; sf < SUB; sf++) {
            acc4[c * SUB + sf] += xk * vec4<f32>((vec4<u32>(wsel(v, c) >> (BITS * sf)) >> BYTE_SHIFTS) & vec4<u32>(MASK));
          }
        }
      }
      for (var c = 0u; c < WPT; c++) {
        for (var sf = 0u; sf < SUB; sf++) {
          let o = go + c * PER + sf;
          let s4 = vec4<f32>(scale[o], scale[o + SUB], scale[o + 2u * SUB], scale[o + 3u * SUB]);
          let h4 = vec4<f32>(shift[o], shift[o + SUB], shift[o + 2u * SUB], shift[o + 3u * SUB]);
          out4[c * SUB + sf] += s4 * (acc4[c * SUB + sf] - C * xs) + h4 * xs;
        }
      }
    } else {
      // Zeroed by hand: a `var` without initializer inside a loop was seen keeping the previous
      // iteration's values (naga → llvmpipe), though WGSL says it starts at zero.
      var acc: array<f32, WPT * PER>;
      for (var i = 0u; i < WPT * PER; i++) { acc[i] = 0.0; }
      for (var k = gk0; k < gk1; k++) {
        let xk = x[k];
        xs += xk;
        let v = welem(k, j4);
        for (var c = 0u; c < WPT; c++) {
          for (var i = 0u; i < PER; i++) { acc[c * PER + i] += xk * code(wsel(v, c), i); }
        }
      }
      for (var i = 0u; i < WPT * PER; i++) {
        out[i] += scale[go + i] * acc[i] + select(shift[go + i] * xs, 0.0, CODEBOOK);
      }
    }
  }
  if (BYTE_LANES) {
    for (var c = 0u; c < WPT; c++) {
      for (var sf = 0u; sf < SUB; sf++) {
        let a = out4[c * SUB + sf];
        for (var b = 0u; b < 4u; b++) { out[c * PER + b * SUB + sf] = a[b]; }
      }
    }
  }
  for (var i = 0u; i < WPT * PER; i++) {
    let n = n0 + i;
    if (n >= p.N) { break; }
    if (p.ksplit == 1u) {
      y[n] = out[i] + select(0.0, bias[n], p.has_bias != 0u);
    } else {
      y[slice * p.N + n] = out[i]; // partial sums [ksplit, N], summed by `reduce`
    }
  }
}

// y[n] = Σ_slices partial[slice, n] (+ bias): binding 0 (x) holds the partial sums here.
@compute @workgroup_size(64)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let n = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (n >= p.N) { return; }
  var s = select(0.0, bias[n], p.has_bias != 0u);
  for (var i = 0u; i < p.ksplit; i++) { s += x[i * p.N + n]; }
  y[n] = s;
}

@compute @workgroup_size(8, 8)
fn gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = p.s0 * WPT + gid.x; // word column: outputs j·PER … j·PER + PER − 1
  let m0 = gid.y * TM;
  if (gid.x >= p.sn * WPT || m0 >= p.M) { return; }
  var xr: array<u32, TM>;
  for (var r = 0u; r < TM; r++) { xr[r] = min(m0 + r, p.M - 1u) * p.K; }
  var out: array<array<f32, PER>, TM>;
  for (var r = 0u; r < TM; r++) {
    for (var i = 0u; i < PER; i++) {
      let yi = min(m0 + r, p.M - 1u) * p.N + min(j * PER + i, p.N - 1u);
      out[r][i] = select(0.0, y[yi], p.acc != 0u);
    }
  }
  for (var g = p.k0 / p.gsize; g * p.gsize < p.k1; g++) {
    var acc: array<array<f32, PER>, TM>;
    var xs: array<f32, TM>;
    for (var r = 0u; r < TM; r++) {
      xs[r] = 0.0;
      for (var i = 0u; i < PER; i++) { acc[r][i] = 0.0; }
    }
    for (var k = max(g * p.gsize, p.k0); k < min((g + 1u) * p.gsize, p.k1); k++) {
      let word = word_at(k, j);
      var q: array<f32, PER>;
      for (var i = 0u; i < PER; i++) { q[i] = code(word, i); }
      for (var r = 0u; r < TM; r++) {
        let xk = x[xr[r] + k];
        xs[r] += xk;
        for (var i = 0u; i < PER; i++) { acc[r][i] += xk * q[i]; }
      }
    }
    for (var i = 0u; i < PER; i++) {
      let o = (g - p.sg0) * p.W * PER + j * PER + i;
      let s = scale[o];
      let sh = select(shift[o], 0.0, CODEBOOK);
      for (var r = 0u; r < TM; r++) { out[r][i] += s * acc[r][i] + sh * xs[r]; }
    }
  }
  for (var r = 0u; r < TM; r++) {
    let m = m0 + r;
    if (m >= p.M) { break; }
    for (var i = 0u; i < PER; i++) {
      let n = j * PER + i;
      if (n >= p.N) { break; }
      y[m * p.N + n] = out[r][i] + select(0.0, bias[n], p.has_bias != 0u);
    }
  }
}

// Ŵ[n, k] as f32 [N, K] (binding y), for the prefill variant "dequant + FP GEMM" that CPU
// adapters run: the codes are decoded once per layer instead of once per TM rows of x. A thread
// per (input k, word j); neighbouring lanes write neighbouring k of one output row.
@compute @workgroup_size(64)
fn dequant(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k = gid.x;
  let j = gid.y;
  if (k >= p.K || j >= p.W) { return; }
  let word = word_at(k, j);
  let g = k / p.gsize;
  for (var i = 0u; i < PER; i++) {
    let n = j * PER + i;
    if (n >= p.N) { break; }
    let o = g * p.W * PER + n;
    y[n * p.K + k] = scale[o] * code(word, i) + select(shift[o], 0.0, CODEBOOK);
  }
}
