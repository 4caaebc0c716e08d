//! How much of the world survives the image tokenizer: PSNR of reconstructions and the
//! recogniser's per-object accuracy on renders and on reconstructions.

use crate::error::Result;
use crate::tokenize::ImageTokenizer;
use crate::tokenize::vq::psnr;
use crate::world::Scene;
use crate::world::recognise::{Recogniser, object_agreement};
use image::RgbImage;
use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TokenizerReport {
    pub images: usize,
    /// Mean PSNR (dB) of reconstructions.
    pub psnr: f64,
    /// Recogniser per-object accuracy on the original images.
    pub recogniser_on_images: f64,
    /// Recogniser per-object accuracy on the tokenizer's reconstructions.
    pub recogniser_on_reconstructions: f64,
}

/// Evaluates on images with known scene states, in batches of `batch`.
pub fn evaluate_tokenizer(
    vq: &ImageTokenizer,
    rec: &Recogniser,
    data: &[(RgbImage, Scene)],
    batch: usize,
) -> Result<TokenizerReport> {
    let mut psnr_sum = 0.0;
    let (mut ok_img, mut ok_rec, mut total_img, mut total_rec) = (0, 0, 0, 0);
    for chunk in data.chunks(batch.max(1)) {
        let imgs: Vec<RgbImage> = chunk.iter().map(|(i, _)| i.clone()).collect();
        let recon = vq.reconstruct(&imgs)?;
        for ((img, scene), r) in chunk.iter().zip(&recon) {
            psnr_sum += psnr(img, r).min(99.0);
            let (c, t) = object_agreement(scene, &rec.recognise(img)?);
            ok_img += c;
            total_img += t;
            let (c, t) = object_agreement(scene, &rec.recognise(r)?);
            ok_rec += c;
            total_rec += t;
        }
    }
    let frac = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Ok(TokenizerReport {
        images: data.len(),
        psnr: psnr_sum / data.len().max(1) as f64,
        recogniser_on_images: frac(ok_img, total_img),
        recogniser_on_reconstructions: frac(ok_rec, total_rec),
    })
}
