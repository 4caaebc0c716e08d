//! Training a backbone into a world model, a dynamics model, or both on one set of weights:
//! AdamW, linear warm-up + cosine decay, gradient clipping and accumulation, periodic
//! held-out evaluation, and checkpoints that resume bit-identically.
//!
//! Determinism: parameters are initialised from `(seed, name)`; the data order of epoch `e` is
//! a permutation drawn from `(seed, e)`; nothing else is random. So a checkpoint's state is
//! its weights, the optimizer moments and the step number, all in `train_state.safetensors`
//! (one file, written atomically: a run killed at any moment resumes from the last complete
//! checkpoint to the same weights as an uninterrupted run).

use super::adamw::{AdamW, AdamWConfig};
use super::batch::Batch;
use super::data::Example;
use super::loss::{completion_loss, mix};
use crate::error::{Error, Result};
use crate::model::{Chameleon, ChameleonConfig, Format, Model, ModelConfig, Role, Sequence};
use crate::nn::seeded_var_builder;
use crate::tokenize::{ImageCodec, TextTokenizer};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How to train. Saved in the checkpoint's training state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub steps: usize,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Peak learning rate, reached after `warmup` steps; cosine decay to `lr * min_lr_ratio`.
    pub lr: f64,
    pub warmup: usize,
    pub min_lr_ratio: f64,
    pub optimizer: AdamWConfig,
    /// λ of the recognition-weighted loss (0 = plain cross-entropy), see [`super::loss`].
    pub weighted: f64,
    pub seed: u64,
    /// Evaluate on the held-out examples every this many steps (0 = never).
    pub eval_every: usize,
    /// Write a checkpoint every this many steps (and at the end; 0 = only at the end).
    pub checkpoint_every: usize,
}

impl TrainConfig {
    /// Learning rate at `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let t =
            (step - self.warmup) as f64 / (self.steps.saturating_sub(self.warmup)).max(1) as f64;
        let cos = 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos());
        self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cos)
    }
}

/// Model sizes and their default training recipes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Preset {
    /// A few thousand parameters, for tests.
    Tiny,
    /// hidden 64, intermediate 176, 2 layers, 4 heads: the ablation's many short runs.
    Mini,
    /// hidden 256, intermediate 688, 6 layers, 8 heads: the benchmark configuration.
    Small,
    /// hidden 192, intermediate 512, 4 layers, 6 heads: the shipped models.
    Demo,
}

impl Preset {
    /// The backbone for a vocabulary and image size; the context holds two images and an
    /// action of up to 58 tokens.
    pub fn backbone(self, vocab_size: usize, image_tokens: usize) -> ChameleonConfig {
        let (hidden_size, intermediate_size, num_hidden_layers, heads, kv) = match self {
            Preset::Tiny => (32, 64, 2, 4, 2),
            Preset::Mini => (64, 176, 2, 4, 4),
            Preset::Small => (256, 688, 6, 8, 8),
            Preset::Demo => (192, 512, 4, 6, 6),
        };
        ChameleonConfig {
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: kv,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-5,
            max_position_embeddings: 2 * image_tokens + 64,
            swin_norm: false,
            attention_bias: false,
            mlp_bias: false,
            tie_word_embeddings: false,
            initializer_range: 0.02,
        }
    }

    /// The checkpoint configuration of a fresh model of this size for `roles` over the given
    /// tokenizers; `vq_path` is where the image tokenizer is, relative to the checkpoint.
    pub fn model_config(
        self,
        roles: Vec<crate::model::Role>,
        text: &crate::tokenize::TextTokenizer,
        vq: &crate::tokenize::ImageCodec,
        vq_path: String,
        vq_fingerprint: String,
    ) -> Result<ModelConfig> {
        let vocab = crate::model::Vocab::new(text, vq.codebook_size())?;
        let image_tokens = vq.tokens_per_image();
        Ok(ModelConfig {
            backbone: self.backbone(vocab.size(), image_tokens),
            dynaboot: crate::model::ModelMeta {
                roles,
                vocab,
                image_tokens,
                vq_path,
                vq_fingerprint,
            },
        })
    }

    pub fn train(self) -> TrainConfig {
        let (steps, batch_size, lr, warmup) = match self {
            Preset::Tiny => (200, 8, 3e-3, 10),
            Preset::Mini => (600, 16, 3e-3, 50),
            Preset::Small => (2000, 16, 1e-3, 100),
            Preset::Demo => (3000, 16, 1.5e-3, 100),
        };
        TrainConfig {
            steps,
            batch_size,
            grad_accum: 1,
            lr,
            warmup,
            min_lr_ratio: 0.1,
            optimizer: AdamWConfig::default(),
            weighted: 0.0,
            seed: 0,
            eval_every: 100,
            checkpoint_every: 500,
        }
    }
}

/// Numbers of one optimizer step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct StepStats {
    /// 1-based number of the step just taken.
    pub step: usize,
    pub loss: f64,
    pub grad_norm: f64,
    pub lr: f64,
    /// Token positions processed (padding included).
    pub tokens: usize,
}

pub struct Trainer {
    pub config: TrainConfig,
    pub model_config: ModelConfig,
    pub backbone: Chameleon,
    varmap: VarMap,
    opt: AdamW,
    format: Format,
    train: Vec<Example>,
    eval: Vec<Example>,
    /// Optimizer steps taken.
    step: usize,
    /// The data order of the current epoch: `(epoch, permutation of stream items)`.
    order: (usize, Vec<usize>),
    /// Set when fine-tuning a base with LoRA: only the adapters train.
    pub lora: Option<LoraRun>,
}

/// A LoRA fine-tune: the adapter's config and the base it adapts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraRun {
    pub lora: crate::model::lora::LoraConfig,
    /// The base checkpoint folder (dynaboot or HF Chameleon).
    pub base: String,
    /// The taming VQGAN checkpoint that decodes the base's codes, recorded in the adapter.
    #[serde(default)]
    pub vqgan: Option<String>,
}

/// Dropout seed of micro-batch `micro` of step `step` (0-based).
fn dropout_seed(seed: u64, step: usize, micro: usize) -> u64 {
    crate::nn::init::fnv1a(format!("lora-dropout {seed} {step} {micro}").as_bytes()) >> 1
}

impl Trainer {
    /// A fresh model (parameters drawn from the seed) over `train`; `eval` is held out.
    pub fn new(
        model_config: ModelConfig,
        config: TrainConfig,
        train: Vec<Example>,
        eval: Vec<Example>,
        device: &Device,
    ) -> Result<Self> {
        Self::check(&model_config, &config, &train, &eval)?;
        let varmap = VarMap::new();
        let backbone = Chameleon::new(
            model_config.backbone.clone(),
            seeded_var_builder(&varmap, config.seed, DType::F32, device),
        )?;
        Self::assemble(model_config, config, train, eval, backbone, varmap, None)
    }

    /// Fine-tunes `base` for `roles`: with `lora`, only fresh LoRA adapters train (the base
    /// stays frozen and memory-mapped); without, every weight trains, starting from the base's.
    #[cfg(feature = "fs")]
    pub fn fine_tune(
        base: &crate::model::base::BaseModel,
        roles: Vec<Role>,
        lora: Option<crate::model::lora::LoraConfig>,
        config: TrainConfig,
        train: Vec<Example>,
        eval: Vec<Example>,
        device: &Device,
    ) -> Result<Self> {
        let model_config = base.model_config(roles);
        Self::check(&model_config, &config, &train, &eval)?;
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, config.seed, DType::F32, device);
        let (backbone, run) = match lora {
            Some(lora) => {
                let mut b = base.backbone()?;
                b.add_lora(&lora, vb)?;
                let absolute = |p: &std::path::Path| {
                    std::fs::canonicalize(p)
                        .map(|p| p.to_string_lossy().into_owned())
                        .map_err(|e| Error::io(p, e))
                };
                let vqgan = base.vqgan.as_deref().map(absolute).transpose()?;
                let base = absolute(&base.dir)?;
                (b, Some(LoraRun { lora, base, vqgan }))
            }
            None => {
                let b = Chameleon::new(model_config.backbone.clone(), vb)?;
                let frozen = base.backbone()?.merged_tensors()?;
                let vars = varmap.data().lock().expect("varmap lock");
                for (name, t) in frozen {
                    if let Some(v) = vars.get(&name) {
                        v.set(&t.to_dtype(DType::F32)?)?;
                    }
                }
                drop(vars);
                (b, None)
            }
        };
        Self::assemble(model_config, config, train, eval, backbone, varmap, run)
    }

    fn check(
        model_config: &ModelConfig,
        config: &TrainConfig,
        train: &[Example],
        eval: &[Example],
    ) -> Result<()> {
        if train.is_empty() {
            return Err(Error::Invalid("no training examples".into()));
        }
        if model_config.dynaboot.roles.is_empty() {
            return Err(Error::Invalid(
                "train at least one role (world, dynamics)".into(),
            ));
        }
        if config.batch_size == 0 || config.grad_accum == 0 || config.steps == 0 {
            return Err(Error::Invalid(
                "steps, batch size and gradient accumulation must be at least 1".into(),
            ));
        }
        let format = model_config.format();
        for (i, ex) in train.iter().chain(eval).enumerate() {
            for role in &model_config.dynaboot.roles {
                format
                    .check_action(&ex.action, *role)
                    .map_err(|e| Error::Invalid(format!("example {i}: {e}")))?;
            }
        }
        Ok(())
    }

    fn assemble(
        model_config: ModelConfig,
        config: TrainConfig,
        train: Vec<Example>,
        eval: Vec<Example>,
        backbone: Chameleon,
        varmap: VarMap,
        lora: Option<LoraRun>,
    ) -> Result<Self> {
        let vars = varmap
            .data()
            .lock()
            .expect("varmap lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let opt = AdamW::new(vars, config.optimizer.clone())?;
        let format = model_config.format();
        Ok(Trainer {
            config,
            model_config,
            backbone,
            varmap,
            opt,
            format,
            train,
            eval,
            step: 0,
            order: (usize::MAX, Vec::new()),
            lora,
        })
    }

    /// A fresh `preset`-sized model for `roles` over the tokenizers in `tokenizers` (a folder
    /// with `vq/` and `tokenizer.json`, like the shipped `models/`), to train on `train`
    /// with nothing held out.
    #[cfg(feature = "fs")]
    pub fn from_tokenizers(
        preset: Preset,
        roles: Vec<Role>,
        tokenizers: &std::path::Path,
        config: TrainConfig,
        train: Vec<Example>,
        device: &Device,
    ) -> Result<Self> {
        let (vq, text) = crate::tokenize::load_tokenizers(tokenizers, device)?;
        let vq_dir = tokenizers.join("vq");
        let model_config = preset.model_config(
            roles,
            &text,
            &vq,
            vq_dir.to_string_lossy().into_owned(),
            crate::model::checkpoint::vq_fingerprint(&vq_dir)?,
        )?;
        Trainer::new(model_config, config, train, Vec::new(), device)
    }

    /// Optimizer steps taken so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    fn roles(&self) -> &[Role] {
        &self.model_config.dynaboot.roles
    }

    /// Stream item `k` (an (example, role) pair, in epoch order).
    fn item(&mut self, k: usize) -> (usize, Role) {
        let n = self.train.len() * self.roles().len();
        let epoch = k / n;
        if self.order.0 != epoch {
            let mut perm: Vec<usize> = (0..n).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
            rng.set_stream(epoch as u64 + 1);
            perm.shuffle(&mut rng);
            self.order = (epoch, perm);
        }
        let pair = self.order.1[k % n];
        (
            pair % self.train.len(),
            self.roles()[pair / self.train.len()],
        )
    }

    fn sequence(&self, ex: &Example, role: Role) -> Result<Sequence> {
        match role {
            Role::World => self.format.world_sequence(
                &ex.source,
                &ex.action,
                &ex.target,
                Some(&mix(self.config.weighted, &ex.change)),
            ),
            Role::Dynamics => self
                .format
                .dynamics_sequence(&ex.source, &ex.target, &ex.action),
        }
    }

    /// One optimizer step (`grad_accum` micro-batches). A non-finite loss is an error naming
    /// the step; the parameters are left as they were.
    pub fn step(&mut self) -> Result<StepStats> {
        let cfg = self.config.clone();
        let (mut loss_sum, mut tokens) = (0.0, 0);
        for micro in 0..cfg.grad_accum {
            let first = (self.step * cfg.grad_accum + micro) * cfg.batch_size;
            let seqs = (first..first + cfg.batch_size)
                .map(|k| {
                    let (i, role) = self.item(k);
                    self.sequence(&self.train[i], role)
                })
                .collect::<Result<Vec<_>>>()?;
            let batch = Batch::new(
                &seqs,
                self.format.vocab.specials.pad,
                self.backbone.device(),
            )?;
            self.backbone
                .set_lora_seed(dropout_seed(cfg.seed, self.step, micro));
            let loss = completion_loss(&self.backbone, &batch)?;
            let value = loss.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                return Err(Error::Invalid(format!(
                    "the training loss became {value} at step {}; nothing was updated. Lower the \
                     learning rate (--lr) or check the data",
                    self.step + 1
                )));
            }
            self.opt.accumulate(&loss.backward()?)?;
            loss_sum += value;
            tokens += batch.tokens();
        }
        let lr = cfg.lr_at(self.step);
        let grad_norm = self.opt.step(lr)?;
        self.step += 1;
        Ok(StepStats {
            step: self.step,
            loss: loss_sum / cfg.grad_accum as f64,
            grad_norm,
            lr,
            tokens,
        })
    }

    /// Trains on to `config.steps` and, at `points` evenly spaced steps (the last one at the
    /// end), hands `visit` a snapshot of the model and the step: a learning curve.
    /// `tokenizers` gives each snapshot its own copy of the tokenizers. Returns the final
    /// model and the statistics of every step taken.
    pub fn run_with_snapshots(
        &mut self,
        points: usize,
        mut tokenizers: impl FnMut() -> Result<(ImageCodec, TextTokenizer)>,
        mut visit: impl FnMut(Arc<Model>, usize) -> Result<()>,
    ) -> Result<(Arc<Model>, Vec<StepStats>)> {
        let steps = self.config.steps;
        let points = points.clamp(1, steps.max(1));
        let at: Vec<usize> = (1..=points).map(|k| (k * steps).div_ceil(points)).collect();
        let mut stats = Vec::with_capacity(steps.saturating_sub(self.step));
        let mut last = None;
        while self.step < steps {
            stats.push(self.step()?);
            if at.contains(&self.step) {
                let (vq, text) = tokenizers()?;
                let model = Arc::new(self.snapshot(vq, text)?);
                visit(model.clone(), self.step)?;
                last = Some(model);
            }
        }
        let model = match last {
            Some(m) => m,
            None => {
                let (vq, text) = tokenizers()?;
                Arc::new(self.snapshot(vq, text)?)
            }
        };
        Ok((model, stats))
    }

    /// Mean completion loss (unweighted) per role on the held-out examples.
    pub fn eval_loss(&self) -> Result<Vec<(Role, f64)>> {
        self.backbone
            .set_lora_seed(crate::model::chameleon::NO_DROPOUT);
        let mut out = Vec::new();
        for &role in self.roles() {
            let (mut sum, mut n) = (0.0, 0);
            for chunk in self.eval.chunks(self.config.batch_size.max(1)) {
                let seqs = chunk
                    .iter()
                    .map(|ex| match role {
                        Role::World => self
                            .format
                            .world_sequence(&ex.source, &ex.action, &ex.target, None),
                        Role::Dynamics => self.sequence(ex, role),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let batch = Batch::new(
                    &seqs,
                    self.format.vocab.specials.pad,
                    self.backbone.device(),
                )?;
                sum += completion_loss(&self.backbone, &batch)?.to_scalar::<f32>()? as f64
                    * chunk.len() as f64;
                n += chunk.len();
            }
            if n > 0 {
                out.push((role, sum / n as f64));
            }
        }
        Ok(out)
    }

    /// The trained weights under HF names, as `model.safetensors` stores them.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        self.opt
            .params
            .iter()
            .map(|p| (p.name.clone(), p.var.as_tensor().clone()))
            .collect()
    }

    /// A snapshot of the current weights as an inference model (training may go on).
    pub fn snapshot(&self, vq: impl Into<ImageCodec>, text: TextTokenizer) -> Result<Model> {
        let copies: std::collections::HashMap<String, Tensor> = self
            .tensors()
            .into_iter()
            .map(|(k, v)| Ok((k, v.copy()?)))
            .collect::<Result<_>>()?;
        let dev = self.backbone.device();
        let vb = candle_nn::VarBuilder::from_tensors(copies, DType::F32, dev);
        let backbone = match &self.lora {
            None => Chameleon::new(self.model_config.backbone.clone(), vb)?,
            #[cfg(feature = "fs")]
            Some(run) => {
                let base = crate::model::base::BaseModel::open(
                    std::path::Path::new(&run.base),
                    None,
                    DType::F32,
                    dev,
                )?;
                let mut b = base.backbone()?;
                b.add_lora(&run.lora, vb)?;
                b
            }
            #[cfg(not(feature = "fs"))]
            Some(_) => {
                return Err(Error::Invalid(
                    "a LoRA snapshot opens its base from disk: build with the `fs` feature".into(),
                ));
            }
        };
        Model::assemble(self.model_config.clone(), backbone, vq, text)
    }

    /// Every trainable parameter with its name (for gradient checks).
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<_> = self
            .varmap
            .data()
            .lock()
            .expect("varmap lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The loss of a batch built from the first `n` training examples (for checks).
    pub fn loss_on_first(&self, n: usize) -> Result<Tensor> {
        let mut seqs = Vec::new();
        for ex in self.train.iter().take(n) {
            for &role in self.roles() {
                seqs.push(self.sequence(ex, role)?);
            }
        }
        let batch = Batch::new(
            &seqs,
            self.format.vocab.specials.pad,
            self.backbone.device(),
        )?;
        Ok(completion_loss(&self.backbone, &batch)?)
    }
}

#[cfg(feature = "fs")]
mod checkpoint {
    //! Writing and resuming checkpoints, and the training loop that does both.
    use super::*;
    use crate::tokenize::TextTokenizer;
    use std::collections::HashMap;
    use std::io::Write;
    use std::path::Path;

    pub const STATE_FILE: &str = "train_state.safetensors";
    pub const METRICS_FILE: &str = "metrics.jsonl";

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
            crate::files::write_atomic(&dir.join(STATE_FILE), &bytes)?;
            match &self.lora {
                None => {
                    crate::model::checkpoint::save(dir, &self.model_config, &self.tensors(), text)
                }
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
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let bad = |m: String| Error::Malformed {
                file: path.display().to_string(),
                row: None,
                field: None,
                message: format!(
                    "{m}; the checkpoint cannot be resumed, start again without --resume"
                ),
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
                None => Trainer::new(model_config, config, train, eval, device)?,
                Some(run) => {
                    let run: LoraRun =
                        serde_json::from_str(run).map_err(|e| bad(format!("lora_run: {e}")))?;
                    let base = crate::model::base::BaseModel::open(
                        Path::new(&run.base),
                        run.vqgan.as_deref().map(Path::new),
                        DType::F32,
                        device,
                    )?;
                    Trainer::fine_tune(
                        &base,
                        model_config.dynaboot.roles.clone(),
                        Some(run.lora),
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

        /// Trains to `config.steps` from where the trainer stands, writing checkpoints and
        /// `metrics.jsonl` into `dir`. `on_step` sees each step and its tokens per second.
        pub fn fit(
            &mut self,
            dir: &Path,
            text: &TextTokenizer,
            mut on_step: impl FnMut(&StepStats, f64, Option<&[(Role, f64)]>),
        ) -> Result<()> {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let metrics = dir.join(METRICS_FILE);
            truncate_metrics(&metrics, self.step)?;
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&metrics)
                .map_err(|e| Error::io(&metrics, e))?;
            let last_saved = self.step;
            while self.step < self.config.steps {
                let t0 = std::time::Instant::now();
                let stats = self.step().map_err(|e| {
                    Error::Invalid(format!(
                        "{e}. The last good checkpoint (step {last_saved}) is kept in {}",
                        dir.display()
                    ))
                })?;
                let tps = stats.tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                let c = &self.config;
                let evaluated = if (c.eval_every > 0 && stats.step % c.eval_every == 0)
                    || stats.step == c.steps
                {
                    Some(self.eval_loss()?)
                } else {
                    None
                };
                let mut line = serde_json::json!({
                    "step": stats.step, "loss": stats.loss, "lr": stats.lr,
                    "grad_norm": stats.grad_norm, "tokens_per_s": tps,
                });
                for (role, l) in evaluated.iter().flatten() {
                    line[format!("eval_loss_{}", role.name())] = serde_json::json!(l);
                }
                writeln!(log, "{line}").map_err(|e| Error::io(&metrics, e))?;
                on_step(&stats, tps, evaluated.as_deref());
                if (c.checkpoint_every > 0 && stats.step % c.checkpoint_every == 0)
                    || stats.step == c.steps
                {
                    log.flush().map_err(|e| Error::io(&metrics, e))?;
                    self.save(dir, text)?;
                }
            }
            Ok(())
        }
    }

    /// Drops metric lines past `step` (written after the checkpoint a run resumes from).
    fn truncate_metrics(path: &Path, step: usize) -> Result<()> {
        let Ok(text) = std::fs::read_to_string(path) else {
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
}

#[cfg(feature = "fs")]
pub use checkpoint::{METRICS_FILE, STATE_FILE};

/// Splits off `n` held-out examples, chosen by the seed.
pub fn hold_out(mut examples: Vec<Example>, n: usize, seed: u64) -> (Vec<Example>, Vec<Example>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xe7a1);
    examples.shuffle(&mut rng);
    let n = n.min(examples.len().saturating_sub(1));
    let eval = examples.split_off(examples.len() - n);
    (examples, eval)
}
