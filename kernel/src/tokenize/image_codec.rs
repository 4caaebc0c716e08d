//! The image tokenizer a model uses, whichever it is: dynaboot's own VQ-VAE
//! ([`ImageTokenizer`], the embedded world's) or Chameleon's VQGAN ([`ChameleonVq`], for real
//! Chameleon/Anole checkpoints). Everything above the tokenizers (datasets, the model, the
//! trainer) sees images only through this: RGB in, codes and pre-quantisation features out,
//! codes in, RGB out.

use super::chameleon_vq::{self, ChameleonVq};
use super::vq::{ImageTokenizer, images_to_tensor, tensor_to_images};
use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use image::RgbImage;

/// Most images decoded in one pass: more are decoded in batches of this size, so memory does
/// not grow with the number of images.
pub(crate) const DECODE_BATCH: usize = 16;

/// The image tokenizer a model uses, either kind.
pub enum ImageCodec {
    /// The embedded world's VQ-VAE.
    Embedded(Box<ImageTokenizer>),
    /// Chameleon's VQGAN (real checkpoints).
    Chameleon(Box<ChameleonVq>),
}

/// Codes and pre-quantisation features of a batch of images.
pub(crate) struct Encoded {
    /// `codes[i]`: the image's codebook indices in raster order.
    pub(crate) codes: Vec<Vec<u32>>,
    /// `features[i]`: its pre-quantisation features, position-major (`tokens x code_dim`).
    pub(crate) features: Vec<Vec<f32>>,
    /// Width of one position's feature vector.
    pub(crate) code_dim: usize,
}

impl ImageCodec {
    /// Whether the encoder takes images of any size (Chameleon's preprocessing crops and
    /// resizes); dynaboot's own takes exactly `image_size`.
    pub fn resizes(&self) -> bool {
        matches!(self, ImageCodec::Chameleon(_))
    }

    /// Side of the images the encoder takes (and the decoder gives).
    pub fn image_size(&self) -> usize {
        match self {
            ImageCodec::Embedded(v) => v.config.image_size,
            ImageCodec::Chameleon(v) => v.config.resolution,
        }
    }

    pub(crate) fn codebook_size(&self) -> usize {
        match self {
            ImageCodec::Embedded(v) => v.config.codebook_size,
            ImageCodec::Chameleon(v) => v.config.num_embeddings,
        }
    }

    pub(crate) fn tokens_per_image(&self) -> usize {
        match self {
            ImageCodec::Embedded(v) => v.config.tokens_per_image(),
            ImageCodec::Chameleon(v) => v.config.tokens_per_image(),
        }
    }

    pub(crate) fn device(&self) -> &Device {
        match self {
            ImageCodec::Embedded(v) => v.device(),
            ImageCodec::Chameleon(v) => v.device(),
        }
    }

    /// Codes and pre-quantisation features of RGB images. dynaboot's tokenizer needs images of
    /// its size; Chameleon's resizes to its resolution as Chameleon's preprocessing does.
    pub(crate) fn encode(&self, images: &[RgbImage]) -> Result<Encoded> {
        let (codes, features) = match self {
            ImageCodec::Embedded(v) => {
                v.encode(&images_to_tensor(images, v.config.image_size, v.device())?)?
            }
            ImageCodec::Chameleon(v) => {
                let (codes, f) = v.encode(&v.images_to_tensor(images)?)?;
                (codes, f.permute((0, 2, 3, 1))?.contiguous()?)
            }
        };
        let code_dim = *features.dims().last().expect("4-d features");
        Ok(Encoded {
            codes: codes.to_vec2::<u32>()?,
            features: features
                .flatten_from(1)?
                .to_dtype(candle_core::DType::F32)?
                .to_vec2()?,
            code_dim,
        })
    }

    /// RGB images of code sequences, [`DECODE_BATCH`] at a time.
    pub(crate) fn decode(&self, codes: &[Vec<u32>]) -> Result<Vec<RgbImage>> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let n = self.tokens_per_image();
        if let Some(c) = codes.iter().find(|c| c.len() != n) {
            return Err(Error::Invalid(format!(
                "decode: an image of {} codes; this tokenizer uses {n} per image",
                c.len()
            )));
        }
        let mut images = Vec::with_capacity(codes.len());
        for batch in codes.chunks(DECODE_BATCH) {
            let flat: Vec<u32> = batch.iter().flatten().copied().collect();
            let ids = Tensor::from_vec(flat, (batch.len(), n), self.device())?;
            images.extend(match self {
                ImageCodec::Embedded(v) => tensor_to_images(&v.decode(&ids)?)?,
                ImageCodec::Chameleon(v) => chameleon_vq::tensor_to_images(&v.decode(&ids)?)?,
            });
        }
        Ok(images)
    }
}

impl From<ImageTokenizer> for ImageCodec {
    fn from(v: ImageTokenizer) -> Self {
        ImageCodec::Embedded(Box::new(v))
    }
}
