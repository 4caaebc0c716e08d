// y (m, n) = x (m, k) · wt (k, n) [+ bias (n)] [+ y]: a linear layer whose weight is stored
// transposed, (in, out), so that neighbouring threads (neighbouring output columns) read
// neighbouring weights. Each thread computes one column for a block of 8 rows, so every
// weight is read once per 8 rows and the row values are shared by the whole workgroup. No
// workgroup memory and no barriers: fast on CPU emulations (lavapipe, SwiftShader) and fine on
// GPUs at the row counts of decoding (8) and of short prompts.

struct Params { m: u32, n: u32, k: u32, flags: u32 }  // flags: 1 = bias, 2 = accumulate into y

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn store(row: u32, col: u32, v: f32) {
    if (row >= p.m) { return; }
    var out = v;
    if ((p.flags & 1u) != 0u) { out += bias[col]; }
    let o = row * p.n + col;
    if ((p.flags & 2u) != 0u) { out += y[o]; }
    y[o] = out;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row0 = gid.y * 8u;
    if (col >= p.n) { return; }
    // Rows past the end read the last row (always valid) and are not stored.
    let last = p.m - 1u;
    let x0 = min(row0, last) * p.k;
    let x1 = min(row0 + 1u, last) * p.k;
    let x2 = min(row0 + 2u, last) * p.k;
    let x3 = min(row0 + 3u, last) * p.k;
    let x4 = min(row0 + 4u, last) * p.k;
    let x5 = min(row0 + 5u, last) * p.k;
    let x6 = min(row0 + 6u, last) * p.k;
    let x7 = min(row0 + 7u, last) * p.k;
    var a0 = 0.0; var a1 = 0.0; var a2 = 0.0; var a3 = 0.0;
    var a4 = 0.0; var a5 = 0.0; var a6 = 0.0; var a7 = 0.0;
    for (var k = 0u; k < p.k; k++) {
        let w = wt[k * p.n + col];
        a0 = fma(x[x0 + k], w, a0);
        a1 = fma(x[x1 + k], w, a1);
        a2 = fma(x[x2 + k], w, a2);
        a3 = fma(x[x3 + k], w, a3);
        a4 = fma(x[x4 + k], w, a4);
        a5 = fma(x[x5 + k], w, a5);
        a6 = fma(x[x6 + k], w, a6);
        a7 = fma(x[x7 + k], w, a7);
    }
    store(row0, col, a0);
    store(row0 + 1u, col, a1);
    store(row0 + 2u, col, a2);
    store(row0 + 3u, col, a3);
    store(row0 + 4u, col, a4);
    store(row0 + 5u, col, a5);
    store(row0 + 6u, col, a6);
    store(row0 + 7u, col, a7);
}
