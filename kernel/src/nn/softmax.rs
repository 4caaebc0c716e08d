//! Scaled causal softmax of attention scores as one custom op with a backward pass.
//!
//! Composed of candle ops (scale, add a mask, max, subtract, exp, sum, divide) the attention
//! softmax makes seven full passes over the largest tensor of the model forward, about twice
//! that backward, and candle's backprop adds every gradient into a fresh zero tensor on top.
//! Here the forward is one pass and the backward, `dx = scale · y · (dy - Σ dy·y)`, another.
//! CPU f32; other devices and dtypes take the composed path.

use super::im2col::f32_slice;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, D, DType, Device, Layout, Result, Shape, Tensor,
};
use rayon::prelude::*;

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 64;

/// `softmax(scale · scores)` over the last dim, where row `i` (of the `t` new positions) sees
/// only the first `offset + i + 1` keys. `scores`: `(..., t, offset + t)`.
pub(crate) fn causal_softmax(scores: &Tensor, scale: f64, offset: usize) -> Result<Tensor> {
    let dims = scores.dims();
    let (t, s) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    if s != offset + t {
        candle_core::bail!("causal_softmax: {s} keys for {t} queries after {offset} cached ones");
    }
    if matches!(scores.device(), Device::Cpu) && scores.dtype() == DType::F32 {
        return scores.contiguous()?.apply_op1(CausalSoftmax {
            scale: scale as f32,
            offset,
        });
    }
    composed(scores, scale, offset)
}

/// The same with candle ops: scale, add a `-inf` mask, differentiable softmax.
fn composed(scores: &Tensor, scale: f64, offset: usize) -> Result<Tensor> {
    let dims = scores.dims();
    let (t, s) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| {
            (0..s).map(move |j| {
                if j <= offset + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    let mask = Tensor::from_vec(mask, (t, s), scores.device())?.to_dtype(scores.dtype())?;
    candle_nn::ops::softmax(&(scores * scale)?.broadcast_add(&mask)?, D::Minus1)
}

struct CausalSoftmax {
    scale: f32,
    offset: usize,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(st, l, "causal-softmax")?;
        let dims = l.dims();
        let (t, s) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        let mut y = vec![0f32; x.len()];
        let scale = self.scale;
        y.par_chunks_mut(s * ROWS_PER_TASK)
            .zip(x.par_chunks(s * ROWS_PER_TASK))
            .enumerate()
            .for_each(|(task, (ys, xs))| {
                for (r, (yr, xr)) in ys.chunks_mut(s).zip(xs.chunks(s)).enumerate() {
                    let i = (task * ROWS_PER_TASK + r) % t;
                    let n = self.offset + i + 1;
                    let max = xr[..n].iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0;
                    for (o, v) in yr[..n].iter_mut().zip(&xr[..n]) {
                        *o = ((v - max) * scale).exp();
                        sum += *o;
                    }
                    let inv = 1.0 / sum;
                    yr[..n].iter_mut().for_each(|o| *o *= inv);
                }
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(res.apply_op2_no_bwd(
            &grad.contiguous()?,
            &SoftmaxGrad(self.scale),
        )?))
    }
}

/// `dx = scale · y · (dy - Σ dy·y)` row by row, from `y` and `dy`.
struct SoftmaxGrad(f32);

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "softmax-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = f32_slice(s1, l1, "softmax-grad")?;
        let dy = f32_slice(s2, l2, "softmax-grad")?;
        let s = *l1.dims().last().expect("rank >= 1");
        let mut dx = vec![0f32; y.len()];
        let scale = self.0;
        dx.par_chunks_mut(s * ROWS_PER_TASK)
            .zip(
                y.par_chunks(s * ROWS_PER_TASK)
                    .zip(dy.par_chunks(s * ROWS_PER_TASK)),
            )
            .for_each(|(dxs, (ys, dys))| {
                for ((o, yr), gr) in dxs.chunks_mut(s).zip(ys.chunks(s)).zip(dys.chunks(s)) {
                    let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
                    for ((o, a), b) in o.iter_mut().zip(yr).zip(gr) {
                        *o = scale * a * (b - dot);
                    }
                }
            });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_composed_softmax_forward_and_backward() -> Result<()> {
        let dev = Device::Cpu;
        for (t, offset) in [(7, 0), (1, 9), (5, 3), (70, 0)] {
            let x = candle_core::Var::from_tensor(&Tensor::randn(
                0f32,
                2.0,
                (2, 3, t, offset + t),
                &dev,
            )?)?;
            let w = Tensor::randn(0f32, 1.0, (2, 3, t, offset + t), &dev)?;
            let ours = causal_softmax(x.as_tensor(), 0.3, offset)?;
            let theirs = composed(x.as_tensor(), 0.3, offset)?;
            let d = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-6, "forward t={t} offset={offset}: {d}");
            let ga = (ours * &w)?.sum_all()?.backward()?;
            let gb = (theirs * &w)?.sum_all()?.backward()?;
            let (ga, gb) = (
                ga.get(x.as_tensor()).unwrap(),
                gb.get(x.as_tensor()).unwrap(),
            );
            let d = (ga - gb)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-5, "backward t={t} offset={offset}: {d}");
        }
        Ok(())
    }

    #[test]
    fn masked_keys_get_exactly_zero() -> Result<()> {
        let x = Tensor::randn(0f32, 1.0, (1, 1, 4, 4), &Device::Cpu)?;
        let y = causal_softmax(&x, 1.0, 0)?
            .squeeze(0)?
            .squeeze(0)?
            .to_vec2::<f32>()?;
        for (i, row) in y.iter().enumerate() {
            assert!(row[i + 1..].iter().all(|v| *v == 0.0));
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        Ok(())
    }
}
