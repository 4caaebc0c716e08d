//! Causal self-attention over whole sequences as one op with a backward pass (training).
//!
//! Through batched matmuls, attention is one gemm call per (sequence, head) for each of
//! `q·kᵀ` and `p·v` forward and four more backward — 768 calls per layer for a batch of 16
//! sequences of 8 heads — and every call forks and joins the thread pool; around them come
//! the transposes to and from the head-major layout and the softmax. Here the forward is one
//! parallel pass over (sequence, head) tasks, each with single-threaded gemm calls, that
//! writes the output already in the `(batch, t, heads · d)` layout the output projection
//! reads; it keeps the softmax probabilities for the backward pass, which is one parallel pass
//! over (sequence, key/value head) tasks. Grouped-query heads share their key/value head.
//!
//! CPU f32; other devices and dtypes take the composed path.

use super::im2col::f32_slice;
use super::softmax::causal_softmax;
use candle_core::{
    CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Storage, Tensor, bail,
};
use gemm::{Parallelism, gemm};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Query rows per causal block.
const BLOCK: usize = 32;

/// `softmax(q·kᵀ·scale + causal mask)·v` with `q`: `(batch, heads, t, d)` and `k`, `v`:
/// `(batch, kv_heads, t, d)`, every position seeing itself and the positions before it.
/// Returns `(batch, t, heads · d)`.
pub(crate) fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    attention_in_blocks(q, k, v, scale, BLOCK)
}

fn attention_in_blocks(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    block: usize,
) -> Result<Tensor> {
    let (b, nh, t, d) = q.dims4()?;
    let nkv = k.dim(1)?;
    if nkv == 0 || !nh.is_multiple_of(nkv) || k.dims4()? != (b, nkv, t, d) {
        bail!(
            "attention: {nh} query heads of q {:?} do not group over k {:?}",
            q.dims(),
            k.dims()
        );
    }
    let fused =
        matches!(q.device(), Device::Cpu) && [q, k, v].iter().all(|x| x.dtype() == DType::F32);
    if fused {
        let op = CausalAttention {
            scale: scale as f32,
            block: block.max(1),
            probs: Mutex::new(None),
        };
        return q.contiguous()?.apply_op3_arc(
            &k.contiguous()?,
            &v.contiguous()?,
            Arc::new(Box::new(op)),
        );
    }
    let rep = |x: &Tensor| -> Result<Tensor> {
        if nh == nkv {
            return Ok(x.clone());
        }
        Tensor::cat(&vec![x; nh / nkv], 2)?.reshape((b, nh, t, d))
    };
    let scores = q.contiguous()?.matmul(&rep(k)?.t()?)?;
    causal_softmax(&scores, scale, 0)?
        .matmul(&rep(v)?)?
        .transpose(1, 2)?
        .reshape((b, t, nh * d))
}

struct CausalAttention {
    scale: f32,
    /// Query rows per block: block `r` needs only the keys of blocks `0..=r`, so the products
    /// skip the masked upper triangle (about 40 % of the work at 160 positions).
    block: usize,
    /// The softmax probabilities `(batch, heads, t, t)` of the forward pass, for the backward.
    probs: Mutex<Option<Arc<Vec<f32>>>>,
}

/// Sizes of one call: batch, heads, key/value heads, positions, head dim.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    nh: usize,
    nkv: usize,
    t: usize,
    d: usize,
}

impl Dims {
    fn of(q: &Layout, k: &Layout) -> Result<Self> {
        let (b, nh, t, d) = q.shape().dims4()?;
        Ok(Dims {
            b,
            nh,
            nkv: k.shape().dims4()?.1,
            t,
            d,
        })
    }
    /// Query heads per key/value head.
    fn rep(&self) -> usize {
        self.nh / self.nkv
    }
}

/// A pointer the parallel tasks write through; each task writes a disjoint set of rows.
#[derive(Clone, Copy)]
struct Rows(*mut f32);
// SAFETY: shared only with tasks that write disjoint elements, and outlived by the buffer.
unsafe impl Send for Rows {}
unsafe impl Sync for Rows {}

impl Rows {
    fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// `dst (m×n) = [dst +] lhs (m×k) · rhs (k×n)`, single-threaded; strides `(row, col)`.
///
/// # Safety
/// The pointers must cover every element the strides reach.
#[allow(clippy::too_many_arguments)]
unsafe fn mm(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_s: (usize, usize),
    accumulate: bool,
    lhs: *const f32,
    lhs_s: (usize, usize),
    rhs: *const f32,
    rhs_s: (usize, usize),
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst,
            dst_s.1 as isize,
            dst_s.0 as isize,
            accumulate,
            lhs,
            lhs_s.1 as isize,
            lhs_s.0 as isize,
            rhs,
            rhs_s.1 as isize,
            rhs_s.0 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

impl CustomOp3 for CausalAttention {
    fn name(&self) -> &'static str {
        "causal-attention"
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
        let dims @ Dims { b, nh, t, d, .. } = Dims::of(lq, lk)?;
        let (q, k, v) = (
            f32_slice(sq, lq, "attention")?,
            f32_slice(sk, lk, "attention")?,
            f32_slice(sv, lv, "attention")?,
        );
        let mut out = vec![0f32; b * t * nh * d];
        let mut probs = vec![0f32; b * nh * t * t];
        let dst = Rows(out.as_mut_ptr());
        probs
            .par_chunks_mut(t * t)
            .enumerate()
            .for_each(|(task, p)| {
                let (bi, h) = (task / nh, task % nh);
                let g = bi * dims.nkv + h / dims.rep();
                let qh = &q[task * t * d..][..t * d];
                let (kg, vg) = (&k[g * t * d..][..t * d], &v[g * t * d..][..t * d]);
                let o = dst.at((bi * t * nh + h) * d);
                for r0 in (0..t).step_by(self.block) {
                    let (rows, seen) = (self.block.min(t - r0), (r0 + self.block).min(t));
                    // SAFETY: every block lies inside its t×d or t×t buffer; this task alone
                    // writes the rows of head h of sequence bi in `out`.
                    unsafe {
                        // s = q·kᵀ over the keys this row block sees
                        mm(
                            (rows, seen, d),
                            p[r0 * t..].as_mut_ptr(),
                            (t, 1),
                            false,
                            qh[r0 * d..].as_ptr(),
                            (d, 1),
                            kg.as_ptr(),
                            (1, d),
                        )
                    };
                    for (i, row) in p[r0 * t..].chunks_mut(t).take(rows).enumerate() {
                        let (visible, hidden) = row[..seen].split_at_mut(r0 + i + 1);
                        let max = visible.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
                        let mut sum = 0.0;
                        for s in visible.iter_mut() {
                            *s = ((*s - max) * self.scale).exp();
                            sum += *s;
                        }
                        visible.iter_mut().for_each(|s| *s /= sum);
                        hidden.fill(0.0);
                    }
                    // SAFETY: as above.
                    unsafe {
                        // o = p·v
                        mm(
                            (rows, d, seen),
                            o.wrapping_add(r0 * nh * d),
                            (nh * d, 1),
                            false,
                            p[r0 * t..].as_ptr(),
                            (t, 1),
                            vg.as_ptr(),
                            (d, 1),
                        )
                    };
                }
            });
        *self.probs.lock().expect("attention probabilities") = Some(Arc::new(probs));
        Ok((CpuStorage::F32(out), Shape::from((b, t, nh * d))))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some(probs) = self.probs.lock().expect("attention probabilities").clone() else {
            bail!("attention backward before its forward pass");
        };
        let grad = grad.contiguous()?;
        let (sq, lq) = q.storage_and_layout();
        let (sk, lk) = k.storage_and_layout();
        let (sv, lv) = v.storage_and_layout();
        let (sg, lg) = grad.storage_and_layout();
        fn cpu<'a>(s: &'a Storage, l: &Layout) -> Result<&'a [f32]> {
            match s {
                Storage::Cpu(c) => f32_slice(c, l, "attention backward"),
                _ => bail!("attention backward: CPU tensors only"),
            }
        }
        let dims = Dims::of(lq, lk)?;
        let (dq, dk, dv) = backward(
            dims,
            self,
            cpu(&sq, lq)?,
            cpu(&sk, lk)?,
            cpu(&sv, lv)?,
            cpu(&sg, lg)?,
            &probs,
        );
        drop((sq, sk, sv, sg));
        let dev = q.device();
        Ok((
            Some(Tensor::from_vec(dq, q.shape(), dev)?),
            Some(Tensor::from_vec(dk, k.shape(), dev)?),
            Some(Tensor::from_vec(dv, v.shape(), dev)?),
        ))
    }
}

/// `(dq, dk, dv)` from the inputs, the output gradient `go` `(b, t, nh·d)` and the forward
/// probabilities, one task per (sequence, key/value head):
/// `dv = pᵀ·do`, `dp = do·vᵀ`, `ds = scale · p ⊙ (dp − Σⱼ p·dp)`, `dq = ds·k`, `dk = dsᵀ·q`.
fn backward(
    dims: Dims,
    op: &CausalAttention,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    go: &[f32],
    probs: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { nh, nkv, t, d, .. } = dims;
    let rep = dims.rep();
    let mut dq = vec![0f32; q.len()];
    let mut dk = vec![0f32; k.len()];
    let mut dv = vec![0f32; v.len()];
    dq.par_chunks_mut(rep * t * d)
        .zip(dk.par_chunks_mut(t * d).zip(dv.par_chunks_mut(t * d)))
        .enumerate()
        .for_each(|(task, (dqg, (dkg, dvg)))| {
            let (bi, g) = (task / nkv, task % nkv);
            let (kg, vg) = (&k[task * t * d..][..t * d], &v[task * t * d..][..t * d]);
            let mut ds = vec![0f32; t * t];
            for r in 0..rep {
                let h = g * rep + r;
                let p = &probs[(bi * nh + h) * t * t..][..t * t];
                let qh = &q[(bi * nh + h) * t * d..][..t * d];
                let doh = &go[(bi * t * nh + h) * d..];
                let dqh = &mut dqg[r * t * d..][..t * d];
                for r0 in (0..t).step_by(op.block) {
                    let (rows, seen) = (op.block.min(t - r0), (r0 + op.block).min(t));
                    let (pb, dsb) = (&p[r0 * t..], &mut ds[r0 * t..]);
                    // SAFETY: every block lies inside its t×d or t×t slice; `doh` rows are
                    // nh·d apart and the last one ends inside `go`. `dk`, `dv` start at zero
                    // and every product adds into them.
                    unsafe {
                        // dv += pᵀ·do
                        mm(
                            (seen, d, rows),
                            dvg.as_mut_ptr(),
                            (d, 1),
                            true,
                            pb.as_ptr(),
                            (1, t),
                            doh[r0 * nh * d..].as_ptr(),
                            (nh * d, 1),
                        );
                        // dp = do·vᵀ
                        mm(
                            (rows, seen, d),
                            dsb.as_mut_ptr(),
                            (t, 1),
                            false,
                            doh[r0 * nh * d..].as_ptr(),
                            (nh * d, 1),
                            vg.as_ptr(),
                            (1, d),
                        );
                    }
                    for (i, (dsr, pr)) in dsb.chunks_mut(t).zip(pb.chunks(t)).take(rows).enumerate()
                    {
                        let n = r0 + i + 1;
                        let dot: f32 = dsr[..n].iter().zip(&pr[..n]).map(|(a, b)| a * b).sum();
                        for (x, pv) in dsr[..n].iter_mut().zip(&pr[..n]) {
                            *x = op.scale * pv * (*x - dot);
                        }
                        dsr[n..seen].fill(0.0);
                    }
                    // SAFETY: as above.
                    unsafe {
                        // dq = ds·k
                        mm(
                            (rows, d, seen),
                            dqh[r0 * d..].as_mut_ptr(),
                            (d, 1),
                            false,
                            dsb.as_ptr(),
                            (t, 1),
                            kg.as_ptr(),
                            (d, 1),
                        );
                        // dk += dsᵀ·q
                        mm(
                            (seen, d, rows),
                            dkg.as_mut_ptr(),
                            (d, 1),
                            true,
                            dsb.as_ptr(),
                            (1, t),
                            qh[r0 * d..].as_ptr(),
                            (d, 1),
                        );
                    }
                }
            }
        });
    (dq, dk, dv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn randn(shape: (usize, usize, usize, usize), seed: u64) -> Result<Var> {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f32> = (0..n)
            .map(|i| {
                let x = (i as u64 ^ seed).wrapping_mul(0x9e3779b97f4a7c15) >> 40;
                (x as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
            })
            .collect();
        Var::from_vec(v, shape, &Device::Cpu)
    }

    /// The composed path on the same inputs, through candle's own ops.
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
        let (b, nh, t, d) = q.dims4()?;
        let nkv = k.dim(1)?;
        let rep = |x: &Tensor| Tensor::cat(&vec![x; nh / nkv], 2)?.reshape((b, nh, t, d));
        let scores = (q.matmul(&rep(k)?.t()?)? * scale)?;
        let mask: Vec<f32> = (0..t * t)
            .map(|i| {
                if i % t > i / t {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), q.device())?;
        candle_nn::ops::softmax(&scores.broadcast_add(&mask)?, 3)?
            .matmul(&rep(v)?)?
            .transpose(1, 2)?
            .reshape((b, t, nh * d))
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
    }

    #[test]
    fn forward_and_gradients_match_the_composed_ops() -> Result<()> {
        // Grouped heads (4 query heads over 2 key/value heads) and plain heads; causal blocks
        // that split the 7 positions (3 + 3 + 1) and one block over all of them.
        for (nh, nkv, block) in [(4, 2, 3), (3, 3, 3), (4, 2, 32)] {
            let (b, t, d) = (2, 7, 8);
            let q = randn((b, nh, t, d), 1)?;
            let k = randn((b, nkv, t, d), 2)?;
            let v = randn((b, nkv, t, d), 3)?;
            let w = randn((1, b, t, nh * d), 4)?.as_tensor().squeeze(0)?;
            let scale = 1.0 / (d as f64).sqrt();
            let ours = attention_in_blocks(&q, &k, &v, scale, block)?;
            let theirs = reference(&q, &k, &v, scale)?;
            assert_eq!(ours.dims(), &[b, t, nh * d]);
            assert!(
                max_diff(&ours, &theirs)? < 1e-5,
                "forward, blocks of {block}"
            );
            let g1 = (ours * &w)?.sum_all()?.backward()?;
            let g2 = (theirs * &w)?.sum_all()?.backward()?;
            for (name, x) in [("q", &q), ("k", &k), ("v", &v)] {
                let (a, b) = (g1.get(x).unwrap(), g2.get(x).unwrap());
                let diff = max_diff(a, b)?;
                assert!(
                    diff < 1e-4,
                    "d{name} differs by {diff} ({nh}/{nkv} heads, blocks of {block})"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn a_position_never_sees_the_future() -> Result<()> {
        let (b, nh, t, d) = (1, 2, 6, 4);
        let q = randn((b, nh, t, d), 5)?;
        let k = randn((b, nh, t, d), 6)?;
        let v = randn((b, nh, t, d), 7)?;
        let base = causal_attention(&q, &k, &v, 0.5)?;
        // Change the last position's key and value: only the last output row may move.
        let k2 = k.slice_assign(
            &[0..1, 0..nh, t - 1..t, 0..d],
            &Tensor::ones((1, nh, 1, d), DType::F32, &Device::Cpu)?,
        )?;
        let v2 = v.slice_assign(
            &[0..1, 0..nh, t - 1..t, 0..d],
            &Tensor::ones((1, nh, 1, d), DType::F32, &Device::Cpu)?,
        )?;
        let moved = causal_attention(&q, &k2, &v2, 0.5)?;
        let early = |x: &Tensor| x.narrow(1, 0, t - 1);
        assert_eq!(
            early(&base)?.flatten_all()?.to_vec1::<f32>()?,
            early(&moved)?.flatten_all()?.to_vec1::<f32>()?
        );
        assert!(max_diff(&base.narrow(1, t - 1, 1)?, &moved.narrow(1, t - 1, 1)?)? > 1e-3);
        Ok(())
    }
}
