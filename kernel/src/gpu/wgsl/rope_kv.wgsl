// Rotary position embedding (non-interleaved halves, as HF Chameleon) on the queries, in place
// in the fused q|k|v rows, and on the keys, which go with the values into the KV cache at their
// positions. Row r is batch r / t, position offset + r % t. One thread per (row, head slot,
// i < hd / 2); head slots are the nh query heads, then nkv key heads, then nkv value heads.

struct Params { rows: u32, t: u32, offset: u32, nh: u32, nkv: u32, hd: u32, stride: u32, cap: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cos_t: array<f32>;
@group(0) @binding(2) var<storage, read> sin_t: array<f32>;
@group(0) @binding(3) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(4) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let half = p.hd / 2u;
    let slots = p.nh + 2u * p.nkv;
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.rows * slots * half) { return; }
    let i = idx % half;
    let slot = (idx / half) % slots;
    let row = idx / (half * slots);
    let pos = p.offset + row % p.t;
    let batch = row / p.t;
    let src = row * p.stride + slot * p.hd;
    let a = qkv[src + i];
    let b = qkv[src + i + half];
    let c = cos_t[pos * half + i];
    let s = sin_t[pos * half + i];
    if (slot < p.nh) {
        qkv[src + i] = a * c - b * s;
        qkv[src + i + half] = b * c + a * s;
        return;
    }
    if (slot < p.nh + p.nkv) {
        let dst = ((batch * p.nkv + slot - p.nh) * p.cap + pos) * p.hd;
        k_cache[dst + i] = a * c - b * s;
        k_cache[dst + i + half] = b * c + a * s;
        return;
    }
    let dst = ((batch * p.nkv + slot - p.nh - p.nkv) * p.cap + pos) * p.hd;
    v_cache[dst + i] = a;
    v_cache[dst + i + half] = b;
}
