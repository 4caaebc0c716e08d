//! One launcher per WGSL kernel in `wgsl/`: each records a dispatch into a [`Commands`] with its
//! parameters and buffers. Shapes are in values (f32 or u32), row-major; the launchers check
//! nothing the kernels cannot survive (WGSL bounds-checks every access), so callers keep the
//! shapes right and the tests compare every kernel against candle.

use super::{Commands, Dispatch, Gpu, Step};
use wgpu::util::DeviceExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    Matmul,
    RmsNorm,
    HeadNorm,
    RopeKv,
    Attention,
    Swiglu,
    Gather,
    Conv2d,
}

const SOURCES: [(Kernel, &str); 8] = [
    (Kernel::Matmul, include_str!("wgsl/matmul.wgsl")),
    (Kernel::RmsNorm, include_str!("wgsl/rms_norm.wgsl")),
    (Kernel::HeadNorm, include_str!("wgsl/head_norm.wgsl")),
    (Kernel::RopeKv, include_str!("wgsl/rope_kv.wgsl")),
    (Kernel::Attention, include_str!("wgsl/attention.wgsl")),
    (Kernel::Swiglu, include_str!("wgsl/swiglu.wgsl")),
    (Kernel::Gather, include_str!("wgsl/gather.wgsl")),
    (Kernel::Conv2d, include_str!("wgsl/conv2d.wgsl")),
];

/// The compiled pipelines, one per kernel.
pub(crate) struct Kernels {
    pipelines: Vec<wgpu::ComputePipeline>,
}

impl Kernels {
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        let pipelines = SOURCES
            .iter()
            .map(|(kernel, source)| {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(&format!("{kernel:?}")),
                    source: wgpu::ShaderSource::Wgsl((*source).into()),
                });
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&format!("{kernel:?}")),
                    layout: None,
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        Kernels { pipelines }
    }

    pub(crate) fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        let i = SOURCES
            .iter()
            .position(|(k, _)| *k == kernel)
            .expect("every kernel has a source");
        &self.pipelines[i]
    }
}

/// A kernel parameter: the uniform block is a list of 32-bit words.
enum Word {
    U(usize),
    F(f32),
}

/// Workgroups for `threads` one-dimensional threads of 64, spread over y past the 65,535 limit.
fn linear_groups(threads: usize) -> (u32, u32) {
    let groups = threads.div_ceil(64).max(1);
    if groups <= 65_535 {
        (groups as u32, 1)
    } else {
        (65_535, groups.div_ceil(65_535) as u32)
    }
}

/// The parameters `rope_kv.wgsl` and `attention.wgsl` share: which rows at which positions,
/// the heads, the fused `q|k|v` row width and the cache capacity.
fn cache_layout(
    (rows, t, offset): (usize, usize, usize),
    (nh, nkv, hd): (usize, usize, usize),
    cap: usize,
) -> Vec<Word> {
    let stride = (nh + 2 * nkv) * hd;
    [rows, t, offset, nh, nkv, hd, stride, cap]
        .into_iter()
        .map(Word::U)
        .collect()
}

impl Gpu {
    fn dispatch(
        &self,
        batch: &mut Commands,
        kernel: Kernel,
        params: &[Word],
        buffers: &[&wgpu::Buffer],
        groups: (u32, u32),
    ) {
        let mut words: Vec<u32> = params
            .iter()
            .map(|w| match *w {
                Word::U(v) => u32::try_from(v).expect("kernel parameters fit in 32 bits"),
                Word::F(v) => v.to_bits(),
            })
            .collect();
        words.resize(words.len().div_ceil(4) * 4, 0);
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytemuck::cast_slice(&words),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        entries.extend(
            buffers
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry {
                    binding: i as u32 + 1,
                    resource: b.as_entire_binding(),
                }),
        );
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.kernels.pipeline(kernel).get_bind_group_layout(0),
            entries: &entries,
        });
        batch.steps.push(Step::Dispatch(Dispatch {
            kernel,
            bind,
            groups,
        }));
    }

    /// `y (m, n) = x (m, k) · wt (k, n) [+ bias] [+ y when accumulate]`: a linear layer with
    /// its weight transposed (see [`transposed`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn matmul_t(
        &self,
        batch: &mut Commands,
        x: &wgpu::Buffer,
        wt: &wgpu::Buffer,
        bias: Option<&wgpu::Buffer>,
        y: &wgpu::Buffer,
        (m, n, k): (usize, usize, usize),
        accumulate: bool,
    ) {
        let flags = usize::from(bias.is_some()) | (usize::from(accumulate) << 1);
        let groups = (n.div_ceil(64) as u32, m.div_ceil(8) as u32);
        self.dispatch(
            batch,
            Kernel::Matmul,
            &[Word::U(m), Word::U(n), Word::U(k), Word::U(flags)],
            &[x, wt, bias.unwrap_or(x), y],
            groups,
        );
    }

    /// RMSNorm of `rows` rows of `h` values with weight `w (h)`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rms_norm(
        &self,
        batch: &mut Commands,
        x: &wgpu::Buffer,
        w: &wgpu::Buffer,
        y: &wgpu::Buffer,
        rows: usize,
        h: usize,
        eps: f64,
    ) {
        let groups = if rows <= 65_535 {
            (rows as u32, 1)
        } else {
            (65_535, rows.div_ceil(65_535) as u32)
        };
        self.dispatch(
            batch,
            Kernel::RmsNorm,
            &[Word::U(rows), Word::U(h), Word::F(eps as f32)],
            &[x, w, y],
            groups,
        );
    }

    /// Layer norm of each of `heads` heads of `hd` values at column `col` of rows of `stride`
    /// values, in place, with per-head `w`, `b` `(heads, hd)`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn head_norm(
        &self,
        batch: &mut Commands,
        x: &wgpu::Buffer,
        w: &wgpu::Buffer,
        b: &wgpu::Buffer,
        (rows, heads, hd): (usize, usize, usize),
        (stride, col): (usize, usize),
        eps: f64,
    ) {
        self.dispatch(
            batch,
            Kernel::HeadNorm,
            &[
                Word::U(rows),
                Word::U(heads),
                Word::U(hd),
                Word::U(stride),
                Word::U(col),
                Word::F(eps as f32),
            ],
            &[w, b, x],
            (rows as u32, heads as u32),
        );
    }

    /// Rotary embedding of the queries (in place) and keys of fused `q|k|v` rows; keys and values
    /// go into the caches `(batch, nkv, cap, hd)` at positions `offset + row % t`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rope_kv(
        &self,
        batch: &mut Commands,
        qkv: &wgpu::Buffer,
        (cos, sin): (&wgpu::Buffer, &wgpu::Buffer),
        (k_cache, v_cache): (&wgpu::Buffer, &wgpu::Buffer),
        (rows, t, offset): (usize, usize, usize),
        (nh, nkv, hd): (usize, usize, usize),
        cap: usize,
    ) {
        self.dispatch(
            batch,
            Kernel::RopeKv,
            &cache_layout((rows, t, offset), (nh, nkv, hd), cap),
            &[cos, sin, qkv, k_cache, v_cache],
            linear_groups(rows * (nh + 2 * nkv) * hd / 2),
        );
    }

    /// Causal attention of the queries in fused `q|k|v` rows over the caches; `out (rows, nh·hd)`.
    /// `scores` holds `rows · nh · cap` values of scratch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attention(
        &self,
        batch: &mut Commands,
        qkv: &wgpu::Buffer,
        (k_cache, v_cache): (&wgpu::Buffer, &wgpu::Buffer),
        scores: &wgpu::Buffer,
        out: &wgpu::Buffer,
        (rows, t, offset): (usize, usize, usize),
        (nh, nkv, hd): (usize, usize, usize),
        cap: usize,
    ) {
        let mut params = cache_layout((rows, t, offset), (nh, nkv, hd), cap);
        params.push(Word::F(1.0 / (hd as f32).sqrt()));
        self.dispatch(
            batch,
            Kernel::Attention,
            &params,
            &[qkv, k_cache, v_cache, scores, out],
            (rows as u32, nh as u32),
        );
    }

    /// `y (rows, i) = silu(gate) · up` of fused `gate|up` rows `(rows, 2i)`.
    pub(crate) fn swiglu(
        &self,
        batch: &mut Commands,
        gu: &wgpu::Buffer,
        y: &wgpu::Buffer,
        rows: usize,
        i: usize,
    ) {
        self.dispatch(
            batch,
            Kernel::Swiglu,
            &[Word::U(rows), Word::U(i)],
            &[gu, y],
            linear_groups(rows * i),
        );
    }

    /// `y (rows, width)` = the rows `ids` (u32) of `table`.
    pub(crate) fn gather(
        &self,
        batch: &mut Commands,
        ids: &wgpu::Buffer,
        table: &wgpu::Buffer,
        y: &wgpu::Buffer,
        rows: usize,
        width: usize,
    ) {
        self.dispatch(
            batch,
            Kernel::Gather,
            &[Word::U(rows), Word::U(width)],
            &[ids, table, y],
            linear_groups(rows * width),
        );
    }

    /// Stride-1 NHWC convolution with `k x k` weights `(ky, kx, c_in, c_out)` and padding
    /// `pad`; `(h, w)` is the output size. See [`Conv`] for the fused neighbours.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn conv2d(
        &self,
        batch: &mut Commands,
        x: &wgpu::Buffer,
        weight: &wgpu::Buffer,
        bias: &wgpu::Buffer,
        y: &wgpu::Buffer,
        (b, h, w): (usize, usize, usize),
        (c_in, c_out, k, pad): (usize, usize, usize, usize),
        conv: Conv,
    ) {
        let flags = usize::from(conv.silu)
            | (usize::from(conv.upsample) << 1)
            | (usize::from(conv.residual.is_some()) << 2);
        let (res, res_len) = conv.residual.unwrap_or((x, 1));
        self.dispatch(
            batch,
            Kernel::Conv2d,
            &[
                Word::U(b),
                Word::U(h),
                Word::U(w),
                Word::U(c_in),
                Word::U(c_out),
                Word::U(k),
                Word::U(pad),
                Word::U(flags),
                Word::U(res_len),
            ],
            &[x, weight, bias, res, y],
            linear_groups(b * h * w * c_out),
        );
    }
}

/// A weight `(out, in)` (HF's layout) as [`Gpu::matmul_t`] reads it: `(in, out)`, row-major.
pub(crate) fn transposed(w: &candle_core::Tensor) -> crate::Result<Vec<f32>> {
    Ok(w.to_dtype(candle_core::DType::F32)?
        .t()?
        .contiguous()?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// What [`Gpu::conv2d`] fuses around the convolution.
#[derive(Clone, Copy, Default)]
pub(crate) struct Conv<'a> {
    /// silu on the input.
    pub(crate) silu: bool,
    /// Nearest 2x upsampling of the input (which is then `h/2 x w/2`).
    pub(crate) upsample: bool,
    /// Added to the output, read at `index % len`.
    pub(crate) residual: Option<(&'a wgpu::Buffer, usize)>,
}

#[cfg(test)]
mod tests {
    //! Every kernel against candle on the CPU, with fresh random inputs each run and shapes that
    //! are not multiples of the tiles.
    use super::super::tests::{gpu, relative_error, values};
    use super::super::{Commands, block_on};
    use super::*;
    use candle_core::{D, DType, Device, IndexOp, Tensor};

    const TOL: f32 = 1e-5;

    fn randn(shape: &[usize]) -> Tensor {
        Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap()
    }

    fn run(gpu: &Gpu, batch: Commands, out: &wgpu::Buffer, n: usize) -> Vec<f32> {
        block_on(gpu.run(batch, out, n)).unwrap()
    }

    #[test]
    fn matmul_with_bias_and_accumulation_matches_candle() {
        let gpu = gpu();
        for (m, n, k) in [
            (1, 7, 5),
            (3, 960, 192),
            (37, 70, 33),
            (64, 64, 64),
            (130, 100, 517),
        ] {
            let (x, w, b, y0) = (randn(&[m, k]), randn(&[n, k]), randn(&[n]), randn(&[m, n]));
            let xw = x.matmul(&w.t().unwrap()).unwrap();
            for (bias, acc) in [(false, false), (true, false), (true, true)] {
                let mut want = xw.clone();
                if bias {
                    want = want.broadcast_add(&b).unwrap();
                }
                if acc {
                    want = (want + &y0).unwrap();
                }
                let (xb, wb, bb, yb) = (
                    gpu.upload(&values(&x)),
                    gpu.upload(&transposed(&w).unwrap()),
                    gpu.upload(&values(&b)),
                    gpu.upload(&values(&y0)),
                );
                let mut batch = Commands::default();
                gpu.matmul_t(
                    &mut batch,
                    &xb,
                    &wb,
                    bias.then_some(&bb),
                    &yb,
                    (m, n, k),
                    acc,
                );
                let got = run(&gpu, batch, &yb, m * n);
                let err = relative_error(&got, &values(&want));
                assert!(err < TOL, "({m}, {n}, {k}) bias {bias} acc {acc}: {err}");
            }
        }
    }

    #[test]
    fn rms_norm_matches_candle() {
        let gpu = gpu();
        for (rows, h) in [(1, 5), (9, 192), (70, 300)] {
            let (x, w) = (randn(&[rows, h]), randn(&[h]));
            let want = candle_nn::ops::rms_norm_slow(&x, &w, 1e-5).unwrap();
            let (xb, wb, yb) = (
                gpu.upload(&values(&x)),
                gpu.upload(&values(&w)),
                gpu.zeros(rows * h),
            );
            let mut batch = Commands::default();
            gpu.rms_norm(&mut batch, &xb, &wb, &yb, rows, h, 1e-5);
            let err = relative_error(&run(&gpu, batch, &yb, rows * h), &values(&want));
            assert!(err < TOL, "({rows}, {h}): {err}");
        }
    }

    #[test]
    fn head_norm_in_place_at_a_column_matches_candle() {
        let gpu = gpu();
        for (rows, heads, hd, before, after) in
            [(3, 2, 8, 0, 5), (11, 6, 32, 7, 64), (5, 3, 100, 16, 0)]
        {
            let stride = before + heads * hd + after;
            let x = randn(&[rows, stride]);
            let (w, b) = (randn(&[heads, hd]), randn(&[heads, hd]));
            let part = x
                .narrow(1, before, heads * hd)
                .unwrap()
                .reshape((rows, heads, hd))
                .unwrap();
            let normed = crate::nn::fused::head_norm(&part, &w, &b, 1e-5)
                .unwrap()
                .reshape((rows, heads * hd))
                .unwrap();
            let mut cols = vec![];
            if before > 0 {
                cols.push(x.narrow(1, 0, before).unwrap());
            }
            cols.push(normed);
            if after > 0 {
                cols.push(x.narrow(1, before + heads * hd, after).unwrap());
            }
            let want = Tensor::cat(&cols, 1).unwrap();
            let (xb, wb, bb) = (
                gpu.upload(&values(&x)),
                gpu.upload(&values(&w)),
                gpu.upload(&values(&b)),
            );
            let mut batch = Commands::default();
            gpu.head_norm(
                &mut batch,
                &xb,
                &wb,
                &bb,
                (rows, heads, hd),
                (stride, before),
                1e-5,
            );
            let err = relative_error(&run(&gpu, batch, &xb, rows * stride), &values(&want));
            assert!(err < TOL, "({rows}, {heads}, {hd}): {err}");
        }
    }

    /// Causal attention with rotary embeddings, grouped-query heads and a cache, in candle:
    /// `qkv (b, t, (nh + 2 nkv) hd)` of all positions; returns `(b, t, nh hd)`.
    fn reference_attention(
        qkv: &Tensor,
        nh: usize,
        nkv: usize,
        hd: usize,
        cos: &Tensor,
        sin: &Tensor,
    ) -> Tensor {
        let (b, t, _) = qkv.dims3().unwrap();
        let heads = |at: usize, n: usize| {
            qkv.narrow(2, at * hd, n * hd)
                .unwrap()
                .reshape((b, t, n, hd))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let (cos, sin) = (cos.narrow(0, 0, t).unwrap(), sin.narrow(0, 0, t).unwrap());
        let q = candle_nn::rotary_emb::rope_slow(&heads(0, nh), &cos, &sin).unwrap();
        let k = candle_nn::rotary_emb::rope_slow(&heads(nh, nkv), &cos, &sin).unwrap();
        let v = heads(nh + nkv, nkv);
        let rep = |x: Tensor| {
            Tensor::cat(&vec![&x; nh / nkv], 2)
                .unwrap()
                .reshape((b, nh, t, hd))
                .unwrap()
        };
        let (k, v) = (rep(k), rep(v));
        let scores = (q.matmul(&k.t().unwrap()).unwrap() / (hd as f64).sqrt()).unwrap();
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), &Device::Cpu).unwrap();
        let p = candle_nn::ops::softmax(&scores.broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
        p.matmul(&v)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((b, t, nh * hd))
            .unwrap()
    }

    #[test]
    fn rope_cache_and_attention_in_two_chunks_match_candle() {
        let gpu = gpu();
        // (batch, first chunk, second chunk, nh, nkv, hd, cache capacity)
        for (b, t1, t2, nh, nkv, hd, cap) in [
            (1, 5, 1, 2, 2, 8, 8),
            (3, 17, 4, 6, 2, 32, 30),
            (2, 70, 67, 4, 1, 16, 140),
        ] {
            let t = t1 + t2;
            let width = (nh + 2 * nkv) * hd;
            let qkv = randn(&[b, t, width]);
            let (cos, sin) = {
                let angles = randn(&[cap, hd / 2]);
                (angles.cos().unwrap(), angles.sin().unwrap())
            };
            let want = reference_attention(&qkv, nh, nkv, hd, &cos, &sin);
            let (cb, sb) = (gpu.upload(&values(&cos)), gpu.upload(&values(&sin)));
            let (kc, vc) = (gpu.zeros(b * nkv * cap * hd), gpu.zeros(b * nkv * cap * hd));
            for (offset, len) in [(0, t1), (t1, t2)] {
                let chunk = qkv.narrow(1, offset, len).unwrap();
                let rows = b * len;
                let qb = gpu.upload(&values(&chunk));
                let (scores, out) = (gpu.zeros(rows * nh * cap), gpu.zeros(rows * nh * hd));
                let mut batch = Commands::default();
                let heads = (nh, nkv, hd);
                gpu.rope_kv(
                    &mut batch,
                    &qb,
                    (&cb, &sb),
                    (&kc, &vc),
                    (rows, len, offset),
                    heads,
                    cap,
                );
                gpu.attention(
                    &mut batch,
                    &qb,
                    (&kc, &vc),
                    &scores,
                    &out,
                    (rows, len, offset),
                    heads,
                    cap,
                );
                let got = run(&gpu, batch, &out, rows * nh * hd);
                let want = want.i((.., offset..offset + len)).unwrap();
                let err = relative_error(&got, &values(&want));
                assert!(
                    err < TOL,
                    "b {b} chunk at {offset}+{len}, heads {nh}/{nkv}x{hd}: {err}"
                );
            }
        }
    }

    #[test]
    fn swiglu_and_gather_match_candle() {
        let gpu = gpu();
        for (rows, i) in [(1, 3), (13, 512), (40, 77)] {
            let gu = randn(&[rows, 2 * i]);
            let want = (gu.narrow(1, 0, i).unwrap().silu().unwrap() * gu.narrow(1, i, i).unwrap())
                .unwrap();
            let (gb, yb) = (gpu.upload(&values(&gu)), gpu.zeros(rows * i));
            let mut batch = Commands::default();
            gpu.swiglu(&mut batch, &gb, &yb, rows, i);
            let err = relative_error(&run(&gpu, batch, &yb, rows * i), &values(&want));
            assert!(err < TOL, "swiglu ({rows}, {i}): {err}");
        }
        for (vocab, width, n) in [(10, 3, 4), (960, 192, 37)] {
            let table = randn(&[vocab, width]);
            let ids: Vec<u32> = (0..n).map(|j| ((j * 7919 + 3) % vocab) as u32).collect();
            let want = table
                .index_select(&Tensor::new(ids.as_slice(), &Device::Cpu).unwrap(), 0)
                .unwrap();
            let (ib, tb, yb) = (
                gpu.upload_u32(&ids),
                gpu.upload(&values(&table)),
                gpu.zeros(n * width),
            );
            let mut batch = Commands::default();
            gpu.gather(&mut batch, &ib, &tb, &yb, n, width);
            assert_eq!(
                run(&gpu, batch, &yb, n * width),
                values(&want),
                "gather ({vocab}, {width})"
            );
        }
    }

    #[test]
    fn conv2d_with_fused_silu_upsampling_and_residual_matches_candle() {
        let gpu = gpu();
        // (batch, output size, c_in, c_out, k, silu, upsample, residual broadcast over batch)
        for (b, size, c_in, c_out, k, silu, up, broadcast) in [
            (1, 5, 3, 4, 3, false, false, false),
            (2, 8, 64, 64, 3, true, false, true),
            (3, 16, 32, 16, 3, true, true, false),
            (2, 12, 5, 3, 1, false, false, false),
        ] {
            let inside = if up { size / 2 } else { size };
            let x = randn(&[b, inside, inside, c_in]);
            let (w, bias) = (randn(&[c_out, c_in, k, k]), randn(&[c_out]));
            let res_shape = if broadcast {
                vec![size, size, c_out]
            } else {
                vec![b, size, size, c_out]
            };
            let res = randn(&res_shape);
            let mut input = x.clone();
            if silu {
                input = input.silu().unwrap();
            }
            if up {
                input = crate::nn::conv::upsample2x(&input).unwrap();
            }
            let want = input
                .permute((0, 3, 1, 2))
                .unwrap()
                .conv2d(&w, k / 2, 1, 1, 1)
                .unwrap()
                .permute((0, 2, 3, 1))
                .unwrap()
                .broadcast_add(&bias)
                .unwrap()
                .broadcast_add(&res)
                .unwrap();
            let wt = w.permute((2, 3, 1, 0)).unwrap();
            let (xb, wb, bb, rb) = (
                gpu.upload(&values(&x)),
                gpu.upload(&values(&wt)),
                gpu.upload(&values(&bias)),
                gpu.upload(&values(&res)),
            );
            let yb = gpu.zeros(b * size * size * c_out);
            let how = Conv {
                silu,
                upsample: up,
                residual: Some((&rb, res.elem_count())),
            };
            let mut batch = Commands::default();
            gpu.conv2d(
                &mut batch,
                &xb,
                &wb,
                &bb,
                &yb,
                (b, size, size),
                (c_in, c_out, k, k / 2),
                how,
            );
            let err = relative_error(
                &run(&gpu, batch, &yb, b * size * size * c_out),
                &values(&want.to_dtype(DType::F32).unwrap()),
            );
            assert!(
                err < TOL,
                "conv ({b}, {size}, {c_in}->{c_out}, k {k}, silu {silu}, up {up}): {err}"
            );
        }
    }
}
