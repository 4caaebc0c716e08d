//! `x · Wᵀ` with a frozen `W` (a LoRA base weight): the backward pass gives only the input's
//! gradient. candle's matmul backward always computes both operands' gradients, so a plain
//! matmul with a constant weight still pays a full `(in x rows)·(rows x out)` product per
//! projection for a gradient nobody reads, and keeps it in the gradient store.

use super::im2col::f32_slice;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};

/// `x` `(rows, in)` times the frozen `w` `(out, in)` transposed -> `(rows, out)`; gradients
/// flow to `x` only. Off the CPU (or in another dtype) a plain matmul.
pub(crate) fn frozen_matmul_t(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32 && w.dtype() == DType::F32 {
        x.contiguous()?.apply_op1(FrozenMatmul(w.clone()))
    } else {
        x.matmul(&w.t()?)
    }
}

struct FrozenMatmul(Tensor);

impl CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = Tensor::from_slice(f32_slice(s, l, "frozen-matmul")?, l.shape(), &Device::Cpu)?;
        let y = x.matmul(&self.0.t()?)?;
        let shape = y.shape().clone();
        Ok((CpuStorage::F32(y.flatten_all()?.to_vec1()?), shape))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.matmul(&self.0)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    #[test]
    fn forward_equals_matmul_and_only_the_input_gets_a_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let x = vm.get(
            (5, 7),
            "x",
            candle_nn::Init::Randn {
                mean: 0.,
                stdev: 1.,
            },
            DType::F32,
            &dev,
        )?;
        let w = Tensor::randn(0f32, 1.0, (3, 7), &dev)?;
        let y = frozen_matmul_t(&x, &w)?;
        let want = x.matmul(&w.t()?)?;
        let d = (&y - &want)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "{d}");
        let g = y.sqr()?.sum_all()?.backward()?;
        let g_want = want.sqr()?.sum_all()?.backward()?;
        let (a, b) = (
            g.get(&x).expect("x has a gradient"),
            g_want.get(&x).expect("x"),
        );
        assert!((a - b)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-4);
        // A plain matmul also computes (and stores) a gradient for `wᵀ`; the frozen one does not.
        assert_eq!(
            g_want.get_ids().count() - g.get_ids().count(),
            1,
            "the frozen matmul stores one gradient fewer"
        );
        Ok(())
    }
}
