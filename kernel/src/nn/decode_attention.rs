//! Attention of one new token per sequence over its cached keys and values (a decode step),
//! as one op. Through batched matmuls this is two gemm calls per (sequence, head) — 128 tiny
//! calls per layer for 8 candidates — plus a softmax and copies; here it is one pass that reads
//! the cache buffers in place. Grouped-query heads share their key/value head. Inference only.

use super::gemv::fast_dot;
use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `q`: `(batch, heads, 1, d)`; `k`, `v`: `(batch, kv_heads, t, d)` (views of the cache are
/// fine). Returns `softmax(q·kᵀ·scale)·v`, `(batch, heads, 1, d)`; `None` when the general
/// path should do it (not CPU f32, or more than one query).
pub(crate) fn decode_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
) -> Result<Option<Tensor>> {
    let ok = matches!(q.device(), Device::Cpu)
        && q.dtype() == DType::F32
        && q.rank() == 4
        && q.dim(2)? == 1
        && k.stride()[3] == 1
        && v.stride()[3] == 1;
    if !ok {
        return Ok(None);
    }
    Ok(Some(q.contiguous()?.apply_op3_no_bwd(
        k,
        v,
        &DecodeAttention(scale as f32),
    )?))
}

struct DecodeAttention(f32);

fn storage_f32(s: &CpuStorage) -> Result<&[f32]> {
    match s {
        CpuStorage::F32(v) => Ok(v),
        _ => candle_core::bail!("decode attention: only f32 is supported"),
    }
}

impl CustomOp3 for DecodeAttention {
    fn name(&self) -> &'static str {
        "decode-attention"
    }
    fn cpu_fwd(
        &self,
        sq: &CpuStorage,
        lq: &Layout,
        sk: &CpuStorage,
        lk: &Layout,
        sv: &CpuStorage,
        lv: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let q = &storage_f32(sq)?[lq.start_offset()..];
        let (k, v) = (storage_f32(sk)?, storage_f32(sv)?);
        let (b, h, _, d) = lq.shape().dims4()?;
        let (bk, hk, t, dk) = lk.shape().dims4()?;
        if bk != b || dk != d || lv.shape() != lk.shape() || h % hk != 0 {
            candle_core::bail!(
                "decode attention: q {:?}, k {:?}, v {:?}",
                lq.shape(),
                lk.shape(),
                lv.shape()
            );
        }
        let (ks, vs) = (lk.stride(), lv.stride());
        let mut out = vec![0f32; b * h * d];
        // One task per (sequence, head): independent rows of the output.
        out.par_chunks_mut(d).enumerate().for_each(|(row, o)| {
            let (bi, hi) = (row / h, row % h);
            let kv = hi / (h / hk);
            let qr = &q[row * d..][..d];
            let k0 = lk.start_offset() + bi * ks[0] + kv * ks[1];
            let v0 = lv.start_offset() + bi * vs[0] + kv * vs[1];
            let mut scores: Vec<f32> = (0..t)
                .map(|j| fast_dot(qr, &k[k0 + j * ks[2]..][..d]) * self.0)
                .collect();
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            for (j, s) in scores.iter().enumerate() {
                let p = s / sum;
                for (oi, vv) in o.iter_mut().zip(&v[v0 + j * vs[2]..][..d]) {
                    *oi += p * vv;
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, h, 1, d))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_matmul_softmax_matmul_on_cache_views() -> Result<()> {
        let dev = Device::Cpu;
        for (h, hk) in [(4, 4), (4, 2)] {
            let q = Tensor::randn(0f32, 1.0, (3, h, 1, 8), &dev)?;
            // A cache buffer with room for 10 positions, 6 of them filled.
            let kb = Tensor::randn(0f32, 1.0, (3, hk, 10, 8), &dev)?;
            let vb = Tensor::randn(0f32, 1.0, (3, hk, 10, 8), &dev)?;
            let (k, v) = (kb.narrow(2, 0, 6)?, vb.narrow(2, 0, 6)?);
            let ours = decode_attention(&q, &k, &v, 0.35)?.expect("decode shape");
            let rep = |x: &Tensor| -> Result<Tensor> {
                let (b, n, t, d) = x.dims4()?;
                Tensor::cat(&vec![x; h / hk], 2)?.reshape((b, n * (h / hk), t, d))
            };
            let (k, v) = (rep(&k.contiguous()?)?, rep(&v.contiguous()?)?);
            let p = candle_nn::ops::softmax_last_dim(&(q.matmul(&k.t()?)? * 0.35)?)?;
            let want = p.matmul(&v)?;
            let d = (ours - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-5, "{d}");
        }
        Ok(())
    }
}
