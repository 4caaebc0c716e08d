//! The world model: (source image, action text) -> N candidate next images, sampled in one
//! batched, KV-cached pass on any [`Backbone`]. The prompt is run once and its cache repeated
//! over the N samples; inside the image a logits mask allows only image tokens.

use super::backbone::{Backbone, MAX_BATCH, ready};
use super::checkpoint::Model;
use super::format::{Format, Role};
use super::sampling::Sampling;
use super::scoring::{Score, score_sequences};
use super::vocab::Vocab;
use crate::error::{Error, Result};
use image::RgbImage;
use rand_chacha::ChaCha8Rng;
use std::ops::Range;
use std::sync::Arc;

/// One sampled next observation.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Image codes (the image tokenizer's ids, not the model's).
    pub codes: Vec<u32>,
    /// The codes decoded.
    pub image: RgbImage,
}

/// A checkpoint trained as a world model: (source, action) -> the next image.
pub struct WorldModel {
    /// The checkpoint.
    pub model: Arc<Model>,
}

impl WorldModel {
    /// The checkpoint as a world model; an error unless it was trained as one.
    pub fn new(model: Arc<Model>) -> Result<Self> {
        model.config.require_role(Role::World)?;
        Ok(WorldModel { model })
    }

    /// `n` candidate next images for `source` after `action`.
    pub fn sample(
        &self,
        source: &RgbImage,
        action: &str,
        n: usize,
        sampling: &Sampling,
    ) -> Result<Vec<Candidate>> {
        let m = &self.model;
        let source = m.encode_images(std::slice::from_ref(source))?.remove(0);
        let action = m.encode_action(action, Role::World)?;
        let codes = self.sample_codes(&source, &action, n, sampling)?;
        let images = m.decode_images(&codes)?;
        Ok(codes
            .into_iter()
            .zip(images)
            .map(|(codes, image)| Candidate { codes, image })
            .collect())
    }

    /// `n` samples of target image codes given source codes and action token ids. Sample `i`
    /// draws from its own random stream `(seed, i)`, so it is the same whatever `n` is.
    pub fn sample_codes(
        &self,
        source: &[u32],
        action: &[u32],
        n: usize,
        sampling: &Sampling,
    ) -> Result<Vec<Vec<u32>>> {
        let m = &self.model;
        ready(sample_images(
            &m.backbone,
            &m.format,
            source,
            action,
            n,
            sampling,
        ))
    }

    /// log p(target | source, action) of each action (token ids) for one pair of image codes:
    /// how well the world model expects each action to lead from `source` to `target`.
    #[cfg(test)]
    pub(crate) fn score_codes(
        &self,
        source: &[u32],
        actions: &[Vec<u32>],
        target: &[u32],
    ) -> Result<Vec<Score>> {
        let m = &self.model;
        ready(score_targets(
            &m.backbone,
            &m.format,
            source,
            actions,
            target,
        ))
    }
}

/// log p(target | source, action) of each action on any backbone; actions of one length run
/// together, [`MAX_BATCH`] at a time.
pub(crate) async fn score_targets<B: Backbone>(
    backbone: &B,
    format: &Format,
    source: &[u32],
    actions: &[Vec<u32>],
    target: &[u32],
) -> Result<Vec<Score>> {
    let seqs = actions
        .iter()
        .map(|a| format.world_sequence(source, a, target, None))
        .collect::<Result<Vec<_>>>()?;
    score_sequences(backbone, &seqs).await
}

/// `n` samples of target image codes for source codes and action token ids, on any backbone
/// (see [`ImageSampler`]), [`MAX_BATCH`] at a time: each batch runs the prompt once and
/// repeats its cache over its samples.
pub(crate) async fn sample_images<B: Backbone>(
    backbone: &B,
    format: &Format,
    source: &[u32],
    action: &[u32],
    n: usize,
    sampling: &Sampling,
) -> Result<Vec<Vec<u32>>> {
    if n == 0 {
        return Err(Error::Invalid("asked for 0 candidates; use n >= 1".into()));
    }
    let prompt = format.world_prompt(source, action)?;
    let mut codes = Vec::with_capacity(n);
    for start in (0..n).step_by(MAX_BATCH) {
        let mut sampler =
            ImageSampler::new(format, start..n.min(start + MAX_BATCH), sampling, source)?;
        let mut cache = backbone.new_cache(1)?;
        let first = backbone.prefill(&prompt, &mut cache).await?;
        let mut cache = backbone.repeat_cache(cache, sampler.rngs.len())?;
        let mut logits = first.repeat(sampler.rngs.len());
        while let Some(ids) = sampler.pick(&logits) {
            logits = backbone.step(&ids, &mut cache).await?;
        }
        codes.extend(sampler.finish());
    }
    Ok(codes)
}

/// The sampling side of generating `n` target images at once, whatever runs the model: give it
/// the logits of each sample's last position, it picks the next image token of each. Sample
/// `i` draws from its own random stream `(seed, i)`, so it is the same whatever is drawn
/// beside it.
pub(crate) struct ImageSampler {
    sampling: Sampling,
    vocab: Vocab,
    tokens: usize,
    rngs: Vec<ChaCha8Rng>,
    codes: Vec<Vec<u32>>,
    /// The source image's token ids, for [`Sampling::copy_bias`].
    source: Vec<u32>,
}

impl ImageSampler {
    /// A sampler of the samples numbered `samples` (`0..n` for `n` at once) of a target for
    /// the `source` image codes.
    pub(crate) fn new(
        format: &Format,
        samples: Range<usize>,
        sampling: &Sampling,
        source: &[u32],
    ) -> Result<Self> {
        if samples.is_empty() {
            return Err(Error::Invalid("asked for 0 candidates; use n >= 1".into()));
        }
        if source.len() != format.image_tokens {
            return Err(Error::Invalid(format!(
                "the source image has {} codes, the model draws {}",
                source.len(),
                format.image_tokens
            )));
        }
        Ok(ImageSampler {
            sampling: sampling.clone(),
            vocab: format.vocab.clone(),
            tokens: format.image_tokens,
            codes: vec![Vec::with_capacity(format.image_tokens); samples.len()],
            rngs: sampling.streams(samples),
            source: format.vocab.image_ids(source),
        })
    }

    /// Picks the next token of every sample from `logits` (`n` rows over the vocabulary).
    /// Returns the token ids to feed the model next, or `None` once the images are complete.
    pub(crate) fn pick(&mut self, logits: &[f32]) -> Option<Vec<u32>> {
        let v = logits.len() / self.rngs.len();
        let range = self.vocab.image_range();
        let bias = self.sampling.copy_bias as f32;
        let copy = self.source.get(self.codes[0].len()).map(|&id| id as usize);
        let ids: Vec<u32> = logits
            .chunks(v)
            .zip(&mut self.rngs)
            .map(|(row, rng)| match copy {
                Some(copy) if bias != 0.0 => {
                    let mut row = row.to_vec();
                    row[copy] += bias;
                    self.sampling.pick(&row, range.clone(), rng)
                }
                _ => self.sampling.pick(row, range.clone(), rng),
            })
            .collect();
        for (c, &id) in self.codes.iter_mut().zip(&ids) {
            c.push(
                self.vocab
                    .image_code(id)
                    .expect("the mask allows image ids only"),
            );
        }
        (self.codes[0].len() < self.tokens).then_some(ids)
    }

    /// The image codes of every sample.
    pub(crate) fn finish(self) -> Vec<Vec<u32>> {
        self.codes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::format::tests::format;

    /// Three samples drawn from flat logits with `copy_bias` on the source's tokens.
    fn draw(f: &Format, source: &[u32], copy_bias: f64) -> Vec<Vec<u32>> {
        let sampling = Sampling {
            seed: 9,
            copy_bias,
            ..Sampling::default()
        };
        let flat = vec![0.0f32; 3 * f.vocab.size()];
        let mut sampler = ImageSampler::new(f, 0..3, &sampling, source).unwrap();
        while sampler.pick(&flat).is_some() {}
        sampler.finish()
    }

    #[test]
    fn the_copy_bias_moves_each_position_towards_the_source_token_there() {
        let f = format();
        let source = [5, 1, 7, 2];
        assert!(draw(&f, &source, 50.0).iter().all(|c| c == &source));
        assert!(
            draw(&f, &source, -50.0)
                .iter()
                .all(|c| c.iter().zip(&source).all(|(a, b)| a != b))
        );
        // Without it flat logits draw other codes too (the seed is fixed: not by chance).
        assert!(draw(&f, &source, 0.0).iter().any(|c| c != &source));
        // A source of the wrong size is refused, not indexed past its end.
        let e = ImageSampler::new(&f, 0..1, &Sampling::default(), &source[..3]);
        assert!(e.is_err());
    }
}
