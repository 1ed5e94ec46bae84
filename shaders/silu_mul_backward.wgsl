// Gradients of h = silu(a) · u elementwise over [T, F] (Llama's SwiGLU), with σ = sigmoid(a):
//   da = dh · u · σ · (1 + a · (1 − σ)),  du = dh · a · σ

struct Params { n: u32 }

@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read> dh: array<f32>;
@group(0) @binding(3) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(4) var<storage, read_write> dup: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.n) { return; }
  let a = gate[i];
  let sg = 1.0 / (1.0 + exp(-a));
  let g = dh[i];
  dgate[i] = g * up[i] * sg * (1.0 + a * (1.0 - sg));
  dup[i] = g * a * sg;
}
