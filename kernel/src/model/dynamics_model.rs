//! The dynamics model (inverse dynamics): (source, target) -> the action in words. It explains
//! a change by generating text ([`ActionSampler`]), and scores given actions by their
//! log-likelihood log p(action | source, target) ([`score_actions`]) — the verifier's and the
//! annotator's signal. Both run on any [`Backbone`].

use super::backbone::{Backbone, MAX_BATCH, ready};
use super::checkpoint::Model;
use super::format::Format;
use super::format::Role;
use super::sampling::Sampling;
use super::scoring::{Score, log_sum_exp, score_sequences};
use super::vocab::Specials;
use crate::error::Result;
use image::RgbImage;
use rand_chacha::ChaCha8Rng;
use std::ops::Range;
use std::sync::Arc;

/// A generated action.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Explanation {
    /// The action in words.
    pub text: String,
    /// Its text token ids (without `<eos>`).
    pub tokens: Vec<u32>,
    /// log p(text | source, target) under the model.
    pub score: Score,
}

/// A checkpoint trained as a dynamics model: (source, target) -> the action in words.
pub struct DynamicsModel {
    /// The checkpoint.
    pub model: Arc<Model>,
}

impl DynamicsModel {
    /// The checkpoint as a dynamics model; an error unless it was trained as one.
    pub fn new(model: Arc<Model>) -> Result<Self> {
        model.config.require_role(Role::Dynamics)?;
        Ok(DynamicsModel { model })
    }

    /// log p(action | source, candidate) for each candidate (image codes), in one batch.
    pub fn score_codes(
        &self,
        source: &[u32],
        candidates: &[Vec<u32>],
        action: &[u32],
    ) -> Result<Vec<Score>> {
        let m = &self.model;
        ready(score_actions(
            &m.backbone,
            &m.format,
            source,
            candidates,
            action,
        ))
    }

    /// log p(action | source, target) for images and text.
    pub fn score(
        &self,
        source: &RgbImage,
        candidates: &[RgbImage],
        action: &str,
    ) -> Result<Vec<Score>> {
        let m = &self.model;
        let source = m.encode_images(std::slice::from_ref(source))?.remove(0);
        let cands = m.encode_images(candidates)?;
        let action = m.encode_action(action, Role::Dynamics)?;
        self.score_codes(&source, &cands, &action)
    }

    /// Explains each (source, target) pair of image codes with an action, all pairs in one
    /// batch. Greedy with `Sampling::greedy()`; pair `i` samples from stream `(seed, i)`.
    pub(crate) fn explain_codes(
        &self,
        pairs: &[(Vec<u32>, Vec<u32>)],
        sampling: &Sampling,
    ) -> Result<Vec<Explanation>> {
        let m = &self.model;
        ready(explain_pairs(&m.backbone, &m.format, pairs, sampling))?
            .into_iter()
            .map(|(tokens, score)| {
                Ok(Explanation {
                    text: m.text.decode(&tokens)?,
                    score,
                    tokens,
                })
            })
            .collect()
    }

    /// The action that explains the change from `before` to `after`.
    pub fn explain(
        &self,
        before: &RgbImage,
        after: &RgbImage,
        sampling: &Sampling,
    ) -> Result<Explanation> {
        let m = &self.model;
        let mut codes = m.encode_images(&[before.clone(), after.clone()])?;
        let tgt = codes.pop().expect("two images");
        let src = codes.pop().expect("two images");
        Ok(self.explain_codes(&[(src, tgt)], sampling)?.remove(0))
    }
}

/// log p(action | source, candidate) of each candidate, [`MAX_BATCH`] candidates per batch on
/// any backbone (the source image runs once per batch: see [`score_sequences`]).
pub(crate) async fn score_actions<B: Backbone>(
    backbone: &B,
    format: &Format,
    source: &[u32],
    candidates: &[Vec<u32>],
    action: &[u32],
) -> Result<Vec<Score>> {
    let seqs = candidates
        .iter()
        .map(|c| format.dynamics_sequence(source, c, action))
        .collect::<Result<Vec<_>>>()?;
    score_sequences(backbone, &seqs).await
}

/// The action tokens (without `<eos>`) and score of each (source, target) pair, generated
/// [`MAX_BATCH`] pairs at a time on any backbone (see [`ActionSampler`]).
pub(crate) async fn explain_pairs<B: Backbone>(
    backbone: &B,
    format: &Format,
    pairs: &[(Vec<u32>, Vec<u32>)],
    sampling: &Sampling,
) -> Result<Vec<(Vec<u32>, Score)>> {
    let mut explained = Vec::with_capacity(pairs.len());
    for (b, batch) in pairs.chunks(MAX_BATCH).enumerate() {
        let prompts = batch
            .iter()
            .map(|(src, tgt)| format.dynamics_prompt(src, tgt))
            .collect::<Result<Vec<_>>>()?;
        let start = b * MAX_BATCH;
        let mut sampler = ActionSampler::new(format, start..start + batch.len(), sampling);
        let mut cache = backbone.new_cache(batch.len())?;
        let flat: Vec<u32> = prompts.into_iter().flatten().collect();
        let mut logits = backbone.prefill(&flat, &mut cache).await?;
        while let Some(ids) = sampler.pick(&mut logits) {
            logits = backbone.step(&ids, &mut cache).await?;
        }
        explained.extend(sampler.finish());
    }
    Ok(explained)
}

/// The dynamics model's greedy reading of one change, `before` -> `after` (image codes): the
/// action's tokens and score. What "reading an imagined step back" means everywhere.
pub(crate) async fn read_back<B: Backbone>(
    (backbone, format): (&B, &Format),
    before: &[u32],
    after: &[u32],
) -> Result<(Vec<u32>, Score)> {
    let pair = [(before.to_vec(), after.to_vec())];
    let mut read = explain_pairs(backbone, format, &pair, &Sampling::greedy()).await?;
    Ok(read.swap_remove(0))
}

/// The sampling side of generating `n` actions at once, whatever runs the model: give it the
/// logits of each row's last position, it picks each row's next text token (never a control
/// token or an image token; `<eos>` forced when the action would not fit) and keeps each row's
/// log-likelihood under the model's unmasked distribution. Row `i` draws from stream
/// `(seed, i)`.
pub struct ActionSampler {
    sampling: Sampling,
    specials: Specials,
    /// Text ids, and the image ids inside them (Chameleon's layout) that never go into words.
    text_size: u32,
    images: Range<u32>,
    max_tokens: usize,
    rngs: Vec<ChaCha8Rng>,
    tokens: Vec<Vec<u32>>,
    logp: Vec<f32>,
    done: Vec<bool>,
}

impl ActionSampler {
    /// A sampler of the rows numbered `rows` (`0..n` for `n` at once).
    pub(crate) fn new(format: &Format, rows: Range<usize>, sampling: &Sampling) -> Self {
        let n = rows.len();
        ActionSampler {
            sampling: sampling.clone(),
            specials: format.vocab.specials,
            text_size: format.vocab.text_size,
            images: format.vocab.image_range(),
            max_tokens: format.max_action_tokens(Role::Dynamics),
            rngs: sampling.streams(rows),
            tokens: vec![Vec::new(); n],
            logp: vec![0.0; n],
            done: vec![false; n],
        }
    }

    /// Picks the next token of every row from `logits` (`n` rows over the vocabulary; masked
    /// in place). Returns the ids to feed the model next (`<pad>` for finished rows), or
    /// `None` once every row has ended its action.
    pub(crate) fn pick(&mut self, logits: &mut [f32]) -> Option<Vec<u32>> {
        let s = self.specials;
        let banned = [s.pad, s.bos, s.boi, s.eoi, s.wm, s.dm];
        let v = logits.len() / self.rngs.len();
        let mut next = Vec::with_capacity(self.rngs.len());
        for (i, row) in logits.chunks_mut(v).enumerate() {
            if self.done[i] {
                next.push(s.pad);
                continue;
            }
            // The log-likelihood is under the model's unmasked distribution.
            let lse = log_sum_exp(row);
            for &t in &banned {
                row[t as usize] = f32::NEG_INFINITY;
            }
            let (lo, hi) = (
                self.images.start as usize,
                (self.images.end as usize).min(row.len()),
            );
            if lo < hi {
                row[lo..hi].fill(f32::NEG_INFINITY);
            }
            // The action must fit: force <eos> at the last position.
            let id = if self.tokens[i].len() == self.max_tokens {
                s.eos
            } else {
                self.sampling
                    .pick(row, 0..self.text_size, &mut self.rngs[i])
            };
            self.logp[i] += row[id as usize] - lse;
            if id == s.eos {
                self.done[i] = true;
            } else {
                self.tokens[i].push(id);
            }
            next.push(id);
        }
        (!self.done.iter().all(|d| *d)).then_some(next)
    }

    /// Each row's action tokens (without `<eos>`) and score.
    pub(crate) fn finish(self) -> Vec<(Vec<u32>, Score)> {
        self.tokens
            .into_iter()
            .zip(self.logp)
            .map(|(tokens, sum)| {
                let mean = sum / (tokens.len() + 1) as f32;
                (tokens, Score { sum, mean })
            })
            .collect()
    }
}
