//! LoRA (Hu et al., 2021), as the paper fine-tunes Anole-7B: a frozen projection `W` plus a
//! trainable low-rank update, `y = x·Wᵀ + (α / r)·dropout(x)·Aᵀ·Bᵀ`, with `A` `(r, in)`
//! initialised like PyTorch's `nn.Linear` (PEFT's default) and `B` `(out, r)` at zero, so a
//! fresh adapter leaves the model unchanged. The adapter itself lives in the backbone's
//! linear layers ([`super::chameleon`]); this module is its config and its file layout.
//!
//! On disk an adapter is PEFT's layout: `adapter_config.json` (`r`, `lora_alpha`,
//! `lora_dropout`, `target_modules`, `base_model_name_or_path`, plus a `dynaboot` object) and
//! `adapter_model.safetensors` with `base_model.model.<module>.lora_A.weight` /
//! `lora_B.weight`, so adapters move between dynaboot and PEFT.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The projections LoRA can adapt (HF names).
pub const ALL_TARGETS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// Rank, scale, dropout and which projections carry an adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub r: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
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
    pub fn scale(&self) -> f64 {
        self.lora_alpha / self.r as f64
    }

    /// Whether the projection named `name` (e.g. `q_proj`) carries an adapter.
    pub fn targets(&self, name: &str) -> bool {
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

    pub fn validate(&self) -> Result<()> {
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
pub fn peft_name(module: &str, which: &str) -> String {
    format!("base_model.model.{module}.{which}.weight")
}

#[cfg(test)]
mod tests {
    use super::*;

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
