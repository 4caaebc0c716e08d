//! The training objective: token cross-entropy on the completion only, with the paper's
//! recognition-weighted image-token loss.
//!
//! Recognition weights. For target image position `l`, `w_l = ||f_s(l) - f_t(l)||²`, the
//! squared L2 distance between the VQ encoder's pre-quantisation features of source and
//! target (the paper's "recognition model" is the VQ encoder). The paper leaves the
//! normalisation open; we normalise `w` to mean 1 over the image (so the loss keeps its scale
//! whatever the size of the change) and mix it with a uniform floor:
//! `weight_l = (1 - λ) + λ·w_l`. λ = 0 is the plain loss; λ = 1 weights purely by change.
//! An unchanged pair (all `w_l = 0`) gets uniform weights.
//!
//! The weights depend on the target token, so the weighted loss is not minimised by the data's
//! distribution: at a position where the source token is kept with probability `p` and
//! replaced with `1 - p`, the minimiser of the expected weighted cross-entropy is that
//! distribution with each outcome's probability multiplied by its weight and renormalised.
//! With λ = 0.5 and a change weight `w` of 10 the odds of replacing are multiplied by 11, so a
//! model sampled at temperature 1 redraws parts of the scene the action leaves alone
//! (measured in `models/README.md`: minimal editing falls, the L1 to the target rises).
//!
//! [`Weighting::Causal`] moves each position's change weight to the positions drawn after it:
//! position `l` weighs by the largest recognition weight among its already-drawn neighbours
//! (left, and the three above in raster order), so its weight depends on the target only
//! through tokens the model is given when it predicts `l`. A weight that is a function of the
//! context reweights contexts, not outcomes: the minimiser at each context stays the data's
//! distribution, and there is no tilt to undo (up to two small leaks: the encoder's receptive
//! field, which lets a neighbour's feature see a little of `l`'s pixels, and the normalisation
//! over the whole image). What it gives up: the first token of a change weighs as a kept one.

use super::batch::Batch;
use crate::model::{Chameleon, Pass};
use candle_core::{D, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Which position a change's recognition weight lands on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Weighting {
    /// The paper's: each position by its own change (depends on the target token: tilts).
    #[default]
    Target,
    /// Each position by the largest change among its already-drawn neighbours (no tilt).
    Causal,
}

/// Normalised recognition weights (mean 1) from the pre-quantisation features of source and
/// target, each `positions x dim` row-major.
pub(crate) fn recognition_weights(source: &[f32], target: &[f32], dim: usize) -> Vec<f32> {
    let w: Vec<f32> = source
        .chunks(dim)
        .zip(target.chunks(dim))
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum())
        .collect();
    let mean = w.iter().sum::<f32>() / w.len().max(1) as f32;
    if mean <= f32::EPSILON {
        return vec![1.0; w.len()];
    }
    w.iter().map(|v| v / mean).collect()
}

/// The loss weight of each target image position, `(1 - λ) + λ·w` from the recognition
/// weight `w` that `weighting` assigns it: the one place the two are mixed. The positions are
/// a square grid in raster order (a row, if their number is not a square).
pub fn loss_weights(lambda: f64, weighting: Weighting, recognition_weights: &[f32]) -> Vec<f32> {
    let l = lambda as f32;
    let mix = |w: f32| (1.0 - l) + l * w;
    match weighting {
        Weighting::Target => recognition_weights.iter().map(|&w| mix(w)).collect(),
        Weighting::Causal => {
            let n = recognition_weights.len();
            let side = (n as f64).sqrt().round() as usize;
            let width = if side * side == n { side } else { n };
            (0..n)
                .map(|i| {
                    let (row, col) = (i / width, i % width);
                    let left = (col > 0).then(|| i - 1);
                    let above = (row > 0).then(|| i - width);
                    let neighbours = [
                        left,
                        above.filter(|_| col > 0).map(|a| a - 1),
                        above,
                        above.filter(|_| col + 1 < width).map(|a| a + 1),
                    ];
                    mix(neighbours
                        .into_iter()
                        .flatten()
                        .map(|j| recognition_weights[j])
                        .fold(0.0, f32::max))
                })
                .collect()
        }
    }
}

/// The logit bias on the source's token that undoes the tilt of a model trained with
/// [`loss_weights`] at `lambda` on `pairs` (source codes, target codes, recognition weights):
/// the log of the mean weight of the positions whose token changed over the mean weight of
/// those whose token was kept. A model at the weighted loss's optimum keeps the source's token
/// with its odds divided by about that ratio; [`crate::model::Sampling::copy_bias`] multiplies
/// them back. 0 for the plain loss, or when no pair both keeps and changes a token. Only
/// [`Weighting::Target`] tilts ([`Weighting::Causal`] has nothing to undo).
#[cfg(feature = "fs")]
pub(crate) fn copy_tilt<'a>(
    lambda: f64,
    pairs: impl IntoIterator<Item = (&'a [u32], &'a [u32], &'a [f32])>,
) -> f64 {
    let (mut kept, mut changed) = ((0.0, 0usize), (0.0, 0usize));
    for (source, target, w) in pairs {
        let weights = loss_weights(lambda, Weighting::Target, w);
        for ((s, t), weight) in source.iter().zip(target).zip(weights) {
            let side = if s == t { &mut kept } else { &mut changed };
            side.0 += weight as f64;
            side.1 += 1;
        }
    }
    if kept.1 == 0 || changed.1 == 0 || kept.0 <= 0.0 {
        return 0.0;
    }
    ((changed.0 / changed.1 as f64) / (kept.0 / kept.1 as f64)).ln()
}

/// Weighted mean negative log-likelihood of the batch's completion tokens:
/// `Σ weight_i · nll_i / (number of completion tokens)`. Differentiable.
pub(crate) fn completion_loss(model: &Chameleon, batch: &Batch) -> Result<Tensor> {
    let nll = completion_nll(model, batch, Pass::Train)?;
    (nll * &batch.weights)?.sum_all()? / batch.weights.dim(0)? as f64
}

/// The negative log-likelihood of each completion token of the batch, in the batch's order
/// (sequence by sequence, position by position).
pub(crate) fn completion_nll(model: &Chameleon, batch: &Batch, pass: Pass) -> Result<Tensor> {
    let hidden = model.hidden(&batch.ids, None, pass)?;
    let (b, t, h) = hidden.dims3()?;
    // The logits at position p - 1 predict the token at p: only those rows need the head.
    let rows = hidden
        .reshape((b * t, h))?
        .index_select(&batch.predict_from, 0)?;
    let logp = candle_nn::ops::log_softmax(&model.logits(&rows)?, D::Minus1)?;
    logp.gather(&batch.targets.unsqueeze(1)?, 1)?
        .squeeze(1)?
        .neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Sequence;
    use crate::nn::seeded_var_builder;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn recognition_weights_follow_the_change_and_have_mean_one() {
        // Three positions of dim 2: unchanged, small change, big change.
        let s = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let t = [0.0, 0.0, 1.0, 2.0, 3.0, 0.0];
        let w = recognition_weights(&s, &t, 2);
        // Raw distances 0, 1, 9; mean 10/3.
        let expect = [0.0, 0.3, 2.7];
        for (a, b) in w.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
        assert_eq!(recognition_weights(&s, &s, 2), vec![1.0; 3]);
        assert_eq!(loss_weights(0.0, Weighting::Target, &w), vec![1.0; 3]);
        let half = loss_weights(0.5, Weighting::Target, &w);
        assert!((half[2] - (0.5 + 0.5 * 2.7)).abs() < 1e-6);
    }

    #[test]
    fn the_copy_tilt_is_the_log_ratio_of_the_changed_and_kept_weights() {
        // Two positions kept (w 0 and 0.2), two changed (w 1.8 and 2.0): mean 1.
        let (s, t, w) = ([1, 2, 3, 4], [1, 2, 7, 8], [0.0, 0.2, 1.8, 2.0]);
        let pairs = || [(&s[..], &t[..], &w[..])];
        // λ = 0.5: kept weights 0.5, 0.6; changed 1.4, 1.5.
        let tilt = copy_tilt(0.5, pairs());
        assert!((tilt - (1.45f64 / 0.55).ln()).abs() < 1e-6, "{tilt}");
        assert_eq!(copy_tilt(0.0, pairs()), 0.0);
        // Nothing changed: no ratio to undo.
        assert_eq!(copy_tilt(0.5, [(&s[..], &s[..], &w[..])]), 0.0);
    }

    #[test]
    fn causal_weights_land_on_the_positions_drawn_after_a_change() {
        // A 3 x 3 grid whose centre changed (recognition weight 9, the rest 0).
        let mut w = [0.0f32; 9];
        w[4] = 9.0;
        let causal = loss_weights(1.0, Weighting::Causal, &w);
        // The centre's right neighbour and the three below it see the change; the centre
        // itself, drawn before anything of it, weighs as a kept position.
        assert_eq!(causal, vec![0.0, 0.0, 0.0, 0.0, 0.0, 9.0, 9.0, 9.0, 9.0]);
        let half = loss_weights(0.5, Weighting::Causal, &w);
        assert_eq!(half[4], 0.5);
        assert_eq!(half[7], 0.5 + 0.5 * 9.0);
        // Not a square: a row, each position weighted by its left neighbour.
        assert_eq!(
            loss_weights(1.0, Weighting::Causal, &[2.0, 0.0, 3.0]),
            vec![0.0, 2.0, 0.0]
        );
    }

    #[test]
    fn a_causal_weight_never_depends_on_the_position_or_any_after_it() {
        // Whatever the recognition weights from position l on, the weights up to l are the
        // same: each is a function of what the model is given when it predicts the position.
        let mut rng = 12345u64;
        let mut next = || {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 40) as f32 / (1u64 << 24) as f32 * 4.0
        };
        let w: Vec<f32> = (0..64).map(|_| next()).collect();
        let base = loss_weights(0.5, Weighting::Causal, &w);
        for l in 0..64 {
            let mut changed = w.clone();
            for v in &mut changed[l..] {
                *v = next();
            }
            let after = loss_weights(0.5, Weighting::Causal, &changed);
            assert_eq!(base[..=l], after[..=l], "position {l}");
        }
        // The paper's weights do depend on the position's own change.
        let mut own = w.clone();
        own[10] += 1.0;
        assert_ne!(
            loss_weights(0.5, Weighting::Target, &w)[10],
            loss_weights(0.5, Weighting::Target, &own)[10]
        );
    }

    #[test]
    fn weighted_loss_equals_the_hand_computation() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = crate::model::ChameleonConfig {
            vocab_size: 12,
            hidden_size: 16,
            intermediate_size: 24,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            num_key_value_heads: 2,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-5,
            max_position_embeddings: 16,
            swin_norm: false,
            attention_bias: false,
            mlp_bias: false,
            tie_word_embeddings: false,
            initializer_range: 0.3,
        };
        let vm = VarMap::new();
        let model = Chameleon::new(cfg, seeded_var_builder(&vm, 3, DType::F32, &dev))?;
        let seqs = [
            Sequence {
                ids: vec![1, 4, 7, 9, 2],
                weights: vec![0.0, 0.0, 0.5, 2.0, 0.0],
            },
            Sequence {
                ids: vec![1, 3, 11],
                weights: vec![0.0, 1.0, 1.0],
            },
        ];
        // By hand: full logits, log-softmax, pick the completion tokens.
        let hand = |seqs: &[Sequence]| -> Result<f64> {
            let (mut total, mut count) = (0.0f64, 0);
            for s in seqs {
                let ids = Tensor::new(s.ids.as_slice(), &dev)?.unsqueeze(0)?;
                let logits = model
                    .forward(&ids, None, Pass::Train)?
                    .squeeze(0)?
                    .to_vec2::<f32>()?;
                for (p, &w) in s.weights.iter().enumerate().filter(|(_, w)| **w > 0.0) {
                    let row = &logits[p - 1];
                    let max = row.iter().copied().fold(f32::MIN, f32::max) as f64;
                    let lse = max
                        + row
                            .iter()
                            .map(|v| (*v as f64 - max).exp())
                            .sum::<f64>()
                            .ln();
                    total += w as f64 * (lse - row[s.ids[p] as usize] as f64);
                    count += 1;
                }
            }
            Ok(total / count as f64)
        };
        let loss = completion_loss(&model, &Batch::new(&seqs, 0, &dev)?)?.to_scalar::<f32>()?;
        let expect = hand(&seqs)?;
        assert!((loss as f64 - expect).abs() < 1e-5, "{loss} vs {expect}");
        // At λ = 0 the weights are all 1: the plain mean cross-entropy.
        let at_zero: Vec<Sequence> = seqs
            .iter()
            .map(|s| {
                let mut weights = s.weights.clone();
                let idx: Vec<usize> = s.completion().collect();
                let mixed = loss_weights(
                    0.0,
                    Weighting::Target,
                    &idx.iter().map(|&i| s.weights[i]).collect::<Vec<_>>(),
                );
                for (i, m) in idx.iter().zip(mixed) {
                    weights[*i] = m;
                }
                Sequence {
                    ids: s.ids.clone(),
                    weights,
                }
            })
            .collect();
        let plain: Vec<Sequence> = seqs
            .iter()
            .map(|s| Sequence {
                ids: s.ids.clone(),
                weights: s
                    .weights
                    .iter()
                    .map(|w| if *w > 0.0 { 1.0 } else { 0.0 })
                    .collect(),
            })
            .collect();
        let zero_loss =
            completion_loss(&model, &Batch::new(&at_zero, 0, &dev)?)?.to_scalar::<f32>()?;
        let plain_expect = hand(&plain)?;
        assert!(
            (zero_loss as f64 - plain_expect).abs() < 1e-5,
            "{zero_loss} vs {plain_expect}"
        );
        assert!(
            (plain_expect - expect).abs() > 1e-4,
            "the weights must matter"
        );
        Ok(())
    }
}
