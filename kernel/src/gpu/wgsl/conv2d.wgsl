// 2-D convolution, stride 1, on NHWC images, with the VQ decoder's neighbours fused in: silu on
// the input (flag 1), nearest 2x upsampling of the input (flag 2: the input is h/2 x w/2),
// bias, and a residual added to the output (flag 4), read at `index % res_len` so a
// (h, w, c) position map broadcasts over the batch. Weights are (ky, kx, c_in, c_out).
// One thread per output value; c_out is fastest, so neighbouring threads share the input.

struct Params {
    batch: u32, h: u32, w: u32, c_in: u32, c_out: u32, k: u32, pad: u32, flags: u32,
    res_len: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.batch * p.h * p.w * p.c_out) { return; }
    let o = idx % p.c_out;
    let px = (idx / p.c_out) % p.w;
    let py = (idx / (p.c_out * p.w)) % p.h;
    let b = idx / (p.c_out * p.w * p.h);
    let up = select(1u, 2u, (p.flags & 2u) != 0u);
    let hi = p.h / up;
    let wi = p.w / up;
    var acc = bias[o];
    for (var ky = 0u; ky < p.k; ky++) {
        let yy = i32(py + ky) - i32(p.pad);
        if (yy < 0 || yy >= i32(p.h)) { continue; }
        for (var kx = 0u; kx < p.k; kx++) {
            let xx = i32(px + kx) - i32(p.pad);
            if (xx < 0 || xx >= i32(p.w)) { continue; }
            let src = ((b * hi + u32(yy) / up) * wi + u32(xx) / up) * p.c_in;
            let wb = (ky * p.k + kx) * p.c_in * p.c_out + o;
            for (var c = 0u; c < p.c_in; c++) {
                var v = x[src + c];
                if ((p.flags & 1u) != 0u) { v = v / (1.0 + exp(-v)); }
                acc = fma(v, wt[wb + c * p.c_out], acc);
            }
        }
    }
    if ((p.flags & 4u) != 0u) { acc += res[idx % p.res_len]; }
    y[idx] = acc;
}
