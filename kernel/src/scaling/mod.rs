//! Where bootstrapping helps: the paper's training-time claim across labelled sizes, in its
//! own regime, where the dynamics model that labels the videos learns from the same labelled
//! triplets as the world models. Per labelled size L and seed, every model a full fine-tune
//! of the shipped foundation: a dynamics model on the L triplets labels a fixed pool of videos;
//! world models FT (L only) and FDM (L + the synthetic triplets) train on the same L and are
//! evaluated with that L's dynamics model and the shipped one as verifiers. The findings: FDM
//! minus FT per L with intervals over seeds and the crossover size where it stops helping;
//! the dynamics model's and the world model's normalised scores per L (the paper's premise as
//! a curve); the annotation's accuracy; and the coverage variant (labels from some families,
//! videos and tests from all).
//!
//! The files are its concepts: `config` (presets, settings, the fine-tuning rule), `run`
//! (the cells, resumable stage by stage), `findings` (the statistics over seeds, the
//! crossover) and `report` (tables, `results.json`, `report.md`, `report.html`).

mod config;
mod findings;
mod report;
mod run;

pub use config::{Coverage, ScalingConfig, ScalingPreset};
pub use findings::{CoveragePart, CoverageResult, Crossover, ScalingResults, SizeRow};
pub use report::{tables, write_reports};
pub use run::{Cell, CellResult, EarlierStudy, Verified, read_scaling, run_scaling, study_config};
