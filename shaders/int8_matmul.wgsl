// LLM.int8() (Dettmers et al., 2022) as bitsandbytes computes it, for x [T, K] and an int8 weight
// CB [N, K] with row scales SCB [N] (W ≈ CB · SCB / 127):
//   cols:  input columns with any |x| ≥ threshold are outliers (threshold 0: none); `seen` keeps
//          every column that was one in any call
//   rows:  per token, absmax over its non-outlier elements; CA = round(x · 127 / absmax), 0 in
//          outlier columns (cols and rows see x rounded to float16, as bitsandbytes casts it)
//   mm:    y = (CA · CBᵀ)_i32 · absmax_t · SCB_n / 127²  +  x[:, outliers] · (CB[:, outliers] · SCB / 127)ᵀ
//          + bias; the outlier columns take the FP path with the dequantized weight columns.
//          (1/127² is bitsandbytes' literal 6.200124e-05 in int8_mm_dequant, kept.)
// CB is packed 4 int8 per u32 along K (byte j of word w is column 4w + j).
// Tensors over the binding limit are split by the launcher: x, ca, rowstat and y bound per window
// of token rows (T here is the window's), cb per window of N output rows starting at row n0 of
// Ntot (scb, bias and y are indexed from n0); `first`: the first token window resets flags.

struct Params { T: u32, K: u32, N: u32, hasBias: u32, n0: u32, Ntot: u32, first: u32, threshold: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;             // [T, K]
@group(0) @binding(1) var<storage, read_write> flags: array<u32>;   // [K]
@group(0) @binding(2) var<storage, read_write> seen: array<u32>;    // [K]
@group(0) @binding(3) var<storage, read_write> rowstat: array<f32>; // [T]
@group(0) @binding(4) var<storage, read_write> ca: array<i32>;      // [T, K]
@group(0) @binding(5) var<storage, read> cb: array<u32>;            // [N, K / 4] (window)
@group(0) @binding(6) var<storage, read> scb: array<f32>;           // [Ntot]
@group(0) @binding(7) var<storage, read> bias: array<f32>;          // [Ntot] or dummy
@group(0) @binding(8) var<storage, read_write> y: array<f32>;       // [T, Ntot]
@group(0) @binding(9) var<uniform> p: Params;

// bitsandbytes quantizes the activations after casting them to float16 (MatMul8bitLt: A.to(fp16));
// the outlier columns' FP product uses x as it is.
{{include half_round}}

fn outlier(v: f32) -> bool {
  return p.threshold > 0.0 && abs(v) >= p.threshold;
}

@compute @workgroup_size(64)
fn cols(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k = gid.x;
  if (k >= p.K) { return; }
  var f = 0u;
  for (var t = 0u; t < p.T; t++) {
    if (outlier(half(x[t * p.K + k]))) { f = 1u; }
  }
  if (p.first == 0u) { f = f | flags[k]; }
  flags[k] = f;
  seen[k] = seen[k] | f;
}

@compute @workgroup_size(64)
fn rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= p.T) { return; }
  var m = 0.0;
  for (var k = 0u; k < p.K; k++) {
    let v = half(x[t * p.K + k]);
    if (!outlier(v)) { m = max(m, abs(v)); }
  }
  rowstat[t] = m;
  let inv = select(0.0, 127.0 / m, m > 0.0);
  for (var k = 0u; k < p.K; k++) {
    let v = half(x[t * p.K + k]);
    ca[t * p.K + k] = select(i32(round(v * inv)), 0, flags[k] == 1u || outlier(v));
  }
}

@compute @workgroup_size(8, 8)
fn mm(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  let t = gid.y;
  if (n >= p.N || t >= p.T) { return; }
  var acc = 0i;
  var fp = 0.0;
  let K4 = p.K / 4u;
  for (var w = 0u; w < K4; w++) {
    let word = cb[n * K4 + w];
    for (var j = 0u; j < 4u; j++) {
      let k = w * 4u + j;
      let c = i32(word << (24u - 8u * j)) >> 24u; // sign-extended byte j
      if (flags[k] == 1u) {
        fp += x[t * p.K + k] * f32(c);
      } else {
        acc += ca[t * p.K + k] * c;
      }
    }
  }
  let s = scb[p.n0 + n];
  var out = f32(acc) * (rowstat[t] * s) * 6.200124e-05 + fp * (s / 127.0);
  if (p.hasBias == 1u) { out += bias[p.n0 + n]; }
  y[t * p.Ntot + p.n0 + n] = out;
}
