//! `dynaboot train`: fine-tune the backbone into a world model, a dynamics model, or both on
//! one set of weights, from AURORA-format data and the shipped (or given) tokenizers.

use crate::progress::bar;
use anyhow::Result;
use clap::{Args, ValueEnum};
use dynaboot::model::Role;
use dynaboot::model::lora::LoraConfig;
use dynaboot::tokenize::TextTokenizer;
use dynaboot::train::{
    Data, HeldOut, OpenedRun, Overrides, Preset, RunSpec, Start, Trainer, Weighting,
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
    /// Folder with `vq/` and `tokenizer.json` (default: the shipped models' folder; a --base
    /// brings its own).
    #[arg(long)]
    tokenizers: Option<PathBuf>,
    /// Held-out AURORA folder for periodic evaluation (default: hold out part of --data).
    #[arg(long)]
    eval: Option<PathBuf>,
    /// Examples held out of --data when --eval is not given.
    #[arg(long, default_value_t = 32, value_parser = crate::args::count_or_zero)]
    eval_examples: usize,
    #[arg(long, value_parser = crate::args::steps)]
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
    #[arg(long, value_parser = crate::args::every)]
    eval_every: Option<usize>,
    #[arg(long, value_parser = crate::args::every)]
    checkpoint_every: Option<usize>,
    /// Stop with a checkpoint after this step, keeping the learning-rate schedule of --steps
    /// (a long run in parts: `--resume` continues it).
    #[arg(long, value_parser = crate::args::steps)]
    stop_after: Option<usize>,
}

pub fn run(a: TrainArgs) -> Result<()> {
    let device = crate::device(&a.device)?;
    let lora = a.lora.as_deref().map(LoraConfig::parse).transpose()?;
    let start = match (a.resume, &a.base, &lora) {
        (true, _, _) => Start::Resume,
        (false, Some(dir), Some(lora)) => Start::Lora {
            dir: dir.clone(),
            vqgan: a.vqgan.clone(),
            lora: lora.clone(),
        },
        (false, Some(dir), None) => Start::Base {
            dir: dir.clone(),
            vqgan: a.vqgan.clone(),
        },
        (false, None, _) => Start::Fresh,
    };
    let foundation = a.role == RoleArg::Foundation;
    let spec = RunSpec {
        roles: a.role.roles(),
        start,
        data: Data::Folders {
            labelled: a.data.clone(),
            synthetic: a.synthetic.clone(),
        },
        eval: match &a.eval {
            Some(dir) => HeldOut::Folder(dir.clone()),
            None => HeldOut::FromData(a.eval_examples),
        },
        preset: a.preset,
        overrides: Overrides {
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
        },
        tokenizers: a.tokenizers.clone(),
        out: Some(a.out.clone()),
        replace: a.force,
    };
    let OpenedRun {
        mut trainer,
        text,
        labelled,
        synthetic,
        held_out_also_trained,
    } = spec.open(&device)?;
    if a.synthetic.is_some() {
        println!("{labelled} labelled + {synthetic} synthetic examples");
    }
    if let (Some(dir), both @ 1..) = (&a.eval, held_out_also_trained) {
        eprintln!(
            "warning: {both} of the {} rows of --eval {} are also training rows; their \
             held-out loss measures memory (hold out a split generated with another seed)",
            trainer.held_out_rows(),
            dir.display()
        );
    }
    let config = &trainer.model_config;
    if a.resume {
        println!(
            "resuming at step {} of {}",
            trainer.step_count(),
            trainer.config.steps
        );
    } else {
        println!(
            "training {:?} ({} parameters{}) on {} examples, {} held out",
            config.dynaboot.roles,
            config.backbone.parameter_count(),
            match (&a.base, &lora) {
                (Some(b), Some(l)) => format!(
                    ", frozen, from {}; LoRA r={} alpha={} on {}",
                    b.display(),
                    l.r,
                    l.lora_alpha,
                    l.target_modules.join("+")
                ),
                (Some(b), None) => format!(", all trained, from {}", b.display()),
                _ => String::new(),
            },
            trainer.training_rows(),
            trainer.held_out_rows()
        );
    }
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
