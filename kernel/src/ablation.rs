//! The paper's experiment on the embedded world, per seed: train the dynamics model; let it
//! label unlabelled videos (weak supervision); train world models FT (labelled data only),
//! FDM (+ synthetic data + recognition-weighted loss) and FDM without each of the two; evaluate
//! each with best-of-N verification; and state the paper's four findings with 95 % intervals
//! over seeds:
//! (a) the dynamics model is learned more easily than the world model (normalised scores at
//!     equal steps: both judged by the same judge — the dynamics model's explained action
//!     executed on the source state, the world model's image — divided by 10);
//! (b) synthetic data helps (FDM vs FDM without synthetic data, N = 1);
//! (c) the weighted loss helps (FDM vs FDM without weighting, N = 1);
//! (d) best-of-N helps (FDM at N = max vs N = 1).

use crate::bootstrap::{
    AnnotatorQuality, BootstrapConfig, annotate_videos, annotator_quality, filter_annotations,
    write_synthetic,
};
use crate::data::{VideoDataset, write_triplets};
use crate::error::{Error, Result};
use crate::eval::report::{Table, examples_html, html_page};
use crate::eval::stats::Estimate;
use crate::eval::world_eval::Scores;
use crate::eval::{
    DynamicsEvalConfig, DynamicsReport, Judge, WorldEvalConfig, WorldExample, WorldReport,
    evaluate_dynamics, evaluate_world, first_per_family, test_split_items,
};
use crate::model::checkpoint::vq_fingerprint;
use crate::model::{DynamicsModel, Model, Role, Sampling, WorldModel};
use crate::tokenize::load_tokenizers;
use crate::train::data::{Example, load_examples};
use crate::train::{Overrides, Preset, Trainer, Weights};
use crate::world::generate::{triplets, videos};
use crate::world::{Recogniser, RenderConfig, VideoConfig};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Named sizes of the experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum AblationPreset {
    /// Seconds per seed: checks that the pipeline runs, not the findings.
    Smoke,
    /// The measured experiment: 3 seeds in under 30 minutes on 2 cores.
    Paper,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AblationConfig {
    /// Labelled training triplets (generated once, shared by the seeds).
    pub train_rows: usize,
    /// Unlabelled videos for weak supervision.
    pub videos: usize,
    /// Test rows per family (of the fixed split).
    pub test_per_family: usize,
    /// Model size of every model.
    pub backbone: Preset,
    /// Optimizer steps of every model (equal, so learning curves compare at equal steps).
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// λ of the recognition-weighted loss in FDM.
    pub weighted: f64,
    /// Stratified top-K of the annotations.
    pub keep: usize,
    /// N of best-of-N.
    pub n: usize,
    /// Learning-curve evaluations (evenly spaced, the last at the end).
    pub curve_points: usize,
    /// Test rows per family of the learning-curve evaluations.
    pub curve_per_family: usize,
}

impl AblationPreset {
    pub fn config(self) -> AblationConfig {
        match self {
            AblationPreset::Smoke => AblationConfig {
                train_rows: 48,
                videos: 4,
                test_per_family: 2,
                backbone: Preset::Tiny,
                steps: 8,
                batch_size: 8,
                lr: 3e-3,
                weighted: 0.5,
                keep: 8,
                n: 4,
                curve_points: 2,
                curve_per_family: 1,
            },
            AblationPreset::Paper => AblationConfig {
                train_rows: 1500,
                videos: 150,
                test_per_family: 12,
                backbone: Preset::Mini,
                steps: 500,
                batch_size: 16,
                lr: 3e-3,
                weighted: 0.5,
                keep: 300,
                n: 8,
                curve_points: 4,
                curve_per_family: 5,
            },
        }
    }
}

/// The world models of the ablation.
pub const WORLD_MODELS: [&str; 4] = ["FT", "FDM", "FDM - synthetic", "FDM - weighting"];

/// One point of a learning curve: normalised score (0-1) after `step` steps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: usize,
    pub score: f64,
}

/// Everything one seed measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedRun {
    pub seed: u64,
    pub dynamics: DynamicsReport,
    /// Learning curves: dynamics and FT world judge / 10, at equal steps.
    pub dynamics_curve: Vec<CurvePoint>,
    pub world_curve: Vec<CurvePoint>,
    pub annotated: usize,
    pub synthetic: usize,
    pub annotator_all: AnnotatorQuality,
    pub annotator_kept: AnnotatorQuality,
    pub worlds: BTreeMap<String, WorldReport>,
}

/// A finding: the measured effect with its 95 % interval over seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub effect: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub unit: String,
    /// What was compared.
    pub comparison: String,
    /// Whether the interval lies above zero (the paper's direction).
    pub reproduced: bool,
}

impl Finding {
    fn of(e: Estimate, unit: &str, comparison: &str) -> Finding {
        Finding {
            effect: e.mean,
            ci_low: e.ci_low,
            ci_high: e.ci_high,
            unit: unit.into(),
            comparison: comparison.into(),
            reproduced: e.ci_low > 0.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    pub dynamics_easier: Finding,
    pub synthetic_data: Finding,
    pub weighted_loss: Finding,
    pub best_of_n: Finding,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AblationResults {
    pub config: AblationConfig,
    pub seeds: Vec<u64>,
    pub runs: Vec<SeedRun>,
    /// Mean judge score with its interval: model -> "N = n" -> estimate.
    pub world: BTreeMap<String, BTreeMap<String, Estimate>>,
    /// Per family at N = 1: model -> family -> estimate.
    pub world_per_task: BTreeMap<String, BTreeMap<String, Estimate>>,
    pub dynamics_exact: Estimate,
    /// The dynamics model's executed-action judge score (0-10).
    pub dynamics_judge: Estimate,
    pub findings: Findings,
    pub seconds: f64,
}

/// Trains one model for `roles` and records a learning curve with `curve` (called with the
/// current model and the step), at `cfg.curve_points` evenly spaced steps.
#[allow(clippy::too_many_arguments)]
fn train_model(
    cfg: &AblationConfig,
    tokenizers: &Path,
    roles: Vec<Role>,
    examples: Vec<Example>,
    weighted: f64,
    seed: u64,
    curve: impl FnMut(Arc<Model>, usize) -> Result<()>,
) -> Result<Arc<Model>> {
    let tc = cfg.backbone.train().with(&Overrides {
        steps: Some(cfg.steps),
        batch_size: Some(cfg.batch_size),
        lr: Some(cfg.lr),
        warmup: Some((cfg.steps / 10).max(1)),
        weighted: Some(weighted),
        seed: Some(seed),
        eval_every: Some(0),
        ..Overrides::default()
    });
    let model_config = cfg.backbone.model_config_over(roles, tokenizers)?;
    let mut trainer = Trainer::new(
        Weights::Fresh(&model_config),
        tc,
        examples,
        Vec::new(),
        &Device::Cpu,
    )?;
    let (model, _) = trainer.learning_curve(
        cfg.curve_points,
        || load_tokenizers(tokenizers, &Device::Cpu),
        curve,
    )?;
    Ok(model)
}

/// Runs the whole experiment in `dir` (data, synthetic sets) with the tokenizers in
/// `tokenizers`; `log` receives one line per stage. Returns the results and example rows of
/// the first seed's FDM evaluation.
pub fn run_ablation(
    cfg: &AblationConfig,
    seeds: &[u64],
    tokenizers: &Path,
    dir: &Path,
    mut log: impl FnMut(&str),
) -> Result<(AblationResults, Vec<WorldExample>)> {
    if seeds.is_empty() {
        return Err(Error::Invalid("--seeds: run at least one seed".into()));
    }
    let t0 = std::time::Instant::now();
    let (vq, text) = load_tokenizers(tokenizers, &Device::Cpu)?;
    let size = vq.image_size() as u32;
    let render = RenderConfig {
        size,
        ..Default::default()
    };
    log(&format!(
        "generating {} labelled triplets and {} videos",
        cfg.train_rows, cfg.videos
    ));
    let train_dir = dir.join("data/train");
    write_triplets(&train_dir, &triplets(1, cfg.train_rows), render, |_| {})?;
    let video_dir = dir.join("data/videos");
    let vids = videos(2, cfg.videos, VideoConfig::default(), render, |_| {});
    let video_set = VideoDataset::write(&video_dir, &vids)?;
    let labels = video_set.labels_for_evaluation()?;
    let fingerprint = vq_fingerprint(&tokenizers.join("vq"))?;
    let labelled = load_examples(&train_dir, &vq, &fingerprint, &text)?;
    let test = test_split_items(cfg.test_per_family, size);
    let curve_items = first_per_family(test.iter().cloned(), cfg.curve_per_family);
    let judge = Judge::new(Recogniser::new(render));
    let eval_cfg = |seed: u64, n: usize| WorldEvalConfig {
        n,
        sampling: Sampling {
            seed,
            ..Default::default()
        },
        examples_per_task: 1,
    };

    let mut runs = Vec::new();
    let mut examples = Vec::new();
    for &seed in seeds {
        log(&format!("seed {seed}: dynamics model"));
        let mut dynamics_curve = Vec::new();
        let dyn_model = train_model(
            cfg,
            tokenizers,
            vec![Role::Dynamics],
            labelled.clone(),
            0.0,
            seed,
            |m, step| {
                let d = DynamicsModel::new(m)?;
                let quick = DynamicsEvalConfig {
                    batch: 32,
                    seed,
                    preference: false,
                };
                let r = evaluate_dynamics(&d, &curve_items, &quick, |_| {})?;
                dynamics_curve.push(CurvePoint {
                    step,
                    score: r.judge / 10.0,
                });
                Ok(())
            },
        )?;
        let dynamics = DynamicsModel::new(dyn_model)?;
        let full = DynamicsEvalConfig {
            batch: 32,
            seed,
            preference: true,
        };
        let dyn_report = evaluate_dynamics(&dynamics, &test, &full, |_| {})?;

        log(&format!("seed {seed}: annotating {} videos", cfg.videos));
        let boot = BootstrapConfig {
            keep: cfg.keep,
            sampling: Sampling {
                seed,
                ..Default::default()
            },
            ..Default::default()
        };
        let all = annotate_videos(&dynamics, &video_set, &boot, |_| {})?;
        let kept = filter_annotations(&all, &boot);
        let syn_dir = dir.join(format!("seed{seed}/synthetic"));
        let synthetic = if kept.is_empty() {
            Vec::new()
        } else {
            write_synthetic(&syn_dir, &video_set, &kept)?;
            load_examples(&syn_dir, &vq, &fingerprint, &text)?
        };

        let mut worlds = BTreeMap::new();
        let mut world_curve = Vec::new();
        for name in WORLD_MODELS {
            log(&format!("seed {seed}: world model {name}"));
            let (with_syn, weighted) = match name {
                "FT" => (false, 0.0),
                "FDM" => (true, cfg.weighted),
                "FDM - synthetic" => (false, cfg.weighted),
                _ => (true, 0.0),
            };
            let mut data = labelled.clone();
            if with_syn {
                data.extend(synthetic.iter().cloned());
            }
            let model = train_model(
                cfg,
                tokenizers,
                vec![Role::World],
                data,
                weighted,
                seed,
                |m, step| {
                    if name == "FT" {
                        let w = WorldModel::new(m)?;
                        let (r, _) = evaluate_world(
                            &w,
                            None,
                            &curve_items,
                            &eval_cfg(seed, 1),
                            &judge,
                            |_| {},
                        )?;
                        world_curve.push(CurvePoint {
                            step,
                            score: r.scores.average / 10.0,
                        });
                    }
                    Ok(())
                },
            )?;
            let world = WorldModel::new(model)?;
            let (report, ex) = evaluate_world(
                &world,
                Some(&dynamics),
                &test,
                &eval_cfg(seed, cfg.n),
                &judge,
                |_| {},
            )?;
            if name == "FDM" && examples.is_empty() {
                examples = ex;
            }
            worlds.insert(name.to_string(), report);
        }
        runs.push(SeedRun {
            seed,
            dynamics: dyn_report,
            dynamics_curve,
            world_curve,
            annotated: all.len(),
            synthetic: kept.len(),
            annotator_all: annotator_quality(&all, &labels),
            annotator_kept: annotator_quality(&kept, &labels),
            worlds,
        });
    }
    let results = summarise(cfg, seeds, runs, t0.elapsed().as_secs_f64());
    Ok((results, examples))
}

fn at_n(r: &WorldReport, n: usize) -> &Scores {
    &r.best_of
        .iter()
        .find(|b| b.n == n)
        .expect("best-of-n is reported for 1 and N")
        .scores
}

fn summarise(
    cfg: &AblationConfig,
    seeds: &[u64],
    runs: Vec<SeedRun>,
    seconds: f64,
) -> AblationResults {
    let per_seed = |model: &str, n: usize| -> Vec<f64> {
        runs.iter()
            .map(|r| at_n(&r.worlds[model], n).average)
            .collect()
    };
    let mut world = BTreeMap::new();
    let mut world_per_task = BTreeMap::new();
    for name in WORLD_MODELS {
        let ns = runs[0].worlds[name].best_of.iter().map(|b| b.n);
        world.insert(
            name.to_string(),
            ns.map(|n| (format!("N = {n}"), Estimate::of(&per_seed(name, n))))
                .collect(),
        );
        let tasks = at_n(&runs[0].worlds[name], 1).per_task.keys().cloned();
        world_per_task.insert(
            name.to_string(),
            tasks
                .map(|t| {
                    let v: Vec<f64> = runs
                        .iter()
                        .map(|r| at_n(&r.worlds[name], 1).per_task[&t])
                        .collect();
                    (t, Estimate::of(&v))
                })
                .collect(),
        );
    }
    let last = |c: &[CurvePoint]| c.last().map(|p| p.score).unwrap_or(0.0);
    let dyn_final: Vec<f64> = runs.iter().map(|r| last(&r.dynamics_curve)).collect();
    let world_final: Vec<f64> = runs.iter().map(|r| last(&r.world_curve)).collect();
    let findings = Findings {
        dynamics_easier: Finding::of(
            Estimate::paired(&dyn_final, &world_final),
            "normalised score (0-1)",
            &format!(
                "dynamics minus FT world model, judge / 10 (the dynamics model's action executed), both after {} steps",
                cfg.steps
            ),
        ),
        synthetic_data: Finding::of(
            Estimate::paired(&per_seed("FDM", 1), &per_seed("FDM - synthetic", 1)),
            "judge score (0-10)",
            "FDM minus FDM without synthetic data, N = 1",
        ),
        weighted_loss: Finding::of(
            Estimate::paired(&per_seed("FDM", 1), &per_seed("FDM - weighting", 1)),
            "judge score (0-10)",
            "FDM minus FDM without the weighted loss, N = 1",
        ),
        best_of_n: Finding::of(
            Estimate::paired(&per_seed("FDM", cfg.n), &per_seed("FDM", 1)),
            "judge score (0-10)",
            &format!("FDM best-of-{} minus FDM N = 1", cfg.n),
        ),
    };
    AblationResults {
        config: cfg.clone(),
        seeds: seeds.to_vec(),
        dynamics_exact: Estimate::of(&runs.iter().map(|r| r.dynamics.exact).collect::<Vec<_>>()),
        dynamics_judge: Estimate::of(&runs.iter().map(|r| r.dynamics.judge).collect::<Vec<_>>()),
        runs,
        world,
        world_per_task,
        findings,
        seconds,
    }
}

fn est(e: &Estimate) -> String {
    format!("{:.2} [{:.2}, {:.2}]", e.mean, e.ci_low, e.ci_high)
}

/// The report's tables: findings, Table 2 (per family, N = 1), best-of-N, learning curves,
/// annotator quality.
pub fn tables(r: &AblationResults) -> Vec<Table> {
    let seeds = r.seeds.len();
    let mut f = Table::new(
        &format!("Findings (mean over {seeds} seeds [95 % CI])"),
        &[
            "finding",
            "comparison",
            "effect",
            "95 % CI",
            "unit",
            "reproduced",
        ],
    );
    let fd = &r.findings;
    for (name, x) in [
        (
            "(a) dynamics model learned more easily",
            &fd.dynamics_easier,
        ),
        ("(b) synthetic data helps", &fd.synthetic_data),
        ("(c) weighted loss helps", &fd.weighted_loss),
        ("(d) best-of-N helps", &fd.best_of_n),
    ] {
        f.push(vec![
            name.into(),
            x.comparison.clone(),
            format!("{:+.3}", x.effect),
            format!("[{:+.3}, {:+.3}]", x.ci_low, x.ci_high),
            x.unit.clone(),
            if x.reproduced { "yes" } else { "no" }.into(),
        ]);
    }
    let mut t2 = Table::new(
        "Judge score per family, N = 1 (mean [95 % CI])",
        &[
            "family",
            WORLD_MODELS[0],
            WORLD_MODELS[1],
            WORLD_MODELS[2],
            WORLD_MODELS[3],
        ],
    );
    for task in r.world_per_task["FT"].keys() {
        let mut row = vec![task.clone()];
        row.extend(
            WORLD_MODELS
                .iter()
                .map(|m| est(&r.world_per_task[*m][task])),
        );
        t2.push(row);
    }
    let mut avg = vec!["average".to_string()];
    avg.extend(WORLD_MODELS.iter().map(|m| est(&r.world[*m]["N = 1"])));
    t2.push(avg);
    let ns: Vec<String> = r.world["FT"].keys().cloned().collect();
    let mut header = vec!["model"];
    header.extend(ns.iter().map(String::as_str));
    let mut bon = Table::new(
        "Best-of-N with the dynamics model as verifier (average judge score)",
        &header,
    );
    for m in ["FT", "FDM"] {
        let mut row = vec![m.to_string()];
        row.extend(ns.iter().map(|n| est(&r.world[m][n])));
        bon.push(row);
    }
    let mut lc = Table::new(
        "Learning curves at equal steps (judge / 10: the dynamics model's action executed on the source state, the FT world model's image; mean over seeds)",
        &["step", "dynamics model", "world model"],
    );
    for (k, p) in r.runs[0].dynamics_curve.iter().enumerate() {
        let mean =
            |f: &dyn Fn(&SeedRun) -> f64| r.runs.iter().map(f).sum::<f64>() / r.runs.len() as f64;
        lc.push(vec![
            p.step.to_string(),
            format!("{:.3}", mean(&|s| s.dynamics_curve[k].score)),
            format!("{:.3}", mean(&|s| s.world_curve[k].score)),
        ]);
    }
    let mut aq = Table::new(
        "Weak supervision: the annotator against the videos' hidden labels",
        &[
            "seed",
            "pairs",
            "kept",
            "pairs right (all)",
            "exact (all)",
            "exact (kept)",
            "BLEU-4 (kept)",
            "dynamics exact on test",
            "dynamics judge on test",
        ],
    );
    for s in &r.runs {
        aq.push(vec![
            s.seed.to_string(),
            s.annotated.to_string(),
            s.synthetic.to_string(),
            format!("{:.1} %", 100.0 * s.annotator_all.pair_precision),
            format!("{:.1} %", 100.0 * s.annotator_all.exact),
            format!("{:.1} %", 100.0 * s.annotator_kept.exact),
            format!("{:.3}", s.annotator_kept.bleu),
            format!("{:.1} %", 100.0 * s.dynamics.exact),
            format!("{:.2}", s.dynamics.judge),
        ]);
    }
    vec![f, t2, bon, lc, aq]
}

/// Writes `results.json`, `report.md` and `report.html` into `dir`.
#[cfg(feature = "fs")]
pub fn write_reports(dir: &Path, r: &AblationResults, examples: &[WorldExample]) -> Result<()> {
    use crate::files::write_atomic;
    let json = serde_json::to_string_pretty(r).expect("results serialise");
    write_atomic(&dir.join("results.json"), json.as_bytes())?;
    let ts = tables(r);
    let intro = format!(
        "Ablation on the embedded world: {} seeds, preset backbone {:?}, {} steps per model, {} \
         labelled triplets, {} videos, {} test rows per family; {:.0} s in all. A finding counts as \
         reproduced when its 95 % interval lies above zero; every other number is in \
         results.json.\n\n",
        r.seeds.len(),
        r.config.backbone,
        r.config.steps,
        r.config.train_rows,
        r.config.videos,
        r.config.test_per_family,
        r.seconds
    );
    let md = format!("# dynaboot ablation\n\n{intro}")
        + &ts.iter().map(Table::markdown).collect::<String>();
    write_atomic(&dir.join("report.md"), md.as_bytes())?;
    let body = format!("<p>{}</p>", crate::eval::report::escape(&intro))
        + &ts.iter().map(Table::html).collect::<String>()
        + &examples_html(examples)?;
    write_atomic(
        &dir.join("report.html"),
        html_page("dynaboot ablation", &body).as_bytes(),
    )
}
