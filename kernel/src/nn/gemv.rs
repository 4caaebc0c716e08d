//! `x · Wᵀ` for a handful of rows (a decode step: one new token for each of N candidates).
//!
//! The general gemm packs both operands into cache-friendly panels on every call; with 8 rows
//! that packing of the weight matrix costs more than the arithmetic (the profile of a decode
//! step showed 16 % of all time in packing). Here each weight row is read once, straight from
//! its `(out, in)` storage, and dotted with every input row while it is in cache. Forward only:
//! inference uses it, training never does.

use super::im2col::f32_slice;
use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Most rows for which the row-streaming kernel beats the general gemm here.
pub(crate) const MAX_ROWS: usize = 16;

/// `x` `(rows, in)` times `w` `(out, in)` transposed -> `(rows, out)`, for `rows <= MAX_ROWS`
/// on the CPU; `None` when the general matmul should do it.
pub(crate) fn small_matmul_t(x: &Tensor, w: &Tensor) -> Result<Option<Tensor>> {
    let ok = matches!(x.device(), Device::Cpu)
        && x.dtype() == DType::F32
        && w.dtype() == DType::F32
        && x.rank() == 2
        && x.dim(0)? <= MAX_ROWS
        && w.is_contiguous();
    if !ok {
        return Ok(None);
    }
    Ok(Some(x.contiguous()?.apply_op2_no_bwd(w, &RowStream)?))
}

struct RowStream;

/// Output rows per parallel task.
const OUT_PER_TASK: usize = 64;

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b)
}

/// Dot product of two equally long slices, with AVX2 where the CPU has it.
pub(crate) fn fast_dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU was just checked for AVX2 and FMA.
        return unsafe { dot_avx2(a, b) };
    }
    dot(a, b)
}

fn kernel(x: &[f32], w: &[f32], rows: usize, k: usize, n: usize) -> Vec<f32> {
    // out[o][r] for a block of output features, transposed at the end.
    let mut t = vec![0f32; n * rows];
    t.par_chunks_mut(OUT_PER_TASK * rows)
        .zip(w.par_chunks(OUT_PER_TASK * k))
        .for_each(|(tb, wb)| {
            for (to, wo) in tb.chunks_mut(rows).zip(wb.chunks(k)) {
                for (r, o) in to.iter_mut().enumerate() {
                    *o = fast_dot(&x[r * k..(r + 1) * k], wo);
                }
            }
        });
    let mut out = vec![0f32; rows * n];
    for (o, col) in t.chunks(rows).enumerate() {
        for (r, v) in col.iter().enumerate() {
            out[r * n + o] = *v;
        }
    }
    out
}

impl CustomOp2 for RowStream {
    fn name(&self) -> &'static str {
        "small-matmul-t"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "small-matmul")?;
        let w = f32_slice(s2, l2, "small-matmul")?;
        let (rows, k) = l1.shape().dims2()?;
        let (n, k2) = l2.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("small-matmul: x has {k} columns, w has {k2}");
        }
        Ok((
            CpuStorage::F32(kernel(x, w, rows, k, n)),
            Shape::from((rows, n)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_general_matmul() -> Result<()> {
        let dev = Device::Cpu;
        for (rows, k, n) in [(1, 256, 768), (8, 37, 130), (16, 64, 65), (3, 5, 1)] {
            let x = Tensor::randn(0f32, 1.0, (rows, k), &dev)?;
            let w = Tensor::randn(0f32, 1.0, (n, k), &dev)?;
            let ours = small_matmul_t(&x, &w)?.expect("small enough");
            let reference = x.matmul(&w.t()?)?;
            let d = (ours - reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-3, "{rows}x{k}x{n}: {d}");
        }
        assert!(
            small_matmul_t(
                &Tensor::zeros((17, 4), DType::F32, &dev)?,
                &Tensor::zeros((3, 4), DType::F32, &dev)?
            )?
            .is_none()
        );
        Ok(())
    }
}
