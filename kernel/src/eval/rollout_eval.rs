//! Rollouts against the truth: chains of random valid actions from a seed ([`random_chain`]),
//! imagined step after step by the world model (best-of-N, verified), and at every step the
//! judge and the pixel L1 of the imagined frame against the true one. Two ways side by side:
//! **autoregressive** (each step from the previous *imagined* frame: errors compound) and
//! **teacher-forced** (each step from the true previous frame: one-step quality at that depth
//! of the chain). The dynamics model reads each imagined step back; the read-back counts when
//! it parses to the action asked (the dynamics evaluation's exact match).

use crate::error::{Error, Result};
use crate::eval::Judge;
use crate::imagination::Imagination;
use crate::imagination::rollout::step_sampling;
use crate::model::backbone::ready;
use crate::model::dynamics_model::read_back;
use crate::model::verifier::best_of_n;
use crate::model::{Role, Sampling};
use crate::stats::Estimate;
use crate::world::generate::{random_chain, rng};
use crate::world::render::render_scene;
use crate::world::{Recogniser, RenderConfig, parse};
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Most steps per chain.
pub const MAX_STEPS: usize = 16;
/// Most chains.
pub const MAX_CHAINS: usize = 10_000;

/// What the evaluation runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutEvalConfig {
    /// Actions per chain.
    pub steps: usize,
    /// Chains.
    pub chains: usize,
    /// Best-of-N at every step.
    pub n: usize,
    /// Seed of the chains.
    pub seed: u64,
    /// How the world model samples (step `s` draws from seed `sampling.seed + s`).
    pub sampling: Sampling,
}

/// One step over every chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// 1 for the first action.
    pub step: usize,
    /// The judge of the imagined frame (0-10), autoregressive.
    pub judge: Estimate,
    /// The same, teacher-forced.
    pub judge_teacher_forced: Estimate,
    /// Mean absolute pixel difference from the true frame (0-1), autoregressive.
    pub l1: f64,
    /// The same, teacher-forced.
    pub l1_teacher_forced: f64,
    /// Share of steps the dynamics model reads back as the action asked, autoregressive.
    pub read_back: f64,
    /// The same, teacher-forced.
    pub read_back_teacher_forced: f64,
}

/// One chain: the actions, and per step what the dynamics model read back and the judge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainResult {
    /// The actions asked, in words.
    pub actions: Vec<String>,
    /// What the dynamics model read back at each step (autoregressive).
    pub read_back: Vec<String>,
    /// The judge at each step (autoregressive).
    pub judge: Vec<f64>,
    /// The judge at each step (teacher-forced).
    pub judge_teacher_forced: Vec<f64>,
}

/// The evaluation's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutEval {
    /// What ran.
    pub config: RolloutEvalConfig,
    /// One row per step.
    pub per_step: Vec<StepResult>,
    /// Every chain.
    pub chains: Vec<ChainResult>,
}

/// Mean absolute difference of two images' channels, 0-1.
pub(crate) fn l1(a: &RgbImage, b: &RgbImage) -> f64 {
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    sum as f64 / (255.0 * a.as_raw().len() as f64)
}

/// Imagines every chain both ways and judges every step; `progress(done, of)` after each chain.
pub fn evaluate_rollouts(
    imagination: &Imagination,
    config: &RolloutEvalConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<RolloutEval> {
    if !(1..=MAX_STEPS).contains(&config.steps) || !(1..=MAX_CHAINS).contains(&config.chains) {
        return Err(Error::Invalid(format!(
            "{} steps of {} chains: use 1 to {MAX_STEPS} steps and 1 to {MAX_CHAINS} chains",
            config.steps, config.chains
        )));
    }
    let (w, d) = (&imagination.world.model, &imagination.dynamics.model);
    let render = RenderConfig {
        size: w.vq.image_size() as u32,
        ..Default::default()
    };
    let judge = Judge::new(Recogniser::new(render));
    let mut r = rng(config.seed);
    let mut chains = Vec::with_capacity(config.chains);
    // Per step: (judge, judge tf, l1, l1 tf, read back, read back tf) of every chain.
    let mut per_step = vec![Vec::new(); config.steps];
    for c in 0..config.chains {
        let chain = random_chain(&mut r, config.steps);
        let truth: Vec<RgbImage> = std::iter::once(&chain[0].source)
            .chain(chain.iter().map(|t| &t.target))
            .map(|s| render_scene(s, render))
            .collect();
        let true_codes = w.encode_images(&truth)?;
        let actions = chain
            .iter()
            .map(|t| w.encode_action(&t.text, Role::World))
            .collect::<Result<Vec<_>>>()?;
        let imagined =
            imagination.rollout_codes(&true_codes[0], &actions, config.n, &config.sampling)?;
        let mut record = ChainResult {
            actions: chain.iter().map(|t| t.text.clone()).collect(),
            read_back: Vec::new(),
            judge: Vec::new(),
            judge_teacher_forced: Vec::new(),
        };
        for (s, (step, triplet)) in imagined.iter().zip(&chain).enumerate() {
            let forced = ready(best_of_n(
                (&w.backbone, &w.format),
                (&d.backbone, &d.format),
                &true_codes[s],
                &actions[s],
                config.n,
                &step_sampling(&config.sampling, s),
            ))?
            .swap_remove(0);
            let dynamics = (&d.backbone, &d.format);
            let forced_read = ready(read_back(dynamics, &true_codes[s], &forced.codes))?;
            let images = w.decode_images(&[step.codes.clone(), forced.codes])?;
            let asked = |tokens: &[u32]| -> Result<bool> {
                let text = d.text.decode(tokens)?;
                Ok(parse(&text).is_ok_and(|a| a == triplet.action))
            };
            let j = judge
                .judge(&triplet.source, &triplet.target, &images[0])
                .score;
            let jf = judge
                .judge(&triplet.source, &triplet.target, &images[1])
                .score;
            per_step[s].push([
                j,
                jf,
                l1(&images[0], &truth[s + 1]),
                l1(&images[1], &truth[s + 1]),
                f64::from(u8::from(asked(&step.read_back.0)?)),
                f64::from(u8::from(asked(&forced_read.0)?)),
            ]);
            record.read_back.push(d.text.decode(&step.read_back.0)?);
            record.judge.push(j);
            record.judge_teacher_forced.push(jf);
        }
        chains.push(record);
        progress(c + 1, config.chains);
    }
    let per_step = per_step
        .iter()
        .enumerate()
        .map(|(s, rows)| {
            let column = |k: usize| rows.iter().map(|r| r[k]).collect::<Vec<f64>>();
            let mean = |k: usize| column(k).iter().sum::<f64>() / rows.len() as f64;
            StepResult {
                step: s + 1,
                judge: Estimate::of(&column(0)),
                judge_teacher_forced: Estimate::of(&column(1)),
                l1: mean(2),
                l1_teacher_forced: mean(3),
                read_back: mean(4),
                read_back_teacher_forced: mean(5),
            }
        })
        .collect();
    Ok(RolloutEval {
        config: config.clone(),
        per_step,
        chains,
    })
}
