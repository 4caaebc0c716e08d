//! Inference-time verification (the paper's strategy 2): the world model samples N candidate
//! next images, the dynamics model scores each by log p(action | source, candidate), and the
//! candidates come back best first.

use super::checkpoint::Model;
use super::dynamics::{DynamicsModel, Score};
use super::format::Role;
use super::sampling::Sampling;
use super::world::WorldModel;
use crate::error::{Error, Result};
use image::RgbImage;

/// A candidate with its verification score.
#[derive(Clone, Debug)]
pub struct Ranked {
    /// Which of the N samples this is (sample `i` is the same for any N with the same seed).
    pub sample: usize,
    pub codes: Vec<u32>,
    pub image: RgbImage,
    pub score: Score,
}

pub struct Verifier<'a> {
    pub world: &'a WorldModel,
    pub dynamics: &'a DynamicsModel,
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
    ) -> Result<Vec<(usize, Vec<u32>, Score)>> {
        let samples = self.world.sample_codes(source, action, n, sampling)?;
        let scores = self.dynamics.score_codes(source, &samples, action)?;
        Ok(rank(samples, scores))
    }

    /// Best-of-N for an image and an action in words.
    pub fn best_of_n(
        &self,
        source: &RgbImage,
        action: &str,
        n: usize,
        sampling: &Sampling,
    ) -> Result<Vec<Ranked>> {
        let m = &self.world.model;
        let src = m.encode_images(std::slice::from_ref(source))?.remove(0);
        let ids = m.encode_action(action, Role::World)?;
        m.format.check_action(&ids, Role::Dynamics)?;
        let ranked = self.rank_codes(&src, &ids, n, sampling)?;
        let images = m.decode_images(&ranked.iter().map(|r| r.1.clone()).collect::<Vec<_>>())?;
        Ok(ranked
            .into_iter()
            .zip(images)
            .map(|((sample, codes, score), image)| Ranked {
                sample,
                codes,
                image,
                score,
            })
            .collect())
    }
}

/// Samples `(index, codes, score)`, best score first (ties: the earlier sample first).
pub fn rank(samples: Vec<Vec<u32>>, scores: Vec<Score>) -> Vec<(usize, Vec<u32>, Score)> {
    let mut ranked: Vec<_> = samples
        .into_iter()
        .zip(scores)
        .enumerate()
        .map(|(i, (c, s))| (i, c, s))
        .collect();
    ranked.sort_by(|a, b| b.2.sum.total_cmp(&a.2.sum).then(a.0.cmp(&b.0)));
    ranked
}

/// Two checkpoints can work together only on the same tokens.
pub fn check_compatible(a: &Model, b: &Model) -> Result<()> {
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
