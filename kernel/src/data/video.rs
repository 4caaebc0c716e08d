//! Unlabelled videos: frame sequences listed in `videos.json`. The actions that happen in them
//! are stored apart, in `videos.labels.json`, which training code never reads; only the
//! evaluation of an annotator (the dynamics model labelling frame pairs) may.

use crate::error::{Error, Result};
use crate::world::generate::Segment;
use serde::{Deserialize, Serialize};

/// One video: its frames' paths relative to `videos.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoRow {
    pub(crate) id: String,
    /// Frame paths, in order.
    pub frames: Vec<String>,
}

/// The hidden labels of one video, for evaluation only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoLabels {
    pub(crate) id: String,
    /// The actions that happen in it, in order.
    pub segments: Vec<Segment>,
}

/// The list of videos in a video folder.
pub const VIDEOS_FILE: &str = "videos.json";
/// The videos' hidden labels, beside [`VIDEOS_FILE`].
pub const LABELS_FILE: &str = "videos.labels.json";

/// Parses a json list of `T`; `shape` describes one entry for the error message.
fn parse_list<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
    shape: &str,
) -> Result<Vec<T>> {
    serde_json::from_str(text).map_err(|e| Error::Malformed {
        file: file.into(),
        row: None,
        field: None,
        message: format!("expected a list of {shape} ({e})"),
    })
}

/// The videos of a `videos.json` text (`file` names it in errors).
pub fn parse_videos(text: &str, file: &str) -> Result<Vec<VideoRow>> {
    parse_list(text, file, "{\"id\", \"frames\": [paths]}")
}

/// The labels of a `videos.labels.json` text (`file` names it in errors).
pub fn parse_labels(text: &str, file: &str) -> Result<Vec<VideoLabels>> {
    parse_list(text, file, "{\"id\", \"segments\"}")
}
