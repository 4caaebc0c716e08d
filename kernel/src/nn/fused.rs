//! The transformer block's elementwise work as fused custom ops with a backward pass: RMSNorm,
//! Chameleon's per-head query/key layer norm, rotary embeddings and SwiGLU. Composed of candle
//! ops each of them is 5-10 graph nodes forward, and backward every node costs its gradient
//! op plus a zero tensor and an add (how candle accumulates gradients); fused, each is one pass
//! forward and one backward, in training and inference alike.
//!
//! CPU f32 with contiguous inputs; other devices and dtypes take the composed path.

use super::im2col::f32_slice;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, D, DType, Device, Layout, Result, Shape, Tensor,
};
use rayon::prelude::*;

/// Rows (vectors of the last dim) per parallel task. Fixed, so reductions across tasks add up
/// in the same order on every run.
const ROWS: usize = 32;

/// Sums per-task partial reductions in task order (deterministic).
fn sum_partials(partials: Vec<Vec<f32>>, out: &mut [f32]) {
    for p in partials {
        out.iter_mut().zip(p).for_each(|(o, v)| *o += v);
    }
}

fn fused_ok(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32
}

/// Splits a flat gradient buffer `[dx | rest...]` back into tensors of the given shapes.
fn split(flat: Tensor, shapes: &[&Shape]) -> Result<Vec<Tensor>> {
    let mut out = Vec::with_capacity(shapes.len());
    let mut at = 0;
    for s in shapes {
        let n = s.elem_count();
        out.push(flat.narrow(0, at, n)?.reshape(*s)?);
        at += n;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// RMSNorm: y = x / sqrt(mean(x²) + eps) * w over the last dim.

/// RMSNorm over the last dim of `x` with weight `w`.
pub(crate) fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    if fused_ok(x) {
        x.contiguous()?.apply_op2(w, RmsNorm(eps as f32))
    } else {
        candle_nn::ops::rms_norm_slow(x, w, eps as f32)
    }
}

struct RmsNorm(f32);

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm-bwd-capable"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "rms-norm")?;
        let w = f32_slice(s2, l2, "rms-norm")?;
        let h = w.len();
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(h * ROWS)
            .zip(x.par_chunks(h * ROWS))
            .for_each(|(ys, xs)| {
                for (yr, xr) in ys.chunks_mut(h).zip(xs.chunks(h)) {
                    let ms = xr.iter().map(|v| v * v).sum::<f32>() / h as f32;
                    let r = 1.0 / (ms + self.0).sqrt();
                    for ((o, v), g) in yr.iter_mut().zip(xr).zip(w) {
                        *o = v * r * g;
                    }
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let flat = x.apply_op3_no_bwd(w, &grad.contiguous()?, &RmsNormGrad(self.0))?;
        let mut g = split(flat, &[x.shape(), w.shape()])?.into_iter();
        Ok((g.next(), g.next()))
    }
}

/// `[dx | dw]` from `(x, w, dy)`: with `r = 1/rms(x)` and `x̂ = x·r`,
/// `dx = r·(dy·w - x̂·mean(dy·w·x̂))`, `dw = Σ_rows dy·x̂`.
struct RmsNormGrad(f32);

impl CustomOp3 for RmsNormGrad {
    fn name(&self) -> &'static str {
        "rms-norm-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "rms-norm-grad")?;
        let w = f32_slice(s2, l2, "rms-norm-grad")?;
        let dy = f32_slice(s3, l3, "rms-norm-grad")?;
        let h = w.len();
        let mut out = vec![0f32; x.len() + h];
        let (dx, dw) = out.split_at_mut(x.len());
        let partials: Vec<Vec<f32>> = dx
            .par_chunks_mut(h * ROWS)
            .zip(x.par_chunks(h * ROWS).zip(dy.par_chunks(h * ROWS)))
            .map(|(dxs, (xs, gs))| {
                let mut dw = vec![0f32; h];
                for ((dxr, xr), gr) in dxs.chunks_mut(h).zip(xs.chunks(h)).zip(gs.chunks(h)) {
                    let ms = xr.iter().map(|v| v * v).sum::<f32>() / h as f32;
                    let r = 1.0 / (ms + self.0).sqrt();
                    let mut dot = 0.0;
                    for ((v, g), a) in xr.iter().zip(gr).zip(w) {
                        dot += g * a * v * r;
                    }
                    let mean = dot / h as f32;
                    for (((o, v), g), a) in dxr.iter_mut().zip(xr).zip(gr).zip(w.iter()) {
                        *o = r * (g * a - v * r * mean);
                    }
                    for ((d, v), g) in dw.iter_mut().zip(xr).zip(gr) {
                        *d += g * v * r;
                    }
                }
                dw
            })
            .collect();
        sum_partials(partials, dw);
        Ok((CpuStorage::F32(out), Shape::from(x.len() + h)))
    }
}

// ---------------------------------------------------------------------------------------
// Chameleon's query/key norm: layer norm over each head's vector, then a per-head affine.

/// `x`: `(rows, heads, head_dim)`; `w`, `b`: `(heads, head_dim)`.
pub(crate) fn head_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    if fused_ok(x) {
        return x.contiguous()?.apply_op3(w, b, HeadNorm(eps as f32));
    }
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    xc.broadcast_div(&(var + eps)?.sqrt()?)?
        .broadcast_mul(w)?
        .broadcast_add(b)
}

struct HeadNorm(f32);

/// Mean and `1/σ` of a vector.
fn moments(v: &[f32], eps: f32) -> (f32, f32) {
    let n = v.len() as f32;
    let mean = v.iter().sum::<f32>() / n;
    let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for HeadNorm {
    fn name(&self) -> &'static str {
        "head-norm"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "head-norm")?;
        let w = f32_slice(s2, l2, "head-norm")?;
        let b = f32_slice(s3, l3, "head-norm")?;
        let d = *l1.dims().last().expect("rank 3");
        let heads = w.len() / d;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(d * ROWS)
            .zip(x.par_chunks(d * ROWS))
            .enumerate()
            .for_each(|(task, (ys, xs))| {
                for (r, (yr, xr)) in ys.chunks_mut(d).zip(xs.chunks(d)).enumerate() {
                    let hh = ((task * ROWS + r) % heads) * d;
                    let (mean, inv) = moments(xr, self.0);
                    for (j, (o, v)) in yr.iter_mut().zip(xr).enumerate() {
                        *o = (v - mean) * inv * w[hh + j] + b[hh + j];
                    }
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let flat = x.apply_op3_no_bwd(w, &grad.contiguous()?, &HeadNormGrad(self.0))?;
        let mut g = split(flat, &[x.shape(), w.shape(), b.shape()])?.into_iter();
        Ok((g.next(), g.next(), g.next()))
    }
}

/// `[dx | dw | db]` from `(x, w, dy)`: with `x̂` the normalised vector and `g = dy·w`,
/// `dx = (g - mean(g) - x̂·mean(g·x̂))/σ`, `dw = Σ dy·x̂`, `db = Σ dy` per head.
struct HeadNormGrad(f32);

impl CustomOp3 for HeadNormGrad {
    fn name(&self) -> &'static str {
        "head-norm-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "head-norm-grad")?;
        let w = f32_slice(s2, l2, "head-norm-grad")?;
        let dy = f32_slice(s3, l3, "head-norm-grad")?;
        let d = *l1.dims().last().expect("rank 3");
        let heads = w.len() / d;
        let mut out = vec![0f32; x.len() + 2 * w.len()];
        let (dx, rest) = out.split_at_mut(x.len());
        let partials: Vec<Vec<f32>> = dx
            .par_chunks_mut(d * ROWS)
            .zip(x.par_chunks(d * ROWS).zip(dy.par_chunks(d * ROWS)))
            .enumerate()
            .map(|(task, (dxs, (xs, gs)))| {
                // [dw | db] of this task's rows.
                let mut acc = vec![0f32; 2 * w.len()];
                let (dw, db) = acc.split_at_mut(w.len());
                let mut xhat = vec![0f32; d];
                for (r, ((dxr, xr), gr)) in dxs
                    .chunks_mut(d)
                    .zip(xs.chunks(d))
                    .zip(gs.chunks(d))
                    .enumerate()
                {
                    let hh = ((task * ROWS + r) % heads) * d;
                    let (mean, inv) = moments(xr, self.0);
                    let (mut mg, mut mgx) = (0.0, 0.0);
                    for j in 0..d {
                        xhat[j] = (xr[j] - mean) * inv;
                        let g = gr[j] * w[hh + j];
                        mg += g;
                        mgx += g * xhat[j];
                        dw[hh + j] += gr[j] * xhat[j];
                        db[hh + j] += gr[j];
                    }
                    let (mg, mgx) = (mg / d as f32, mgx / d as f32);
                    for j in 0..d {
                        dxr[j] = (gr[j] * w[hh + j] - mg - xhat[j] * mgx) * inv;
                    }
                }
                acc
            })
            .collect();
        sum_partials(partials, rest);
        Ok((CpuStorage::F32(out), Shape::from(x.len() + 2 * w.len())))
    }
}

// ---------------------------------------------------------------------------------------
// Rotary embeddings (the rotate-half layout HF Chameleon uses).

/// `x`: `(batch, heads, t, head_dim)`; `cos`, `sin`: `(t, head_dim / 2)`.
pub(crate) fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if !fused_ok(x) {
        return candle_nn::rotary_emb::rope_slow(x, cos, sin);
    }
    let op = Rope {
        cos: cos.flatten_all()?.to_vec1()?,
        sin: sin.flatten_all()?.to_vec1()?,
    };
    x.contiguous()?.apply_op1(op)
}

struct Rope {
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "rope-bwd-capable"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "rope")?;
        let dims = l.dims();
        let (t, d) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        let half = d / 2;
        if self.cos.len() != t * half {
            candle_core::bail!(
                "rope: tables for {} positions, input has {t}",
                self.cos.len() / half.max(1)
            );
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(d * ROWS)
            .zip(x.par_chunks(d * ROWS))
            .enumerate()
            .for_each(|(task, (ys, xs))| {
                for (r, (yr, xr)) in ys.chunks_mut(d).zip(xs.chunks(d)).enumerate() {
                    let p = ((task * ROWS + r) % t) * half;
                    let (c, s) = (&self.cos[p..p + half], &self.sin[p..p + half]);
                    let (x1, x2) = xr.split_at(half);
                    let (y1, y2) = yr.split_at_mut(half);
                    for j in 0..half {
                        y1[j] = x1[j] * c[j] - x2[j] * s[j];
                        y2[j] = x2[j] * c[j] + x1[j] * s[j];
                    }
                }
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }
    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // A rotation's adjoint is the rotation by the opposite angle.
        let inverse = Rope {
            cos: self.cos.clone(),
            sin: self.sin.iter().map(|v| -v).collect(),
        };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&inverse)?))
    }
}

// ---------------------------------------------------------------------------------------
// SwiGLU: [gate | up] -> silu(gate) · up.

/// `gu`: `(rows, 2 · i)`, the gate projection then the up projection; returns `(rows, i)`.
pub(crate) fn swiglu(gu: &Tensor) -> Result<Tensor> {
    if fused_ok(gu) {
        return gu.contiguous()?.apply_op1(SwiGlu);
    }
    let i = gu.dim(D::Minus1)? / 2;
    gu.narrow(D::Minus1, 0, i)?.silu()? * gu.narrow(D::Minus1, i, i)?
}

struct SwiGlu;

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

impl CustomOp1 for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "swiglu")?;
        let dims = l.dims();
        let two_i = dims[dims.len() - 1];
        let i = two_i / 2;
        let mut y = vec![0f32; x.len() / 2];
        y.par_chunks_mut(i * ROWS)
            .zip(x.par_chunks(two_i * ROWS))
            .for_each(|(ys, xs)| {
                for (yr, row) in ys.chunks_mut(i).zip(xs.chunks(two_i)) {
                    let (g, u) = row.split_at(i);
                    for ((o, g), u) in yr.iter_mut().zip(g).zip(u) {
                        *o = g * sigmoid(*g) * u;
                    }
                }
            });
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("rank >= 1") = i;
        Ok((CpuStorage::F32(y), Shape::from(shape)))
    }
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            arg.apply_op2_no_bwd(&grad.contiguous()?, &SwiGluGrad)?,
        ))
    }
}

/// `[dgate | dup]` from `(gu, dy)`: `dgate = dy·u·σ(g)(1 + g(1 - σ(g)))`, `dup = dy·silu(g)`.
struct SwiGluGrad;

impl CustomOp2 for SwiGluGrad {
    fn name(&self) -> &'static str {
        "swiglu-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "swiglu-grad")?;
        let dy = f32_slice(s2, l2, "swiglu-grad")?;
        let two_i = *l1.dims().last().expect("rank >= 1");
        let i = two_i / 2;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(two_i * ROWS)
            .zip(x.par_chunks(two_i * ROWS).zip(dy.par_chunks(i * ROWS)))
            .for_each(|(os, (xs, gs))| {
                for ((o, row), gr) in os.chunks_mut(two_i).zip(xs.chunks(two_i)).zip(gs.chunks(i)) {
                    let (g, u) = row.split_at(i);
                    let (dg, du) = o.split_at_mut(i);
                    for j in 0..i {
                        let s = sigmoid(g[j]);
                        dg[j] = gr[j] * u[j] * s * (1.0 + g[j] * (1.0 - s));
                        du[j] = gr[j] * g[j] * s;
                    }
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    /// Checks value and gradients of `fused` against `composed` for random inputs.
    fn check(
        inputs: &[Tensor],
        fused: impl Fn(&[Tensor]) -> Result<Tensor>,
        composed: impl Fn(&[Tensor]) -> Result<Tensor>,
    ) -> Result<()> {
        let vars: Vec<Var> = inputs.iter().map(Var::from_tensor).collect::<Result<_>>()?;
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let (a, b) = (fused(&ts)?, composed(&ts)?);
        let d = (&a - &b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "forward differs by {d}");
        let w = Tensor::randn(0f32, 1.0, a.shape(), a.device())?;
        let (ga, gb) = (
            (a * &w)?.sum_all()?.backward()?,
            (b * &w)?.sum_all()?.backward()?,
        );
        for (i, t) in ts.iter().enumerate() {
            let (x, y) = (
                ga.get(t).expect("fused grad"),
                gb.get(t).expect("composed grad"),
            );
            let d = (x - y)?.abs()?.max_all()?.to_scalar::<f32>()?;
            let scale = y.abs()?.max_all()?.to_scalar::<f32>()?.max(1.0);
            assert!(d / scale < 1e-4, "gradient of input {i} differs by {d}");
        }
        Ok(())
    }

    fn randn(shape: &[usize]) -> Tensor {
        Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn rms_norm_matches_candle_forward_and_backward() -> Result<()> {
        check(
            // More rows than one parallel task takes, so the per-task reductions are exercised.
            &[randn(&[2, 45, 12]), (randn(&[12]) + 1.0)?],
            |t| rms_norm(&t[0], &t[1], 1e-5),
            |t| candle_nn::ops::rms_norm_slow(&t[0], &t[1], 1e-5),
        )
    }

    #[test]
    fn head_norm_matches_the_composed_layer_norm() -> Result<()> {
        let composed = |t: &[Tensor]| -> Result<Tensor> {
            let x = &t[0];
            let mean = x.mean_keepdim(D::Minus1)?;
            let xc = x.broadcast_sub(&mean)?;
            let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
            xc.broadcast_div(&(var + 1e-5)?.sqrt()?)?
                .broadcast_mul(&t[1])?
                .broadcast_add(&t[2])
        };
        check(
            &[randn(&[70, 3, 8]), randn(&[3, 8]), randn(&[3, 8])],
            |t| head_norm(&t[0], &t[1], &t[2], 1e-5),
            composed,
        )
    }

    #[test]
    fn rope_matches_candle_and_its_backward_is_the_inverse_rotation() -> Result<()> {
        let (cos, sin) = (randn(&[25, 4]).cos()?, randn(&[25, 4]).sin()?);
        check(
            &[randn(&[2, 3, 25, 8])],
            |t| rope(&t[0], &cos, &sin),
            |t| candle_nn::rotary_emb::rope_slow(&t[0], &cos, &sin),
        )?;
        let x = randn(&[1, 2, 25, 8]);
        let fused = candle_nn::rotary_emb::rope(&x, &cos, &sin)?;
        let d = (rope(&x, &cos, &sin)? - fused)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(d < 1e-6);
        Ok(())
    }

    #[test]
    fn swiglu_matches_the_composed_op() -> Result<()> {
        check(
            &[randn(&[70, 10])],
            |t| swiglu(&t[0]),
            |t| t[0].narrow(1, 0, 5)?.silu()? * t[0].narrow(1, 5, 5)?,
        )
    }
}
