// out[T, D] = table[ids[t], :] — token embedding gather. The launcher may bind a window of the
// table's rows [row0, row0 + rows); each dispatch fills only the tokens whose id falls inside it.
// The table is f32, or f16/bf16 packed two per u32.

struct Params { T: u32, D: u32, row0: u32, rows: u32 }

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<{{WT}}>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.T * p.D) { return; }
  let t = i / p.D;
  let d = i % p.D;
  let id = ids[t];
  if (id < p.row0 || id >= p.row0 + p.rows) { return; }
  out[i] = table1((id - p.row0) * p.D + d);
}

// Element i of the bound table as f32 (16-bit tables are packed two per u32).
fn table1(i: u32) -> f32 { return {{T1}}; }
