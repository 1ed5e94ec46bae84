// Included ({{include half_round}}) by int8_matmul.wgsl and int8_matmul_tex.wgsl: f32 rounded to
// the nearest binary16 value (ties to even), kept in f32 — WGSL's pack2x16float leaves the
// rounding to the implementation.
fn half(v: f32) -> f32 {
  let b = bitcast<u32>(v);
  let a = b & 0x7fffffffu;
  let s = b & 0x80000000u;
  if (a >= 0x477ff000u) { return bitcast<f32>(s | 0x7f800000u); } // ≥ 65520 (or Inf/NaN): ±Inf
  if (a < 0x38800000u) { // below 2^-14: binary16 subnormals, steps of 2^-24 (exact scalings)
    return bitcast<f32>(s | bitcast<u32>(round(bitcast<f32>(a) * 16777216.0) / 16777216.0));
  }
  let r = a + 0xfffu + ((a >> 13u) & 1u);
  return bitcast<f32>(s | (r & 0xffffe000u));
}
