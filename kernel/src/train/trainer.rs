//! Training a backbone into a world model, a dynamics model, or both on one set of weights:
//! AdamW, linear warm-up + cosine decay, gradient clipping and accumulation, periodic
//! held-out evaluation. [`Trainer::step`] is one optimizer step and [`Trainer::fit`] the
//! loop; what a run does besides stepping (metrics, checkpoints: [`super::run_dir`];
//! learning curves: [`Trainer::learning_curve`]) is a callback of that loop.
//!
//! Determinism: parameters are initialised from `(seed, name)`; the data order of epoch `e` is
//! a permutation drawn from `(seed, e)`; nothing else is random. So a run's state is its
//! weights, the optimizer moments and the step number, which is what a checkpoint saves.

use super::adamw::AdamW;
use super::batch::Batch;
use super::conditioning::{Conditioning, dynamics_conditioning, world_conditioning};
use super::config::TrainConfig;
use super::data::Example;
use super::loss::{completion_loss, loss_weights};
use super::task::Task;
use crate::error::{Error, Result};
use crate::model::{Chameleon, Format, Model, ModelConfig, Role, Sequence};
use crate::nn::seeded_var_builder;
use crate::tokenize::{ImageCodec, TextTokenizer};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

/// Numbers of one optimizer step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct StepStats {
    /// 1-based number of the step just taken.
    pub step: usize,
    /// Mean training loss of the step's micro-batches.
    pub loss: f64,
    pub(crate) grad_norm: f64,
    pub(crate) lr: f64,
    /// Token positions processed (padding included).
    pub tokens: usize,
}

/// What the loop hands its callback after each step.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// The step's numbers.
    pub stats: StepStats,
    /// Token positions per second of the step (0 where there is no clock: the browser).
    pub tokens_per_s: f64,
    /// Mean held-out loss per task, when this step evaluated.
    pub eval: Option<Vec<(Task, f64)>>,
    /// The conditioning test on the held-out rows, when this step evaluated (and at least two
    /// rows are held out).
    pub conditioning: Option<Conditioning>,
}

/// How the weights of a run start.
pub enum Weights<'a> {
    /// Fresh parameters of this configuration, drawn from the run's seed.
    Fresh(&'a ModelConfig),
    /// A base checkpoint (dynaboot or HF Chameleon) for `roles`: every weight trains.
    #[cfg(feature = "fs")]
    Base(&'a crate::model::base::BaseModel, Vec<Role>),
    /// A frozen, memory-mapped base for `roles` with fresh LoRA adapters: only they train.
    #[cfg(feature = "fs")]
    Lora(
        &'a crate::model::base::BaseModel,
        Vec<Role>,
        crate::model::lora::LoraConfig,
    ),
}

/// A training run in memory: the model, the optimizer, the data and where the loop stands.
pub struct Trainer {
    /// The recipe.
    pub config: TrainConfig,
    /// The model's `config.json`.
    pub model_config: ModelConfig,
    pub(crate) backbone: Chameleon,
    varmap: VarMap,
    pub(super) opt: AdamW,
    format: Format,
    train: Vec<Example>,
    eval: Vec<Example>,
    /// One epoch's training examples before shuffling: each index as often as its family's
    /// `config.repeats` says (`0..train.len()` without repeats).
    stream: Vec<usize>,
    /// Optimizer steps taken.
    pub(super) step: usize,
    /// The data order of the current epoch: `(epoch, permutation of stream items)`.
    order: (usize, Vec<usize>),
    /// Set when fine-tuning a base with LoRA: only the adapters train.
    pub lora: Option<LoraRun>,
    /// Where `Trainer::fit` stops short of `config.steps` (with the held-out evaluation and,
    /// in [`Trainer::fit_to`], a checkpoint), keeping the learning-rate schedule of the whole
    /// run: a long run in parts, each resumed from the last.
    pub stop_after: Option<usize>,
}

/// A LoRA fine-tune: the adapter's config and the base it adapts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraRun {
    pub(crate) lora: crate::model::lora::LoraConfig,
    /// The base checkpoint folder (dynaboot or HF Chameleon).
    pub(crate) base: String,
    /// The taming VQGAN checkpoint that decodes the base's codes, recorded in the adapter.
    #[serde(default)]
    pub(crate) vqgan: Option<String>,
}

/// Dropout seed of micro-batch `micro` of step `step` (0-based).
fn dropout_seed(seed: u64, step: usize, micro: usize) -> u64 {
    crate::nn::init::fnv1a(format!("lora-dropout {seed} {step} {micro}").as_bytes()) >> 1
}

impl Trainer {
    /// A run over `train` (`eval` held out) whose weights start as `weights` says.
    pub fn new(
        weights: Weights,
        config: TrainConfig,
        train: Vec<Example>,
        eval: Vec<Example>,
        device: &Device,
    ) -> Result<Self> {
        let model_config = match &weights {
            Weights::Fresh(c) => (*c).clone(),
            #[cfg(feature = "fs")]
            Weights::Base(base, roles) | Weights::Lora(base, roles, _) => {
                base.model_config(roles.clone())
            }
        };
        Self::check(&model_config, &config, &train, &eval)?;
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, config.seed, DType::F32, device);
        let (backbone, lora) = match weights {
            Weights::Fresh(c) => (Chameleon::new(c.backbone.clone(), vb)?, None),
            #[cfg(feature = "fs")]
            Weights::Base(base, _) => {
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
            #[cfg(feature = "fs")]
            Weights::Lora(base, _, lora) => {
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
        };
        let vars = varmap
            .data()
            .lock()
            .expect("varmap lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let opt = AdamW::new(vars, config.optimizer.clone())?;
        let format = model_config.format();
        let stream = (0..train.len())
            .flat_map(|i| {
                let times = config.repeats.get(&train[i].family).copied().unwrap_or(1);
                std::iter::repeat_n(i, times)
            })
            .collect();
        Ok(Trainer {
            config,
            model_config,
            backbone,
            varmap,
            opt,
            format,
            train,
            eval,
            stream,
            step: 0,
            order: (usize::MAX, Vec::new()),
            lora,
            stop_after: None,
        })
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
        let foundation = config.foundation_tasks();
        if model_config.dynaboot.roles.is_empty() && foundation.is_empty() {
            return Err(Error::Invalid(
                "train at least one role (world, dynamics) or task of the foundation material \
                 (captions, drawings, transitions, changes)"
                    .into(),
            ));
        }
        if config.batch_size == 0 || config.grad_accum == 0 || config.steps == 0 {
            return Err(Error::Invalid(
                "steps, batch size and gradient accumulation must be at least 1".into(),
            ));
        }
        for (family, &times) in &config.repeats {
            if times == 0 {
                return Err(Error::Invalid(format!(
                    "the data mixture (`--repeat`, `repeats`) sees {family:?} 0 times: repeat a \
                     family at least once (drop its rows from the data instead)"
                )));
            }
        }
        let families = train.iter().map(|ex| ex.family.clone()).collect();
        check_mixture(config.repeats.keys(), &families)?;
        let format = model_config.format();
        for (i, ex) in train.iter().chain(eval).enumerate() {
            for role in &model_config.dynaboot.roles {
                format
                    .check_action(&ex.action, *role)
                    .map_err(|e| Error::Invalid(format!("example {i}: {e}")))?;
            }
        }
        if foundation.contains(&Task::Caption) || foundation.contains(&Task::Drawing) {
            for (i, ex) in train.iter().enumerate() {
                if ex.descriptions.is_empty() {
                    return Err(Error::Invalid(format!(
                        "training example {i} has no scene descriptions; captions and drawings \
                         need data whose rows carry `source_state` and `target_state` (the \
                         embedded world's, from `dynaboot world generate`)"
                    )));
                }
                for (d, image) in ex.descriptions.iter().zip([&ex.source, &ex.target]) {
                    format
                        .caption_sequence(image, d)
                        .map_err(|e| Error::Invalid(format!("training example {i}: {e}")))?;
                }
            }
            // Held-out rows are evaluated on their descriptions where they have them: checked
            // now, not at the first evaluation, when steps have been spent.
            for (i, ex) in eval.iter().enumerate() {
                for (d, image) in ex.descriptions.iter().zip([&ex.source, &ex.target]) {
                    format
                        .caption_sequence(image, d)
                        .map_err(|e| Error::Invalid(format!("held-out example {i}: {e}")))?;
                }
            }
        }
        if foundation.contains(&Task::Change) {
            for (i, ex) in train.iter().enumerate() {
                if ex.change.is_empty() {
                    return Err(Error::Invalid(format!(
                        "training example {i} has no change description; change captions need \
                         data whose rows carry `source_state` and `target_state` (the embedded \
                         world's, from `dynaboot world generate`)"
                    )));
                }
                format
                    .change_sequence(&ex.source, &ex.target, &ex.change)
                    .map_err(|e| Error::Invalid(format!("training example {i}: {e}")))?;
            }
            // Held-out rows are evaluated on their changes where they have them.
            for (i, ex) in eval
                .iter()
                .enumerate()
                .filter(|(_, ex)| !ex.change.is_empty())
            {
                format
                    .change_sequence(&ex.source, &ex.target, &ex.change)
                    .map_err(|e| Error::Invalid(format!("held-out example {i}: {e}")))?;
            }
        }
        Ok(())
    }

    /// The step this run's [`Trainer::fit`] ends at: `config.steps`, or `stop_after` if sooner.
    pub(crate) fn end(&self) -> usize {
        self.stop_after
            .map_or(self.config.steps, |s| s.min(self.config.steps))
    }

    /// Optimizer steps taken so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// Training examples (each once, however often a data mixture repeats it).
    pub fn training_rows(&self) -> usize {
        self.train.len()
    }

    /// Held-out examples.
    pub fn held_out_rows(&self) -> usize {
        self.eval.len()
    }

    fn roles(&self) -> &[Role] {
        &self.model_config.dynaboot.roles
    }

    /// The tasks every training example is seen in once per epoch.
    fn tasks(&self) -> Vec<Task> {
        let roles = self.roles().iter().map(|r| Task::Role(*r));
        roles.chain(self.config.foundation_tasks()).collect()
    }

    /// Stream item `k` (an (example, task) pair, in epoch order) and its epoch.
    pub(super) fn item(&mut self, k: usize) -> (usize, Task, usize) {
        let tasks = self.tasks();
        let n = self.stream.len() * tasks.len();
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
            self.stream[pair % self.stream.len()],
            tasks[pair / self.stream.len()],
            epoch,
        )
    }

    /// The sequence of `task` on `ex`; captions and drawings alternate between the source
    /// and the target scene from epoch to epoch.
    fn sequence(&self, ex: &Example, task: Task, epoch: usize) -> Result<Sequence> {
        let scene = |i: usize| {
            let side = (i + epoch) % ex.descriptions.len().max(1);
            let image = if side == 0 { &ex.source } else { &ex.target };
            (&ex.descriptions[side], image)
        };
        match task {
            Task::Role(Role::World) => self.format.world_sequence(
                &ex.source,
                &ex.action,
                &ex.target,
                Some(&loss_weights(
                    self.config.weighted,
                    self.config.weighting,
                    &ex.recognition_weights,
                )),
            ),
            Task::Role(Role::Dynamics) => self
                .format
                .dynamics_sequence(&ex.source, &ex.target, &ex.action),
            Task::Caption => {
                let (text, image) = scene(0);
                self.format.caption_sequence(image, text)
            }
            Task::Drawing => {
                let (text, image) = scene(1);
                self.format.drawing_sequence(text, image)
            }
            Task::Transition => self.format.transition_sequence(&ex.source, &ex.target),
            Task::Change => self
                .format
                .change_sequence(&ex.source, &ex.target, &ex.change),
        }
    }

    /// Sequences padded into one batch on the model's device.
    fn batch(&self, seqs: &[Sequence]) -> Result<Batch> {
        let pad = self.format.vocab.specials.pad;
        Ok(Batch::new(seqs, pad, self.backbone.device())?)
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
                    let (i, task, epoch) = self.item(k);
                    self.sequence(&self.train[i], task, epoch)
                })
                .collect::<Result<Vec<_>>>()?;
            let batch = self.batch(&seqs)?;
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

    /// Trains to `config.steps` from where the trainer stands. After every step `after_step`
    /// sees the trainer and the step's [`Progress`], with the held-out losses every
    /// `eval_every` steps and at the end.
    pub(crate) fn fit(
        &mut self,
        mut after_step: impl FnMut(&Trainer, &Progress) -> Result<()>,
    ) -> Result<()> {
        while self.step < self.end() {
            let seconds = stopwatch();
            let stats = self.step()?;
            let tokens_per_s = stats.tokens as f64 / seconds().max(1e-9);
            let c = &self.config;
            let due =
                (c.eval_every > 0 && stats.step % c.eval_every == 0) || stats.step == self.end();
            let eval = if due { Some(self.eval_loss()?) } else { None };
            let conditioning = if due { self.conditioning()? } else { None };
            let progress = Progress {
                stats,
                tokens_per_s,
                eval,
                conditioning,
            };
            after_step(self, &progress)?;
        }
        Ok(())
    }

    /// A learning curve: trains on to `config.steps` and, at `points` evenly spaced steps (the
    /// last one at the end), hands `visit` a snapshot of the model and the step. `tokenizers`
    /// gives each snapshot its own copy of the tokenizers. Returns the final model and the
    /// statistics of every step taken.
    pub fn learning_curve(
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
        self.fit(|trainer, p| {
            stats.push(p.stats);
            if at.contains(&p.stats.step) {
                let (vq, text) = tokenizers()?;
                let model = Arc::new(trainer.snapshot(vq, text)?);
                visit(model.clone(), p.stats.step)?;
                last = Some(model);
            }
            Ok(())
        })?;
        let model = match last {
            Some(m) => m,
            None => {
                let (vq, text) = tokenizers()?;
                Arc::new(self.snapshot(vq, text)?)
            }
        };
        Ok((model, stats))
    }

    /// Mean completion loss (unweighted) per task on the held-out examples (captions of their
    /// sources, drawings of their targets and their changes where they have descriptions).
    pub(crate) fn eval_loss(&self) -> Result<Vec<(Task, f64)>> {
        self.backbone.set_lora_seed(crate::model::lora::NO_DROPOUT);
        let described = self.eval.iter().all(|ex| !ex.descriptions.is_empty());
        let mut out = Vec::new();
        for task in self.tasks() {
            if matches!(task, Task::Caption | Task::Drawing | Task::Change) && !described {
                continue;
            }
            let (mut sum, mut n) = (0.0, 0);
            for chunk in self.eval.chunks(self.config.batch_size.max(1)) {
                let seqs = chunk
                    .iter()
                    .map(|ex| match task {
                        Task::Role(Role::World) => self
                            .format
                            .world_sequence(&ex.source, &ex.action, &ex.target, None),
                        _ => self.sequence(ex, task, 0),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let batch = self.batch(&seqs)?;
                sum += completion_loss(&self.backbone, &batch)?.to_scalar::<f32>()? as f64
                    * chunk.len() as f64;
                n += chunk.len();
            }
            if n > 0 {
                out.push((task, sum / n as f64));
            }
        }
        Ok(out)
    }

    /// The conditioning test on the held-out examples for the roles trained (`None` with
    /// fewer than two held out).
    pub(crate) fn conditioning(&self) -> Result<Option<Conditioning>> {
        if self.eval.len() < 2 {
            return Ok(None);
        }
        let (b, f, rows) = (&self.backbone, &self.format, &self.eval);
        let roles = self.roles();
        Ok(Some(Conditioning {
            world: roles
                .contains(&Role::World)
                .then(|| world_conditioning(b, f, rows))
                .transpose()?,
            dynamics: roles
                .contains(&Role::Dynamics)
                .then(|| dynamics_conditioning(b, f, rows))
                .transpose()?,
        }))
    }

    /// The trained weights under HF names, as `model.safetensors` stores them.
    pub(crate) fn tensors(&self) -> Vec<(String, Tensor)> {
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
                seqs.push(self.sequence(ex, Task::Role(role), 0)?);
            }
        }
        let batch = self.batch(&seqs)?;
        Ok(completion_loss(&self.backbone, &batch)?)
    }
}

/// A clock started now: seconds since (always 0 in the browser, which has no clock here).
fn stopwatch() -> impl Fn() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let start = std::time::Instant::now();
        move || start.elapsed().as_secs_f64()
    }
    #[cfg(target_arch = "wasm32")]
    {
        || 0.0
    }
}

/// What makes two examples the same row: both images and the action.
fn row_key(e: &Example) -> (&[u32], &[u32], &[u32]) {
    (&e.source, &e.target, &e.action)
}

/// Splits off `n` held-out examples, chosen by the seed. The held-out rows are distinct and
/// none is repeated among the training rows (a duplicated row would be scored on what it was
/// trained on); at least one distinct row is left to train on.
pub fn hold_out(mut examples: Vec<Example>, n: usize, seed: u64) -> (Vec<Example>, Vec<Example>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xe7a1);
    examples.shuffle(&mut rng);
    let distinct = examples.iter().map(row_key).collect::<HashSet<_>>().len();
    let n = n.min(distinct.saturating_sub(1));
    // Held-out rows from the end, in their order; the training rows before them.
    let cut = {
        let mut held = HashSet::new();
        let mut cut = examples.len();
        while held.len() < n {
            cut -= 1;
            held.insert(row_key(&examples[cut]));
        }
        cut
    };
    let tail = examples.split_off(cut);
    let first_of_its_kind: Vec<bool> = {
        let mut seen = HashSet::new();
        tail.iter().map(|e| seen.insert(row_key(e))).collect()
    };
    {
        let held: HashSet<_> = tail.iter().map(row_key).collect();
        examples.retain(|e| !held.contains(&row_key(e)));
    }
    let eval = tail
        .into_iter()
        .zip(first_of_its_kind)
        .filter_map(|(e, first)| first.then_some(e))
        .collect();
    (examples, eval)
}

/// Refuses a data mixture that repeats a family 0 times or names one the data does not have
/// (checked on the rows before a run starts, and by [`Trainer::new`] on its examples).
pub(crate) fn check_mixture<'a>(
    mixture: impl IntoIterator<Item = &'a String>,
    families: &BTreeSet<String>,
) -> Result<()> {
    for family in mixture {
        if !families.contains(family) {
            return Err(Error::Invalid(format!(
                "the data mixture (`--repeat`, `repeats`) names the family {family:?}, which \
                 no training example has; the training data's families are {}",
                families.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(())
}

/// How many of the `eval` rows are also training rows (their held-out loss measures memory).
pub fn rows_also_trained_on(train: &[Example], eval: &[Example]) -> usize {
    let trained: HashSet<_> = train.iter().map(row_key).collect();
    eval.iter()
        .filter(|e| trained.contains(&row_key(e)))
        .count()
}
