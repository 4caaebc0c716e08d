//! Training: the completion loss with recognition weights ([`loss`]), padded batches
//! (`batch`), AdamW with savable state (`adamw`), tokenised examples ([`data`]), the
//! conditioning test ([`conditioning`]), the
//! recipe and presets (`config`), what a sequence teaches (`task`), the [`Trainer`] and its
//! loop (`trainer`) and the run on disk (`run_dir`) and the one door every run is set up through (`run_spec`).

pub(crate) mod adamw;
pub(crate) mod batch;
pub mod conditioning;
pub(crate) mod config;
pub mod data;
pub mod loss;
#[cfg(feature = "fs")]
pub(crate) mod run_dir;
#[cfg(feature = "fs")]
pub(crate) mod run_spec;
pub(crate) mod task;
pub(crate) mod trainer;

pub use adamw::AdamWConfig;
pub use config::{Overrides, Preset, TrainConfig};
pub use data::Example;
pub use loss::Weighting;
#[cfg(feature = "fs")]
pub use run_spec::{Data, HeldOut, OpenedRun, RunSpec, Start};
pub use task::Task;
pub use trainer::{LoraRun, Progress, StepStats, Trainer, Weights, hold_out, rows_also_trained_on};

#[cfg(test)]
mod tests;
