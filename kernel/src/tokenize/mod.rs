//! Tokenizers: the VQ-VAE image tokenizer and the BPE text tokenizer.

pub mod chameleon_vq;
pub(crate) mod image_codec;
pub(crate) mod text;
pub mod vq;
pub mod vq_train;

pub use chameleon_vq::{ChameleonVq, ChameleonVqConfig};
pub use image_codec::ImageCodec;
pub use text::TextTokenizer;
pub use vq::{ImageTokenizer, VqConfig};
pub use vq_train::{VqStats, VqTrainer};

/// The tokenizers a model directory ships: the image tokenizer in `dir/vq` and the text
/// tokenizer in `dir/tokenizer.json`.
#[cfg(feature = "fs")]
pub fn load_tokenizers(
    dir: &std::path::Path,
    device: &candle_core::Device,
) -> crate::Result<(ImageCodec, TextTokenizer)> {
    Ok((
        ImageTokenizer::load(&dir.join("vq"), device)?.into(),
        TextTokenizer::load(&dir.join("tokenizer.json"))?,
    ))
}
