//! `dynaboot scale`: the labelled-data scaling study (see `dynaboot::scaling`), writing
//! `results.json`, `report.md` and `report.html`; `--resume` continues a study that stopped.

use anyhow::Result;
use clap::Args;
use dynaboot::scaling::{
    EarlierStudy, ScalingConfig, ScalingPreset, ScalingResults, read_scaling, run_scaling,
    study_config, tables, write_reports,
};
use std::path::PathBuf;

#[derive(Args)]
pub struct ScaleArgs {
    #[arg(long, value_enum, default_value = "default")]
    preset: ScalingPreset,
    /// Labelled sizes L, ascending, comma-separated (the preset's unless given).
    #[arg(long, value_delimiter = ',', value_parser = crate::args::count)]
    sizes: Option<Vec<usize>>,
    /// Seeds at sizes up to the preset's small limit (1000 in the default preset).
    #[arg(long, value_parser = crate::args::count)]
    seeds_small: Option<usize>,
    /// Seeds at larger sizes.
    #[arg(long, value_parser = crate::args::count)]
    seeds_large: Option<usize>,
    /// Seeds of the coverage variant (as many as at its size unless given).
    #[arg(long, value_parser = crate::args::count)]
    seeds_coverage: Option<usize>,
    /// Test rows per family (1 to 50, the fixed test split's).
    #[arg(long, value_parser = crate::args::count)]
    test_per_family: Option<usize>,
    /// Evaluate on a split of the train generator with this seed instead of the fixed test
    /// split (for tuning the study).
    #[arg(long)]
    tune_seed: Option<u64>,
    /// Leave out the coverage variant.
    #[arg(long)]
    no_coverage: bool,
    /// The models folder: `vq/`, `tokenizer.json`, the foundation every model fine-tunes
    /// (`foundation-changes/`) and the shipped dynamics model (`dynamics/`). Default: the
    /// shipped models' folder (`DYNABOOT_MODELS`, else `models/` found upwards).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Where the models train and run: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, default_value = "out/scaling")]
    out: PathBuf,
    /// Continue the study in --out where it stopped (its flags must be the same, but for the
    /// seed counts, which are the study's own unless given).
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Replace a study already in --out.
    #[arg(long)]
    force: bool,
    /// Run nothing: write the record of the study in --out so far (its finished cells added
    /// up, the cells still to run named) beside it, as a finished study does. Safe while the
    /// study runs.
    #[arg(long, conflicts_with_all = [
        "resume", "force", "preset", "sizes", "seeds_small", "seeds_large", "seeds_coverage",
        "test_per_family",
        "tune_seed", "no_coverage", "device",
    ])]
    report: bool,
}

pub fn run(a: ScaleArgs) -> Result<()> {
    if a.report {
        let results = read_scaling(&a.out, &models_folder(&a)?)?;
        return finish(&a.out, &results, |r| {
            format!(
                "wrote {}/results.json, report.md, report.html: {} of {} cells finished",
                a.out.display(),
                r.cells.len(),
                r.cells.len() + r.missing.len()
            )
        });
    }
    let t0 = std::time::Instant::now();
    let device = crate::device(&a.device)?;
    let preset = a.preset.config();
    // A resumed study keeps its own seed counts unless they are given (a missing or broken
    // study is refused below, with the reason).
    let seeds_from = match a.resume {
        true => study_config(&a.out).unwrap_or(preset.clone()),
        false => preset.clone(),
    };
    let cfg = ScalingConfig {
        sizes: a.sizes.clone().unwrap_or(preset.sizes.clone()),
        seeds_small: a.seeds_small.unwrap_or(seeds_from.seeds_small),
        seeds_large: a.seeds_large.unwrap_or(seeds_from.seeds_large),
        seeds_coverage: a.seeds_coverage.or(seeds_from.seeds_coverage),
        test_per_family: a.test_per_family.unwrap_or(preset.test_per_family),
        tune_seed: a.tune_seed.or(preset.tune_seed),
        coverage: if a.no_coverage {
            None
        } else {
            preset.coverage.clone()
        },
        ..preset
    };
    // The flags first: they are wrong wherever the command runs.
    cfg.validate()?;
    let models = models_folder(&a)?;
    let earlier = match (a.resume, a.force) {
        (true, _) => EarlierStudy::Resume,
        (false, true) => EarlierStudy::Replace,
        (false, false) => EarlierStudy::Refuse,
    };
    let results = run_scaling(&cfg, &models, &a.out, &device, earlier, |line| {
        println!("[{:>6.0}s] {line}", t0.elapsed().as_secs_f64())
    })?;
    finish(&a.out, &results, |r| {
        format!(
            "done in {:.0}s ({:.0} s of compute in the study's cells); wrote {}/results.json, \
             report.md, report.html",
            t0.elapsed().as_secs_f64(),
            r.seconds,
            a.out.display()
        )
    })
}

/// The models folder: --models, else the shipped models'.
fn models_folder(a: &ScaleArgs) -> Result<PathBuf> {
    Ok(match &a.models {
        Some(m) => m.clone(),
        None => dynaboot::shipped::shipped_models()?,
    })
}

/// Prints the record's tables, writes its files into the study folder `out` (quoting this
/// command line) and prints `done`'s line.
fn finish(
    out: &std::path::Path,
    results: &ScalingResults,
    done: impl Fn(&ScalingResults) -> String,
) -> Result<()> {
    for t in tables(results) {
        print!("{}", t.markdown());
    }
    let command: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--resume")
        .collect();
    write_reports(out, results, &format!("dynaboot {}", command.join(" ")))?;
    println!("== {}", done(results));
    Ok(())
}
