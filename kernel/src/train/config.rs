//! A training run's configuration: the recipe ([`TrainConfig`], saved with the run's state),
//! the changes a user asks for on top of a recipe ([`Overrides`]: CLI flags, the ablation's
//! settings), and the named presets ([`Preset`]: a backbone size from
//! [`ChameleonConfig`]'s constructors and its default recipe).

use super::adamw::AdamWConfig;
use super::loss::Weighting;
#[cfg(feature = "fs")]
use crate::error::Result;
use crate::model::{ChameleonConfig, Format};
#[cfg(feature = "fs")]
use crate::model::{ModelConfig, ModelMeta, Role, Vocab, WorldLayout};
#[cfg(feature = "fs")]
use crate::tokenize::{ImageCodec, TextTokenizer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How to train. Saved in the checkpoint's training state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Optimizer steps of the whole run.
    pub steps: usize,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Peak learning rate, reached after `warmup` steps; cosine decay to `lr * min_lr_ratio`.
    pub lr: f64,
    /// Steps of linear warm-up from 0 to `lr`.
    pub warmup: usize,
    /// The learning rate at the end of the cosine decay, as a fraction of `lr`.
    pub min_lr_ratio: f64,
    /// AdamW's betas, epsilon, weight decay and gradient clipping.
    pub optimizer: AdamWConfig,
    /// λ of the recognition-weighted loss (0 = plain cross-entropy), see [`super::loss`].
    pub weighted: f64,
    /// Which position a change's weight lands on: its own (the paper's) or the ones drawn
    /// after it ([`Weighting::Causal`], no tilt).
    #[serde(default)]
    pub weighting: Weighting,
    /// Seed of the data order (and LoRA dropout); a resumed run replays it exactly.
    pub seed: u64,
    /// Evaluate on the held-out examples every this many steps (0 = never).
    pub eval_every: usize,
    /// Write a checkpoint every this many steps (and at the end; 0 = only at the end).
    pub checkpoint_every: usize,
    /// Also train describing each example's images in words (scene captions), beside the
    /// roles; needs examples with scene descriptions (the embedded world's data).
    #[serde(default)]
    pub captions: bool,
    /// Also train drawing each example's images from their descriptions.
    #[serde(default)]
    pub drawings: bool,
    /// Also train predicting each example's target image from its source without the action
    /// (the pair as an unlabelled transition).
    #[serde(default)]
    pub transitions: bool,
    /// Also train describing what changed between each example's images, naming no action
    /// (change captions, [`crate::world::describe_change`]).
    #[serde(default)]
    pub changes: bool,
    /// A data mixture: times each training example of a family (its task name, as in the
    /// AURORA rows) is seen per epoch; families not named are seen once. `{"whatsup": 2}`
    /// doubles that family's share of the batches without new data.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub repeats: BTreeMap<String, usize>,
}

impl TrainConfig {
    /// Learning rate at `step` (0-based).
    pub(crate) fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let t =
            (step - self.warmup) as f64 / (self.steps.saturating_sub(self.warmup)).max(1) as f64;
        let cos = 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos());
        self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cos)
    }

    /// The recipe with `o`'s changes; what `o` leaves `None` keeps the recipe's value.
    #[cfg(feature = "fs")]
    pub(crate) fn with(mut self, o: &Overrides) -> Self {
        let set = |field: &mut usize, v: Option<usize>| *field = v.unwrap_or(*field);
        set(&mut self.steps, o.steps);
        set(&mut self.batch_size, o.batch_size);
        set(&mut self.grad_accum, o.grad_accum);
        set(&mut self.warmup, o.warmup);
        set(&mut self.eval_every, o.eval_every);
        set(&mut self.checkpoint_every, o.checkpoint_every);
        self.lr = o.lr.unwrap_or(self.lr);
        self.weighted = o.weighted.unwrap_or(self.weighted);
        self.weighting = o.weighting.unwrap_or(self.weighting);
        self.seed = o.seed.unwrap_or(self.seed);
        self.captions = o.captions.unwrap_or(self.captions);
        self.drawings = o.drawings.unwrap_or(self.drawings);
        self.transitions = o.transitions.unwrap_or(self.transitions);
        self.changes = o.changes.unwrap_or(self.changes);
        if let Some(r) = &o.repeats {
            self.repeats = r.clone();
        }
        self
    }
}

/// Changes to a training recipe, each optional (see `TrainConfig::with`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// See [`TrainConfig::steps`].
    pub steps: Option<usize>,
    /// See [`TrainConfig::batch_size`].
    pub batch_size: Option<usize>,
    /// See [`TrainConfig::grad_accum`].
    pub grad_accum: Option<usize>,
    /// See [`TrainConfig::lr`].
    pub lr: Option<f64>,
    /// See [`TrainConfig::warmup`].
    pub warmup: Option<usize>,
    /// See [`TrainConfig::weighted`].
    pub weighted: Option<f64>,
    /// See [`TrainConfig::weighting`].
    pub weighting: Option<Weighting>,
    /// See [`TrainConfig::seed`].
    pub seed: Option<u64>,
    /// See [`TrainConfig::eval_every`].
    pub eval_every: Option<usize>,
    /// See [`TrainConfig::checkpoint_every`].
    pub checkpoint_every: Option<usize>,
    /// See [`TrainConfig::captions`].
    pub captions: Option<bool>,
    /// See [`TrainConfig::drawings`].
    pub drawings: Option<bool>,
    /// See [`TrainConfig::transitions`].
    pub transitions: Option<bool>,
    /// See [`TrainConfig::changes`].
    pub changes: Option<bool>,
    /// See [`TrainConfig::repeats`] (replaces the whole mixture).
    pub repeats: Option<BTreeMap<String, usize>>,
}

/// Model sizes and their default training recipes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Preset {
    /// `ChameleonConfig::tiny`: a few thousand parameters, for tests.
    Tiny,
    /// `ChameleonConfig::mini`: the ablation's many short runs.
    Mini,
    /// `ChameleonConfig::small`: the benchmark configuration.
    Small,
    /// `ChameleonConfig::demo`: the shipped models.
    Demo,
}

impl Preset {
    /// The backbone for a vocabulary and image size, with the context a fresh model's
    /// sequences need (`Format::context_for`).
    pub fn backbone(self, vocab_size: usize, image_tokens: usize) -> ChameleonConfig {
        let context = Format::context_for(image_tokens);
        match self {
            Preset::Tiny => ChameleonConfig::tiny(vocab_size, context),
            Preset::Mini => ChameleonConfig::mini(vocab_size, context),
            Preset::Small => ChameleonConfig::small(vocab_size, context),
            Preset::Demo => ChameleonConfig::demo(vocab_size, context),
        }
    }

    /// The checkpoint configuration of a fresh model of this size for `roles` over the given
    /// tokenizers; `vq_path` is where the image tokenizer is, relative to the checkpoint.
    #[cfg(feature = "fs")]
    pub(crate) fn model_config(
        self,
        roles: Vec<Role>,
        text: &TextTokenizer,
        vq: &ImageCodec,
        vq_path: String,
        vq_fingerprint: String,
    ) -> Result<ModelConfig> {
        let vocab = Vocab::new(text, vq.codebook_size())?;
        let image_tokens = vq.tokens_per_image();
        Ok(ModelConfig {
            backbone: self.backbone(vocab.size(), image_tokens),
            dynaboot: ModelMeta {
                roles,
                vocab,
                image_tokens,
                vq_path,
                vq_fingerprint,
                world_layout: WorldLayout::ActionFirst,
            },
        })
    }

    /// The preset's default training recipe.
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
            weighting: Weighting::Target,
            seed: 0,
            eval_every: 100,
            checkpoint_every: 500,
            captions: false,
            drawings: false,
            transitions: false,
            changes: false,
            repeats: BTreeMap::new(),
        }
    }
}
