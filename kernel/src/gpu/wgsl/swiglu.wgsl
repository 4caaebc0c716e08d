// SwiGLU on the fused gate|up rows: y (rows, i) = silu(gate) · up.

struct Params { rows: u32, i: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gu: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.rows * p.i) { return; }
    let r = idx / p.i;
    let j = idx % p.i;
    let g = gu[r * 2u * p.i + j];
    y[idx] = g / (1.0 + exp(-g)) * gu[r * 2u * p.i + p.i + j];
}
