//! `dynaboot bootstrap`: a dynamics model labels unlabelled videos (frame selection, sampled
//! annotations, stratified top-K) and the kept pairs are written as an AURORA folder of task
//! `synthetic` for `train --synthetic`. With the videos' hidden labels present, the
//! annotator's quality is measured too (never used for training).

use crate::predict_cmd::load;
use crate::progress::bar;
use anyhow::{Context, Result};
use clap::Args;
use dynaboot::bootstrap::{
    ANNOTATION_TEMPERATURE, BootstrapConfig, FrameSelection, annotate_videos, annotator_quality,
    filter_annotations, write_synthetic,
};
use dynaboot::data::video::LABELS_FILE;
use dynaboot::data::{DATA_FILE, VideoDataset};
use dynaboot::files::write_atomic;
use dynaboot::model::{DynamicsModel, Sampling};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct BootstrapArgs {
    /// Dynamics-model checkpoint (the annotator).
    #[arg(long)]
    dynamics: PathBuf,
    /// Folder of unlabelled videos (`videos.json`).
    #[arg(long)]
    videos: PathBuf,
    /// Where the synthetic AURORA folder goes.
    #[arg(long)]
    out: PathBuf,
    /// K of the stratified top-K: annotated pairs kept.
    #[arg(long, default_value_t = BootstrapConfig::default().keep, value_parser = crate::args::count)]
    keep: usize,
    /// K_f: motion events kept per video.
    #[arg(long, default_value_t = FrameSelection::default().keep, value_parser = crate::args::count)]
    frames_per_video: usize,
    /// I_f: minimum frames between kept events.
    #[arg(long, default_value_t = FrameSelection::default().gap, value_parser = crate::args::count_or_zero)]
    gap: usize,
    /// Seed of the annotations' random streams.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Temperature the dynamics model samples its annotations at (0 is greedy).
    #[arg(long, default_value_t = ANNOTATION_TEMPERATURE, value_parser = crate::args::temperature)]
    temperature: f64,
    /// Replace the dataset already in --out (an earlier bootstrap's).
    #[arg(long)]
    force: bool,
}

/// What a bootstrap writes into `--out`: the rows, the report and the frames under `images/`.
const WRITTEN: [&str; 2] = [DATA_FILE, "bootstrap.json"];

/// An `--out` that already holds a dataset is refused before any work, unless `force`: then
/// the earlier bootstrap's files go first (its frames under `images/` too), so no stale frame
/// or report is left beside the new rows.
fn clear_earlier_output(out: &Path, force: bool) -> Result<()> {
    let mut earlier: Vec<PathBuf> = WRITTEN
        .iter()
        .map(|f| out.join(f))
        .filter(|p| p.exists())
        .collect();
    let images = out.join("images");
    if !earlier.is_empty() && images.is_dir() {
        for e in std::fs::read_dir(&images).with_context(|| images.display().to_string())? {
            let path = e?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with("syn") && name.ends_with(".png") {
                earlier.push(path);
            }
        }
    }
    Ok(dynaboot::files::clear_earlier_output(
        out,
        &earlier,
        "a dataset",
        None,
        force,
    )?)
}

/// Labels the videos, keeps the stratified top-K and writes them with the report.
pub fn run(a: BootstrapArgs) -> Result<()> {
    clear_earlier_output(&a.out, a.force)?;
    let dynamics = DynamicsModel::new(load(&a.dynamics)?).context("--dynamics")?;
    let videos = VideoDataset::load(&a.videos).with_context(|| {
        format!(
            "--videos {}: give a folder of videos (videos.json and their frames), as `dynaboot \
             world generate --split videos` writes",
            a.videos.display()
        )
    })?;
    let config = BootstrapConfig {
        frames: FrameSelection {
            keep: a.frames_per_video,
            gap: a.gap,
            ..Default::default()
        },
        keep: a.keep,
        sampling: Sampling {
            seed: a.seed,
            temperature: a.temperature,
            ..Sampling::default()
        },
        ..Default::default()
    };
    let pb = bar(videos.videos.len(), "annotate");
    let all = annotate_videos(&dynamics, &videos, &config, |i| pb.set_position(i as u64))?;
    pb.finish_and_clear();
    let kept = filter_annotations(&all, &config);
    let json = write_synthetic(&a.out, &videos, &kept)?;
    println!(
        "{} pairs from {} videos annotated, {} kept -> {}",
        all.len(),
        videos.videos.len(),
        kept.len(),
        json.display()
    );
    let mut report =
        serde_json::json!({ "config": config, "pairs": all.len(), "kept": kept.len() });
    if a.videos.join(LABELS_FILE).exists() {
        let labels = videos.labels_for_evaluation()?;
        let (q_all, q_kept) = (
            annotator_quality(&all, &labels),
            annotator_quality(&kept, &labels),
        );
        println!(
            "annotator vs hidden labels: {:.1} % of the pairs span one action, {:.1} % of the actions are spanned; annotations exactly right: {:.1} % of all pairs, {:.1} % of those spanning one action; kept: {:.1} % and {:.1} % (BLEU-4 {:.3})",
            100.0 * q_all.pair_precision,
            100.0 * q_all.pair_recall,
            100.0 * q_all.exact,
            100.0 * q_all.exact_spanning,
            100.0 * q_kept.exact,
            100.0 * q_kept.exact_spanning,
            q_kept.bleu
        );
        report["quality_all"] = serde_json::to_value(q_all)?;
        report["quality_kept"] = serde_json::to_value(q_kept)?;
    }
    let path = a.out.join("bootstrap.json");
    write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}
