//! `dynaboot demo`: the main job on the embedded default. Generates the world's data, trains
//! the image and text tokenizers and reports how much of the world they keep.

use crate::{tokenizer_cmd, world_cmd};
use anyhow::Result;
use clap::Args;
use dynaboot::tokenize::vq_train::VqTrainConfig;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct DemoArgs {
    /// Where data, models and reports go.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// Training triplets to generate.
    #[arg(long, default_value_t = 2000)]
    n: usize,
    /// Image-tokenizer training steps.
    #[arg(long, default_value_t = VqTrainConfig::default().steps)]
    steps: usize,
    /// A tiny configuration that finishes in seconds (for smoke tests).
    #[arg(long)]
    tiny: bool,
}

pub fn run(a: DemoArgs) -> Result<()> {
    let t0 = Instant::now();
    let (train, test, models) = (
        a.out.join("data/train"),
        a.out.join("data/test"),
        a.out.join("models"),
    );
    let size = if a.tiny { 32 } else { 64 };
    println!(
        "== generating {} training triplets and the fixed test split",
        a.n
    );
    world_cmd::generate(world_cmd::Split::Train, Some(a.n), 0, &train, size)?;
    world_cmd::generate(world_cmd::Split::Test, None, 0, &test, size)?;
    println!("== training the tokenizers");
    let vq = VqTrainConfig {
        steps: a.steps,
        ..Default::default()
    };
    tokenizer_cmd::train(&train, &models, vq, 448, a.tiny, None)?;
    println!("== evaluating on the test split");
    tokenizer_cmd::eval(
        &models,
        &test,
        None,
        Some(a.out.join("tokenizer-report.json")),
    )?;
    println!(
        "== done in {:.0}s; see {}",
        t0.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}
