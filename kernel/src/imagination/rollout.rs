//! Rollouts: a sequence of actions applied in imagination. Each step is a best-of-N of the world
//! model from the previous *imagined* image (not the true one: errors compound, which is what a
//! rollout measures), verified by the dynamics model; the dynamics model then reads the chosen
//! step back (its greedy explanation of previous -> imagined), so a reader sees whether the
//! imagined change still says what was asked. Generic over [`Backbone`], so the browser runs
//! the same code.

use crate::error::Result;
use crate::model::backbone::Backbone;
use crate::model::dynamics_model::read_back;
use crate::model::verifier::best_of_n;
use crate::model::{Format, Sampling, Score};

/// One imagined step as codes (what the backends agree on exactly).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StepCodes {
    /// The image codes the verifier picked.
    pub(crate) codes: Vec<u32>,
    /// log p(action | previous, imagined) under the dynamics model: the verifier's score.
    pub(crate) score: Score,
    /// The dynamics model's greedy reading of previous -> imagined (tokens without `<eos>`).
    pub(crate) read_back: (Vec<u32>, Score),
}

/// The sampling of step `step`: its own seed, so that no two steps draw the same streams.
pub(crate) fn step_sampling(sampling: &Sampling, step: usize) -> Sampling {
    Sampling {
        seed: sampling.seed.wrapping_add(step as u64),
        ..sampling.clone()
    }
}

/// Applies `actions` (token ids) one after another from `source` in imagination: step `s` is a
/// best-of-`n` from step `s - 1`'s imagined codes with [`step_sampling`]`(sampling, s)`.
pub(crate) async fn rollout_codes<W: Backbone, D: Backbone>(
    world: (&W, &Format),
    dynamics: (&D, &Format),
    source: &[u32],
    actions: &[Vec<u32>],
    n: usize,
    sampling: &Sampling,
) -> Result<Vec<StepCodes>> {
    let mut steps: Vec<StepCodes> = Vec::with_capacity(actions.len());
    for (s, action) in actions.iter().enumerate() {
        let previous = steps.last().map_or(source, |p| &p.codes).to_vec();
        let best = best_of_n(
            world,
            dynamics,
            &previous,
            action,
            n,
            &step_sampling(sampling, s),
        )
        .await?
        .swap_remove(0);
        let read_back = read_back(dynamics, &previous, &best.codes).await?;
        steps.push(StepCodes {
            codes: best.codes,
            score: best.score,
            read_back,
        });
    }
    Ok(steps)
}
