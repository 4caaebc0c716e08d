//! The scaling study's configuration: its named sizes ([`ScalingPreset`]) and every setting of
//! a study ([`ScalingConfig`]), checked before anything runs, with the rule that sets each
//! labelled size's fine-tuning length.

use crate::error::{Error, Result};
use crate::world::{Family, VideoConfig};
use serde::{Deserialize, Serialize};

/// Named sizes of the study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ScalingPreset {
    /// Minutes: checks that every part of the study runs and resumes, not its curve.
    Smoke,
    /// The measured study: labelled sizes 250 to 16 000, 5 seeds up to 1 000 and 3 above.
    Default,
}

/// The coverage variant: the labelled triplets come from some families only; the videos and
/// the test rows from all of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Labelled triplets (all from `families`).
    pub size: usize,
    /// The families the labelled triplets show.
    pub families: Vec<Family>,
}

/// Everything a scaling study shares: sizes, seeds, data, starts, the fine-tuning rule,
/// bootstrap and evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingConfig {
    /// Labelled sizes L, ascending; the triplets of a size are the first L of one pool, so
    /// the sets are nested and every model at a size sees the same ones.
    pub sizes: Vec<usize>,
    /// Seeds at sizes up to `small_max`.
    pub seeds_small: usize,
    /// Seeds at larger sizes.
    pub seeds_large: usize,
    /// Seeds of the coverage variant (none: as many as at its size).
    #[serde(default)]
    pub seeds_coverage: Option<usize>,
    /// The largest size that counts as small (more seeds: the noise is larger there).
    pub small_max: usize,
    /// Unlabelled videos every dynamics model labels (the same pool at every size).
    pub videos: usize,
    /// How the videos are paced.
    pub video: VideoConfig,
    /// Annotations kept by the stratified top-K at every size.
    pub keep: usize,
    /// Test rows per family.
    pub test_per_family: usize,
    /// Evaluate on a split of the train generator with this seed instead of the fixed test
    /// split (for tuning the study without looking at the test split).
    pub tune_seed: Option<u64>,
    /// The checkpoint of the models folder the dynamics models fine-tune in full.
    pub dynamics_base: String,
    /// The checkpoint the world models fine-tune in full.
    pub world_base: String,
    /// The shipped dynamics model of the models folder: the second verifier column.
    pub shipped_dynamics: String,
    /// Sequences per step.
    pub batch_size: usize,
    /// Peak learning rate of every model.
    pub lr: f64,
    /// Warm-up steps, as a fraction of a run's steps.
    pub warmup_fraction: f64,
    /// The fine-tuning rule: this many epochs of the L labelled triplets ...
    pub epochs: f64,
    /// ... but at least this many steps ...
    pub min_steps: usize,
    /// ... and at most this many.
    pub max_steps: usize,
    /// λ of the weighted loss of FDM - weighted, trained at the smallest and largest size.
    pub weighted: f64,
    /// N of best-of-N.
    pub n: usize,
    /// Temperature the dynamics models annotate at.
    pub annotation_temperature: f64,
    /// Write a training checkpoint every this many steps (a killed study resumes from it).
    pub checkpoint_every: usize,
    /// The coverage variant (none: not run).
    pub coverage: Option<Coverage>,
}

impl ScalingPreset {
    /// The preset's configuration.
    pub fn config(self) -> ScalingConfig {
        match self {
            ScalingPreset::Smoke => ScalingConfig {
                sizes: vec![8, 16],
                seeds_small: 2,
                seeds_large: 2,
                seeds_coverage: None,
                small_max: 8,
                videos: 3,
                video: VideoConfig::default(),
                keep: 8,
                test_per_family: 1,
                tune_seed: None,
                // The shipped dynamics model as the dynamics models' start, so that a few
                // steps still write actions the parser reads and FDM trains on synthetic
                // triplets (from the foundation they write nothing usable yet).
                dynamics_base: "dynamics".into(),
                world_base: "foundation-changes".into(),
                shipped_dynamics: "dynamics".into(),
                batch_size: 4,
                lr: 1.5e-3,
                warmup_fraction: 0.1,
                epochs: 1.0,
                min_steps: 2,
                max_steps: 4,
                weighted: 0.5,
                n: 2,
                annotation_temperature: crate::bootstrap::ANNOTATION_TEMPERATURE,
                checkpoint_every: 2,
                coverage: Some(Coverage {
                    size: 8,
                    families: vec![Family::Kubric, Family::Something],
                }),
            },
            ScalingPreset::Default => ScalingConfig {
                sizes: vec![250, 1000, 4000, 16000],
                seeds_small: 5,
                seeds_large: 3,
                seeds_coverage: None,
                small_max: 1000,
                videos: 400,
                video: VideoConfig::default(),
                keep: 1000,
                test_per_family: 12,
                tune_seed: None,
                dynamics_base: "foundation-changes".into(),
                world_base: "foundation-changes".into(),
                shipped_dynamics: "dynamics".into(),
                batch_size: 16,
                lr: 1.5e-3,
                warmup_fraction: 0.1,
                epochs: 4.0,
                min_steps: 250,
                max_steps: 1000,
                weighted: 0.5,
                n: 8,
                annotation_temperature: crate::bootstrap::ANNOTATION_TEMPERATURE,
                checkpoint_every: 100,
                coverage: Some(Coverage {
                    size: 1000,
                    families: vec![Family::Kubric, Family::Something],
                }),
            },
        }
    }
}

impl ScalingConfig {
    /// Fine-tuning steps of every model at labelled size `l`: `epochs` passes over the `l`
    /// triplets, within `min_steps..=max_steps`.
    pub fn steps_for(&self, l: usize) -> usize {
        let steps = (self.epochs * l as f64 / self.batch_size as f64).ceil() as usize;
        steps.clamp(self.min_steps, self.max_steps)
    }

    /// Seeds run at labelled size `l`.
    pub fn seeds_for(&self, l: usize) -> usize {
        if l <= self.small_max {
            self.seeds_small
        } else {
            self.seeds_large
        }
    }

    /// Seeds of the coverage variant.
    pub(crate) fn coverage_seeds(&self) -> usize {
        match (&self.coverage, self.seeds_coverage) {
            (None, _) => 0,
            (Some(_), Some(n)) => n,
            (Some(c), None) => self.seeds_for(c.size),
        }
    }

    /// Whether FDM with the weighted loss is trained at size `l` (the smallest and the
    /// largest).
    pub fn weighted_at(&self, l: usize) -> bool {
        self.sizes.first() == Some(&l) || self.sizes.last() == Some(&l)
    }

    /// The labelled triplets the pool needs: the largest size.
    pub(crate) fn pool_size(&self) -> usize {
        self.sizes.iter().copied().max().unwrap_or(0)
    }

    /// Refuses a study that cannot run, naming the `scale` flag to change.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.sizes.is_empty() || self.sizes.contains(&0) {
            return bad("--sizes: give labelled sizes of at least 1, e.g. 250,1000".into());
        }
        if !self.sizes.windows(2).all(|w| w[0] < w[1]) {
            return bad(format!(
                "--sizes {:?}: give each size once, ascending (the sets are nested)",
                self.sizes
            ));
        }
        let positive = [
            ("--seeds-small", self.seeds_small),
            ("--seeds-large", self.seeds_large),
            ("--seeds-coverage", self.seeds_coverage.unwrap_or(1)),
            ("--videos", self.videos),
            ("--keep", self.keep),
            ("--test-per-family", self.test_per_family),
            ("--n", self.n),
            ("the batch size", self.batch_size),
            ("the minimum steps", self.min_steps),
        ];
        if let Some((flag, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return bad(format!("{flag} 0: the study needs at least 1"));
        }
        let most = [
            ("--sizes", self.pool_size(), 100_000),
            ("--seeds-small", self.seeds_small, 20),
            ("--seeds-large", self.seeds_large, 20),
            ("--seeds-coverage", self.seeds_coverage.unwrap_or(0), 20),
            ("--test-per-family", self.test_per_family, 50),
            ("--n", self.n, 64),
            ("--videos", self.videos, 10_000),
        ];
        if let Some((flag, v, max)) = most.iter().find(|(_, v, max)| v > max) {
            return bad(format!("{flag} {v}: at most {max}"));
        }
        if self.max_steps < self.min_steps {
            return bad(format!(
                "at most {} steps is fewer than the least, {}",
                self.max_steps, self.min_steps
            ));
        }
        if !(0.0..=1.0).contains(&self.weighted) {
            return bad(format!(
                "λ {} of the weighted loss: use a number from 0 to 1",
                self.weighted
            ));
        }
        if let Some(c) = &self.coverage
            && (c.size == 0 || c.families.is_empty())
        {
            return bad("the coverage variant needs labelled triplets of a family".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fine_tuning_rule_is_epochs_within_a_floor_and_a_ceiling() {
        let c = ScalingPreset::Default.config();
        assert_eq!(c.steps_for(250), 250, "floor");
        assert_eq!(c.steps_for(1000), 250, "4 epochs of 1000 at batch 16");
        assert_eq!(c.steps_for(4000), 1000);
        assert_eq!(c.steps_for(16000), 1000, "ceiling");
        assert_eq!((c.seeds_for(1000), c.seeds_for(4000)), (5, 3));
        assert!(c.weighted_at(250) && c.weighted_at(16000) && !c.weighted_at(1000));
        assert!(c.validate().is_ok());
        assert!(ScalingPreset::Smoke.config().validate().is_ok());
    }

    #[test]
    fn studies_that_cannot_run_are_refused_by_flag() {
        let c = ScalingPreset::Default.config();
        let e = |c: ScalingConfig| c.validate().unwrap_err().to_string();
        let unsorted = ScalingConfig {
            sizes: vec![1000, 250],
            ..c.clone()
        };
        assert!(e(unsorted).contains("ascending"));
        let empty = ScalingConfig {
            sizes: vec![],
            ..c.clone()
        };
        assert!(e(empty).contains("--sizes"));
        let no_seeds = ScalingConfig {
            seeds_large: 0,
            ..c.clone()
        };
        assert!(e(no_seeds).contains("--seeds-large 0"));
        let coverage_seeds = ScalingConfig {
            seeds_coverage: Some(21),
            ..c.clone()
        };
        assert!(e(coverage_seeds).contains("--seeds-coverage 21"));
        assert_eq!(c.coverage_seeds(), 5, "as many as at its size");
        let apart = ScalingConfig {
            seeds_coverage: Some(8),
            ..c.clone()
        };
        assert_eq!(apart.coverage_seeds(), 8);
        let none = ScalingConfig {
            coverage: None,
            ..apart
        };
        assert_eq!(none.coverage_seeds(), 0);
    }
}
