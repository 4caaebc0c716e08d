//! Seeded parameter initialisation. candle's CPU random generator cannot be seeded, so fresh
//! parameters come from this var-builder backend instead: each tensor is drawn from a ChaCha8
//! stream keyed by (seed, parameter name), independent of creation order, and registered in a
//! `VarMap` so the optimizer trains it.

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::init::NormalOrUniform;
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Seeded {
    varmap: VarMap,
    seed: u64,
}

/// FNV-1a: keys a parameter's random stream by its name, and fingerprints weight files.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

fn name_hash(name: &str) -> u64 {
    fnv1a(name.as_bytes())
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller.
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn draw(shape: &Shape, init: Init, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n = shape.elem_count();
    let sample = |rng: &mut ChaCha8Rng, normal_dist: bool, scale: f64, mean: f64| -> Vec<f32> {
        (0..n)
            .map(|_| {
                let v = if normal_dist {
                    normal(rng)
                } else {
                    rng.random::<f64>() * 2.0 - 1.0
                };
                (mean + scale * v) as f32
            })
            .collect()
    };
    match init {
        Init::Const(c) => vec![c as f32; n],
        Init::Randn { mean, stdev } => sample(rng, true, stdev, mean),
        Init::Uniform { lo, up } => sample(rng, false, (up - lo) / 2.0, (up + lo) / 2.0),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Normal => sample(rng, true, std, 0.0),
                NormalOrUniform::Uniform => sample(rng, false, 3f64.sqrt() * std, 0.0),
            }
        }
    }
}

impl SimpleBackend for Seeded {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut data = self.varmap.data().lock().expect("varmap lock");
        if let Some(v) = data.get(name) {
            if v.shape() != &s {
                candle_core::bail!(
                    "parameter {name}: shape {:?} requested, {:?} exists",
                    s,
                    v.shape()
                );
            }
            return Ok(v.as_tensor().clone());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ name_hash(name));
        let t = Tensor::from_vec(draw(&s, h, &mut rng), s, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&t)?;
        data.insert(name.to_string(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        match self.varmap.data().lock().expect("varmap lock").get(name) {
            Some(v) => Ok(v.as_tensor().clone()),
            None => candle_core::bail!("parameter {name} has not been created"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .expect("varmap lock")
            .contains_key(name)
    }
}

/// A var builder whose fresh parameters are deterministic for `seed` and land in `varmap`.
pub(crate) fn seeded_var_builder(
    varmap: &VarMap,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> VarBuilder<'static> {
    VarBuilder::from_backend(
        Box::new(Seeded {
            varmap: varmap.clone(),
            seed,
        }),
        dtype,
        device.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_parameters_whatever_the_order() -> Result<()> {
        let dev = Device::Cpu;
        let (a, b) = (VarMap::new(), VarMap::new());
        let va = seeded_var_builder(&a, 3, DType::F32, &dev);
        let vb = seeded_var_builder(&b, 3, DType::F32, &dev);
        let x1 = va.get_with_hints(
            (4, 5),
            "x",
            Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?;
        let _ = vb.get_with_hints(3, "y", Init::Const(1.0))?;
        let x2 = vb.get_with_hints(
            (4, 5),
            "x",
            Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?;
        assert_eq!(x1.to_vec2::<f32>()?, x2.to_vec2::<f32>()?);
        let other = seeded_var_builder(&VarMap::new(), 4, DType::F32, &dev).get_with_hints(
            (4, 5),
            "x",
            Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?;
        assert_ne!(x1.to_vec2::<f32>()?, other.to_vec2::<f32>()?);
        let std = x1.sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?;
        assert!((0.5..1.6).contains(&std), "{std}");
        assert_eq!(a.all_vars().len(), 1);
        Ok(())
    }
}
