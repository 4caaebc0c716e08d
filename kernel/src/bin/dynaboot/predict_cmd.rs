//! `dynaboot predict` (the world model, with best-of-N verification by a dynamics model) and
//! `dynaboot explain` (the dynamics model).

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Args;
use dynaboot::files::{load_model_image, save_png, write_atomic};
use dynaboot::model::{DynamicsModel, Model, Sampling, Verifier, WorldModel};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args)]
pub struct SamplingArgs {
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// 1 as in the paper (lower temperatures copy the source); 0 is greedy.
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Keep the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
}

impl SamplingArgs {
    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
        }
    }
}

#[derive(Args)]
pub struct PredictArgs {
    /// World-model checkpoint.
    #[arg(long)]
    world: PathBuf,
    /// Source image (RGB PNG or JPEG of the tokenizer's size).
    #[arg(long)]
    image: PathBuf,
    #[arg(long)]
    action: String,
    /// Candidates to sample.
    #[arg(long, default_value_t = 8)]
    n: usize,
    /// Dynamics-model checkpoint that ranks the candidates (may be the world checkpoint when
    /// it was trained for both roles).
    #[arg(long)]
    verify: Option<PathBuf>,
    #[arg(long, default_value = "out/predict")]
    out: PathBuf,
    #[command(flatten)]
    sampling: SamplingArgs,
}

pub fn load(path: &Path) -> Result<Arc<Model>> {
    Ok(Arc::new(
        Model::load(path, &Device::Cpu).with_context(|| format!("loading {}", path.display()))?,
    ))
}

pub fn predict(a: PredictArgs) -> Result<()> {
    let world = WorldModel::new(load(&a.world)?)?;
    let size = world.model.vq.image_size() as u32;
    let source = load_model_image(&a.image, size)?;
    let sampling = a.sampling.sampling();
    let mut rows = Vec::new();
    let (ranked, verified) = match &a.verify {
        Some(path) => {
            let dynamics = DynamicsModel::new(if path == &a.world {
                world.model.clone()
            } else {
                load(path)?
            })?;
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
    /// Dynamics-model checkpoint.
    #[arg(long)]
    dynamics: PathBuf,
    #[arg(long)]
    before: PathBuf,
    #[arg(long)]
    after: PathBuf,
    /// Sample the action instead of decoding greedily.
    #[arg(long)]
    sample: bool,
    #[command(flatten)]
    sampling: SamplingArgs,
}

pub fn explain(a: ExplainArgs) -> Result<()> {
    let dynamics = DynamicsModel::new(load(&a.dynamics)?)?;
    let size = dynamics.model.vq.image_size() as u32;
    let before = load_model_image(&a.before, size)?;
    let after = load_model_image(&a.after, size)?;
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
