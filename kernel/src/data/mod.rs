//! Datasets where the world and the models meet: images and text in the AURORA layout.
//!
//! `aurora` reads and writes AURORA / AURORA-Bench json files (labelled triplets);
//! `video` holds unlabelled frame sequences whose hidden labels live in a separate sidecar.

pub mod aurora;
#[cfg(feature = "fs")]
pub(crate) mod io;
pub mod video;

pub use aurora::{Row, Sidecar};
#[cfg(feature = "fs")]
pub use io::{AuroraDataset, AuroraWriter, DATA_FILE, VideoDataset, write_triplets};
pub use video::VIDEOS_FILE;
