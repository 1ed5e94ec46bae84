// In-place elementwise activations: relu (OPT's MLP) and gelu (exact, erf form, as torch's
// default nn.GELU / transformers "gelu").

struct Params { n: u32 }

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.y * nwg.x + wid.x) * 256u + lid; }

@compute @workgroup_size(256)
fn relu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i < p.n) { x[i] = max(x[i], 0.0); }
}

// erfc(z) for z ≥ 0 with fractional error < 1.2e-7 (Chebyshev fit, Numerical Recipes §6.2).
// Using erfc for the negative side keeps gelu's small negative tail accurate in relative terms.
fn erfc_pos(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(r);
}

@compute @workgroup_size(256)
fn gelu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= p.n) { return; }
  let v = x[i];
  let z = abs(v) * 0.70710678118654752;
  // Φ(v) = erfc(−v/√2)/2: for v < 0 that is erfc(|v|/√2)/2, for v ≥ 0 it is 1 − erfc(v/√2)/2.
  let e = erfc_pos(z);
  let phi = select(1.0 - 0.5 * e, 0.5 * e, v < 0.0);
  x[i] = v * phi;
}
