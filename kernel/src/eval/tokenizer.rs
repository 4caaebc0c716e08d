//! How much of the world survives the image tokenizer: PSNR of reconstructions, the
//! recogniser's per-object accuracy on renders and on reconstructions, and how local its codes
//! are (which token ids an edit changes, by distance from the pixels it changed).

use crate::error::Result;
use crate::tokenize::ImageTokenizer;
use crate::tokenize::vq::{images_to_tensor, psnr};
use crate::world::Scene;
use crate::world::recognise::{Recogniser, object_agreement};
use image::RgbImage;
use serde::Serialize;

/// How well an image tokenizer keeps what the judge reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TokenizerReport {
    /// Images encoded and decoded.
    pub images: usize,
    /// Mean PSNR (dB) of reconstructions.
    pub psnr: f64,
    /// Recogniser per-object accuracy on the original images.
    pub recogniser_on_images: f64,
    /// Recogniser per-object accuracy on the tokenizer's reconstructions.
    pub recogniser_on_reconstructions: f64,
    /// On (source, target) pairs, where given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<Locality>,
}

/// How local the tokenizer's codes are, on (source, target) pairs that differ: the tokens at
/// Chebyshev distance `d` (in cells of the token grid) from the nearest cell whose pixels
/// differ, and the share of them whose id differs. A local tokenizer changes ids where the
/// pixels changed (`d = 0`) and little beyond; what it changes further away, a world model
/// has to predict without any change in the picture to go by.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Locality {
    /// Pairs measured (pairs with identical images are skipped).
    pub pairs: usize,
    /// Tokens at distance 0, 1, 2, 3 and 4 or more.
    pub tokens: Vec<usize>,
    /// Of those, the share whose id differs between source and target.
    pub changed: Vec<f64>,
}

/// Distances 0 to `LOCALITY_FAR - 1`, then everything farther in one bucket.
const LOCALITY_FAR: usize = 4;

/// The [`Locality`] of `vq` on image pairs, `batch` pairs per pass.
pub fn token_locality(
    vq: &ImageTokenizer,
    pairs: &[(RgbImage, RgbImage)],
    batch: usize,
) -> Result<Locality> {
    let (size, grid) = (vq.config.image_size, vq.config.grid());
    let cell = size / grid;
    let mut tokens = vec![0usize; LOCALITY_FAR + 1];
    let mut changed = [0usize; LOCALITY_FAR + 1];
    let mut measured = 0;
    for chunk in pairs.chunks(batch.max(1)) {
        let images: Vec<RgbImage> = chunk
            .iter()
            .flat_map(|(s, t)| [s.clone(), t.clone()])
            .collect();
        let (ids, _) = vq.encode(&images_to_tensor(&images, size, vq.device())?)?;
        let ids = ids.to_vec2::<u32>()?;
        for ((source, target), codes) in chunk.iter().zip(ids.chunks(2)) {
            // Cells whose pixels differ.
            let moved: Vec<(usize, usize)> = (0..grid * grid)
                .map(|k| (k / grid, k % grid))
                .filter(|&(r, c)| {
                    (r * cell..(r + 1) * cell).any(|y| {
                        (c * cell..(c + 1) * cell).any(|x| {
                            source.get_pixel(x as u32, y as u32)
                                != target.get_pixel(x as u32, y as u32)
                        })
                    })
                })
                .collect();
            if moved.is_empty() {
                continue;
            }
            measured += 1;
            for (k, (a, b)) in codes[0].iter().zip(&codes[1]).enumerate() {
                let (r, c) = (k / grid, k % grid);
                let d = moved
                    .iter()
                    .map(|&(mr, mc)| r.abs_diff(mr).max(c.abs_diff(mc)))
                    .min()
                    .expect("a changed cell");
                let d = d.min(LOCALITY_FAR);
                tokens[d] += 1;
                changed[d] += usize::from(a != b);
            }
        }
    }
    Ok(Locality {
        pairs: measured,
        changed: changed
            .iter()
            .zip(&tokens)
            .map(|(&c, &t)| if t == 0 { 0.0 } else { c as f64 / t as f64 })
            .collect(),
        tokens,
    })
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
        locality: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::VqConfig;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn locality_counts_tokens_by_distance_from_the_changed_pixels() -> Result<()> {
        let vm = VarMap::new();
        let vb = crate::nn::seeded_var_builder(&vm, 1, DType::F32, &Device::Cpu);
        let vq = ImageTokenizer::new(VqConfig::tiny(32), vb)?;
        assert_eq!(vq.config.grid(), 4);
        let source = RgbImage::from_pixel(32, 32, image::Rgb([40, 90, 160]));
        let mut target = source.clone();
        target.put_pixel(2, 3, image::Rgb([250, 10, 10]));
        let same = token_locality(&vq, &[(source.clone(), source.clone())], 4)?;
        assert_eq!(same.pairs, 0, "identical images are no edit");
        let l = token_locality(&vq, &vec![(source.clone(), target.clone()); 3], 2)?;
        assert_eq!(l.pairs, 3);
        // One changed pixel in the corner cell (0, 0) of a 4 x 4 grid: 1, 3, 5 and 7 cells
        // at distances 0 to 3, none farther; three pairs.
        assert_eq!(l.tokens, vec![3, 9, 15, 21, 0]);
        assert!(l.changed.iter().all(|c| (0.0..=1.0).contains(c)));
        // The same pair encodes alike whatever its batch: the shares are multiples of 1/3.
        for (c, t) in l.changed.iter().zip(&l.tokens) {
            let n = c * *t as f64;
            assert!((n - n.round()).abs() < 1e-9 && (n.round() as usize).is_multiple_of(3));
        }
        Ok(())
    }
}
