//! Inference-time verification (the paper's strategy 2): the world model samples N candidate
//! next images, the dynamics model scores each by log p(action | source, candidate), and the
//! candidates come back best first (`best_of_n`, on any `Backbone`; `rank` is the rule).

use super::backbone::{Backbone, ready};
use super::checkpoint::Model;
use super::dynamics_model::{DynamicsModel, score_actions};
use super::format::{Format, Role};
use super::sampling::Sampling;
use super::scoring::Score;
use super::world_model::{WorldModel, sample_images};
use crate::error::{Error, Result};
use image::RgbImage;

/// A candidate with its verification score.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranked {
    /// Which of the N samples this is (sample `i` is the same for any N with the same seed).
    pub(crate) sample: usize,
    /// Image codes (the image tokenizer's ids).
    pub(crate) codes: Vec<u32>,
    pub(crate) score: Score,
}

/// A verified candidate drawn as an image: what best-of-N hands a user.
#[derive(Clone, Debug)]
pub struct Prediction {
    /// Position after reranking (0 = the one best-of-N returns).
    pub rank: usize,
    /// Which of the N samples it is.
    pub sample: usize,
    /// The image tokens sampled (what native and browser runs must agree on exactly).
    pub codes: Vec<u32>,
    /// log p(action | source, candidate) under the dynamics model.
    pub score: Score,
    /// The codes decoded.
    pub image: RgbImage,
}

impl Prediction {
    pub(crate) fn new(rank: usize, ranked: Ranked, image: RgbImage) -> Self {
        Prediction {
            rank,
            sample: ranked.sample,
            codes: ranked.codes,
            score: ranked.score,
            image,
        }
    }
}

/// Most candidates one best-of-N draws. Memory does not grow with N (sampling, scoring and
/// decoding run `super::backbone::MAX_BATCH` at a time); this bounds the time and what is
/// handed back (every candidate's image).
pub const MAX_N: usize = 1024;

/// Best-of-N with a world model and a dynamics model that share an image tokenizer.
pub struct Verifier<'a> {
    pub(crate) world: &'a WorldModel,
    pub(crate) dynamics: &'a DynamicsModel,
}

impl<'a> Verifier<'a> {
    /// Pairs a world and a dynamics model; they must share the image tokenizer and vocabulary.
    pub fn new(world: &'a WorldModel, dynamics: &'a DynamicsModel) -> Result<Self> {
        check_compatible(&world.model, &dynamics.model)?;
        Ok(Verifier { world, dynamics })
    }

    /// Best-of-N on image codes and action token ids: all N candidates, best score first.
    /// With N = 1 this is the plain world-model sample (scored all the same).
    pub fn rank_codes(
        &self,
        source: &[u32],
        action: &[u32],
        n: usize,
        sampling: &Sampling,
    ) -> Result<Vec<Ranked>> {
        let (w, d) = (&self.world.model, &self.dynamics.model);
        ready(best_of_n(
            (&w.backbone, &w.format),
            (&d.backbone, &d.format),
            source,
            action,
            n,
            sampling,
        ))
    }

    /// Best-of-N for an image and an action in words.
    pub fn best_of_n(
        &self,
        source: &RgbImage,
        action: &str,
        n: usize,
        sampling: &Sampling,
    ) -> Result<Vec<Prediction>> {
        let m = &self.world.model;
        let src = m.encode_images(std::slice::from_ref(source))?.remove(0);
        let ids = m.encode_action(action, Role::World)?;
        m.format.check_action(&ids, Role::Dynamics)?;
        let ranked = self.rank_codes(&src, &ids, n, sampling)?;
        let images =
            m.decode_images(&ranked.iter().map(|r| r.codes.clone()).collect::<Vec<_>>())?;
        Ok(ranked
            .into_iter()
            .zip(images)
            .enumerate()
            .map(|(rank, (ranked, image))| Prediction::new(rank, ranked, image))
            .collect())
    }
}

/// The paper's verification on any backbones: the world model samples `n` candidates, the
/// dynamics model scores each by log p(action | source, candidate); best first.
pub(crate) async fn best_of_n<W: Backbone, D: Backbone>(
    (world, world_format): (&W, &Format),
    (dynamics, dynamics_format): (&D, &Format),
    source: &[u32],
    action: &[u32],
    n: usize,
    sampling: &Sampling,
) -> Result<Vec<Ranked>> {
    let samples = sample_images(world, world_format, source, action, n, sampling).await?;
    let scores = score_actions(dynamics, dynamics_format, source, &samples, action).await?;
    Ok(rank(samples, scores))
}

/// Samples with their scores, best score first (ties: the earlier sample first).
pub(crate) fn rank(samples: Vec<Vec<u32>>, scores: Vec<Score>) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = samples
        .into_iter()
        .zip(scores)
        .enumerate()
        .map(|(sample, (codes, score))| Ranked {
            sample,
            codes,
            score,
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.score
            .sum
            .total_cmp(&a.score.sum)
            .then(a.sample.cmp(&b.sample))
    });
    ranked
}

/// Two checkpoints can work together only on the same tokens.
pub(crate) fn check_compatible(a: &Model, b: &Model) -> Result<()> {
    let (ma, mb) = (&a.config.dynaboot, &b.config.dynaboot);
    if ma.vocab != mb.vocab || ma.image_tokens != mb.image_tokens {
        return Err(Error::Invalid(
            "the world and dynamics checkpoints use different vocabularies; train both with the same tokenizers".into(),
        ));
    }
    if ma.vq_fingerprint != mb.vq_fingerprint {
        return Err(Error::Invalid(format!(
            "the world model's image tokenizer ({}) differs from the dynamics model's ({}); train both on the same one",
            ma.vq_fingerprint, mb.vq_fingerprint
        )));
    }
    Ok(())
}
