//! Running the ablation: per seed, the dynamics model fine-tuned on the labelled triplets,
//! the videos labelled by the annotator (weak supervision), each world [`Variant`] fine-tuned
//! and evaluated with best-of-N verification; learning curves at equal steps.

use super::findings::{AblationResults, at_n, summarise};
use super::{AblationConfig, Variant};
use crate::bootstrap::{
    AnnotatorQuality, BootstrapConfig, annotate_videos, annotator_quality, filter_annotations,
    write_synthetic,
};
use crate::data::{VideoDataset, write_triplets};
use crate::error::{Error, Result};
use crate::eval::{
    DynamicsEvalConfig, DynamicsReport, EvalItem, Judge, WorldEvalConfig, WorldExample,
    WorldReport, evaluate_dynamics, evaluate_world, first_per_family, generated_items,
    test_split_items,
};
use crate::model::checkpoint::vq_fingerprint;
use crate::model::{DynamicsModel, Model, Role, Sampling, WorldModel};
use crate::tokenize::load_tokenizers;
use crate::train::data::{Example, load_examples};
use crate::train::loss::copy_tilt;
use crate::train::{Data, Overrides, RunSpec, Start};
use crate::world::generate::{triplets, videos};
use crate::world::{Recogniser, RenderConfig};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// One point of a learning curve: normalised score (0-1) after `step` steps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub(crate) step: usize,
    pub(crate) score: f64,
}

/// Everything one seed measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedRun {
    /// The seed of this run's models and sampling.
    pub seed: u64,
    pub(crate) dynamics: DynamicsReport,
    /// Learning curves at equal steps: the dynamics model's ROUGE-L rescaled by
    /// [`AblationResults::guess_rouge_l`] (and its exact-action rate beside) and the FT world
    /// model's judge / 10.
    pub(crate) dynamics_curve: Vec<CurvePoint>,
    pub(crate) dynamics_curve_exact: Vec<CurvePoint>,
    pub(crate) world_curve: Vec<CurvePoint>,
    pub(crate) annotated: usize,
    pub(crate) synthetic: usize,
    pub(crate) annotator_all: AnnotatorQuality,
    /// The annotations kept by the stratified top-K, against the hidden labels.
    pub annotator_kept: AnnotatorQuality,
    /// Each world model's evaluation.
    pub worlds: BTreeMap<Variant, WorldReport>,
}

/// Fine-tunes the checkpoint `base` of the models folder in full for `roles` and records a
/// learning curve with `curve` (called with the current model and the step), at
/// `cfg.curve_points` evenly spaced steps.
#[allow(clippy::too_many_arguments)]
fn train_model(
    cfg: &AblationConfig,
    models: &Path,
    base: &str,
    roles: Vec<Role>,
    examples: Vec<Example>,
    lr: f64,
    weighted: f64,
    seed: u64,
    device: &Device,
    curve: impl FnMut(Arc<Model>, usize) -> Result<()>,
) -> Result<Arc<Model>> {
    let start = Start::Base {
        dir: models.join(base),
        vqgan: None,
    };
    let mut spec = RunSpec::new(roles, start, Data::Examples(examples));
    spec.tokenizers = Some(models.to_path_buf());
    spec.overrides = Overrides {
        steps: Some(cfg.steps),
        batch_size: Some(cfg.batch_size),
        lr: Some(lr),
        warmup: Some(cfg.warmup),
        weighted: Some(weighted),
        weighting: Some(cfg.weighting),
        seed: Some(seed),
        eval_every: Some(0),
        ..Overrides::default()
    };
    let mut trainer = spec.open(device)?.trainer;
    let (model, _) =
        trainer.learning_curve(cfg.curve_points, || load_tokenizers(models, device), curve)?;
    Ok(model)
}

/// Runs the whole experiment in `dir` (data, synthetic sets) from the models folder `models`
/// (`vq/`, `tokenizer.json` and the starting checkpoints) on `device`; `log` receives one
/// line per stage. Returns the results and example rows of the first seed's FDM evaluation.
pub fn run_ablation(
    cfg: &AblationConfig,
    seeds: &[u64],
    models: &Path,
    dir: &Path,
    device: &Device,
    mut log: impl FnMut(&str),
) -> Result<(AblationResults, Vec<WorldExample>)> {
    if seeds.is_empty() {
        return Err(Error::Invalid("--seeds: run at least one seed".into()));
    }
    cfg.validate()?;
    let t0 = std::time::Instant::now();
    for start in [&cfg.dynamics_base, &cfg.world_base]
        .into_iter()
        .chain(cfg.annotator.as_ref())
    {
        if !models.join(start).join("config.json").is_file() {
            return Err(Error::Invalid(format!(
                "--models {}: no checkpoint {start}/ in it; give the folder of the shipped \
                 models (models/ of the repository: the foundation checkpoints every model \
                 fine-tunes, and the dynamics model that labels the videos)",
                models.display()
            )));
        }
    }
    crate::files::lock_output_folder(dir)?;
    let annotator = match &cfg.annotator {
        Some(dir) => Some(DynamicsModel::new(Arc::new(Model::load(
            &models.join(dir),
            device,
        )?))?),
        None => None,
    };
    let (vq, text) = load_tokenizers(models, device)?;
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
    let video_set = VideoDataset::write(&video_dir, videos(2, cfg.videos, cfg.video, render))?;
    let labels = video_set.labels_for_evaluation()?;
    let fingerprint = vq_fingerprint(&models.join("vq"))?;
    let labelled = load_examples(&train_dir, &vq, &fingerprint, &text)?;
    let test: Vec<EvalItem> = match cfg.tune_seed {
        Some(seed) => generated_items(seed, cfg.test_per_family, size),
        None => test_split_items(cfg.test_per_family, size),
    };
    let curve_items = first_per_family(test.iter().cloned(), cfg.curve_per_family);
    let guess = guess_rouge_l(&test)?;
    let judge = Judge::new(Recogniser::new(render));
    let eval_cfg = |seed: u64, n: usize, copy_bias: f64| WorldEvalConfig {
        n,
        sampling: Sampling {
            seed,
            copy_bias,
            ..Default::default()
        },
        examples_per_family: 1,
    };

    let mut runs = Vec::new();
    let mut examples = Vec::new();
    for &seed in seeds {
        log(&format!("seed {seed}: dynamics model"));
        let mut dynamics_curve = Vec::new();
        let mut dynamics_curve_exact = Vec::new();
        let dyn_model = train_model(
            cfg,
            models,
            &cfg.dynamics_base,
            vec![Role::Dynamics],
            labelled.clone(),
            cfg.dynamics_lr.unwrap_or(cfg.lr),
            0.0,
            seed,
            device,
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
                    score: (r.rouge_l - guess) / (1.0 - guess),
                });
                dynamics_curve_exact.push(CurvePoint {
                    step,
                    score: r.exact,
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
        let annotator = match &annotator {
            Some(a) => a,
            None => &dynamics,
        };

        log(&format!("seed {seed}: annotating {} videos", cfg.videos));
        let boot = BootstrapConfig::sampled(cfg.keep, seed, cfg.annotation_temperature);
        let all = annotate_videos(annotator, &video_set, &boot, |_| {})?;
        let kept = filter_annotations(&all, &boot);
        let syn_dir = dir.join(format!("seed{seed}/synthetic"));
        let synthetic = if kept.is_empty() {
            Vec::new()
        } else {
            write_synthetic(&syn_dir, &video_set, &kept)?;
            load_examples(&syn_dir, &vq, &fingerprint, &text)?
        };
        let annotator_all = annotator_quality(&all, &labels);
        let annotator_kept = annotator_quality(&kept, &labels);
        log(&format!(
            "seed {seed}: {} pairs ({:.0} % span one action), {} kept, {:.0} % of those spanning one action exactly right",
            all.len(),
            100.0 * annotator_all.pair_precision,
            kept.len(),
            100.0 * annotator_kept.exact_spanning
        ));

        let mut worlds = BTreeMap::new();
        let mut world_curve = Vec::new();
        for variant in Variant::ALL {
            log(&format!("seed {seed}: world model {variant}"));
            let weighted = if variant.weighted() {
                cfg.weighted
            } else {
                0.0
            };
            let mut data = labelled.clone();
            if variant.synthetic() {
                data.extend(synthetic.iter().cloned());
            }
            let copy_bias = if cfg.undo_tilt {
                copy_tilt(
                    weighted,
                    data.iter()
                        .map(|e| (&e.source[..], &e.target[..], &e.recognition_weights[..])),
                )
            } else {
                0.0
            };
            let model = train_model(
                cfg,
                models,
                &cfg.world_base,
                vec![Role::World],
                data,
                cfg.lr,
                weighted,
                seed,
                device,
                |m, step| {
                    if variant == Variant::Ft {
                        let w = WorldModel::new(m)?;
                        let (r, _) = evaluate_world(
                            &w,
                            None,
                            &curve_items,
                            &eval_cfg(seed, 1, copy_bias),
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
                Some(annotator),
                &test,
                &eval_cfg(seed, cfg.n, copy_bias),
                &judge,
                |_| {},
            )?;
            log(&format!(
                "seed {seed}: {variant} judge {:.2} at N = 1, {:.2} at N = {} (copy bias {copy_bias:.2})",
                at_n(&report, 1).average,
                at_n(&report, cfg.n).average,
                cfg.n
            ));
            if variant == Variant::Fdm && examples.is_empty() {
                examples = ex;
            }
            worlds.insert(variant, report);
        }
        runs.push(SeedRun {
            seed,
            dynamics: dyn_report,
            dynamics_curve,
            dynamics_curve_exact,
            world_curve,
            annotated: all.len(),
            synthetic: kept.len(),
            annotator_all,
            annotator_kept,
            worlds,
        });
    }
    let results = summarise(cfg, seeds, runs, guess, t0.elapsed().as_secs_f64());
    Ok((results, examples))
}

/// The seed of [`guess_rouge_l`]'s random actions.
const GUESS_SEED: u64 = 0x6e55;

/// Mean ROUGE-L of a guess that never looks at the target: for each row a random valid action
/// of its source scene (any family) in random words, against the row's instruction.
pub(crate) fn guess_rouge_l(items: &[EvalItem]) -> Result<f64> {
    use crate::world::{Action, Family, describe};
    use rand::Rng;
    use rand::seq::IndexedRandom;
    let mut rng = crate::world::generate::rng(GUESS_SEED);
    let mut scores = Vec::new();
    for it in items {
        let scene = &it.sidecar()?.source_state;
        let actions: Vec<Action> = Family::ALL
            .iter()
            .flat_map(|&f| Action::valid_in(scene, f))
            .collect();
        let Some(a) = actions.choose(&mut rng) else {
            continue;
        };
        let text = describe(a, scene, rng.random_range(0..24)).unwrap_or_default();
        scores.push(crate::eval::text::rouge_l(&text, &it.instruction));
    }
    Ok(scores.iter().sum::<f64>() / scores.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guess_blind_to_the_target_shares_some_words_not_most() {
        let items = test_split_items(4, 32);
        let g = guess_rouge_l(&items).unwrap();
        // Template words ("the", "to the ...") are shared; objects and verbs mostly not.
        assert!((0.05..0.5).contains(&g), "{g}");
        // Deterministic: the same rows get the same guesses.
        assert_eq!(g, guess_rouge_l(&items).unwrap());
        let own: f64 = items
            .iter()
            .map(|it| crate::eval::text::rouge_l(&it.instruction, &it.instruction))
            .sum::<f64>()
            / items.len() as f64;
        assert!((own - 1.0).abs() < 1e-12);
    }
}
