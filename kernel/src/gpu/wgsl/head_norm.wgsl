// Chameleon's query/key norm, in place: layer norm over each head's `hd` values, then a
// per-head affine (`w`, `b` of shape (heads, hd)). The heads sit at column `col` of rows of
// `stride` values (the fused q|k|v projection). One workgroup per (row, head).

struct Params { rows: u32, heads: u32, hd: u32, stride: u32, col: u32, eps: f32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

const WG: u32 = 64u;
var<workgroup> part: array<f32, 64>;

fn reduce(li: u32) -> f32 {
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (li < stride) { part[li] += part[li + stride]; }
        workgroupBarrier();
    }
    let total = part[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = wg.x;
    let head = wg.y;
    let base = row * p.stride + p.col + head * p.hd;
    var s = 0.0;
    for (var i = li; i < p.hd; i += WG) { s += x[base + i]; }
    part[li] = s;
    let mean = reduce(li) / f32(p.hd);
    var q = 0.0;
    for (var i = li; i < p.hd; i += WG) { let d = x[base + i] - mean; q += d * d; }
    part[li] = q;
    let inv = inverseSqrt(reduce(li) / f32(p.hd) + p.eps);
    for (var i = li; i < p.hd; i += WG) {
        let j = head * p.hd + i;
        x[base + i] = (x[base + i] - mean) * inv * w[j] + b[j];
    }
}
