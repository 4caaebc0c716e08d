//! A training run on disk: the checkpoint folder a run writes and resumes from, and
//! `metrics.jsonl`. `train_state.safetensors` (weights, AdamW moments, step and configs, one
//! file written atomically) is what makes resume exact: a run killed at any moment resumes
//! from the last complete checkpoint to the same weights as an uninterrupted run.

use super::config::TrainConfig;
use super::data::Example;
use super::trainer::{LoraRun, Progress, Trainer, Weights};
use crate::error::{Error, Result};
use crate::model::ModelConfig;
use crate::tokenize::TextTokenizer;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

pub(crate) const STATE_FILE: &str = "train_state.safetensors";
pub(crate) const METRICS_FILE: &str = "metrics.jsonl";

/// A safetensors file with its metadata's keys in sorted order. safetensors writes them in a
/// `HashMap`'s order, which changes from process to process; sorted, the same state is the
/// same bytes. The keys and values keep their length, so the header's does too.
fn sorted_metadata(mut bytes: Vec<u8>) -> Vec<u8> {
    const PREFIX: &[u8] = b"{\"__metadata__\":";
    let start = 8 + PREFIX.len();
    if bytes.len() < start || &bytes[8..start] != PREFIX {
        return bytes;
    }
    let mut values = serde_json::Deserializer::from_slice(&bytes[start..])
        .into_iter::<std::collections::BTreeMap<String, String>>();
    let Some(Ok(meta)) = values.next() else {
        return bytes;
    };
    let end = start + values.byte_offset();
    let sorted = serde_json::to_vec(&meta).expect("strings serialise");
    if sorted.len() == end - start {
        bytes[start..end].copy_from_slice(&sorted);
    }
    bytes
}

impl Trainer {
    /// Writes the checkpoint: `train_state.safetensors` (weights, moments, step, configs)
    /// first, then `model.safetensors`, `tokenizer.json` and `config.json`. Every file is
    /// written atomically.
    pub fn save(&self, dir: &Path, text: &TextTokenizer) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = Vec::new();
        for p in &self.opt.params {
            tensors.push((p.name.clone(), p.var.as_tensor().clone()));
            let (m, v) = p.moments()?;
            tensors.push((format!("optimizer.m.{}", p.name), m));
            tensors.push((format!("optimizer.v.{}", p.name), v));
        }
        let mut meta = HashMap::from([
            ("step".to_string(), self.step.to_string()),
            ("optimizer_t".to_string(), self.opt.t.to_string()),
            (
                "train_config".to_string(),
                serde_json::to_string(&self.config).expect("configs serialise"),
            ),
            (
                "model_config".to_string(),
                serde_json::to_string(&self.model_config).expect("configs serialise"),
            ),
        ]);
        if let Some(run) = &self.lora {
            meta.insert(
                "lora_run".to_string(),
                serde_json::to_string(run).expect("configs serialise"),
            );
        }
        let bytes =
            safetensors::serialize(tensors.iter().map(|(k, v)| (k.as_str(), v)), Some(meta))
                .map_err(|e| Error::Invalid(format!("serialising the training state: {e}")))?;
        crate::files::write_atomic(&dir.join(STATE_FILE), &sorted_metadata(bytes))?;
        match &self.lora {
            None => crate::model::checkpoint::save(dir, &self.model_config, &self.tensors(), text),
            Some(run) => {
                use crate::model::base::{AdapterConfig, AdapterMeta, save_adapter};
                let config = AdapterConfig {
                    peft_type: "LORA".into(),
                    base_model_name_or_path: run.base.clone(),
                    lora: run.lora.clone(),
                    dynaboot: AdapterMeta {
                        vqgan: run.vqgan.clone(),
                        roles: self.model_config.dynaboot.roles.clone(),
                        vocab: self.model_config.dynaboot.vocab.clone(),
                    },
                };
                save_adapter(dir, &config, &self.tensors())
            }
        }
    }

    /// Continues the run saved in `dir` on the same examples. `steps`, when given,
    /// replaces the total number of steps (and so the learning-rate schedule).
    pub fn resume(
        dir: &Path,
        train: Vec<Example>,
        eval: Vec<Example>,
        steps: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        let path = dir.join(STATE_FILE);
        let bytes = crate::files::read_input(&path, crate::files::Input::Weights)?;
        let bad = |m: String| Error::Malformed {
            file: path.display().to_string(),
            row: None,
            field: None,
            message: format!("{m}; the checkpoint cannot be resumed, start again without --resume"),
        };
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a readable safetensors file ({e})")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let field = |k: &str| {
            meta.get(k)
                .ok_or_else(|| bad(format!("no `{k}` in its metadata")))
        };
        let step: usize = field("step")?
            .parse()
            .map_err(|_| bad("bad `step`".into()))?;
        let t: u64 = field("optimizer_t")?
            .parse()
            .map_err(|_| bad("bad `optimizer_t`".into()))?;
        let mut config: TrainConfig =
            serde_json::from_str(field("train_config")?).map_err(|e| bad(e.to_string()))?;
        let model_config: ModelConfig =
            serde_json::from_str(field("model_config")?).map_err(|e| bad(e.to_string()))?;
        if let Some(s) = steps {
            config.steps = s;
        }
        let saved = candle_core::safetensors::load_buffer(&bytes, device)
            .map_err(|e| bad(format!("cannot read its tensors ({e})")))?;
        let mut trainer = match meta.get("lora_run") {
            None => Trainer::new(Weights::Fresh(&model_config), config, train, eval, device)?,
            Some(run) => {
                let run: LoraRun =
                    serde_json::from_str(run).map_err(|e| bad(format!("lora_run: {e}")))?;
                let base = crate::model::base::BaseModel::open(
                    Path::new(&run.base),
                    run.vqgan.as_deref().map(Path::new),
                    DType::F32,
                    device,
                )?;
                let roles = model_config.dynaboot.roles.clone();
                Trainer::new(
                    Weights::Lora(&base, roles, run.lora),
                    config,
                    train,
                    eval,
                    device,
                )?
            }
        };
        for p in &mut trainer.opt.params {
            let get = |k: &str| {
                saved
                    .get(k)
                    .filter(|t| t.shape() == p.var.shape())
                    .ok_or_else(|| bad(format!("`{k}` is missing or has the wrong shape")))
            };
            p.var.set(get(&p.name)?)?;
            let m = get(&format!("optimizer.m.{}", p.name))?;
            let v = get(&format!("optimizer.v.{}", p.name))?;
            p.set_moments(m, v)?;
        }
        trainer.opt.t = t;
        trainer.step = step;
        Ok(trainer)
    }

    /// `Trainer::fit` writing `metrics.jsonl` (a line per step, with the held-out losses
    /// and the conditioning test when evaluated) and a checkpoint every `checkpoint_every` steps and at the end (or at
    /// `stop_after`) into `dir`. `on_step` sees each step's [`Progress`].
    pub fn fit_to(
        &mut self,
        dir: &Path,
        text: &TextTokenizer,
        mut on_step: impl FnMut(&Progress),
    ) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let metrics = dir.join(METRICS_FILE);
        truncate_metrics(&metrics, self.step)?;
        // Opened at the first step that succeeds: a run refused at its first batch writes
        // nothing into `dir`.
        let mut log: Option<std::fs::File> = None;
        let (start, mut last_saved) = (self.step, self.step);
        self.fit(|trainer, p| {
            let s = &p.stats;
            let mut line = serde_json::json!({
                "step": s.step, "loss": s.loss, "lr": s.lr,
                "grad_norm": s.grad_norm, "tokens_per_s": p.tokens_per_s,
            });
            for (task, l) in p.eval.iter().flatten() {
                line[format!("eval_loss_{}", task.name())] = serde_json::json!(l);
            }
            if let Some(c) = &p.conditioning {
                if let Some(w) = &c.world {
                    line["conditioning_world"] = serde_json::json!(w);
                }
                if let Some(d) = &c.dynamics {
                    line["conditioning_dynamics"] = serde_json::json!(d);
                }
            }
            let file = match &mut log {
                Some(f) => f,
                None => log.insert(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&metrics)
                        .map_err(|e| Error::io(&metrics, e))?,
                ),
            };
            writeln!(file, "{line}").map_err(|e| Error::io(&metrics, e))?;
            on_step(p);
            let c = &trainer.config;
            if (c.checkpoint_every > 0 && s.step % c.checkpoint_every == 0)
                || s.step == trainer.end()
            {
                file.flush().map_err(|e| Error::io(&metrics, e))?;
                trainer.save(dir, text)?;
                last_saved = s.step;
            }
            Ok(())
        })
        .map_err(|e| match (start, last_saved) {
            (0, 0) => e,
            _ => Error::Invalid(format!(
                "{e}. The last good checkpoint (step {last_saved}) is kept in {}",
                dir.display()
            )),
        })
    }
}

/// Drops metric lines past `step` (written after the checkpoint a run resumes from).
fn truncate_metrics(path: &Path, step: usize) -> Result<()> {
    let Ok(text) = crate::files::read_input_text(path, crate::files::Input::Json) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s as usize <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    crate::files::write_atomic(path, kept.as_bytes())
}
