//! `dynaboot demo`: the main job. With the shipped world and dynamics models, on the embedded
//! world's fixed test split, best-of-N verification for every family: a per-family table
//! (judge score at N = 1 and N = max, the dynamics model's exact-action accuracy), the
//! conditioning test of both models, and an HTML report with examples. No download, no
//! training.

use crate::predict_cmd::load;
use crate::progress::bar;
use anyhow::{Context, Result};
use clap::Args;
use dynaboot::eval::report::{
    Table, conditioning_table, dynamics_table, examples_html, html_page, world_table,
};
use dynaboot::eval::{
    DynamicsEvalConfig, Judge, WorldEvalConfig, conditioning_test, evaluate_dynamics,
    evaluate_world, test_split_items,
};
use dynaboot::files::write_atomic;
use dynaboot::model::{DynamicsModel, Sampling, WorldModel};
use dynaboot::world::{Recogniser, RenderConfig};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct DemoArgs {
    /// World-model checkpoint (default: `world/` of the shipped models' folder).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Dynamics-model checkpoint, the verifier (default: `dynamics/` of the shipped models'
    /// folder).
    #[arg(long)]
    dynamics: Option<PathBuf>,
    /// Candidates per test row (best-of-N, 1 to 1024).
    #[arg(long, default_value_t = 8, value_parser = crate::args::candidates)]
    n: usize,
    /// Test rows per family (the fixed split has 50; all of them take ~55 s on 2 cores).
    #[arg(long, default_value_t = 50, value_parser = crate::args::count)]
    per_family: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where `report.html` and `report.json` go.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
}

pub fn run(a: DemoArgs) -> Result<()> {
    let t0 = Instant::now();
    let shipped = |name: &str| -> Result<PathBuf> {
        let models = dynaboot::shipped::shipped_models()
            .context("pass --world and --dynamics, or run where the shipped models are found")?;
        Ok(models.join(name))
    };
    // Each model as soon as its folder is known: a --world that is wrong is reported before
    // the search for a shipped dynamics model.
    let world_dir = a.world.map_or_else(|| shipped("world"), Ok)?;
    let world = WorldModel::new(load(&world_dir).context("--world")?)?;
    let dynamics_dir = a.dynamics.map_or_else(|| shipped("dynamics"), Ok)?;
    let dynamics = DynamicsModel::new(load(&dynamics_dir).context("--dynamics")?)?;
    let size = world.model.vq.image_size() as u32;
    let items = test_split_items(a.per_family, size);
    println!(
        "== best-of-{} on {} test rows ({} per family)",
        a.n,
        items.len(),
        a.per_family.min(50)
    );
    let judge = Judge::new(Recogniser::new(RenderConfig {
        size,
        ..Default::default()
    }));
    let config = WorldEvalConfig {
        n: a.n,
        sampling: Sampling {
            seed: a.seed,
            ..Default::default()
        },
        examples_per_family: 2,
    };
    let pb = bar(items.len(), "world");
    let (w, examples) = evaluate_world(&world, Some(&dynamics), &items, &config, &judge, |i| {
        pb.set_position(i as u64)
    })?;
    pb.finish_and_clear();
    let pb = bar(items.len(), "dynamics");
    // The preference test is the full `eval`'s; the demo shows accuracy only.
    let dc = DynamicsEvalConfig {
        batch: 25,
        seed: a.seed,
        preference: false,
    };
    let d = evaluate_dynamics(&dynamics, &items, &dc, |i| pb.set_position(i as u64))?;
    pb.finish_and_clear();
    let reads = conditioning_test(&world, Some(&dynamics), &items)?;

    let first = &w.best_of[0].scores;
    let mut summary = Table::new(
        "Per family: judge score (0-10) without and with verification, dynamics accuracy",
        &[
            "family",
            "judge N = 1",
            &format!("judge N = {}", w.n),
            "dynamics exact",
            "dynamics judge",
        ],
    );
    for (family, v) in &w.scores.per_family {
        summary.push(vec![
            family.clone(),
            format!("{:.2}", first.per_family[family]),
            format!("{v:.2}"),
            format!("{:.1} %", 100.0 * d.exact_per_family[family]),
            format!("{:.2}", d.judge_per_family[family]),
        ]);
    }
    summary.push(vec![
        "average".into(),
        format!("{:.2}", first.average),
        format!("{:.2}", w.scores.average),
        format!("{:.1} %", 100.0 * d.exact),
        format!("{:.2}", d.judge),
    ]);
    let reads_table = conditioning_table(&reads);
    print!("{}{}", summary.markdown(), reads_table.markdown());
    let tables = [summary, reads_table, world_table(&w), dynamics_table(&d)];
    let body = tables.iter().map(Table::html).collect::<String>() + &examples_html(&examples)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let html = a.out.join("report.html");
    write_atomic(
        &html,
        html_page("dynaboot demo: best-of-N on the test split", &body).as_bytes(),
    )?;
    let json = serde_json::json!({ "world": w, "dynamics": d, "conditioning": reads, "seconds": t0.elapsed().as_secs_f64() });
    write_atomic(
        &a.out.join("report.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    println!(
        "== done in {:.0}s; wrote {}",
        t0.elapsed().as_secs_f64(),
        html.display()
    );
    Ok(())
}
