//! AdamW (Loshchilov & Hutter) with decoupled weight decay, global-norm gradient clipping and
//! gradient accumulation, over named parameters. Unlike candle-nn's optimizer its moments are
//! plain vectors that a checkpoint saves and restores, so a resumed run is bit-identical.

use candle_core::{Result, Tensor, Var, backprop::GradStore};
use serde::{Deserialize, Serialize};

/// Optimizer hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub clip_norm: f64,
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

/// One parameter with its accumulated gradient and moments.
pub struct Param {
    pub name: String,
    pub var: Var,
    /// Weight decay applies to matrices, not to norms and biases.
    decay: bool,
    grad: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

pub struct AdamW {
    pub config: AdamWConfig,
    pub params: Vec<Param>,
    /// Updates applied so far (for bias correction).
    pub t: u64,
    accumulated: usize,
}

impl AdamW {
    /// `vars` in a fixed order (sorted by name), so every run updates them identically.
    pub fn new(mut vars: Vec<(String, Var)>, config: AdamWConfig) -> Self {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let params = vars
            .into_iter()
            .map(|(name, var)| {
                let n = var.elem_count();
                Param {
                    decay: var.rank() >= 2 && !name.contains("norm"),
                    name,
                    var,
                    grad: vec![0.0; n],
                    m: vec![0.0; n],
                    v: vec![0.0; n],
                }
            })
            .collect();
        AdamW {
            config,
            params,
            t: 0,
            accumulated: 0,
        }
    }

    /// Adds one micro-batch's gradients. A parameter without a gradient gets zero.
    pub fn accumulate(&mut self, grads: &GradStore) -> Result<()> {
        for p in &mut self.params {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                let g = g.flatten_all()?.to_vec1::<f32>()?;
                p.grad.iter_mut().zip(g).for_each(|(a, b)| *a += b);
            }
        }
        self.accumulated += 1;
        Ok(())
    }

    /// Global L2 norm of the accumulated (averaged) gradient.
    pub fn grad_norm(&self) -> f64 {
        let scale = 1.0 / self.accumulated.max(1) as f64;
        self.params
            .iter()
            .flat_map(|p| p.grad.iter())
            .map(|g| (*g as f64 * scale).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    /// Applies one update with learning rate `lr` from the averaged accumulated gradients,
    /// clipped to `clip_norm`; returns the gradient norm before clipping.
    pub fn step(&mut self, lr: f64) -> Result<f64> {
        let norm = self.grad_norm();
        let c = &self.config;
        let mut scale = 1.0 / self.accumulated.max(1) as f64;
        if c.clip_norm > 0.0 && norm > c.clip_norm {
            scale *= c.clip_norm / norm;
        }
        self.t += 1;
        let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        let step = (lr / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let eps = c.eps as f32;
        for p in &mut self.params {
            let mut w = p.var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            let decay = if p.decay {
                (1.0 - lr * c.weight_decay) as f32
            } else {
                1.0
            };
            for (((w, g), m), v) in w
                .iter_mut()
                .zip(p.grad.iter_mut())
                .zip(p.m.iter_mut())
                .zip(p.v.iter_mut())
            {
                let grad = *g * scale as f32;
                *m = b1 * *m + (1.0 - b1) * grad;
                *v = b2 * *v + (1.0 - b2) * grad * grad;
                *w = *w * decay - step * *m / (v.sqrt() / bc2_sqrt + eps);
                *g = 0.0;
            }
            let shape = p.var.shape().clone();
            p.var.set(&Tensor::from_vec(w, shape, p.var.device())?)?;
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
        );
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
            let mut opt = AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default());
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
}
