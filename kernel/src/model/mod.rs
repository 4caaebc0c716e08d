//! The Chameleon-style model: one token transformer over text and image tokens, fine-tuned
//! into a world model and a dynamics model.
//!
//! `chameleon` is the backbone, `backbone` the interface sampling and scoring run on
//! (candle's or the GPU's), `vocab` the id layout, [`format`] the sequences of both
//! roles, [`sampling`] the token choice, [`checkpoint`] the folder a model lives in;
//! [`WorldModel`], [`DynamicsModel`], [`Verifier`] (the world model's samples checked by the
//! dynamics model) and [`Explainer`] (the dynamics model's readings checked by the world model)
//! are what a user calls.

pub(crate) mod backbone;
#[cfg(feature = "fs")]
pub mod base;
pub(crate) mod chameleon;
pub mod checkpoint;
pub(crate) mod dynamics_model;
pub mod explainer;
pub(crate) mod format;
#[cfg(feature = "fs")]
pub mod hf;
pub(crate) mod kv_cache;
mod linear;
pub mod lora;
pub(crate) mod names;
pub mod sampling;
pub(crate) mod scoring;
pub mod verifier;
pub(crate) mod vocab;
pub(crate) mod world_model;

pub use backbone::{Backbone, Positions};
pub use chameleon::{Chameleon, ChameleonConfig, Pass};
pub use checkpoint::{Model, ModelConfig, ModelMeta};
pub use dynamics_model::{ActionSampler, DynamicsModel, Explanation};
pub use explainer::{CheckedExplanation, ExplainConfig, Explainer};
pub use format::{Format, Role, Sequence, WorldLayout};
pub use kv_cache::KvCache;
pub use sampling::Sampling;
pub use scoring::Score;
pub use verifier::{Prediction, Ranked, Verifier};
pub use vocab::Vocab;
pub use world_model::{Candidate, WorldModel};
