//! Running the scaling study: per labelled size L and seed (a [`Cell`]), a dynamics model
//! fine-tuned on the L triplets labels the video pool; world models FT (L only), FDM (L + its
//! synthetic pairs, plain loss) and, at the smallest and largest L, FDM with the weighted loss
//! are fine-tuned on the same L; every model is evaluated on the test rows, the world models
//! with that L's dynamics model as verifier and with the shipped one.
//!
//! Every stage of a cell writes its result (`*.json`) when it is done, and every fine-tune
//! checkpoints as it goes, so a study killed at any moment resumes where it stopped and ends
//! with the numbers an uninterrupted study has: training resumes exactly and everything else
//! is a deterministic function of the seeds.

use super::ScalingConfig;
use super::findings::{ScalingResults, summarise};
use crate::ablation::{Variant, guess_rouge_l};
use crate::bootstrap::{
    Annotation, AnnotatorQuality, BootstrapConfig, annotate_videos, annotator_quality,
    filter_annotations, write_synthetic,
};
use crate::data::{VideoDataset, write_triplets};
use crate::error::{Error, Result};
use crate::eval::{
    DynamicsEvalConfig, DynamicsReport, EvalItem, Judge, WorldEvalConfig, WorldReport,
    evaluate_dynamics, evaluate_world_verified, generated_items, test_split_items,
};
use crate::model::checkpoint::vq_fingerprint;
use crate::model::{DynamicsModel, Model, Role, Sampling, WorldModel};
use crate::tokenize::load_tokenizers;
use crate::train::data::{Example, load_examples};
use crate::train::run_dir::STATE_FILE;
use crate::train::{Data, Overrides, RunSpec, Start};
use crate::world::generate::{triplets, videos};
use crate::world::{Recogniser, RenderConfig};
use candle_core::Device;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// One labelled size and seed of the study, or of its coverage variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Labelled triplets L.
    pub size: usize,
    /// The seed of its models, their data order and their sampling.
    pub seed: u64,
    /// Whether the triplets come from the coverage variant's families only.
    pub coverage: bool,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.coverage { " (coverage)" } else { "" };
        write!(f, "L = {}{kind} seed {}", self.size, self.seed)
    }
}

impl Cell {
    /// The cell's folder under the study's.
    fn dir(&self, study: &Path) -> PathBuf {
        let kind = if self.coverage { "coverage" } else { "sizes" };
        study.join(format!("{kind}/L{}/seed{}", self.size, self.seed))
    }
}

/// A world model's evaluation with each verifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verified {
    /// Verified by the dynamics model of the same cell (trained on the same L triplets).
    pub own: WorldReport,
    /// Verified by the shipped dynamics model.
    pub shipped: WorldReport,
}

/// Everything one cell measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Which cell.
    pub cell: Cell,
    /// Fine-tuning steps of each of its models.
    pub steps: usize,
    /// The dynamics model on the test rows.
    pub dynamics: DynamicsReport,
    /// Its ROUGE-L rescaled so that a random valid action scores 0 and the reference 1.
    pub dynamics_normalised: f64,
    /// Frame pairs it annotated, and how many the stratified top-K kept.
    pub annotated: usize,
    /// Synthetic triplets (the kept annotations).
    pub synthetic: usize,
    /// Its annotations against the videos' hidden labels: all of them ...
    pub annotator_all: AnnotatorQuality,
    /// ... and the kept ones.
    pub annotator_kept: AnnotatorQuality,
    /// Each world model's evaluation.
    pub worlds: BTreeMap<Variant, Verified>,
    /// Compute time of the cell's stages (training, annotation, evaluation), summed.
    pub seconds: f64,
}

/// A stage's result as written in its json: what it measured and how long it took.
#[derive(Serialize, Deserialize)]
struct Stage<T> {
    result: T,
    seconds: f64,
}

/// The stage result an earlier run of the study wrote in `path`, with its seconds; none
/// where the stage has not finished.
fn finished_stage<T: DeserializeOwned>(path: &Path) -> Result<Option<(T, f64)>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = crate::files::read_input_text(path, crate::files::Input::Json)?;
    let s: Stage<T> = serde_json::from_str(&text).map_err(|e| {
        Error::Invalid(format!(
            "{}: {e}; this study folder was written by another version: start a new study \
             (--force) or remove the file to redo its stage",
            path.display()
        ))
    })?;
    Ok(Some((s.result, s.seconds)))
}

/// The stage result in `path` if an earlier run of the study wrote it, else `run`'s,
/// written there.
fn stage<T: Serialize + DeserializeOwned>(
    path: &Path,
    run: impl FnOnce() -> Result<T>,
) -> Result<(T, f64)> {
    if let Some(done) = finished_stage(path)? {
        return Ok(done);
    }
    let t0 = Instant::now();
    let result = run()?;
    let seconds = t0.elapsed().as_secs_f64();
    let s = Stage { result, seconds };
    let json = serde_json::to_string_pretty(&s).expect("results serialise");
    crate::files::write_atomic(path, json.as_bytes())?;
    Ok((s.result, seconds))
}

/// What every cell shares: the data, the tokenizers, the test rows and the shipped verifier.
struct Study<'a> {
    cfg: &'a ScalingConfig,
    models: &'a Path,
    dir: &'a Path,
    device: &'a Device,
    pool: Vec<Example>,
    coverage_pool: Vec<Example>,
    video_set: VideoDataset,
    labels: Vec<crate::data::video::VideoLabels>,
    test: Vec<EvalItem>,
    guess: f64,
    judge: Judge,
    shipped: DynamicsModel,
}

impl Study<'_> {
    /// Fine-tunes the base of `role` on `data` in the run folder `out`, resuming a run an
    /// earlier study left there; the trained model.
    fn fine_tune(
        &self,
        out: &Path,
        role: Role,
        data: Vec<Example>,
        steps: usize,
        weighted: f64,
        seed: u64,
    ) -> Result<Arc<Model>> {
        let cfg = self.cfg;
        let resume = out.join(STATE_FILE).exists();
        let start = if resume {
            Start::Resume
        } else {
            let base = match role {
                Role::Dynamics => &cfg.dynamics_base,
                Role::World => &cfg.world_base,
            };
            Start::Base {
                dir: self.models.join(base),
                vqgan: None,
            }
        };
        let mut spec = RunSpec::new(vec![role], start, Data::Examples(data));
        spec.tokenizers = Some(self.models.to_path_buf());
        spec.out = Some(out.to_path_buf());
        // A run killed before its first checkpoint starts again.
        spec.replace = !resume;
        spec.overrides = Overrides {
            steps: Some(steps),
            batch_size: Some(cfg.batch_size),
            lr: Some(cfg.lr),
            warmup: Some((steps as f64 * cfg.warmup_fraction).round() as usize),
            weighted: Some(weighted),
            seed: Some(seed),
            eval_every: Some(0),
            checkpoint_every: Some(cfg.checkpoint_every),
            ..Overrides::default()
        };
        let opened = spec.open(self.device)?;
        let mut trainer = opened.trainer;
        trainer.fit_to(out, &opened.text, |_| {})?;
        let (vq, text) = load_tokenizers(self.models, self.device)?;
        Ok(Arc::new(trainer.snapshot(vq, text)?))
    }

    /// Runs (or, where an earlier study did, reads) every stage of `cell`.
    fn run_cell(&self, cell: &Cell, log: &mut impl FnMut(&str)) -> Result<CellResult> {
        let cfg = self.cfg;
        let dir = cell.dir(self.dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let labelled = if cell.coverage {
            self.coverage_pool[..cell.size].to_vec()
        } else {
            self.pool[..cell.size].to_vec()
        };
        let steps = cfg.steps_for(cell.size);
        let seed = cell.seed;
        let name = cell.to_string();
        let mut own: Option<DynamicsModel> = None;
        let dynamics_model = |own: &mut Option<DynamicsModel>| -> Result<()> {
            if own.is_none() {
                let m = self.fine_tune(
                    &dir.join("dynamics"),
                    Role::Dynamics,
                    labelled.clone(),
                    steps,
                    0.0,
                    seed,
                )?;
                *own = Some(DynamicsModel::new(m)?);
            }
            Ok(())
        };

        log(&format!("{name}: dynamics model, {steps} steps"));
        let (dynamics, s_dyn) = stage(&dir.join("dynamics.json"), || {
            dynamics_model(&mut own)?;
            let quick = DynamicsEvalConfig {
                batch: 32,
                seed,
                preference: false,
            };
            let d = own.as_ref().expect("trained above");
            evaluate_dynamics(d, &self.test, &quick, |_| {})
        })?;

        log(&format!("{name}: annotating {} videos", cfg.videos));
        let (annotation, s_ann) = stage(&dir.join("annotation.json"), || {
            dynamics_model(&mut own)?;
            let boot = BootstrapConfig::sampled(cfg.keep, seed, cfg.annotation_temperature);
            let d = own.as_ref().expect("trained above");
            let all = annotate_videos(d, &self.video_set, &boot, |_| {})?;
            let kept = filter_annotations(&all, &boot);
            Ok(Annotated {
                annotated: all.len(),
                all: annotator_quality(&all, &self.labels),
                quality: annotator_quality(&kept, &self.labels),
                kept,
            })
        })?;
        // The synthetic triplets, cut from the videos where the kept annotations say (again,
        // where a study carried over without them).
        let syn_dir = dir.join("synthetic");
        let synthetic = if annotation.kept.is_empty() {
            Vec::new()
        } else {
            if !syn_dir.join(crate::data::DATA_FILE).exists() {
                write_synthetic(&syn_dir, &self.video_set, &annotation.kept)?;
            }
            let (vq, text) = load_tokenizers(self.models, self.device)?;
            let fingerprint = vq_fingerprint(&self.models.join("vq"))?;
            load_examples(&syn_dir, &vq, &fingerprint, &text)?
        };

        let mut worlds = BTreeMap::new();
        let mut seconds = s_dyn + s_ann;
        for variant in variants(cfg, cell) {
            let v = variant_name(variant);
            log(&format!("{name}: world model {v}"));
            let (verified, s) = stage(&world_stage(&dir, variant), || {
                dynamics_model(&mut own)?;
                let mut data = labelled.clone();
                if variant.synthetic() {
                    data.extend(synthetic.iter().cloned());
                }
                let weighted = if variant.weighted() {
                    cfg.weighted
                } else {
                    0.0
                };
                let out = dir.join(format!("world-{}", variant_file(variant)));
                let world = WorldModel::new(self.fine_tune(
                    &out,
                    Role::World,
                    data,
                    steps,
                    weighted,
                    seed,
                )?)?;
                let eval = WorldEvalConfig {
                    n: cfg.n,
                    sampling: Sampling {
                        seed,
                        ..Default::default()
                    },
                    examples_per_family: 0,
                };
                let d = own.as_ref().expect("trained above");
                let (mut reports, _) = evaluate_world_verified(
                    &world,
                    &[d, &self.shipped],
                    &self.test,
                    &eval,
                    &self.judge,
                    |_| {},
                )?;
                let shipped = reports.pop().expect("two verifiers");
                let own = reports.pop().expect("two verifiers");
                Ok(Verified { own, shipped })
            })?;
            seconds += s;
            log(&format!(
                "{name}: {v} judge {:.2} at N = 1, {:.2} at N = {} (own verifier), {:.2} (shipped)",
                verified.own.best_of[0].scores.average,
                verified.own.scores.average,
                cfg.n,
                verified.shipped.scores.average
            ));
            worlds.insert(variant, verified);
        }
        Ok(cell_result(
            cfg, cell, dynamics, self.guess, annotation, worlds, seconds,
        ))
    }
}

/// The world models a cell trains: FT and FDM, and FDM with the weighted loss at the sizes
/// that have it.
fn variants(cfg: &ScalingConfig, cell: &Cell) -> Vec<Variant> {
    let mut v = vec![Variant::Ft, Variant::FdmWithoutWeighting];
    if !cell.coverage && cfg.weighted_at(cell.size) {
        v.push(Variant::Fdm);
    }
    v
}

/// The stage file of a world model of the cell in `dir`.
fn world_stage(dir: &Path, variant: Variant) -> PathBuf {
    dir.join(format!("world-{}.json", variant_file(variant)))
}

/// A cell's record from its stages' results; `guess` is a random valid action's ROUGE-L on
/// the test rows.
fn cell_result(
    cfg: &ScalingConfig,
    cell: &Cell,
    dynamics: DynamicsReport,
    guess: f64,
    annotation: Annotated,
    worlds: BTreeMap<Variant, Verified>,
    seconds: f64,
) -> CellResult {
    CellResult {
        cell: cell.clone(),
        steps: cfg.steps_for(cell.size),
        dynamics_normalised: (dynamics.rouge_l - guess) / (1.0 - guess),
        dynamics,
        annotated: annotation.annotated,
        synthetic: annotation.kept.len(),
        annotator_all: annotation.all,
        annotator_kept: annotation.quality,
        worlds,
        seconds,
    }
}

/// The cell's record if every one of its stages has finished in the study folder `study`.
fn finished_cell(
    cfg: &ScalingConfig,
    study: &Path,
    cell: &Cell,
    guess: f64,
) -> Result<Option<CellResult>> {
    let dir = cell.dir(study);
    let Some((dynamics, s_dyn)) = finished_stage::<DynamicsReport>(&dir.join("dynamics.json"))?
    else {
        return Ok(None);
    };
    let Some((annotation, s_ann)) = finished_stage::<Annotated>(&dir.join("annotation.json"))?
    else {
        return Ok(None);
    };
    let mut worlds = BTreeMap::new();
    let mut seconds = s_dyn + s_ann;
    for variant in variants(cfg, cell) {
        let Some((verified, s)) = finished_stage::<Verified>(&world_stage(&dir, variant))? else {
            return Ok(None);
        };
        worlds.insert(variant, verified);
        seconds += s;
    }
    Ok(Some(cell_result(
        cfg, cell, dynamics, guess, annotation, worlds, seconds,
    )))
}

/// The record of the study in `dir` so far, running nothing: the cells whose every stage has
/// finished, added up, and the cells still to run (`ScalingResults::missing`). `models` is
/// the folder the study ran from (for the test rows' image size).
pub fn read_scaling(dir: &Path, models: &Path) -> Result<ScalingResults> {
    let cfg = study_config(dir)?;
    let (vq, _) = load_tokenizers(models, &Device::Cpu)?;
    let guess = guess_rouge_l(&study_test_rows(&cfg, vq.image_size() as u32))?;
    let (mut done, mut missing) = (Vec::new(), Vec::new());
    for cell in cells(&cfg) {
        match finished_cell(&cfg, dir, &cell, guess)? {
            Some(r) => done.push(r),
            None => missing.push(cell),
        }
    }
    Ok(summarise(&cfg, done, missing))
}

/// The configuration of the study in `dir` (its `study.json`).
pub fn study_config(dir: &Path) -> Result<ScalingConfig> {
    let config_path = dir.join(CONFIG_FILE);
    let text = crate::files::read_input_text(&config_path, crate::files::Input::Json)?;
    let cfg: ScalingConfig = serde_json::from_str(&text).map_err(|e| {
        Error::Invalid(format!(
            "{}: {e}; not a scaling study's configuration (written by `dynaboot scale`)",
            config_path.display()
        ))
    })?;
    cfg.validate()?;
    Ok(cfg)
}

/// The rows every model of the study is evaluated on: the fixed test split's, or a tuning
/// split's.
fn study_test_rows(cfg: &ScalingConfig, image_size: u32) -> Vec<EvalItem> {
    match cfg.tune_seed {
        Some(seed) => generated_items(seed, cfg.test_per_family, image_size),
        None => test_split_items(cfg.test_per_family, image_size),
    }
}

/// The annotation stage's result: the pairs annotated, the kept annotations themselves (the
/// synthetic triplets are cut from the videos by them) and both sets' quality.
#[derive(Serialize, Deserialize)]
struct Annotated {
    annotated: usize,
    kept: Vec<Annotation>,
    all: AnnotatorQuality,
    quality: AnnotatorQuality,
}

/// A variant's name in the study's logs and tables: the plain FDM is its FDM.
pub(crate) fn variant_name(v: Variant) -> &'static str {
    match v {
        Variant::Ft => "FT",
        Variant::Fdm => "FDM + weighted loss",
        Variant::FdmWithoutWeighting => "FDM",
        Variant::FdmWithoutSynthetic => "FDM - synthetic",
    }
}

/// A variant's name in file names.
fn variant_file(v: Variant) -> &'static str {
    match v {
        Variant::Ft => "ft",
        Variant::Fdm => "fdm-weighted",
        Variant::FdmWithoutWeighting => "fdm",
        Variant::FdmWithoutSynthetic => "fdm-without-synthetic",
    }
}

/// The study's cells in the order they run: by labelled size, each size's seeds, then (at
/// its size) the coverage variant's; so the cheap cells come first and a study stopped part
/// of the way holds every result of its smaller sizes.
pub(crate) fn cells(cfg: &ScalingConfig) -> Vec<Cell> {
    let mut cells: Vec<Cell> = cfg
        .sizes
        .iter()
        .flat_map(|&size| {
            (0..cfg.seeds_for(size) as u64).map(move |seed| Cell {
                size,
                seed,
                coverage: false,
            })
        })
        .collect();
    if let Some(c) = &cfg.coverage {
        cells.extend((0..cfg.coverage_seeds() as u64).map(|seed| Cell {
            size: c.size,
            seed,
            coverage: true,
        }));
    }
    // Stable: the seeds stay in order within a size and a kind.
    cells.sort_by_key(|c| (c.size, c.coverage));
    cells
}

/// The study's own record of its configuration, in its folder.
const CONFIG_FILE: &str = "study.json";
/// What a study writes into its folder.
const STUDY_FILES: [&str; 7] = [
    CONFIG_FILE,
    "results.json",
    "report.md",
    "report.html",
    "data",
    "sizes",
    "coverage",
];

/// What to do with a study already in the output folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EarlierStudy {
    /// Refuse to touch it.
    Refuse,
    /// Continue it: what its cells finished is read, not redone (its configuration must be
    /// this one).
    Resume,
    /// Remove it first.
    Replace,
}

/// Runs the study in `dir` from the models folder `models` (`vq/`, `tokenizer.json`, the base
/// every model fine-tunes and the shipped dynamics model) on `device`; `earlier` says what to
/// do with a study already there; `log` receives one line per stage.
pub fn run_scaling(
    cfg: &ScalingConfig,
    models: &Path,
    dir: &Path,
    device: &Device,
    earlier: EarlierStudy,
    mut log: impl FnMut(&str),
) -> Result<ScalingResults> {
    cfg.validate()?;
    for start in [&cfg.dynamics_base, &cfg.world_base, &cfg.shipped_dynamics] {
        if !models.join(start).join("config.json").is_file() {
            return Err(Error::Invalid(format!(
                "--models {}: no checkpoint {start}/ in it; give the folder of the shipped \
                 models (models/ of the repository)",
                models.display()
            )));
        }
    }
    let config_path = dir.join(CONFIG_FILE);
    let json = serde_json::to_string_pretty(cfg).expect("configs serialise");
    if earlier == EarlierStudy::Resume {
        crate::files::lock_output_folder(dir)?;
        let text = crate::files::read_input_text(&config_path, crate::files::Input::Json).map_err(
            |_| {
                Error::Invalid(format!(
                    "--resume: {} holds no study ({CONFIG_FILE}); start without --resume",
                    dir.display()
                ))
            },
        )?;
        // More (or fewer) seeds extend a study: no cell depends on how many there are.
        let same = serde_json::from_str::<ScalingConfig>(&text).is_ok_and(|earlier| {
            ScalingConfig {
                seeds_small: cfg.seeds_small,
                seeds_large: cfg.seeds_large,
                seeds_coverage: cfg.seeds_coverage,
                ..earlier
            } == *cfg
        });
        if !same {
            return Err(Error::Invalid(format!(
                "--resume: {} holds a study of another configuration ({CONFIG_FILE}); give the \
                 flags it ran with (only the seed counts may change), or --force without \
                 --resume to replace it",
                dir.display()
            )));
        }
        if text != json {
            crate::files::write_atomic(&config_path, json.as_bytes())?;
        }
        log("resuming the study in this folder: finished stages are read, not redone");
    } else {
        let found: Vec<PathBuf> = STUDY_FILES
            .iter()
            .map(|f| dir.join(f))
            .filter(|p| p.exists())
            .collect();
        let replace = earlier == EarlierStudy::Replace;
        crate::files::clear_earlier_output(
            dir,
            &found,
            "a scaling study",
            Some("--resume to continue it"),
            replace,
        )?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        crate::files::write_atomic(&config_path, json.as_bytes())?;
    }

    let (vq, text) = load_tokenizers(models, device)?;
    let size = vq.image_size() as u32;
    let render = RenderConfig {
        size,
        ..Default::default()
    };
    let fingerprint = vq_fingerprint(&models.join("vq"))?;
    let pool_dir = dir.join("data/train");
    if !pool_dir.join(crate::data::DATA_FILE).exists() {
        log(&format!("generating {} labelled triplets", cfg.pool_size()));
        write_triplets(&pool_dir, &triplets(1, cfg.pool_size()), render, |_| {})?;
    }
    let pool = load_examples(&pool_dir, &vq, &fingerprint, &text)?;
    let coverage_pool = match &cfg.coverage {
        Some(c) => {
            let cov_dir = dir.join("data/coverage");
            if !cov_dir.join(crate::data::DATA_FILE).exists() {
                log(&format!(
                    "generating {} labelled triplets of {:?}",
                    c.size, c.families
                ));
                let total = c.size * crate::world::Family::ALL.len();
                let rows: Vec<_> = triplets(3, total)
                    .into_iter()
                    .filter(|t| c.families.contains(&t.family()))
                    .take(c.size)
                    .collect();
                write_triplets(&cov_dir, &rows, render, |_| {})?;
            }
            load_examples(&cov_dir, &vq, &fingerprint, &text)?
        }
        None => Vec::new(),
    };
    let video_dir = dir.join("data/videos");
    let video_set = if video_dir.join(crate::data::video::LABELS_FILE).exists() {
        VideoDataset::load(&video_dir)?
    } else {
        log(&format!("generating {} videos", cfg.videos));
        VideoDataset::write(&video_dir, videos(2, cfg.videos, cfg.video, render))?
    };
    let labels = video_set.labels_for_evaluation()?;
    let test = study_test_rows(cfg, size);
    let study = Study {
        cfg,
        models,
        dir,
        device,
        pool,
        coverage_pool,
        video_set,
        labels,
        guess: guess_rouge_l(&test)?,
        test,
        judge: Judge::new(Recogniser::new(render)),
        shipped: DynamicsModel::new(Arc::new(Model::load(
            &models.join(&cfg.shipped_dynamics),
            device,
        )?))?,
    };
    let mut results = Vec::new();
    for cell in cells(cfg) {
        results.push(study.run_cell(&cell, &mut log)?);
    }
    Ok(summarise(cfg, results, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_is_run_once_and_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stage.json");
        // 17 significant digits: the last one is what a lossy json reader gets wrong.
        let value = 0.036628194572099676_f64;
        let (first, _) = stage(&path, || Ok(value)).unwrap();
        let (again, _) = stage(&path, || -> Result<f64> { panic!("run twice") }).unwrap();
        assert_eq!(
            (first.to_bits(), again.to_bits()),
            (value.to_bits(), value.to_bits())
        );
        std::fs::write(&path, "{\"result\": \"words\", \"seconds\": 1}").unwrap();
        let e = stage(&path, || Ok(value)).unwrap_err().to_string();
        assert!(e.contains("stage.json") && e.contains("--force"), "{e}");
    }

    #[test]
    fn cells_run_by_size_with_the_coverage_variant_after_its_size() {
        let cfg = crate::scaling::ScalingPreset::Default.config();
        let c = cells(&cfg);
        assert_eq!(c.len(), 5 + 5 + 5 + 3 + 3);
        assert_eq!(
            c[0],
            Cell {
                size: 250,
                seed: 0,
                coverage: false
            }
        );
        assert!(c[5..10].iter().all(|c| !c.coverage && c.size == 1000));
        assert!(c[10..15].iter().all(|c| c.coverage && c.size == 1000));
        assert!(c[15..].iter().all(|c| !c.coverage && c.size > 1000));
        assert!(c.windows(2).all(|w| w[0].size <= w[1].size));
        let dirs: std::collections::BTreeSet<PathBuf> =
            c.iter().map(|c| c.dir(Path::new("s"))).collect();
        assert_eq!(dirs.len(), c.len(), "every cell has its own folder");
    }
}
