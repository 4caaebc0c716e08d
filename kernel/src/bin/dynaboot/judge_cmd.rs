//! `dynaboot judge --vlm URL --model NAME`: a world model's predictions (best of n with a
//! verifier) scored by a VLM behind any OpenAI-compatible endpoint, the paper's way, where the
//! embedded world's recogniser cannot look. On rows with scene states (the embedded test split)
//! it also reports how far the VLM agrees with the exact judge.

use crate::args::VerifiedWorldArgs;
use crate::predict_cmd::{SamplingArgs, load};
use crate::progress::bar;
use anyhow::{Context, Result};
use clap::Args;
use dynaboot::data::AuroraDataset;
use dynaboot::eval::vlm_judge::{VlmConfig, VlmJudge, default_cache, vlm_report};
use dynaboot::eval::{EvalItem, Judge, first_per_family, load_items, test_split_items};
use dynaboot::files::write_atomic;
use dynaboot::model::verifier::Verifier;
use dynaboot::model::{DynamicsModel, WorldModel};
use dynaboot::world::{Recogniser, RenderConfig};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct JudgeArgs {
    /// The VLM's OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp
    /// server) or a hosted one over https.
    #[arg(long)]
    vlm: String,
    /// The model name the endpoint serves.
    #[arg(long)]
    model: String,
    /// Environment variable holding the API key (never a flag or a file).
    #[arg(long, default_value = "DYNABOOT_VLM_API_KEY")]
    key_env: String,
    #[command(flatten)]
    models: VerifiedWorldArgs,
    /// Labelled AURORA folder (default: the embedded test split, which also gets the exact
    /// judge's scores to compare with).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Rows per family, the first ones of each.
    #[arg(long, default_value_t = 50, value_parser = crate::args::count)]
    per_family: usize,
    /// Requests at a time.
    #[arg(long, default_value_t = 4, value_parser = crate::args::concurrency)]
    concurrency: usize,
    /// At most this many requests a minute (default: no limit).
    #[arg(long, value_parser = crate::args::requests_per_minute)]
    rpm: Option<f64>,
    /// Extra tries after a reply that is not a score or a 429 / 5xx / network error.
    #[arg(long, default_value_t = 2, value_parser = crate::args::retries)]
    retries: usize,
    /// Seconds one request may take.
    #[arg(long, default_value_t = 120, value_parser = crate::args::timeout_s)]
    timeout_s: u64,
    /// Cache of parsed replies (default: beside --out, `.vlm-cache.jsonl`); a rerun asks
    /// nothing it has a score for.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// The report (json).
    #[arg(long)]
    out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    sampling: SamplingArgs,
}

pub fn run(a: JudgeArgs) -> Result<()> {
    crate::args::check_output(&a.out, a.force, "--out")?;
    let api_key = std::env::var(&a.key_env).ok().filter(|k| !k.is_empty());
    if api_key.is_none() {
        println!(
            "no API key in ${} (fine for a local server without one)",
            a.key_env
        );
    }
    let judge = VlmJudge::new(VlmConfig {
        url: a.vlm.clone(),
        model: a.model.clone(),
        api_key,
        concurrency: a.concurrency,
        requests_per_minute: a.rpm,
        retries: a.retries,
        timeout: Duration::from_secs(a.timeout_s),
        cache: Some(a.cache.clone().unwrap_or_else(|| default_cache(&a.out))),
    })?;
    let world = WorldModel::new(load(&a.models.world)?)?;
    let dynamics = a
        .models
        .dynamics
        .as_ref()
        .map(|d| DynamicsModel::new(load(d)?).map_err(anyhow::Error::from))
        .transpose()?;
    let size = world.model.vq.image_size() as u32;
    let items: Vec<EvalItem> = match &a.data {
        Some(dir) => first_per_family(load_items(&AuroraDataset::load(dir)?)?, a.per_family),
        None => test_split_items(a.per_family, size),
    };
    let sampling = a.sampling.sampling();
    let pb = bar(items.len(), "predicting");
    let mut predictions = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let sampling = dynaboot::model::sampling::Sampling {
            seed: sampling.seed.wrapping_add(i as u64),
            ..sampling.clone()
        };
        let image = match &dynamics {
            Some(d) => {
                Verifier::new(&world, d)?
                    .best_of_n(&item.source, &item.instruction, a.models.n, &sampling)?
                    .remove(0)
                    .image
            }
            None => {
                world
                    .sample(&item.source, &item.instruction, 1, &sampling)?
                    .remove(0)
                    .image
            }
        };
        predictions.push(image);
        pb.inc(1);
    }
    pb.finish_and_clear();

    let samples: Vec<_> = items
        .iter()
        .zip(&predictions)
        .map(|(it, p)| (it.source.clone(), it.instruction.clone(), p.clone()))
        .collect();
    let pb = bar(samples.len(), "asking the VLM");
    let verdicts = judge.judge_all(&samples, &|| pb.inc(1))?;
    pb.finish_and_clear();
    let exact = items.iter().all(|i| i.sidecar.is_some()).then(|| {
        Judge::new(Recogniser::new(RenderConfig {
            size,
            ..Default::default()
        }))
    });
    let report = vlm_report(
        &a.model,
        &items,
        &predictions,
        verdicts,
        exact.as_ref(),
        judge.traffic(),
    )?;
    println!(
        "VLM {} judged {} of {} predictions ({} failed; {} requests, {} from the cache)",
        a.model,
        report.judged,
        items.len(),
        report.failed,
        report.traffic.requests,
        report.traffic.cached
    );
    println!(
        "score (min of success and minimal, 0-10): {:.2}",
        report.scores.average
    );
    for (family, s) in &report.scores.per_family {
        println!("  {family:<12} {s:.2}");
    }
    if let Some(ag) = &report.exact_agreement {
        println!(
            "agreement with the exact judge on {} samples: Spearman {}, mean |difference| {:.2}",
            ag.n,
            ag.spearman
                .map(|r| format!("{r:.3}"))
                .unwrap_or("— (one side constant)".into()),
            ag.mean_abs_diff
        );
    }
    let json = serde_json::to_string_pretty(&report)?;
    write_atomic(&a.out, json.as_bytes())
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!("wrote {}", a.out.display());
    Ok(())
}
