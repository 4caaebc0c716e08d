//! AdamW (Loshchilov & Hutter) with decoupled weight decay, global-norm gradient clipping and
//! gradient accumulation, over named parameters. Unlike candle-nn's optimizer its moments can
//! be read and restored, so a checkpoint saves them and a resumed run is bit-identical.
//!
//! Beside CPU weights the gradient sum and the moments are plain vectors updated in one loop;
//! beside GPU weights they are tensors on the GPU, so a step copies nothing to the host.

use candle_core::{DType, Result, Tensor, Var, backprop::GradStore};
use serde::{Deserialize, Serialize};

/// Optimizer hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub(crate) beta1: f64,
    pub(crate) beta2: f64,
    pub(crate) eps: f64,
    pub(crate) weight_decay: f64,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub(crate) clip_norm: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            clip_norm: 1.0,
        }
    }
}

/// A parameter's accumulated gradient and first and second moments, where its weights live.
enum State {
    Host {
        grad: Vec<f32>,
        m: Vec<f32>,
        v: Vec<f32>,
    },
    Device {
        grad: Tensor,
        m: Tensor,
        v: Tensor,
    },
}

/// One parameter with its optimizer state.
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) var: Var,
    /// Weight decay applies to matrices, not to norms and biases.
    decay: bool,
    state: State,
}

impl Param {
    fn new(name: String, var: Var, tensor_state: bool) -> Result<Self> {
        let state = if tensor_state {
            let zeros = || var.as_tensor().zeros_like();
            State::Device {
                grad: zeros()?,
                m: zeros()?,
                v: zeros()?,
            }
        } else {
            let n = var.elem_count();
            State::Host {
                grad: vec![0.0; n],
                m: vec![0.0; n],
                v: vec![0.0; n],
            }
        };
        Ok(Param {
            decay: var.rank() >= 2 && !name.contains("norm"),
            name,
            var,
            state,
        })
    }

    /// The first and second moments, shaped like the parameter, on its device.
    #[cfg(feature = "fs")]
    pub(crate) fn moments(&self) -> Result<(Tensor, Tensor)> {
        match &self.state {
            State::Host { m, v, .. } => {
                let (shape, dev) = (self.var.shape(), self.var.device());
                Ok((
                    Tensor::from_slice(m, shape, dev)?,
                    Tensor::from_slice(v, shape, dev)?,
                ))
            }
            State::Device { m, v, .. } => Ok((m.clone(), v.clone())),
        }
    }

    /// Restores the moments (from a checkpoint): tensors of the parameter's shape.
    #[cfg(feature = "fs")]
    pub(crate) fn set_moments(&mut self, m: &Tensor, v: &Tensor) -> Result<()> {
        match &mut self.state {
            State::Host { m: hm, v: hv, .. } => {
                *hm = m.flatten_all()?.to_vec1()?;
                *hv = v.flatten_all()?.to_vec1()?;
            }
            State::Device { m: dm, v: dv, .. } => {
                let dev = self.var.device();
                *dm = m.to_device(dev)?.to_dtype(self.var.dtype())?;
                *dv = v.to_device(dev)?.to_dtype(self.var.dtype())?;
            }
        }
        Ok(())
    }
}

pub(crate) struct AdamW {
    pub(crate) config: AdamWConfig,
    pub(crate) params: Vec<Param>,
    /// Updates applied so far (for bias correction).
    pub(crate) t: u64,
    accumulated: usize,
}

/// The scalars of one update, shared by every parameter.
struct Update {
    b1: f32,
    b2: f32,
    /// Gradient scale: averaging over micro-batches times clipping.
    scale: f32,
    /// `lr / (1 - beta1^t)`.
    step: f32,
    /// `sqrt(1 - beta2^t)`.
    bc2_sqrt: f32,
    eps: f32,
}

impl AdamW {
    /// `vars` in a fixed order (sorted by name), so every run updates them identically.
    pub(crate) fn new(vars: Vec<(String, Var)>, config: AdamWConfig) -> Result<Self> {
        Self::build(vars, config, |var| !var.device().is_cpu())
    }

    /// With the state of each var for which `tensor_state` holds kept in tensors.
    fn build(
        mut vars: Vec<(String, Var)>,
        config: AdamWConfig,
        tensor_state: impl Fn(&Var) -> bool,
    ) -> Result<Self> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let params = vars
            .into_iter()
            .map(|(name, var)| {
                let tensors = tensor_state(&var);
                Param::new(name, var, tensors)
            })
            .collect::<Result<_>>()?;
        Ok(AdamW {
            config,
            params,
            t: 0,
            accumulated: 0,
        })
    }

    /// Adds one micro-batch's gradients. A parameter without a gradient gets zero.
    pub(crate) fn accumulate(&mut self, grads: &GradStore) -> Result<()> {
        for p in &mut self.params {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                match &mut p.state {
                    State::Host { grad, .. } => {
                        let g = g.flatten_all()?.to_vec1::<f32>()?;
                        grad.iter_mut().zip(g).for_each(|(a, b)| *a += b);
                    }
                    State::Device { grad, .. } => *grad = (&*grad + g)?,
                }
            }
        }
        self.accumulated += 1;
        Ok(())
    }

    /// Global L2 norm of the accumulated (averaged) gradient.
    pub(crate) fn grad_norm(&self) -> Result<f64> {
        let scale = 1.0 / self.accumulated.max(1) as f64;
        let mut sum = 0.0;
        let mut on_device = Vec::new();
        for p in &self.params {
            match &p.state {
                State::Host { grad, .. } => {
                    for g in grad {
                        sum += (*g as f64 * scale).powi(2);
                    }
                }
                State::Device { grad, .. } => {
                    on_device.push(grad.to_dtype(DType::F32)?.sqr()?.sum_all()?)
                }
            }
        }
        // One read-back for all GPU parameters.
        if !on_device.is_empty() {
            let squares = Tensor::stack(&on_device, 0)?
                .sum_all()?
                .to_scalar::<f32>()?;
            sum += squares as f64 * scale * scale;
        }
        Ok(sum.sqrt())
    }

    /// Applies one update with learning rate `lr` from the averaged accumulated gradients,
    /// clipped to `clip_norm`; returns the gradient norm before clipping.
    pub(crate) fn step(&mut self, lr: f64) -> Result<f64> {
        let norm = self.grad_norm()?;
        let c = &self.config;
        let mut scale = 1.0 / self.accumulated.max(1) as f64;
        if c.clip_norm > 0.0 && norm > c.clip_norm {
            scale *= c.clip_norm / norm;
        }
        self.t += 1;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        let u = Update {
            b1: c.beta1 as f32,
            b2: c.beta2 as f32,
            scale: scale as f32,
            step: (lr / bc1) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            eps: c.eps as f32,
        };
        for p in &mut self.params {
            let decay = if p.decay {
                (1.0 - lr * c.weight_decay) as f32
            } else {
                1.0
            };
            match &mut p.state {
                State::Host { grad, m, v } => {
                    let mut w = p.var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                    for (((w, g), m), v) in w
                        .iter_mut()
                        .zip(grad.iter_mut())
                        .zip(m.iter_mut())
                        .zip(v.iter_mut())
                    {
                        let grad = *g * u.scale;
                        *m = u.b1 * *m + (1.0 - u.b1) * grad;
                        *v = u.b2 * *v + (1.0 - u.b2) * grad * grad;
                        *w = *w * decay - u.step * *m / (v.sqrt() / u.bc2_sqrt + u.eps);
                        *g = 0.0;
                    }
                    let shape = p.var.shape().clone();
                    p.var.set(&Tensor::from_vec(w, shape, p.var.device())?)?;
                }
                State::Device { grad, m, v } => {
                    let g = (&*grad * u.scale as f64)?;
                    *m = ((&*m * u.b1 as f64)? + (&g * (1.0 - u.b1) as f64)?)?;
                    *v = ((&*v * u.b2 as f64)? + (g.sqr()? * (1.0 - u.b2) as f64)?)?;
                    let denom = v.sqrt()?.affine(1.0 / u.bc2_sqrt as f64, u.eps as f64)?;
                    let w = (p.var.as_tensor() * decay as f64)?;
                    p.var.set(&(w - ((&*m / denom)? * u.step as f64)?)?)?;
                    *grad = grad.zeros_like()?;
                }
            }
        }
        self.accumulated = 0;
        Ok(norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn minimises_a_quadratic_and_clips() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::new(&[3.0f32, -2.0], &dev)?;
        let mut opt = AdamW::new(
            vec![("x".into(), x.clone())],
            AdamWConfig {
                weight_decay: 0.0,
                clip_norm: 0.5,
                ..Default::default()
            },
        )?;
        for _ in 0..300 {
            let loss = x.as_tensor().sqr()?.sum_all()?;
            opt.accumulate(&loss.backward()?)?;
            let norm = opt.step(0.05)?;
            assert!(norm.is_finite());
        }
        let v = x.as_tensor().to_vec1::<f32>()?;
        assert!(v.iter().all(|a| a.abs() < 0.05), "{v:?}");
        Ok(())
    }

    #[test]
    fn accumulating_two_halves_equals_one_batch() -> Result<()> {
        let dev = Device::Cpu;
        let data = [1.0f32, 2.0, 3.0, 4.0];
        let run = |split: bool| -> Result<Vec<f32>> {
            let w = Var::new(&[0.5f32], &dev)?;
            let mut opt = AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default())?;
            let loss = |xs: &[f32]| -> Result<Tensor> {
                let x = Tensor::new(xs, &dev)?;
                (x.broadcast_mul(w.as_tensor())? - 1.0)?.sqr()?.mean_all()
            };
            if split {
                opt.accumulate(&loss(&data[..2])?.backward()?)?;
                opt.accumulate(&loss(&data[2..])?.backward()?)?;
            } else {
                opt.accumulate(&loss(&data)?.backward()?)?;
            }
            opt.step(0.1)?;
            w.as_tensor().to_vec1::<f32>()
        };
        let (a, b) = (run(true)?, run(false)?);
        assert!((a[0] - b[0]).abs() < 1e-6, "{a:?} {b:?}");
        Ok(())
    }

    /// The tensor state (what GPU weights get) against the host state, both on the CPU:
    /// decay on a matrix, none on a norm, clipping engaged, two micro-batches per step.
    #[test]
    fn tensor_state_updates_as_the_host_state_does() -> Result<()> {
        let dev = Device::Cpu;
        // The matrix, the norm and the norm's first moment after 25 steps; the last norm.
        let run = |tensors: bool| -> Result<([Vec<f32>; 3], f64)> {
            let w = Var::new(&[[0.5f32, -1.0], [2.0, 0.25]], &dev)?;
            let n = Var::new(&[1.0f32, 1.5], &dev)?;
            let vars = vec![("w".into(), w.clone()), ("norm".into(), n.clone())];
            let config = AdamWConfig {
                clip_norm: 0.3,
                ..Default::default()
            };
            let mut opt = AdamW::build(vars, config, |_| tensors)?;
            let mut norm = 0.0;
            for step in 0..25 {
                for half in 0..2 {
                    let x = Tensor::new(&[[1.0f32 + half as f32], [step as f32 * 0.1]], &dev)?;
                    let y = w.as_tensor().matmul(&x)?.squeeze(1)?;
                    let loss = ((y * n.as_tensor())? - 0.7)?.sqr()?.sum_all()?;
                    opt.accumulate(&loss.backward()?)?;
                }
                norm = opt.step(0.05)?;
            }
            let (m, _) = opt.params[1].moments()?;
            let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
            Ok((
                [flat(w.as_tensor())?, flat(n.as_tensor())?, flat(&m)?],
                norm,
            ))
        };
        let ((host, host_norm), (tensor, tensor_norm)) = (run(false)?, run(true)?);
        for (a, b) in host.iter().zip(&tensor) {
            let close = a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5);
            assert!(close, "{a:?} {b:?}");
        }
        assert!((host_norm - tensor_norm).abs() <= 1e-5 * host_norm);
        assert!(host[0] != vec![0.5, -1.0, 2.0, 0.25], "the weights moved");
        Ok(())
    }
}
