//! `dynaboot ablate`: the paper's ablation on the embedded world (see `dynaboot::ablation`),
//! writing `results.json`, `report.md` and `report.html`.

use anyhow::Result;
use clap::Args;
use dynaboot::ablation::{AblationConfig, AblationPreset, run_ablation, tables, write_reports};
use dynaboot::train::Weighting;
use std::path::PathBuf;

#[derive(Args)]
pub struct AblateArgs {
    #[arg(long, value_enum, default_value = "paper")]
    preset: AblationPreset,
    /// Seeds to run (0, 1, ...).
    #[arg(long, default_value_t = 3, value_parser = crate::args::seeds)]
    seeds: u64,
    /// The models folder: `vq/`, `tokenizer.json`, the foundation checkpoint every model
    /// fine-tunes (`foundation-changes/`) and the annotator (`dynamics/`).
    /// Default: the shipped models' folder (`DYNABOOT_MODELS`, else `models/` found upwards).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Evaluate on a split of the train generator with this seed instead of the fixed test
    /// split (for tuning the experiment).
    #[arg(long)]
    tune_seed: Option<u64>,
    /// Labelled training triplets (the preset's unless given).
    #[arg(long, value_parser = crate::args::count)]
    train_rows: Option<usize>,
    /// Unlabelled videos the annotator labels (the preset's unless given).
    #[arg(long, value_parser = crate::args::count)]
    videos: Option<usize>,
    /// Annotations kept by the stratified top-K: the synthetic data (the preset's unless given).
    #[arg(long, value_parser = crate::args::count)]
    keep: Option<usize>,
    /// λ of FDM's recognition-weighted loss (the preset's unless given).
    #[arg(long, value_parser = crate::args::fraction)]
    weighted: Option<f64>,
    /// Where FDM's change weights land: target (the paper's) or causal (no tilt); the
    /// preset's unless given.
    #[arg(long, value_enum)]
    weighting: Option<Weighting>,
    /// Sample the world models trained with the weighted loss with the bias on the source's
    /// token that undoes the loss's tilt towards redrawing (computed from each model's data).
    #[arg(long)]
    undo_tilt: bool,
    /// Label the videos and verify with each seed's own dynamics model (fine-tuned on the
    /// same labelled triplets as the world models, as in the paper) instead of the shipped one.
    #[arg(long)]
    own_annotator: bool,
    /// Peak learning rate of the dynamics model (the preset's, the world models', unless given).
    #[arg(long, value_parser = crate::args::learning_rate)]
    dynamics_lr: Option<f64>,
    /// Fine-tuning steps of every model (the preset's unless given).
    #[arg(long, value_parser = crate::args::steps)]
    steps: Option<usize>,
    /// Where the models train and run: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, default_value = "out/ablate")]
    out: PathBuf,
}

pub fn run(a: AblateArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    let seeds: Vec<u64> = (0..a.seeds).collect();
    let device = crate::device(&a.device)?;
    let preset = a.preset.config();
    let cfg = AblationConfig {
        tune_seed: a.tune_seed,
        train_rows: a.train_rows.unwrap_or(preset.train_rows),
        videos: a.videos.unwrap_or(preset.videos),
        keep: a.keep.unwrap_or(preset.keep),
        weighted: a.weighted.unwrap_or(preset.weighted),
        weighting: a.weighting.unwrap_or(preset.weighting),
        steps: a.steps.unwrap_or(preset.steps),
        dynamics_lr: a.dynamics_lr.or(preset.dynamics_lr),
        undo_tilt: a.undo_tilt || preset.undo_tilt,
        annotator: if a.own_annotator {
            None
        } else {
            preset.annotator.clone()
        },
        ..preset
    };
    // The flags first: they are wrong wherever the command runs.
    cfg.validate()?;
    let models = match &a.models {
        Some(m) => m.clone(),
        None => dynaboot::shipped::shipped_models()?,
    };
    let (results, examples) = run_ablation(&cfg, &seeds, &models, &a.out, &device, |line| {
        println!("[{:>5.0}s] {line}", t0.elapsed().as_secs_f64())
    })?;
    for t in tables(&results) {
        print!("{}", t.markdown());
    }
    write_reports(&a.out, &results, &examples)?;
    println!(
        "== done in {:.0}s; wrote {}/results.json, report.md, report.html",
        t0.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}
