// y (rows, width) = rows `ids` of `table`: token embeddings, codebook vectors, or a selection of
// hidden states.

struct Params { rows: u32, width: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.rows * p.width) { return; }
    let r = idx / p.width;
    y[idx] = table[ids[r] * p.width + idx % p.width];
}
