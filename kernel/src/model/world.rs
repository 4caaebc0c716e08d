//! The world model: (source image, action text) -> N candidate next images, sampled in one
//! batched, KV-cached pass. The prompt is run once and its cache repeated over the N samples;
//! inside the image a logits mask allows only image tokens.

use super::chameleon::KvCache;
use super::checkpoint::Model;
use super::format::Role;
use super::sampling::Sampling;
use crate::error::{Error, Result};
use candle_core::Tensor;
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// One sampled next observation.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Image codes (the image tokenizer's ids, not the model's).
    pub codes: Vec<u32>,
    pub image: RgbImage,
}

pub struct WorldModel {
    pub model: Arc<Model>,
}

impl WorldModel {
    pub fn new(model: Arc<Model>) -> Result<Self> {
        if !model.config.has_role(Role::World) {
            return Err(Error::Invalid(format!(
                "this checkpoint was trained as {:?}, not as a world model",
                model.config.dynaboot.roles
            )));
        }
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
        if n == 0 {
            return Err(Error::Invalid("asked for 0 candidates; use n >= 1".into()));
        }
        let m = &self.model;
        let b = &m.backbone;
        let vocab = &m.format.vocab;
        let prompt = m.format.world_prompt(source, action)?;
        let mut cache = KvCache::new(&b.config);
        let first = b.forward_last(
            &Tensor::new(prompt, m.device())?.unsqueeze(0)?,
            Some(&mut cache),
        )?;
        cache.repeat_batch(n)?;
        let mut rows = vec![first.squeeze(0)?.to_vec1::<f32>()?; n];
        let mut rngs: Vec<ChaCha8Rng> = (0..n)
            .map(|i| {
                let mut r = ChaCha8Rng::seed_from_u64(sampling.seed);
                r.set_stream(i as u64);
                r
            })
            .collect();
        let t = m.format.image_tokens;
        let mut out = vec![Vec::with_capacity(t); n];
        for step in 0..t {
            let ids: Vec<u32> = rows
                .iter()
                .zip(&mut rngs)
                .map(|(row, rng)| sampling.pick(row, vocab.image_range(), rng))
                .collect();
            for (o, &id) in out.iter_mut().zip(&ids) {
                o.push(
                    vocab
                        .image_code(id)
                        .expect("the mask allows image ids only"),
                );
            }
            if step + 1 < t {
                let next = Tensor::from_vec(ids, (n, 1), m.device())?;
                rows = b.forward_last(&next, Some(&mut cache))?.to_vec2::<f32>()?;
            }
        }
        Ok(out)
    }
}
