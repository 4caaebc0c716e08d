//! `dynaboot rollout` (a sequence of actions applied in imagination, each step verified and
//! read back) and `dynaboot rollout eval` (rollouts against the true frames of the embedded
//! world, autoregressive and teacher-forced).

use crate::args::{PairArgs, check_output};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use dynaboot::eval::report::Table;
use dynaboot::eval::rollout_eval::{MAX_CHAINS, MAX_STEPS, RolloutEvalConfig, evaluate_rollouts};
use dynaboot::files::{load_model_image, save_png, write_atomic};
use dynaboot::imagination::{Imagination, strip};
use dynaboot::model::Sampling;
use std::path::PathBuf;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct RolloutCmd {
    #[command(subcommand)]
    eval: Option<RolloutSub>,
    #[command(flatten)]
    rollout: RolloutArgs,
}

#[derive(Subcommand)]
enum RolloutSub {
    /// Rollouts of random action chains against the true frames: the judge and L1 at every
    /// step (autoregressive and teacher-forced) and the dynamics model's read-back rate.
    Eval(RolloutEvalArgs),
}

#[derive(Args)]
struct RolloutArgs {
    #[command(flatten)]
    models: PairArgs,
    /// The first image (RGB PNG of the tokenizer's size).
    #[arg(long, required = true)]
    image: Option<PathBuf>,
    /// The actions, separated by ';'.
    #[arg(long, required = true)]
    actions: Option<String>,
    /// Best-of-N at every step (1 to 1024).
    #[arg(long, default_value_t = 8, value_parser = crate::args::candidates)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the frames, strip.png and rollout.json.
    #[arg(long, default_value = "out/rollout")]
    out: PathBuf,
    /// Replace an earlier rollout in --out.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct RolloutEvalArgs {
    #[command(flatten)]
    models: PairArgs,
    /// Actions per chain (1 to 16).
    #[arg(long, default_value_t = 5, value_parser = steps)]
    steps: usize,
    /// Best-of-N at every step (1 to 1024).
    #[arg(long, default_value_t = 8, value_parser = crate::args::candidates)]
    n: usize,
    /// Chains to imagine.
    #[arg(long, default_value_t = 50, value_parser = chains)]
    chains: usize,
    /// Seed of the chains (tune on one seed, report on another).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The results (json).
    #[arg(long)]
    out: PathBuf,
    /// Replace an earlier --out.
    #[arg(long)]
    force: bool,
}

fn steps(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_STEPS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?}: use a whole number of steps from 1 to {MAX_STEPS}"
        )),
    }
}

fn chains(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_CHAINS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?}: use a whole number of chains from 1 to {MAX_CHAINS}"
        )),
    }
}

pub fn run(c: RolloutCmd) -> Result<()> {
    match c.eval {
        Some(RolloutSub::Eval(a)) => eval(a),
        None => rollout(c.rollout),
    }
}

fn rollout(a: RolloutArgs) -> Result<()> {
    let json = a.out.join("rollout.json");
    check_output(&json, a.force, "--out")?;
    let text = a.actions.as_deref().expect("clap requires --actions");
    let actions: Vec<String> = text
        .split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if actions.is_empty() {
        bail!("--actions {text:?} holds no action: write them separated by ';'");
    }
    let (world, dynamics) = a.models.load()?;
    let image_path = a.image.as_deref().expect("clap requires --image");
    let source =
        load_model_image(image_path, world.model.vq.image_size() as u32).context("--image")?;
    let imagination = Imagination::new(&world, &dynamics)?;
    let sampling = Sampling {
        seed: a.seed,
        ..Sampling::default()
    };
    let steps = imagination.rollout(&source, &actions, a.n, &sampling)?;
    let mut rows = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let file = format!("step-{}.png", i + 1);
        save_png(&a.out.join(&file), &s.image)?;
        println!("{}. {}  ->  read back: {}", i + 1, s.action, s.read_back);
        rows.push(serde_json::json!({
            "action": s.action, "file": file, "log_prob": s.score.sum,
            "read_back": s.read_back, "read_back_log_prob": s.read_back_score.sum,
        }));
    }
    let frames: Vec<_> = std::iter::once(source)
        .chain(steps.iter().map(|s| s.image.clone()))
        .collect();
    save_png(&a.out.join("strip.png"), &strip(&frames))?;
    let record = serde_json::json!({
        "image": image_path, "n": a.n, "sampling": sampling, "steps": rows,
    });
    write_atomic(&json, serde_json::to_string_pretty(&record)?.as_bytes())?;
    println!(
        "wrote {} and {}",
        a.out.join("strip.png").display(),
        json.display()
    );
    Ok(())
}

fn eval(a: RolloutEvalArgs) -> Result<()> {
    check_output(&a.out, a.force, "--out")?;
    let (world, dynamics) = a.models.load()?;
    let imagination = Imagination::new(&world, &dynamics)?;
    let config = RolloutEvalConfig {
        steps: a.steps,
        chains: a.chains,
        n: a.n,
        seed: a.seed,
        sampling: Sampling::default(),
    };
    let r = evaluate_rollouts(&imagination, &config, |done, of| {
        if done % 10 == 0 || done == of {
            eprintln!("{done}/{of} chains");
        }
    })?;
    let mut table = Table::new(
        &format!("Rollouts, best-of-{}", a.n),
        &[
            "step",
            "judge",
            "judge (teacher-forced)",
            "L1",
            "L1 (teacher-forced)",
            "read-back",
            "read-back (teacher-forced)",
        ],
    );
    for s in &r.per_step {
        let est = |e: &dynaboot::stats::Estimate| {
            format!("{:.2} [{:.2}, {:.2}]", e.mean, e.ci_low, e.ci_high)
        };
        table.push(vec![
            s.step.to_string(),
            est(&s.judge),
            est(&s.judge_teacher_forced),
            format!("{:.4}", s.l1),
            format!("{:.4}", s.l1_teacher_forced),
            format!("{:.0} %", 100.0 * s.read_back),
            format!("{:.0} %", 100.0 * s.read_back_teacher_forced),
        ]);
    }
    println!("{}", table.markdown());
    write_atomic(&a.out, serde_json::to_string_pretty(&r)?.as_bytes())?;
    println!("wrote {}", a.out.display());
    Ok(())
}
