//! Tokenizers: the VQ-VAE image tokenizer and the BPE text tokenizer.

pub mod text;
pub mod vq;
pub mod vq_train;

pub use text::TextTokenizer;
pub use vq::{ImageTokenizer, VqConfig};
pub use vq_train::{VqStats, VqTrainer};
