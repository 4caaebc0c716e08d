//! `dynaboot eval`: evaluate a world model (best-of-N when a dynamics model is given) and the
//! dynamics model on any labelled AURORA folder, the paper's way; and `dynaboot export`, which
//! copies a checkpoint with half-precision weights for shipping.

use crate::args::VerifiedWorldArgs;
use crate::args::check_output;
use crate::predict_cmd::{CheckArgs, SamplingArgs, load};
use crate::progress::bar;
use anyhow::{Context, Result};
use candle_core::DType;
use clap::Args;
use dynaboot::data::AuroraDataset;
use dynaboot::eval::report::{
    Table, checked_table, conditioning_table, dynamics_table, html_page, world_table,
};
use dynaboot::eval::{
    CheckedReport, DynamicsEvalConfig, DynamicsReport, Judge, WorldEvalConfig, WorldReport,
    conditioning_test, evaluate_checked_explanations, evaluate_dynamics, evaluate_world,
    load_items,
};
use dynaboot::files::write_atomic;
use dynaboot::model::{DynamicsModel, Explainer, WorldModel};
use dynaboot::train::conditioning::Conditioning;
use dynaboot::world::{Recogniser, RenderConfig};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    models: VerifiedWorldArgs,
    /// Labelled AURORA folder or json (with the embedded world's sidecars for the judge).
    #[arg(long)]
    data: PathBuf,
    /// The report (json: `average`, `per_family`, best-of-n, baselines, `dynamics`).
    #[arg(long)]
    out: PathBuf,
    /// Also write an HTML page with the tables and example images.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Replace --out and --html where they exist.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    check: CheckArgs,
}

/// What `eval` writes.
#[derive(Serialize)]
pub struct EvalFile {
    #[serde(flatten)]
    pub world: WorldReport,
    pub dynamics: Option<DynamicsReport>,
    /// The dynamics model's proposals checked by the world model.
    pub checked_explanations: Option<CheckedReport>,
    /// The conditioning test (teacher-forced) of both models on the same rows.
    pub conditioning: Conditioning,
}

pub fn run(a: EvalArgs) -> Result<()> {
    check_output(&a.out, a.force, "--out")?;
    if let Some(h) = &a.html {
        check_output(h, a.force, "--html")?;
    }
    let world = WorldModel::new(load(&a.models.world)?).context("--world")?;
    let dynamics = match &a.models.dynamics {
        Some(p) if p == &a.models.world => {
            Some(DynamicsModel::new(world.model.clone()).context("--dynamics")?)
        }
        Some(p) => Some(DynamicsModel::new(load(p)?).context("--dynamics")?),
        None => None,
    };
    let items = load_items(&AuroraDataset::load(&a.data)?)?;
    let size = world.model.vq.image_size() as u32;
    let judge = Judge::new(Recogniser::new(RenderConfig {
        size,
        ..Default::default()
    }));
    let config = WorldEvalConfig {
        n: a.models.n,
        sampling: a.sampling.sampling(),
        ..Default::default()
    };
    let pb = bar(items.len(), "world");
    let (world_report, examples) =
        evaluate_world(&world, dynamics.as_ref(), &items, &config, &judge, |i| {
            pb.set_position(i as u64)
        })?;
    pb.finish_and_clear();
    let dyn_report = match &dynamics {
        Some(d) => {
            let pb = bar(items.len(), "dynamics");
            let dc = DynamicsEvalConfig {
                seed: config.sampling.seed,
                ..Default::default()
            };
            let r = evaluate_dynamics(d, &items, &dc, |i| pb.set_position(i as u64))?;
            pb.finish_and_clear();
            Some(r)
        }
        None => None,
    };
    let checked = match &dynamics {
        Some(d) => {
            let pb = bar(items.len(), "checked explanations");
            let explainer = Explainer::new(d, &world)?;
            let r = evaluate_checked_explanations(
                &explainer,
                &items,
                &a.check.config(config.sampling.seed),
                16,
                |i| pb.set_position(i as u64),
            )?;
            pb.finish_and_clear();
            Some(r)
        }
        None => None,
    };
    let conditioning = conditioning_test(&world, dynamics.as_ref(), &items)?;
    let mut tables: Vec<Table> = vec![world_table(&world_report)];
    if let Some(d) = &dyn_report {
        tables.push(dynamics_table(d));
    }
    if let (Some(d), Some(c)) = (&dyn_report, &checked) {
        tables.push(checked_table(d, c));
    }
    tables.push(conditioning_table(&conditioning));
    for t in &tables {
        print!("{}", t.markdown());
    }
    let file = EvalFile {
        world: world_report,
        dynamics: dyn_report,
        checked_explanations: checked,
        conditioning,
    };
    write_atomic(&a.out, serde_json::to_string_pretty(&file)?.as_bytes())?;
    println!("wrote {}", a.out.display());
    if let Some(h) = &a.html {
        let body: String = tables.iter().map(Table::html).collect::<String>()
            + &dynaboot::eval::report::examples_html(&examples)?;
        write_atomic(h, html_page("dynaboot evaluation", &body).as_bytes())?;
        println!("wrote {}", h.display());
    }
    Ok(())
}

#[derive(Args)]
pub struct ExportArgs {
    /// Checkpoint folder to copy.
    #[arg(long)]
    from: PathBuf,
    /// Destination folder.
    #[arg(long)]
    to: PathBuf,
    /// Keep f32 weights instead of f16.
    #[arg(long)]
    full: bool,
    /// Replace the checkpoint already in --to (as when refreshing `models/world`).
    #[arg(long)]
    force: bool,
}

pub fn export(a: ExportArgs) -> Result<()> {
    let dtype = if a.full { DType::F32 } else { DType::F16 };
    let written = [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "metrics.jsonl",
    ];
    if !a.force
        && let Some(f) = written.iter().find(|f| a.to.join(f).exists())
    {
        anyhow::bail!(
            "--to {} already holds {f}; pass --force to replace that checkpoint, or export to \
             another folder",
            a.to.display()
        );
    }
    dynaboot::model::checkpoint::export(&a.from, &a.to, dtype)?;
    println!(
        "{} -> {} ({dtype:?} weights)",
        a.from.display(),
        a.to.display()
    );
    Ok(())
}
