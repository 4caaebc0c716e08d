//! The Chameleon-style model: one token transformer over text and image tokens, fine-tuned
//! into a world model and a dynamics model.
//!
//! [`chameleon`] is the backbone, [`vocab`] the id layout, [`format`] the sequences of both
//! roles, [`sampling`] the token choice, [`checkpoint`] the folder a model lives in;
//! [`WorldModel`], [`DynamicsModel`] and [`Verifier`] are the three things a user calls.

#[cfg(feature = "fs")]
pub mod base;
pub mod chameleon;
pub mod checkpoint;
pub mod dynamics;
pub mod format;
#[cfg(feature = "fs")]
pub mod hf;
pub mod lora;
pub mod sampling;
pub mod verifier;
pub mod vocab;
pub mod world;

pub use chameleon::{Chameleon, ChameleonConfig, KvCache, Pass};
pub use checkpoint::{Model, ModelConfig, ModelMeta};
pub use dynamics::{DynamicsModel, Explanation, Score};
pub use format::{Format, Role, Sequence};
pub use sampling::Sampling;
pub use verifier::{Ranked, Verifier};
pub use vocab::Vocab;
pub use world::{Candidate, WorldModel};
