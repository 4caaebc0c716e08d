//! dynaboot: world models and dynamics models whose actions are written in language.
//!
//! Data flows one way: [`world`] -> [`data`] -> [`tokenize`] -> model -> training /
//! bootstrap / verification -> evaluation -> reports. See `docs/ARCHITECTURE.md`.

pub mod world;
