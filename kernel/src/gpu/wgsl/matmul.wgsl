// y (m, n) = x (m, k) · w (n, k)^T [+ bias (n)] [+ y]: a linear layer with HF's weight layout.
// 64x64 output tiles per workgroup, 4x4 outputs per thread, k in slices of 16 staged in
// workgroup memory. Any m, n, k (edges are masked).

struct Params { m: u32, n: u32, k: u32, flags: u32 }  // flags: 1 = bias, 2 = accumulate into y

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TILE: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> xs: array<f32, 1024>;  // TK x TILE, k-major
var<workgroup> ws: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(local_invocation_id) l: vec3<u32>) {
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        // 256 threads load 1024 values of each tile: 4 each.
        for (var s = 0u; s < 4u; s++) {
            let e = li + s * 256u;
            let r = e / TK;
            let kk = e % TK;
            let k = k0 + kk;
            var xv = 0.0;
            if (row0 + r < p.m && k < p.k) { xv = x[(row0 + r) * p.k + k]; }
            xs[kk * TILE + r] = xv;
            var wv = 0.0;
            if (col0 + r < p.n && k < p.k) { wv = w[(col0 + r) * p.k + k]; }
            ws[kk * TILE + r] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = xs[kk * TILE + l.y * 4u + i];
                b[i] = ws[kk * TILE + l.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(a[i], b[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + l.y * 4u + i;
        if (r >= p.m) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + l.x * 4u + j;
            if (c >= p.n) { continue; }
            var v = acc[i * 4u + j];
            if ((p.flags & 1u) != 0u) { v += bias[c]; }
            let o = r * p.n + c;
            if ((p.flags & 2u) != 0u) { v += y[o]; }
            y[o] = v;
        }
    }
}
