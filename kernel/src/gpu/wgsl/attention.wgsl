// Causal attention of the rows' queries (in the fused q|k|v rows) over the KV cache: query row r
// (batch r / t, position offset + r % t) sees cache positions 0..=its own. Grouped-query: head h
// reads KV head h / (nh / nkv). One workgroup per (row, head); the scores of a row live in
// `scores` (rows x nh x cap), so any length fits.

struct Params {
    rows: u32, t: u32, offset: u32, nh: u32, nkv: u32, hd: u32, stride: u32, cap: u32,
    scale: f32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> k_cache: array<f32>;
@group(0) @binding(3) var<storage, read> v_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;
var<workgroup> part: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = wg.x;
    let h = wg.y;
    let batch = row / p.t;
    let len = p.offset + row % p.t + 1u;
    let kvh = h / (p.nh / p.nkv);
    let q = row * p.stride + h * p.hd;
    let kv = (batch * p.nkv + kvh) * p.cap * p.hd;
    let sc = (row * p.nh + h) * p.cap;

    var m = -3.4e38;
    for (var j = li; j < len; j += WG) {
        var s = 0.0;
        for (var d = 0u; d < p.hd; d++) { s = fma(qkv[q + d], k_cache[kv + j * p.hd + d], s); }
        s *= p.scale;
        scores[sc + j] = s;
        m = max(m, s);
    }
    part[li] = m;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (li < stride) { part[li] = max(part[li], part[li + stride]); }
        workgroupBarrier();
    }
    let mx = part[0];
    workgroupBarrier();
    var l = 0.0;
    for (var j = li; j < len; j += WG) {
        let e = exp(scores[sc + j] - mx);
        scores[sc + j] = e;
        l += e;
    }
    part[li] = l;
    storageBarrier();
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (li < stride) { part[li] += part[li + stride]; }
        workgroupBarrier();
    }
    let inv = 1.0 / part[0];
    for (var d = li; d < p.hd; d += WG) {
        var acc = 0.0;
        for (var j = 0u; j < len; j++) { acc = fma(scores[sc + j], v_cache[kv + j * p.hd + d], acc); }
        out[row * p.nh * p.hd + h * p.hd + d] = acc * inv;
    }
}
