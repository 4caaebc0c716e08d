//! The embedded world: a procedural tabletop in the spirit of AURORA's Kubric and
//! Something-Something subsets. It knows nothing of models; it produces images and text.
//!
//! scene (state) -> action (structured change) -> language (text) -> render (pixels);
//! generate (random data) and recognise (pixels back to state) sit on top.

pub(crate) mod action;
pub mod generate;
pub mod language;
pub(crate) mod recognise;
pub mod render;
mod rules;
pub(crate) mod scene;

pub use action::{Action, ActionError, Family, Relation, Side};
pub use generate::{Triplet, Video, VideoConfig};
pub use language::{ParseError, describe, describe_change, describe_scene, parse};
pub use recognise::{RecogniseError, Recogniser};
pub use render::{RenderConfig, View};
pub use scene::{Color, Object, Place, Scene, Shape, Size, Slot};
