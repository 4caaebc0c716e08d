//! Choosing the next token from logits: temperature, top-k, top-p (nucleus), and a mask that
//! restricts the choice to a range of ids (image tokens inside an image, text tokens in an
//! action). Deterministic for a seeded generator.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// How to sample. `temperature == 0` is greedy decoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// Softmax temperature (0 = greedy).
    pub temperature: f64,
    /// Keep only the `k` most likely ids (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of ids whose probability reaches `top_p` (1 = all).
    pub top_p: f64,
    /// Seed of the draws; candidate `i` of a best-of-N draws from its own stream.
    pub seed: u64,
    /// Added to the logit of the source image's token at the same position while a world model
    /// draws a target image (0 = none). It undoes the tilt of a model trained with the
    /// recognition-weighted loss (`crate::train::loss::copy_tilt`), which keeps the source's
    /// tokens less often than the data does.
    #[serde(default)]
    pub copy_bias: f64,
}

impl Default for Sampling {
    /// The paper samples the world model at temperature 1: lower temperatures copy the source.
    fn default() -> Self {
        Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            copy_bias: 0.0,
        }
    }
}

impl Sampling {
    /// Greedy decoding: the most likely id at every step.
    pub fn greedy() -> Self {
        Sampling {
            temperature: 0.0,
            ..Default::default()
        }
    }

    /// The random streams of samples `samples` drawn at once: sample `i` draws from stream
    /// `(seed, i)`, so it is the same whatever else is drawn beside it.
    pub(crate) fn streams(&self, samples: Range<usize>) -> Vec<ChaCha8Rng> {
        samples
            .map(|i| {
                let mut r = ChaCha8Rng::seed_from_u64(self.seed);
                r.set_stream(i as u64);
                r
            })
            .collect()
    }

    /// Picks an id in `allowed` from one row of logits over the whole vocabulary.
    pub(crate) fn pick(&self, logits: &[f32], allowed: Range<u32>, rng: &mut impl Rng) -> u32 {
        let lo = allowed.start as usize;
        let row = &logits[lo..(allowed.end as usize).min(logits.len())];
        let argmax = || {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0
        };
        if self.temperature <= 0.0 {
            return (lo + argmax()) as u32;
        }
        let mut order: Vec<usize> = (0..row.len()).collect();
        if self.top_k > 0 || self.top_p < 1.0 {
            order.sort_unstable_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        }
        if self.top_k > 0 {
            order.truncate(self.top_k);
        }
        let t = self.temperature as f32;
        let max = order
            .iter()
            .map(|&i| row[i])
            .fold(f32::NEG_INFINITY, f32::max);
        let mut probs: Vec<f32> = order.iter().map(|&i| ((row[i] - max) / t).exp()).collect();
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if self.top_p < 1.0 {
            let mut acc = 0.0;
            let keep = probs
                .iter()
                .position(|p| {
                    acc += p;
                    acc >= self.top_p as f32
                })
                .map_or(probs.len(), |i| i + 1);
            order.truncate(keep);
            probs.truncate(keep);
        }
        let total: f32 = probs.iter().sum();
        let mut u = rng.random::<f32>() * total;
        for (&i, p) in order.iter().zip(&probs) {
            if u < *p {
                return (lo + i) as u32;
            }
            u -= p;
        }
        (lo + order[order.len() - 1]) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_never_lets_an_id_outside_the_range_through() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // Text ids 0..10 are hugely more likely than image ids 10..20.
        let logits: Vec<f32> = (0..20).map(|i| if i < 10 { 50.0 } else { 0.0 }).collect();
        let s = Sampling {
            temperature: 5.0,
            ..Default::default()
        };
        for _ in 0..500 {
            let id = s.pick(&logits, 10..20, &mut rng);
            assert!((10..20).contains(&id), "{id}");
        }
        assert!((10..20).contains(&Sampling::greedy().pick(&logits, 10..20, &mut rng)));
    }

    #[test]
    fn greedy_top_k_and_top_p() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let logits = [0.0, 3.0, 1.0, 2.9, -1.0];
        assert_eq!(Sampling::greedy().pick(&logits, 0..5, &mut rng), 1);
        let top2 = Sampling {
            top_k: 2,
            ..Default::default()
        };
        let top_p = Sampling {
            top_p: 0.5,
            ..Default::default()
        };
        let mut seen = [0usize; 5];
        for _ in 0..400 {
            let a = top2.pick(&logits, 0..5, &mut rng) as usize;
            assert!(a == 1 || a == 3);
            seen[a] += 1;
            // p(1) ~ 0.47 < 0.5, so the nucleus is {1, 3}.
            let b = top_p.pick(&logits, 0..5, &mut rng);
            assert!(b == 1 || b == 3);
        }
        assert!(seen[1] > 100 && seen[3] > 100, "{seen:?}");
    }

    #[test]
    fn temperature_one_follows_the_softmax() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let logits = [0.0f32, (3.0f32).ln()];
        let n = 4000;
        let ones = (0..n)
            .filter(|_| Sampling::default().pick(&logits, 0..2, &mut rng) == 1)
            .count();
        let p = ones as f64 / n as f64;
        assert!((p - 0.75).abs() < 0.03, "{p}");
    }
}
