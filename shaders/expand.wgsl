// out[i] = f32 of element i of a 16-bit float tensor (f16 or bf16) packed two per u32 — the f32
// copy of a weight that an in-place algorithm (AWQ's scale folding, AutoRound's trainable layers)
// updates. The launcher binds a window of elements [e0, e0 + n) (e0 even).

struct Params { n: u32 }

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.n) { return; }
  out[i] = {{T1}};
}
