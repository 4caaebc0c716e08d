// y = x / sqrt(mean(x²) + eps) · w over each row of `h` values: one workgroup per row.

struct Params { rows: u32, h: u32, eps: f32, _pad: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const WG: u32 = 64u;
var<workgroup> part: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = wg.x + wg.y * nwg.x;
    if (row >= p.rows) { return; }  // uniform across the workgroup
    let base = row * p.h;
    var s = 0.0;
    for (var i = li; i < p.h; i += WG) { let v = x[base + i]; s += v * v; }
    part[li] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (li < stride) { part[li] += part[li + stride]; }
        workgroupBarrier();
    }
    let inv = inverseSqrt(part[0] / f32(p.h) + p.eps);
    for (var i = li; i < p.h; i += WG) { y[base + i] = x[base + i] * inv * w[i]; }
}
