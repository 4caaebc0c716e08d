//! `dynaboot ablate`: the paper's ablation on the embedded world (see `dynaboot::ablation`),
//! writing `results.json`, `report.md` and `report.html`.

use anyhow::{Context, Result};
use clap::Args;
use dynaboot::ablation::{AblationPreset, run_ablation, tables, write_reports};
use std::path::PathBuf;

#[derive(Args)]
pub struct AblateArgs {
    #[arg(long, value_enum, default_value = "paper")]
    preset: AblationPreset,
    /// Seeds to run (0, 1, ...).
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Folder with `vq/` and `tokenizer.json`.
    #[arg(long, default_value = "models")]
    tokenizers: PathBuf,
    #[arg(long, default_value = "out/ablate")]
    out: PathBuf,
}

pub fn run(a: AblateArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let seeds: Vec<u64> = (0..a.seeds).collect();
    let cfg = a.preset.config();
    let (results, examples) = run_ablation(&cfg, &seeds, &a.tokenizers, &a.out, |line| {
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
