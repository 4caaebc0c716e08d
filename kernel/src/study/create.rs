//! Filling a study: each system's candidate for each item, generated once and stored.

use super::store::NewItem;
use crate::error::{Error, Result};
use crate::eval::EvalItem;
use crate::model::sampling::Sampling;
use crate::model::verifier::Verifier;
use crate::model::{DynamicsModel, WorldModel};

/// A system whose candidates a study compares.
pub enum Contender<'a> {
    /// The source image unchanged: the control every edit has to beat.
    CopySource,
    /// The world model's candidate: one sample, or with a verifier the best of `n`.
    World {
        /// The world model.
        world: &'a WorldModel,
        /// The dynamics model that ranks the candidates, if any.
        verifier: Option<&'a DynamicsModel>,
        /// Candidates drawn (1 without a verifier).
        n: usize,
    },
}

impl Contender<'_> {
    fn candidate(&self, item: &EvalItem, sampling: &Sampling) -> Result<image::RgbImage> {
        match self {
            Contender::CopySource => Ok(item.source.clone()),
            Contender::World {
                world,
                verifier: None,
                n,
            } => {
                if *n != 1 {
                    return Err(Error::Invalid(format!(
                        "a world model without a verifier has no way to pick from {n} samples; \
                         give a dynamics model or n = 1"
                    )));
                }
                Ok(world
                    .sample(&item.source, &item.instruction, 1, sampling)?
                    .remove(0)
                    .image)
            }
            Contender::World {
                world,
                verifier: Some(dynamics),
                n,
            } => Ok(Verifier::new(world, dynamics)?
                .best_of_n(&item.source, &item.instruction, *n, sampling)?
                .remove(0)
                .image),
        }
    }
}

/// The study's items: for item `i`, every contender's candidate, sampled with seed
/// `sampling.seed + i` so a study is reproducible and item `i` does not depend on the others.
pub fn study_items<'a>(
    items: &'a [EvalItem],
    contenders: &'a [Contender<'a>],
    sampling: &'a Sampling,
) -> impl Iterator<Item = Result<NewItem>> + 'a {
    items.iter().enumerate().map(move |(i, item)| {
        let sampling = Sampling {
            seed: sampling.seed.wrapping_add(i as u64),
            ..sampling.clone()
        };
        let candidates = contenders
            .iter()
            .map(|c| c.candidate(item, &sampling))
            .collect::<Result<Vec<_>>>()?;
        Ok(NewItem {
            family: item.family.clone(),
            instruction: item.instruction.clone(),
            source: item.source.clone(),
            target: Some(item.target.clone()),
            sidecar: item.sidecar.clone(),
            candidates,
        })
    })
}
