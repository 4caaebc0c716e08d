//! The dynamics model (inverse dynamics): (source, target) -> the action in words. It explains
//! a change by generating text, and scores given actions by their log-likelihood
//! log p(action | source, target) — the verifier's and the annotator's signal.

use super::chameleon::{KvCache, Pass};
use super::checkpoint::Model;
use super::format::Format;
use super::format::Role;
use super::sampling::Sampling;
use crate::error::{Error, Result};
use candle_core::Tensor;
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::ops::Range;
use std::sync::Arc;

/// Log-likelihood of an action's tokens (its `<eos>` included).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    /// Summed over the tokens: log p(action | source, target).
    pub sum: f32,
    /// Per token.
    pub mean: f32,
}

/// A generated action.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Explanation {
    pub text: String,
    pub tokens: Vec<u32>,
    pub score: Score,
}

pub struct DynamicsModel {
    pub model: Arc<Model>,
}

impl DynamicsModel {
    pub fn new(model: Arc<Model>) -> Result<Self> {
        if !model.config.has_role(Role::Dynamics) {
            return Err(Error::Invalid(format!(
                "this checkpoint was trained as {:?}, not as a dynamics model",
                model.config.dynaboot.roles
            )));
        }
        Ok(DynamicsModel { model })
    }

    /// log p(action | source, candidate) for each candidate (image codes), in one batch.
    pub fn score_codes(
        &self,
        source: &[u32],
        candidates: &[Vec<u32>],
        action: &[u32],
    ) -> Result<Vec<Score>> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let m = &self.model;
        let plan = ScoringPlan::new(&m.format, source, candidates, action)?;
        let b = &m.backbone;
        let mut cache = KvCache::new(&b.config);
        if !plan.prefix.is_empty() {
            let prefix = Tensor::new(plan.prefix.as_slice(), m.device())?.unsqueeze(0)?;
            b.hidden(&prefix, Some(&mut cache), Pass::Infer)?;
            cache.repeat_batch(plan.n)?;
        }
        let rest = Tensor::new(plan.rest.as_slice(), m.device())?.reshape((plan.n, ()))?;
        let hidden = b.hidden(&rest, Some(&mut cache), Pass::Infer)?;
        let span = hidden.narrow(1, plan.span.start, plan.span.len())?;
        let logits = b.logits(&span.contiguous()?)?;
        Ok(plan.scores(&logits.flatten_all()?.to_vec1::<f32>()?))
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
    pub fn explain_codes(
        &self,
        pairs: &[(Vec<u32>, Vec<u32>)],
        sampling: &Sampling,
    ) -> Result<Vec<Explanation>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let m = &self.model;
        let b = &m.backbone;
        let f = &m.format;
        let s = f.vocab.specials;
        let n = pairs.len();
        let prompts = pairs
            .iter()
            .map(|(src, tgt)| f.dynamics_prompt(src, tgt))
            .collect::<Result<Vec<_>>>()?;
        let len = prompts[0].len();
        let flat: Vec<u32> = prompts.into_iter().flatten().collect();
        let mut cache = KvCache::new(&b.config);
        let mut rows = b
            .forward_last(
                &Tensor::from_vec(flat, (n, len), m.device())?,
                Some(&mut cache),
            )?
            .to_vec2::<f32>()?;
        let mut rngs: Vec<ChaCha8Rng> = (0..n)
            .map(|i| {
                let mut r = ChaCha8Rng::seed_from_u64(sampling.seed);
                r.set_stream(i as u64);
                r
            })
            .collect();
        let banned = [s.pad, s.bos, s.boi, s.eoi, s.wm, s.dm];
        let mut tokens = vec![Vec::new(); n];
        let mut logp = vec![0f32; n];
        let mut done = vec![false; n];
        // Room for the action and its <eos>.
        for _ in 0..=f.max_action_tokens(Role::Dynamics) {
            let mut next = Vec::with_capacity(n);
            for i in 0..n {
                let row = &mut rows[i];
                let id = if done[i] {
                    s.pad
                } else {
                    // The log-likelihood is under the model's unmasked distribution.
                    let lse = log_sum_exp(row);
                    for &t in &banned {
                        row[t as usize] = f32::NEG_INFINITY;
                    }
                    // Image tokens inside the text ids (Chameleon's layout) never go into words.
                    let images = f.vocab.image_range();
                    let (lo, hi) = (images.start as usize, (images.end as usize).min(row.len()));
                    if lo < hi {
                        row[lo..hi].fill(f32::NEG_INFINITY);
                    }
                    // The action must fit: force <eos> at the last position.
                    let id = if tokens[i].len() == f.max_action_tokens(Role::Dynamics) {
                        s.eos
                    } else {
                        sampling.pick(row, 0..f.vocab.text_size, &mut rngs[i])
                    };
                    logp[i] += row[id as usize] - lse;
                    if id == s.eos {
                        done[i] = true;
                    } else {
                        tokens[i].push(id);
                    }
                    id
                };
                next.push(id);
            }
            if done.iter().all(|d| *d) {
                break;
            }
            let t = Tensor::from_vec(next, (n, 1), m.device())?;
            rows = b.forward_last(&t, Some(&mut cache))?.to_vec2::<f32>()?;
        }
        tokens
            .into_iter()
            .zip(logp)
            .map(|(tokens, sum)| {
                Ok(Explanation {
                    text: m.text.decode(&tokens)?,
                    score: Score {
                        sum,
                        mean: sum / (tokens.len() + 1) as f32,
                    },
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

fn log_sum_exp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max + row.iter().map(|v| (v - max).exp()).sum::<f32>().ln()
}

/// How `n` candidates are scored in one batch, whatever runs the model: the tokens all
/// sequences share (the source image) run once as `prefix`, then each candidate's `rest`; the
/// logits at positions `span` of each rest predict the action's tokens.
pub struct ScoringPlan {
    pub n: usize,
    pub prefix: Vec<u32>,
    /// `n` rows of equal length, concatenated.
    pub rest: Vec<u32>,
    pub span: Range<usize>,
    /// The tokens the span predicts, per row.
    targets: Vec<Vec<u32>>,
}

impl ScoringPlan {
    pub fn new(
        format: &Format,
        source: &[u32],
        candidates: &[Vec<u32>],
        action: &[u32],
    ) -> Result<Self> {
        let seqs = candidates
            .iter()
            .map(|c| format.dynamics_sequence(source, c, action))
            .collect::<Result<Vec<_>>>()?;
        let len = seqs[0].ids.len();
        let first = seqs[0].completion().next().expect("an action has tokens");
        // Positions from `first - 1` on predict the completion.
        let shared = (0..first - 1)
            .take_while(|&i| seqs.iter().all(|s| s.ids[i] == seqs[0].ids[i]))
            .count();
        Ok(ScoringPlan {
            n: seqs.len(),
            prefix: seqs[0].ids[..shared].to_vec(),
            rest: seqs
                .iter()
                .flat_map(|s| s.ids[shared..].iter().copied())
                .collect(),
            span: first - 1 - shared..len - 1 - shared,
            targets: seqs.iter().map(|s| s.ids[first..].to_vec()).collect(),
        })
    }

    /// The scores from the logits of the span (`n x span x vocab`, row-major).
    pub fn scores(&self, logits: &[f32]) -> Vec<Score> {
        let k = self.span.len();
        let v = logits.len() / (self.n * k);
        logits
            .chunks(k * v)
            .zip(&self.targets)
            .map(|(rows, targets)| {
                let sum: f32 = rows
                    .chunks(v)
                    .zip(targets)
                    .map(|(row, &t)| {
                        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let lse = row.iter().map(|&x| (x - max).exp()).sum::<f32>().ln() + max;
                        row[t as usize] - lse
                    })
                    .sum();
                Score {
                    sum,
                    mean: sum / k as f32,
                }
            })
            .collect()
    }
}
