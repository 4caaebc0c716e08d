//! The ablation's configuration: its named sizes ([`AblationPreset`]) and every setting of a
//! run ([`AblationConfig`]), checked before anything runs.

use crate::error::{Error, Result};
use crate::train::Weighting;
use crate::world::VideoConfig;
use serde::{Deserialize, Serialize};

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

/// Everything the ablation's runs share: data sizes, starts, recipe, bootstrap, evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AblationConfig {
    /// Labelled training triplets (generated once, shared by the seeds).
    pub train_rows: usize,
    /// Unlabelled videos for weak supervision, and how they are paced.
    pub videos: usize,
    /// How the videos are paced (actions per video, frames per motion and hold).
    pub video: VideoConfig,
    /// Rows per family the models are evaluated on.
    pub test_per_family: usize,
    /// Evaluate on a split of the train generator with this seed instead of the fixed test
    /// split (to tune the experiment without looking at the test split).
    #[serde(default)]
    pub tune_seed: Option<u64>,
    /// The checkpoints (folders beside `vq/` in the models folder) the dynamics and the world
    /// models fine-tune in full: in both presets `foundation-changes/`, the foundation taught
    /// to caption what changed between two frames as well (`just foundation-changes`; from the
    /// shipped pair's starts (b) and (d) were smaller, models/README.md).
    pub dynamics_base: String,
    /// The world models' start, as `dynamics_base`.
    pub world_base: String,
    /// Optimizer steps of every model (equal, so learning curves compare at equal steps).
    pub steps: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Peak learning rate of the world models (and of the dynamics model unless
    /// `dynamics_lr` says otherwise).
    pub lr: f64,
    /// Peak learning rate of the dynamics model, `None` for `lr` (the paper trains its
    /// dynamics model at 2/5 of the world model's: 2e-4 against 5e-4).
    #[serde(default)]
    pub dynamics_lr: Option<f64>,
    /// Warm-up steps of every model.
    pub warmup: usize,
    /// λ of the recognition-weighted loss in FDM.
    pub weighted: f64,
    /// Which position a change's weight lands on in FDM ([`Weighting::Causal`]: no tilt).
    #[serde(default)]
    pub weighting: Weighting,
    /// Sample the world models trained with the weighted loss with the logit bias on the
    /// source's token that undoes the loss's tilt (`crate::train::loss::copy_tilt` of each
    /// model's own training data); models trained with the plain loss get none.
    #[serde(default)]
    pub undo_tilt: bool,
    /// The dynamics model that labels the videos and verifies the world models' candidates:
    /// a checkpoint folder in the models folder (the shipped `dynamics`, a full fine-tune of
    /// the foundation on 48 000 triplets that no seed's budget could buy), or `None` for each
    /// seed's own dynamics model (which at the paper preset's budget labels about 5 % of the
    /// pairs right, so its synthetic data is noise).
    #[serde(default)]
    pub annotator: Option<String>,
    /// Stratified top-K of the annotations.
    pub keep: usize,
    /// Temperature the dynamics model annotates at.
    pub annotation_temperature: f64,
    /// N of best-of-N.
    pub n: usize,
    /// Learning-curve evaluations (evenly spaced, the last at the end).
    pub curve_points: usize,
    /// Rows per family of the learning-curve evaluations.
    pub curve_per_family: usize,
}

impl AblationPreset {
    /// The preset's configuration.
    pub fn config(self) -> AblationConfig {
        match self {
            AblationPreset::Smoke => AblationConfig {
                train_rows: 48,
                videos: 4,
                video: VideoConfig::default(),
                test_per_family: 2,
                tune_seed: None,
                dynamics_base: "foundation-changes".into(),
                world_base: "foundation-changes".into(),
                steps: 4,
                batch_size: 4,
                lr: 1.5e-3,
                dynamics_lr: None,
                warmup: 1,
                weighted: 0.5,
                weighting: Weighting::Target,
                undo_tilt: false,
                // The shipped annotator, so the synthetic-data path runs too (a 4-step
                // dynamics model writes nothing the parser reads).
                annotator: Some("dynamics".into()),
                keep: 8,
                annotation_temperature: crate::bootstrap::ANNOTATION_TEMPERATURE,
                n: 4,
                curve_points: 2,
                curve_per_family: 1,
            },
            // Few labelled triplets (250 steps x 16 see each about 16 times, as the paper's 40
            // epochs see AURORA's) and many videos (about 1270 pairs, the top 1000 kept):
            // labelled : synthetic = 1 : 4. With 1000 labelled triplets a run sees each only 4
            // times, is short of steps rather than data, and synthetic data cannot matter
            // (tuning split, models/README.md).
            AblationPreset::Paper => AblationConfig {
                train_rows: 250,
                videos: 400,
                video: VideoConfig::default(),
                test_per_family: 12,
                tune_seed: None,
                dynamics_base: "foundation-changes".into(),
                world_base: "foundation-changes".into(),
                steps: 250,
                batch_size: 16,
                lr: 1.5e-3,
                dynamics_lr: None,
                warmup: 25,
                weighted: 0.5,
                weighting: Weighting::Target,
                undo_tilt: false,
                annotator: Some("dynamics".into()),
                keep: 1000,
                annotation_temperature: crate::bootstrap::ANNOTATION_TEMPERATURE,
                n: 8,
                curve_points: 3,
                curve_per_family: 5,
            },
        }
    }
}

impl AblationConfig {
    /// Refuses sizes the experiment cannot run with, naming the `ablate` flag to change.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("--train-rows", self.train_rows),
            ("--videos", self.videos),
            ("--keep", self.keep),
            ("--steps", self.steps),
        ];
        if let Some((flag, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(Error::Invalid(format!(
                "{flag} 0: the experiment needs at least 1"
            )));
        }
        if !(0.0..=1.0).contains(&self.weighted) {
            return Err(Error::Invalid(format!(
                "--weighted {}: λ of the weighted loss mixes the plain loss (0) and the change \
                 weights (1); use a number from 0 to 1",
                self.weighted
            )));
        }
        if let Some(lr) = self.dynamics_lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
            return Err(Error::Invalid(format!(
                "--dynamics-lr {lr}: a learning rate is a positive number, e.g. 6e-4"
            )));
        }
        if self.undo_tilt && self.weighting == Weighting::Causal {
            return Err(Error::Invalid(
                "--undo-tilt with --weighting causal: causal weights do not tilt the model \
                 towards redrawing, so there is no tilt to undo; drop one of the two"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_the_experiment_cannot_run_with_are_refused_by_flag() {
        let paper = AblationPreset::Paper.config();
        assert!(paper.validate().is_ok());
        assert!(AblationPreset::Smoke.config().validate().is_ok());
        let no_keep = AblationConfig {
            keep: 0,
            ..paper.clone()
        };
        assert!(
            no_keep
                .validate()
                .unwrap_err()
                .to_string()
                .contains("--keep 0")
        );
        let zero_lr = AblationConfig {
            dynamics_lr: Some(0.0),
            ..paper.clone()
        };
        let e = zero_lr.validate().unwrap_err().to_string();
        assert!(e.contains("--dynamics-lr 0"), "{e}");
        let untilt_causal = AblationConfig {
            undo_tilt: true,
            weighting: Weighting::Causal,
            ..paper.clone()
        };
        let e = untilt_causal.validate().unwrap_err().to_string();
        assert!(e.contains("--undo-tilt") && e.contains("causal"), "{e}");
        let heavy = AblationConfig {
            weighted: 1.5,
            ..paper
        };
        let e = heavy.validate().unwrap_err().to_string();
        assert!(
            e.contains("--weighted 1.5") && e.contains("from 0 to 1"),
            "{e}"
        );
    }
}
