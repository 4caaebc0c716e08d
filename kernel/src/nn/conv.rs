//! 2-D convolution on channels-last (NHWC) tensors as im2col + one matmul.
//!
//! candle's own conv2d differentiates through `conv_transpose2d`, which is a slow loop on the
//! CPU; here the patches come from the [`Im2Col`] custom op (one pass each way) and the
//! arithmetic is a single gemm, the one op candle's CPU backend makes fast. Weights keep PyTorch's
//! `(out, in, kh, kw)` layout and names (`weight`, `bias`) so checkpoints stay interchangeable.

use super::im2col::{Geometry, Im2Col};
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub(crate) struct Conv2d {
    weight: Tensor,
    bias: Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    pub(crate) fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let fan_in = (c_in * kernel * kernel) as f64;
        let init = candle_nn::Init::Randn {
            mean: 0.0,
            stdev: (2.0 / fan_in).sqrt(),
        };
        let weight = vb.get_with_hints((c_out, c_in, kernel, kernel), "weight", init)?;
        let bias = vb.get_with_hints(c_out, "bias", candle_nn::Init::Const(0.0))?;
        Ok(Conv2d {
            weight,
            bias,
            kernel,
            stride,
            padding,
        })
    }

    pub(crate) fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl Module for Conv2d {
    /// `x`: `(batch, height, width, channels)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w, c) = x.dims4()?;
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let ho = (h + 2 * p - k) / s + 1;
        let wo = (w + 2 * p - k) / s + 1;
        let o = self.out_channels();
        // (out, in, kh, kw) -> (kh * kw * in, out), matching the patch order below.
        let wmat = self.weight.permute((2, 3, 1, 0))?.reshape((k * k * c, o))?;
        let cols = if k == 1 && s == 1 && p == 0 {
            x.reshape((b * h * w, c))?
        } else if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
            let g = Geometry {
                batch: b,
                height: h,
                width: w,
                channels: c,
                kernel: k,
                stride: s,
                padding: p,
            };
            x.contiguous()?.apply_op1(Im2Col(g))?
        } else {
            patches_with_tensor_ops(x, k, s, p)?
        };
        cols.matmul(&wmat)?
            .broadcast_add(&self.bias)?
            .reshape((b, ho, wo, o))
    }
}

/// im2col with plain tensor ops (`pad`, `narrow`, `cat`): the path for devices without the
/// custom op. `(batch, h, w, c)` -> `(batch * ho * wo, k * k * c)`.
pub(crate) fn patches_with_tensor_ops(x: &Tensor, k: usize, s: usize, p: usize) -> Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    let ho = (h + 2 * p - k) / s + 1;
    let wo = (w + 2 * p - k) / s + 1;
    // Pad so every strided window is a reshape of a contiguous slice.
    let extra_h = (k - 1 + s * ho).saturating_sub(h + 2 * p);
    let extra_w = (k - 1 + s * wo).saturating_sub(w + 2 * p);
    let xp = x
        .pad_with_zeros(1, p, p + extra_h)?
        .pad_with_zeros(2, p, p + extra_w)?;
    let wp = xp.dim(2)?;
    let mut patches = Vec::with_capacity(k * k);
    for ki in 0..k {
        let rows = xp.narrow(1, ki, s * ho)?;
        let rows = if s > 1 {
            rows.reshape((b, ho, s, wp, c))?
                .narrow(2, 0, 1)?
                .squeeze(2)?
        } else {
            rows
        };
        for kj in 0..k {
            let cols = rows.narrow(2, kj, s * wo)?;
            let cols = if s > 1 {
                cols.reshape((b, ho, wo, s, c))?
                    .narrow(3, 0, 1)?
                    .squeeze(3)?
            } else {
                cols
            };
            patches.push(cols);
        }
    }
    Tensor::cat(&patches, 3)?.reshape((b * ho * wo, k * k * c))
}

/// Nearest-neighbour 2x upsampling of an NHWC tensor (differentiable: broadcast + reshape).
pub(crate) fn upsample2x(x: &Tensor) -> Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    x.reshape((b, h, 1, w, 1, c))?
        .broadcast_as((b, h, 2, w, 2, c))?
        .reshape((b, 2 * h, 2 * w, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::im2col::{Geometry, Im2Col};
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    /// Checks against candle's own (NCHW) conv2d on random data, for several shapes.
    #[test]
    fn matches_candle_conv2d() -> Result<()> {
        let dev = Device::Cpu;
        for &(c_in, c_out, k, s, p, h) in &[
            (3, 5, 3, 1, 1, 9),
            (4, 6, 4, 2, 1, 8),
            (2, 3, 1, 1, 0, 5),
            (3, 2, 3, 2, 1, 7),
        ] {
            let vm = VarMap::new();
            let conv = Conv2d::new(
                c_in,
                c_out,
                k,
                s,
                p,
                VarBuilder::from_varmap(&vm, DType::F32, &dev),
            )?;
            let x = Tensor::randn(0f32, 1.0, (2, h, h, c_in), &dev)?;
            let ours = conv.forward(&x)?;
            let theirs = x
                .permute((0, 3, 1, 2))?
                .conv2d(&conv.weight, p, s, 1, 1)?
                .broadcast_add(&conv.bias.reshape((1, c_out, 1, 1))?)?
                .permute((0, 2, 3, 1))?;
            assert_eq!(ours.dims(), theirs.dims());
            let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-4, "k={k} s={s}: {diff}");
        }
        Ok(())
    }

    /// The custom op and the tensor-op fallback agree, forward and backward.
    #[test]
    fn im2col_op_matches_tensor_ops_including_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let g = Geometry {
            batch: 2,
            height: 7,
            width: 5,
            channels: 3,
            kernel: 4,
            stride: 2,
            padding: 1,
        };
        let x = Var::randn(0f32, 1.0, (2, 7, 5, 3), &dev)?;
        let fast = x.as_tensor().apply_op1(Im2Col(g))?;
        let slow = patches_with_tensor_ops(x.as_tensor(), 4, 2, 1)?;
        assert_eq!(fast.to_vec2::<f32>()?, slow.to_vec2::<f32>()?);
        let w = Tensor::randn(0f32, 1.0, fast.dims(), &dev)?;
        let gf = (&fast * &w)?
            .sum_all()?
            .backward()?
            .get(x.as_tensor())
            .unwrap()
            .clone();
        let gs = (&slow * &w)?
            .sum_all()?
            .backward()?
            .get(x.as_tensor())
            .unwrap()
            .clone();
        let diff = (gf - gs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "{diff}");
        Ok(())
    }

    #[test]
    fn gradients_reach_input_and_weights() -> Result<()> {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let conv = Conv2d::new(
            2,
            3,
            4,
            2,
            1,
            VarBuilder::from_varmap(&vm, DType::F32, &dev),
        )?;
        let x = Var::randn(0f32, 1.0, (1, 6, 6, 2), &dev)?;
        let y = upsample2x(&conv.forward(x.as_tensor())?)?;
        assert_eq!(y.dims(), &[1, 6, 6, 3]);
        let grads = y.sqr()?.sum_all()?.backward()?;
        for t in [x.as_tensor(), &conv.weight, &conv.bias] {
            let g = grads
                .get(t)
                .expect("gradient exists")
                .abs()?
                .sum_all()?
                .to_scalar::<f32>()?;
            assert!(g > 0.0);
        }
        Ok(())
    }
}
