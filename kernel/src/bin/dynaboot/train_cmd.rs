//! `dynaboot train`: fine-tune the backbone into a world model, a dynamics model, or both on
//! one set of weights, from AURORA-format data and the shipped (or given) tokenizers.

use crate::progress::bar;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use dynaboot::model::Role;
use dynaboot::model::base::BaseModel;
use dynaboot::model::lora::LoraConfig;
use dynaboot::tokenize::{ImageCodec, ImageTokenizer, TextTokenizer};
use dynaboot::train::checkpoint::{METRICS_FILE, STATE_FILE};
use dynaboot::train::data::load_examples;
use dynaboot::train::{
    Overrides, Preset, Trainer, Weighting, Weights, hold_out, rows_also_trained_on,
};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    World,
    Dynamics,
    /// One set of weights for both roles (told apart by task tokens).
    Both,
    /// No role: a foundation to fine-tune, pretrained on the data's images without their
    /// actions (scene captions, drawings and transitions; implies those three flags).
    Foundation,
}

impl RoleArg {
    fn roles(self) -> Vec<Role> {
        match self {
            RoleArg::World => vec![Role::World],
            RoleArg::Dynamics => vec![Role::Dynamics],
            RoleArg::Both => vec![Role::World, Role::Dynamics],
            RoleArg::Foundation => vec![],
        }
    }
}

#[derive(Args)]
pub struct TrainArgs {
    #[arg(long, value_enum)]
    role: RoleArg,
    /// AURORA-format folder (or json file) of labelled triplets; repeat it to train on
    /// several (concatenated in the order given).
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// Extra triplets, e.g. annotated by a dynamics model (task `synthetic`).
    #[arg(long)]
    synthetic: Option<PathBuf>,
    /// λ of the recognition-weighted loss: weight = (1 - λ) + λ·change (0 = plain loss).
    #[arg(long, default_value_t = 0.0, value_parser = crate::args::fraction)]
    weighted: f64,
    /// Where a change's weight lands: on its own position (target, the paper's) or on the
    /// positions drawn after it (causal: the weight depends only on what the model is given,
    /// so the loss does not tilt the model towards redrawing).
    #[arg(long, value_enum)]
    weighting: Option<Weighting>,
    /// Also train describing the images in words (scene captions; needs the embedded
    /// world's data, whose rows carry the scenes).
    #[arg(long)]
    captions: bool,
    /// Also train drawing the images from their descriptions.
    #[arg(long)]
    drawings: bool,
    /// Also train predicting each target image from its source without the action.
    #[arg(long)]
    transitions: bool,
    /// Also train describing what changed between each pair's images, naming no action
    /// (change captions; needs the embedded world's data). Not implied by `--role foundation`.
    #[arg(long)]
    changes: bool,
    /// A data mixture, e.g. `whatsup=2`: every example of that family (task) is seen twice
    /// per epoch, the others once; repeat the flag for several families.
    #[arg(long = "repeat", value_name = "FAMILY=TIMES", value_parser = crate::args::repeat)]
    repeats: Vec<(String, usize)>,
    #[arg(long, value_enum, default_value = "demo")]
    preset: Preset,
    /// Fine-tune this checkpoint instead of training a fresh `--preset` model: a dynaboot
    /// checkpoint folder or an HF Chameleon/Anole folder (config.json, model*.safetensors,
    /// tokenizer.json). Its own tokenizers are used.
    #[arg(long)]
    base: Option<PathBuf>,
    /// Train LoRA adapters on the frozen --base, e.g. `r=16,alpha=32,dropout=0.05`
    /// (the paper's defaults; `targets=q_proj+v_proj` picks projections). Without it,
    /// --base is fine-tuned in full.
    #[arg(long, requires = "base")]
    lora: Option<String>,
    /// Taming VQGAN checkpoint that decodes an HF Chameleon base's images (recorded in the
    /// adapter, so `predict --world ADAPTER` can draw).
    #[arg(long, requires = "base")]
    vqgan: Option<PathBuf>,
    /// `cpu`, or `cuda` / `cuda:N` (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Checkpoint folder.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run saved in --out.
    #[arg(long)]
    resume: bool,
    /// Replace the run already saved in --out (without it, a fresh run refuses to
    /// overwrite one).
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Folder with `vq/` and `tokenizer.json`.
    #[arg(long, default_value = "models")]
    tokenizers: PathBuf,
    /// Held-out AURORA folder for periodic evaluation (default: hold out part of --data).
    #[arg(long)]
    eval: Option<PathBuf>,
    /// Examples held out of --data when --eval is not given.
    #[arg(long, default_value_t = 32)]
    eval_examples: usize,
    #[arg(long, value_parser = crate::args::at_least_one)]
    steps: Option<usize>,
    /// Sequences per micro-batch (1 to 1024).
    #[arg(long, value_parser = crate::args::batch)]
    batch: Option<usize>,
    /// Micro-batches per optimizer step (1 to 1024).
    #[arg(long, value_parser = crate::args::batch)]
    accum: Option<usize>,
    #[arg(long, value_parser = crate::args::learning_rate)]
    lr: Option<f64>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    eval_every: Option<usize>,
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Stop with a checkpoint after this step, keeping the learning-rate schedule of --steps
    /// (a long run in parts: `--resume` continues it).
    #[arg(long)]
    stop_after: Option<usize>,
}

/// Refuses a `--repeat` family that no `--data` or `--synthetic` row has, before anything is written (the
/// trainer checks the same on the tokenised examples).
fn check_repeats(a: &TrainArgs) -> Result<()> {
    if a.repeats.is_empty() {
        return Ok(());
    }
    let mut present = std::collections::BTreeSet::new();
    for dir in a.data.iter().chain(&a.synthetic) {
        let ds = dynaboot::data::AuroraDataset::load(dir)
            .with_context(|| format!("--data {}", dir.display()))?;
        present.extend(ds.rows.into_iter().map(|r| r.task));
    }
    for (family, _) in &a.repeats {
        if !present.contains(family) {
            bail!(
                "--repeat: the data mixture names the family {family:?}, which no training \
                 example has; the training data's families are {}",
                present.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(())
}

pub fn run(a: TrainArgs) -> Result<()> {
    // Checked before anything is read or written: a refused --resume leaves no folder and no
    // token cache behind.
    if a.resume && !a.out.join(STATE_FILE).exists() {
        bail!(
            "--resume: {} has no {STATE_FILE}; start without --resume",
            a.out.display()
        );
    }
    check_repeats(&a)?;
    if !a.resume {
        clear_earlier_run(&a.out, a.force)?;
    }
    let device = crate::device(&a.device)?;
    let lora = a.lora.as_deref().map(LoraConfig::parse).transpose()?;
    let base = a
        .base
        .as_deref()
        .map(|b| {
            BaseModel::open(b, a.vqgan.as_deref(), crate::base_dtype(&device), &device)
                .with_context(|| format!("--base {}", b.display()))
        })
        .transpose()?;
    let vq_dir = a.tokenizers.join("vq");
    let (vq_own, fingerprint, text) = match &base {
        Some(b) => (None, b.meta.vq_fingerprint.clone(), b.text.clone()),
        None => {
            let hint = || {
                format!(
                    "--tokenizers {}: give the folder `dynaboot tokenizer train --out` wrote (vq/ \
                     and tokenizer.json; the shipped ones are models/ of the repository)",
                    a.tokenizers.display()
                )
            };
            (
                Some(ImageCodec::from(
                    ImageTokenizer::load(&vq_dir, &device).with_context(hint)?,
                )),
                dynaboot::model::checkpoint::vq_fingerprint(&vq_dir).with_context(hint)?,
                TextTokenizer::load(&a.tokenizers.join("tokenizer.json")).with_context(hint)?,
            )
        }
    };
    let vq = match (&base, &vq_own) {
        (Some(b), _) => &b.vq,
        (None, Some(v)) => v,
        (None, None) => unreachable!("one of the two is set above"),
    };

    let mut examples = Vec::new();
    for dir in &a.data {
        examples.extend(load_examples(dir, vq, &fingerprint, &text)?);
    }
    if let Some(s) = &a.synthetic {
        let extra = load_examples(s, vq, &fingerprint, &text)?;
        println!(
            "{} labelled + {} synthetic examples",
            examples.len(),
            extra.len()
        );
        examples.extend(extra);
    }
    let (train, eval) = match &a.eval {
        Some(dir) => {
            let eval = load_examples(dir, vq, &fingerprint, &text)?;
            let both = rows_also_trained_on(&examples, &eval);
            if both > 0 {
                eprintln!(
                    "warning: {both} of the {} rows of --eval {} are also training rows; their \
                     held-out loss measures memory (hold out a split generated with another seed)",
                    eval.len(),
                    dir.display()
                );
            }
            (examples, eval)
        }
        None => hold_out(examples, a.eval_examples, a.seed),
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    // Half-written files of a run killed during a checkpoint write.
    dynaboot::files::remove_stale_temps(&a.out)?;

    let mut trainer = if a.resume {
        let t = Trainer::resume(&a.out, train, eval, a.steps, &device)?;
        if t.model_config.dynaboot.roles != a.role.roles() {
            bail!(
                "--resume: the checkpoint in {} trains {:?}, not {:?}",
                a.out.display(),
                t.model_config.dynaboot.roles,
                a.role.roles()
            );
        }
        println!("resuming at step {} of {}", t.step_count(), t.config.steps);
        t
    } else {
        let model_config = match &base {
            Some(b) => b.model_config(a.role.roles()),
            None => {
                let vq_path = dynaboot::files::relative_path(&a.out, &vq_dir)?
                    .to_string_lossy()
                    .into_owned();
                a.preset
                    .model_config(a.role.roles(), &text, vq, vq_path, fingerprint.clone())?
            }
        };
        let foundation = a.role == RoleArg::Foundation;
        let config = a.preset.train().with(&Overrides {
            steps: a.steps,
            batch_size: a.batch,
            grad_accum: a.accum,
            lr: a.lr,
            weighted: Some(a.weighted),
            weighting: a.weighting,
            seed: Some(a.seed),
            captions: Some(a.captions || foundation),
            drawings: Some(a.drawings || foundation),
            transitions: Some(a.transitions || foundation),
            changes: Some(a.changes),
            repeats: Some(a.repeats.iter().cloned().collect()),
            eval_every: a.eval_every,
            checkpoint_every: a.checkpoint_every,
            ..Overrides::default()
        });
        println!(
            "training {:?} ({} parameters{}) on {} examples, {} held out",
            model_config.dynaboot.roles,
            model_config.backbone.parameter_count(),
            match (&base, &lora) {
                (Some(b), Some(l)) => format!(
                    ", frozen, from {}; LoRA r={} alpha={} on {}",
                    b.dir.display(),
                    l.r,
                    l.lora_alpha,
                    l.target_modules.join("+")
                ),
                (Some(b), None) => format!(", all trained, from {}", b.dir.display()),
                _ => String::new(),
            },
            train.len(),
            eval.len()
        );
        let weights = match (&base, lora) {
            (Some(b), Some(lora)) => Weights::Lora(b, a.role.roles(), lora),
            (Some(b), None) => Weights::Base(b, a.role.roles()),
            (None, _) => Weights::Fresh(&model_config),
        };
        Trainer::new(weights, config, train, eval, &device)?
    };
    if trainer.lora.is_some() {
        let n: usize = trainer
            .parameters()
            .iter()
            .map(|(_, t)| t.elem_count())
            .sum();
        println!("adapters only: {n} trainable parameters");
    }
    trainer.stop_after = a.stop_after;
    fit(&mut trainer, &a.out, &text)
}

/// A fresh run into a folder that holds an earlier run would replace its weights and its log:
/// refused, unless `force`, and then the earlier run's files go first, so that a run stopped
/// early never leaves the old weights beside the new log.
fn clear_earlier_run(out: &Path, force: bool) -> Result<()> {
    const RUN_FILES: [&str; 6] = [
        "model.safetensors",
        "adapter_model.safetensors",
        STATE_FILE,
        METRICS_FILE,
        "config.json",
        "adapter_config.json",
    ];
    for f in RUN_FILES.iter().filter(|f| out.join(f).exists()) {
        if !force {
            bail!(
                "--out {} already holds a run ({f}); pass --resume to continue it, --force to \
                 replace it, or choose another --out",
                out.display()
            );
        }
        std::fs::remove_file(out.join(f))
            .with_context(|| format!("removing {}", out.join(f).display()))?;
    }
    Ok(())
}

fn fit(trainer: &mut Trainer, out: &Path, text: &TextTokenizer) -> Result<()> {
    let t0 = std::time::Instant::now();
    let pb = bar(trainer.config.steps, "train");
    pb.set_position(trainer.step_count() as u64);
    trainer.fit_to(out, text, |p| {
        let (s, tps) = (&p.stats, p.tokens_per_s);
        pb.set_position(s.step as u64);
        pb.set_message(format!("loss {:.3} {:.0} tok/s", s.loss, tps));
        let evals = p
            .eval
            .as_ref()
            .map(|e| {
                e.iter()
                    .map(|(r, l)| format!(" eval {} {l:.3}", r.name()))
                    .collect::<String>()
            })
            .unwrap_or_default();
        let reads = p
            .conditioning
            .map(|c| {
                let w = c.world.map(|w| {
                    format!(
                        "; unchanged tokens {:.3} (shuffled source {:.3})",
                        w.unchanged_true, w.unchanged_shuffled
                    )
                });
                let d = c.dynamics.map(|d| {
                    format!(
                        "; action {:.3} (shuffled target {:.3})",
                        d.action_true, d.action_shuffled
                    )
                });
                w.unwrap_or_default() + &d.unwrap_or_default()
            })
            .unwrap_or_default();
        if !evals.is_empty() {
            let line = format!("step {}: loss {:.3}{evals}{reads}", s.step, s.loss);
            if pb.is_hidden() {
                eprintln!("{line}");
            } else {
                pb.println(line);
            }
        } else if pb.is_hidden() && s.step % 50 == 0 {
            eprintln!("step {}: loss {:.3} {:.0} tok/s", s.step, s.loss, tps);
        }
    })?;
    pb.finish_and_clear();
    println!(
        "trained to step {} in {:.0}s -> {}",
        trainer.step_count(),
        t0.elapsed().as_secs_f64(),
        out.display()
    );
    if trainer.step_count() < trainer.config.steps {
        println!(
            "stopped at step {} of {} (--stop-after); the same command with --resume continues the run",
            trainer.step_count(),
            trainer.config.steps
        );
    }
    Ok(())
}
