//! Training: the completion loss with recognition weights ([`loss`]), padded batches
//! ([`batch`]), AdamW with savable state ([`adamw`]), tokenised examples ([`data`]) and the
//! [`Trainer`] with its checkpoints ([`trainer`]).

pub mod adamw;
pub mod batch;
pub mod data;
pub mod loss;
pub mod trainer;

pub use adamw::AdamWConfig;
pub use data::Example;
pub use trainer::{Preset, StepStats, TrainConfig, Trainer, hold_out};

#[cfg(test)]
mod tests;
