//! dynaboot: world models and dynamics models whose actions are written in language.
//!
//! Data flows one way: [`world`] -> [`data`] -> [`tokenize`] -> model -> training /
//! bootstrap / verification / imagination -> evaluation -> reports. See `docs/ARCHITECTURE.md`.

#![warn(missing_docs, unnameable_types)]

#[cfg(feature = "fs")]
pub mod ablation;
pub mod bootstrap;
pub mod data;
pub mod device;
pub(crate) mod error;
pub mod eval;
#[cfg(feature = "fs")]
pub mod files;
#[cfg(feature = "webgpu")]
pub mod gpu;
pub mod imagination;
pub mod model;
pub(crate) mod nn;
#[cfg(feature = "notebook")]
pub mod notebook;
pub mod playground;
pub mod png;
#[cfg(feature = "fs")]
pub mod scaling;
#[cfg(feature = "fs")]
pub mod shipped;
pub mod stats;
#[cfg(feature = "study")]
pub mod study;
#[cfg(all(test, feature = "serve"))]
mod test_server;
pub mod tokenize;
pub mod train;
pub mod weights;
pub mod world;

pub use error::{Error, Result};

// The versions the kernel's API speaks, for notebooks and the web crate.
pub use candle_core;
pub use candle_nn;
pub use image;
