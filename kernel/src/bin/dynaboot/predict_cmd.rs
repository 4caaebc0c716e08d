//! `dynaboot predict` (the world model, with best-of-N verification by a dynamics model) and
//! `dynaboot explain` (the dynamics model, its proposals checked by a world model when one is
//! given).

use anyhow::{Context, Result, bail};
use candle_core::Device;
use clap::Args;
use dynaboot::files::{load_model_image, load_rgb_image, save_png, write_atomic};
use dynaboot::model::base::load_model;
use dynaboot::model::{
    DynamicsModel, ExplainConfig, Explainer, Model, Sampling, Verifier, WorldModel,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args)]
pub struct SamplingArgs {
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// 1 as in the paper (lower temperatures copy the source); 0 is greedy.
    #[arg(long, default_value_t = 1.0, value_parser = crate::args::temperature)]
    temperature: f64,
    /// Keep the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0, value_parser = crate::args::top_k)]
    top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1 = all).
    #[arg(long, default_value_t = 1.0, value_parser = crate::args::top_p)]
    top_p: f64,
}

/// How a world model checks the dynamics model's explanations.
#[derive(Args)]
pub struct CheckArgs {
    /// Explanations the dynamics model proposes per pair for the world model to check: its
    /// greedy reading and samples at temperature 1 (1 to 64).
    #[arg(long, default_value_t = ExplainConfig::default().proposals, value_parser = crate::args::proposals)]
    proposals: usize,
    /// Weight of the world model's log p(target | source, action) against the dynamics
    /// model's log p(action | source, target) in the ranking.
    #[arg(long, default_value_t = ExplainConfig::default().world_weight, value_parser = crate::args::weight)]
    world_weight: f32,
}

impl CheckArgs {
    /// The configuration, the samples drawn from `seed`.
    pub fn config(&self, seed: u64) -> ExplainConfig {
        ExplainConfig {
            proposals: self.proposals,
            world_weight: self.world_weight,
            sampling: Sampling {
                seed,
                ..Sampling::default()
            },
        }
    }
}

impl SamplingArgs {
    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
            ..Sampling::default()
        }
    }
}

/// A model given as a dynaboot checkpoint, or as a base (dynaboot or HF Chameleon) with an
/// optional LoRA adapter.
#[derive(Args, Clone)]
pub struct BaseArgs {
    /// Base checkpoint: a dynaboot checkpoint or an HF Chameleon/Anole folder.
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// LoRA adapter folder trained on --base (`dynaboot train --base ... --lora ...`).
    #[arg(long, requires = "base")]
    pub adapter: Option<PathBuf>,
    /// Taming VQGAN checkpoint with the image decoder of an HF Chameleon base (Anole ships
    /// it as `tokenizer/vqgan.ckpt`); HF folders hold only the encoder.
    #[arg(long, requires = "base")]
    pub vqgan: Option<PathBuf>,
    /// `cpu`, or `cuda` / `cuda:N` (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl BaseArgs {
    /// The model at `checkpoint`, or --base with --adapter.
    pub fn load(&self, checkpoint: Option<&Path>) -> Result<Arc<Model>> {
        let device = crate::device(&self.device)?;
        match (checkpoint, &self.base) {
            (Some(c), None) => Ok(Arc::new(
                Model::load(c, &device).with_context(|| format!("loading {}", c.display()))?,
            )),
            (None, Some(b)) => Ok(Arc::new(
                load_model(b, self.adapter.as_deref(), self.vqgan.as_deref(), &device)
                    .with_context(|| format!("loading --base {}", b.display()))?,
            )),
            (Some(_), Some(_)) => bail!("give either a checkpoint or --base, not both"),
            (None, None) => bail!("give a checkpoint or --base DIR [--adapter DIR]"),
        }
    }
}

#[derive(Args)]
pub struct PredictArgs {
    /// World-model checkpoint (or --base with --adapter).
    #[arg(long, required_unless_present = "base")]
    world: Option<PathBuf>,
    #[command(flatten)]
    model: BaseArgs,
    /// Source image (RGB PNG or JPEG of the tokenizer's size).
    #[arg(long)]
    image: PathBuf,
    #[arg(long)]
    action: String,
    /// Candidates to sample (1 to 1024).
    #[arg(long, default_value_t = 8, value_parser = crate::args::candidates)]
    n: usize,
    /// Dynamics-model checkpoint that ranks the candidates (may be the world checkpoint when
    /// it was trained for both roles).
    #[arg(long)]
    verify: Option<PathBuf>,
    /// A dynamics-model LoRA adapter on the same --base that ranks the candidates.
    #[arg(long, requires = "base", conflicts_with = "verify")]
    verify_adapter: Option<PathBuf>,
    #[arg(long, default_value = "out/predict")]
    out: PathBuf,
    /// Replace an earlier prediction in --out (its candidates and predictions.json).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    sampling: SamplingArgs,
}

/// The files an earlier `predict` wrote into `out`: refused unless `force`, then removed, so
/// that no stale candidate of a larger N is left beside the new `predictions.json`.
fn clear_earlier_prediction(out: &Path, force: bool) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(());
    };
    let is_ours = |name: &str| {
        name == "predictions.json"
            || name
                .strip_prefix("candidate-")
                .and_then(|r| r.strip_suffix(".png"))
                .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut earlier: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_ours))
        .collect();
    earlier.sort();
    Ok(dynaboot::files::clear_earlier_output(
        out,
        &earlier,
        "an earlier prediction",
        None,
        force,
    )?)
}

/// An input image for `model`: any size when its tokenizer resizes (Chameleon's), else
/// exactly the tokenizer's size.
fn read_image(model: &Model, path: &Path) -> Result<image::RgbImage> {
    Ok(if model.vq.resizes() {
        load_rgb_image(path)?
    } else {
        load_model_image(path, model.vq.image_size() as u32)?
    })
}

pub fn load(path: &Path) -> Result<Arc<Model>> {
    Ok(Arc::new(
        Model::load(path, &Device::Cpu).with_context(|| format!("loading {}", path.display()))?,
    ))
}

pub fn predict(a: PredictArgs) -> Result<()> {
    clear_earlier_prediction(&a.out, a.force)?;
    let world = WorldModel::new(a.model.load(a.world.as_deref())?).context("--world")?;
    let source = read_image(&world.model, &a.image)?;
    let sampling = a.sampling.sampling();
    let mut rows = Vec::new();
    let verifier = match (&a.verify, &a.verify_adapter) {
        (Some(path), _) if Some(path) == a.world.as_ref() => Some(world.model.clone()),
        (Some(path), _) => Some(load(path)?),
        (None, Some(adapter)) if Some(adapter) == a.model.adapter.as_ref() => {
            Some(world.model.clone())
        }
        (None, Some(adapter)) => Some(
            BaseArgs {
                adapter: Some(adapter.clone()),
                ..a.model.clone()
            }
            .load(None)?,
        ),
        (None, None) => None,
    };
    let (ranked, verified) = match verifier {
        Some(model) => {
            let dynamics = DynamicsModel::new(model).context("--verify")?;
            let v = Verifier::new(&world, &dynamics)?;
            let ranked = v.best_of_n(&source, &a.action, a.n, &sampling)?;
            (
                ranked
                    .into_iter()
                    .map(|r| (r.sample, r.image, Some(r.score)))
                    .collect::<Vec<_>>(),
                true,
            )
        }
        None => (
            world
                .sample(&source, &a.action, a.n, &sampling)?
                .into_iter()
                .enumerate()
                .map(|(i, c)| (i, c.image, None))
                .collect(),
            false,
        ),
    };
    for (rank, (sample, image, score)) in ranked.iter().enumerate() {
        let file = format!("candidate-{rank}.png");
        save_png(&a.out.join(&file), image)?;
        println!(
            "{rank}: sample {sample}{} -> {}",
            score
                .map(|s| format!(", log p(action) {:.3} ({:.3} per token)", s.sum, s.mean))
                .unwrap_or_default(),
            a.out.join(&file).display()
        );
        rows.push(serde_json::json!({
            "rank": rank, "sample": sample, "file": file,
            "log_prob": score.map(|s| s.sum), "log_prob_per_token": score.map(|s| s.mean),
        }));
    }
    let json = serde_json::json!({
        "action": a.action, "image": a.image, "n": a.n, "verified": verified,
        "sampling": sampling, "candidates": rows,
    });
    let path = a.out.join("predictions.json");
    write_atomic(&path, serde_json::to_string_pretty(&json)?.as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}

#[derive(Args)]
pub struct ExplainArgs {
    /// Dynamics-model checkpoint (or --base with --adapter).
    #[arg(long, required_unless_present = "base")]
    dynamics: Option<PathBuf>,
    #[command(flatten)]
    model: BaseArgs,
    #[arg(long)]
    before: PathBuf,
    #[arg(long)]
    after: PathBuf,
    /// World-model checkpoint that checks the dynamics model's proposals: the explanation
    /// printed is the best of --proposals by both models' log-likelihoods.
    #[arg(long, conflicts_with = "sample")]
    world: Option<PathBuf>,
    #[command(flatten)]
    check: CheckArgs,
    /// Sample the action instead of decoding greedily.
    #[arg(long)]
    sample: bool,
    #[command(flatten)]
    sampling: SamplingArgs,
}

pub fn explain(a: ExplainArgs) -> Result<()> {
    let dynamics =
        DynamicsModel::new(a.model.load(a.dynamics.as_deref())?).context("--dynamics")?;
    let before = read_image(&dynamics.model, &a.before)?;
    let after = read_image(&dynamics.model, &a.after)?;
    if let Some(w) = &a.world {
        let world = WorldModel::new(load(w)?).context("--world")?;
        let explainer = Explainer::new(&dynamics, &world)?;
        let ranked = explainer.explain(&before, &after, &a.check.config(a.sampling.seed()))?;
        println!("{}", ranked[0].text);
        println!(
            "best of {} distinct proposals ({} asked for), by log p(action | before, after) + {} x log p(after | before, action):",
            ranked.len(),
            a.check.proposals,
            a.check.world_weight
        );
        for (rank, e) in ranked.iter().enumerate() {
            let c = &e.checked;
            println!(
                "  {}. {:<48} dynamics {:8.3}  world {:9.3}  combined {:9.3}  (proposal {})",
                rank + 1,
                e.text,
                c.dynamics.sum,
                c.world.sum,
                c.combined,
                c.proposal
            );
        }
        return Ok(());
    }
    let sampling = if a.sample {
        a.sampling.sampling()
    } else {
        Sampling::greedy()
    };
    let e = dynamics.explain(&before, &after, &sampling)?;
    println!("{}", e.text);
    println!(
        "log-likelihood {:.3} ({:.3} per token, {} tokens + <eos>)",
        e.score.sum,
        e.score.mean,
        e.tokens.len()
    );
    Ok(())
}
