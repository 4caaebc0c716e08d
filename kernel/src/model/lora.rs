//! LoRA (Hu et al., 2021), as the paper fine-tunes Anole-7B: a frozen projection `W` plus a
//! trainable low-rank update, `y = x·Wᵀ + (α / r)·dropout(x)·Aᵀ·Bᵀ`, with `A` `(r, in)`
//! initialised like PyTorch's `nn.Linear` (PEFT's default) and `B` `(out, r)` at zero, so a
//! fresh adapter leaves the model unchanged. This module is the adapter (its seeded dropout
//! masks, its merge into the weight), how a backbone gets, lists and merges its adapters, the
//! adapter's config and its file layout; the backbone's linear layers only call
//! `Adapter::delta`.
//!
//! On disk an adapter is PEFT's layout: `adapter_config.json` (`r`, `lora_alpha`,
//! `lora_dropout`, `target_modules`, `base_model_name_or_path`, plus a `dynaboot` object) and
//! `adapter_model.safetensors` with `base_model.model.<module>.lora_A.weight` /
//! `lora_B.weight`, so adapters move between dynaboot and PEFT.

use super::chameleon::{Chameleon, Pass};
use super::linear::Linear;
use super::names;
use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use candle_nn::{Init, VarBuilder};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The projections LoRA can adapt (HF names).
pub(crate) const ALL_TARGETS: [&str; 7] = {
    let mut out = [""; 7];
    let mut i = 0;
    while i < out.len() {
        out[i] = names::PROJECTIONS[i].1;
        i += 1;
    }
    out
};

/// A LoRA dropout seed that turns dropout off (for held-out evaluation in training passes).
pub(crate) const NO_DROPOUT: u64 = u64::MAX;

/// The trainable low-rank update of a frozen [`Linear`].
#[derive(Clone)]
pub(super) struct Adapter {
    /// `(r, in)`.
    a: Tensor,
    /// `(out, r)`.
    b: Tensor,
    scale: f64,
    dropout: f64,
    /// Which adapter this is: its dropout stream.
    index: u64,
    /// The dropout seed of the current micro-batch, shared by every adapter of a model.
    seed: Arc<AtomicU64>,
}

impl Adapter {
    /// `scale · dropout(x)·Aᵀ·Bᵀ`; dropout only in training, with a mask drawn from
    /// `(seed, index)` so that runs repeat exactly.
    pub(super) fn delta(&self, x: &Tensor, pass: Pass) -> candle_core::Result<Tensor> {
        let seed = self.seed.load(Ordering::Relaxed);
        let x = if pass == Pass::Train && self.dropout > 0.0 && seed != NO_DROPOUT {
            let keep = dropout_mask(x, self.dropout, seed, self.index)?;
            (x * keep)?
        } else {
            x.clone()
        };
        // Scaling the `(rows, r)` intermediate, not the `(rows, out)` result.
        (x.matmul(&self.a.t()?)? * self.scale)?.matmul(&self.b.t()?)
    }
}

/// Inverted-dropout mask (`0` or `1 / (1 - p)`) shaped like `x`. On the CPU it comes from
/// ChaCha8 at stream `(seed, index)`; on an accelerator from the device's generator seeded
/// with the same pair (drawing billions of numbers on the host would stall a GPU run).
fn dropout_mask(x: &Tensor, p: f64, seed: u64, index: u64) -> candle_core::Result<Tensor> {
    use rand::{Rng, SeedableRng};
    let keep = 1.0 / (1.0 - p);
    match x.device() {
        Device::Cpu => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(index);
            // Whole u32 words compared with p·2³² (a f64 per element costs twice as much).
            let mut words = vec![0u32; x.elem_count()];
            rng.fill(&mut words[..]);
            let threshold = (p * 4_294_967_296.0) as u64;
            let v: Vec<f32> = words
                .iter()
                .map(|&w| {
                    if (w as u64) < threshold {
                        0.0
                    } else {
                        keep as f32
                    }
                })
                .collect();
            Tensor::from_vec(v, x.shape(), x.device())?.to_dtype(x.dtype())
        }
        dev => {
            dev.set_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index)?;
            let u = Tensor::rand(0f32, 1f32, x.shape(), dev)?;
            (u.ge(p)?.to_dtype(candle_core::DType::F32)? * keep)?.to_dtype(x.dtype())
        }
    }
}

impl Linear {
    /// Folds the adapter into the weight: `W + scale·B·A`.
    fn merge(&mut self) -> candle_core::Result<()> {
        if let Some(a) = self.lora.take() {
            let ba = (a.b.matmul(&a.a)? * a.scale)?.to_dtype(self.weight.dtype())?;
            self.weight = (&self.weight + ba)?;
        }
        Ok(())
    }
}

impl Chameleon {
    /// Gives the projections `config` targets a LoRA adapter whose `A` and `B` come from `vb`
    /// under PEFT's names (`base_model.model.<module>.lora_A.weight`): fresh ones from a
    /// seeded var map (`A` like `nn.Linear`'s init, `B` zero), or a saved adapter.
    pub fn add_lora(&mut self, config: &LoraConfig, vb: VarBuilder) -> candle_core::Result<()> {
        config
            .validate()
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let seed = self.lora_seed.clone();
        let dtype = self.embed_tokens.dtype();
        self.frozen_head = true;
        for (index, (module, name, lin)) in self.projections().into_iter().enumerate() {
            // With adapters the base trains no more: no gradient for any of its weights.
            lin.frozen = true;
            if !config.targets(name) {
                continue;
            }
            let (out, inp) = lin.weight.dims2()?;
            let bound = 1.0 / (inp as f64).sqrt();
            let vb = vb.pp(format!("base_model.model.{module}"));
            let a = vb.get_with_hints(
                (config.r, inp),
                "lora_A.weight",
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?;
            let b = vb.get_with_hints((out, config.r), "lora_B.weight", Init::Const(0.0))?;
            lin.lora = Some(Adapter {
                a: a.to_dtype(dtype)?,
                b: b.to_dtype(dtype)?,
                scale: config.scale(),
                dropout: config.lora_dropout,
                index: index as u64,
                seed: seed.clone(),
            });
        }
        Ok(())
    }

    /// The adapters' matrices under PEFT's names (what `adapter_model.safetensors` holds).
    #[cfg(test)]
    pub(crate) fn lora_tensors(&mut self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (module, _, lin) in self.projections() {
            if let Some(a) = &lin.lora {
                out.push((peft_name(&module, "lora_A"), a.a.clone()));
                out.push((peft_name(&module, "lora_B"), a.b.clone()));
            }
        }
        out
    }

    /// Folds every adapter into its weight (`W + α/r·B·A`): the plain model that computes
    /// the same function.
    pub(crate) fn merge_lora(&mut self) -> candle_core::Result<()> {
        for (_, _, lin) in self.projections() {
            lin.merge()?;
        }
        Ok(())
    }

    /// The frozen weights under HF names, adapters merged in (what a merged checkpoint's
    /// `model.safetensors` holds).
    pub fn merged_tensors(&mut self) -> candle_core::Result<Vec<(String, Tensor)>> {
        let mut out = self.other_tensors();
        for (module, _, lin) in self.projections() {
            let mut lin = lin.clone();
            lin.merge()?;
            out.push((names::weight(&module), lin.weight));
            if let Some(b) = lin.bias {
                out.push((names::bias(&module), b));
            }
        }
        Ok(out)
    }

    /// Seeds the adapters' dropout for the next training forward pass (the trainer sets it
    /// from the run's seed, step and micro-batch, so resumed runs repeat exactly).
    pub(crate) fn set_lora_seed(&self, seed: u64) {
        self.lora_seed.store(seed, Ordering::Relaxed);
    }
}

/// Rank, scale, dropout and which projections carry an adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// The adapters' rank.
    pub r: usize,
    /// The scale is `lora_alpha / r`.
    pub lora_alpha: f64,
    /// Dropout on an adapter's input, in training only.
    pub lora_dropout: f64,
    /// The projections that carry an adapter (`q_proj`, ..., `down_proj`).
    pub target_modules: Vec<String>,
}

impl Default for LoraConfig {
    /// The paper's setting: rank 16, alpha 32, dropout 0.05, attention and MLP projections.
    fn default() -> Self {
        LoraConfig {
            r: 16,
            lora_alpha: 32.0,
            lora_dropout: 0.05,
            target_modules: ALL_TARGETS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl LoraConfig {
    /// `α / r`, the factor of the low-rank update.
    pub(crate) fn scale(&self) -> f64 {
        self.lora_alpha / self.r as f64
    }

    /// Whether the projection named `name` (e.g. `q_proj`) carries an adapter.
    pub(crate) fn targets(&self, name: &str) -> bool {
        self.target_modules.iter().any(|t| t == name)
    }

    /// Parses `r=16,alpha=32,dropout=0.05,targets=q_proj+v_proj` (every key optional; the
    /// defaults are the paper's).
    pub fn parse(spec: &str) -> Result<Self> {
        let mut c = LoraConfig::default();
        let bad = |m: String| Error::Invalid(format!("--lora `{spec}`: {m}"));
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("`{part}` is not key=value")))?;
            let num = |v: &str| {
                v.parse::<f64>()
                    .map_err(|_| bad(format!("`{k}` needs a number, got `{v}`")))
            };
            match k {
                "r" | "rank" => c.r = num(v)? as usize,
                "alpha" | "lora_alpha" => c.lora_alpha = num(v)?,
                "dropout" | "lora_dropout" => c.lora_dropout = num(v)?,
                "targets" | "target_modules" => {
                    c.target_modules = v.split('+').map(str::to_string).collect()
                }
                _ => {
                    return Err(bad(format!(
                        "unknown key `{k}` (use r, alpha, dropout, targets)"
                    )));
                }
            }
        }
        c.validate().map_err(|e| bad(e.to_string()))?;
        Ok(c)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.r == 0 {
            return Err(Error::Invalid("LoRA rank r must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            return Err(Error::Invalid(format!(
                "LoRA dropout {} must be in [0, 1)",
                self.lora_dropout
            )));
        }
        if self.target_modules.is_empty() {
            return Err(Error::Invalid(
                "LoRA needs at least one target module".into(),
            ));
        }
        if let Some(t) = self
            .target_modules
            .iter()
            .find(|t| !ALL_TARGETS.contains(&t.as_str()))
        {
            return Err(Error::Invalid(format!(
                "LoRA target `{t}` is not a projection of the model (one of {ALL_TARGETS:?})"
            )));
        }
        Ok(())
    }
}

/// PEFT's name of an adapter matrix of the module at HF path `module`
/// (e.g. `model.layers.0.self_attn.q_proj`), `which` = `lora_A` or `lora_B`.
#[cfg(test)]
pub(crate) fn peft_name(module: &str, which: &str) -> String {
    format!("base_model.model.{module}.{which}.weight")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::chameleon::tests::{ids, model, tiny};
    use crate::nn::seeded_var_builder;
    use candle_core::{DType, Result};
    use candle_nn::VarMap;

    fn lora(r: usize, dropout: f64) -> LoraConfig {
        LoraConfig {
            r,
            lora_alpha: 2.0 * r as f64,
            lora_dropout: dropout,
            ..LoraConfig::default()
        }
    }

    #[test]
    fn a_fresh_adapter_changes_nothing_and_a_trained_one_merges_exactly() -> Result<()> {
        let (base, _) = model(tiny(40));
        let x = ids(&[1, 5, 9, 3, 7, 2]);
        let want = base.forward(&x, None, Pass::Infer)?;
        let (mut m, _) = model(tiny(40));
        let adapters = VarMap::new();
        m.add_lora(
            &lora(4, 0.0),
            seeded_var_builder(&adapters, 3, DType::F32, &Device::Cpu),
        )?;
        let d = (m.forward(&x, None, Pass::Infer)? - &want)?
            .abs()?
            .max_all()?;
        assert_eq!(d.to_scalar::<f32>()?, 0.0, "B starts at zero");
        // 2 layers x 7 projections x (A, B).
        assert_eq!(adapters.all_vars().len(), 28);
        assert_eq!(m.lora_tensors().len(), 28);
        for (name, var) in adapters.data().lock().unwrap().iter() {
            if name.ends_with("lora_B.weight") {
                var.set(&Tensor::randn(0f32, 0.3, var.shape(), &Device::Cpu)?)?;
            }
        }
        let adapted = m.forward(&x, None, Pass::Infer)?;
        let moved = (&adapted - &want)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(
            moved > 1e-3,
            "a trained adapter changes the logits ({moved})"
        );
        let merged_weights = m.merged_tensors()?;
        m.merge_lora()?;
        assert!(m.lora_tensors().is_empty());
        let merged = m.forward(&x, None, Pass::Infer)?;
        let d = (&merged - &adapted)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "merged and adapted logits differ by {d}");
        // The merged tensors build the same model from scratch.
        let vb = VarBuilder::from_tensors(
            merged_weights.into_iter().collect(),
            DType::F32,
            &Device::Cpu,
        );
        let rebuilt = Chameleon::new(tiny(40), vb)?.forward(&x, None, Pass::Infer)?;
        let d = (rebuilt - &adapted)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "{d}");
        Ok(())
    }

    #[test]
    fn gradients_reach_every_adapter_and_dropout_repeats_with_its_seed() -> Result<()> {
        // Frozen base: built from plain tensors, not variables.
        let (base, vm) = model(tiny(40));
        drop(base);
        let frozen: std::collections::HashMap<_, _> = vm
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect();
        let mut m = Chameleon::new(
            tiny(40),
            VarBuilder::from_tensors(frozen, DType::F32, &Device::Cpu),
        )?;
        let adapters = VarMap::new();
        m.add_lora(
            &lora(2, 0.3),
            seeded_var_builder(&adapters, 5, DType::F32, &Device::Cpu),
        )?;
        // B = 0 would stop A's gradient: give B a value first, as after one step.
        for (name, var) in adapters.data().lock().unwrap().iter() {
            if name.ends_with("lora_B.weight") {
                var.set(&Tensor::randn(0f32, 0.1, var.shape(), &Device::Cpu)?)?;
            }
        }
        let x = ids(&[1, 5, 9, 3, 7, 2, 11, 4]);
        let loss = |seed| -> Result<Tensor> {
            m.set_lora_seed(seed);
            m.forward(&x, None, Pass::Train)?.sqr()?.mean_all()
        };
        let l = loss(7)?;
        let grads = l.backward()?;
        for (name, var) in adapters.data().lock().unwrap().iter() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            let norm = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
            assert!(norm > 0.0, "zero gradient for {name}");
        }
        let same = (loss(7)? - &l)?.abs()?.to_scalar::<f32>()?;
        let other = (loss(8)? - &l)?.abs()?.to_scalar::<f32>()?;
        assert_eq!(same, 0.0, "the same seed draws the same dropout masks");
        assert!(other > 0.0, "another seed draws other masks");
        let infer = m.forward(&x, None, Pass::Infer)?;
        assert_eq!(
            (infer - m.forward(&x, None, Pass::Infer)?)?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?,
            0.0,
            "no dropout at inference"
        );
        Ok(())
    }

    #[test]
    fn specs_parse_with_the_papers_defaults() {
        assert_eq!(LoraConfig::parse("").unwrap(), LoraConfig::default());
        let c = LoraConfig::parse("r=8, alpha=16,targets=q_proj+v_proj").unwrap();
        assert_eq!((c.r, c.lora_alpha, c.lora_dropout), (8, 16.0, 0.05));
        assert!(c.targets("v_proj") && !c.targets("k_proj"));
        assert_eq!(c.scale(), 2.0);
        for bad in [
            "r=0",
            "dropout=1",
            "targets=lm_head",
            "rank",
            "beta=2",
            "r=x",
        ] {
            let e = LoraConfig::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--lora"), "{bad}: {e}");
        }
    }
}
