//! Log-likelihood of given completions on any [`Backbone`]: log p(action | source, target)
//! under the dynamics model and log p(target | source, action) under the world model — the
//! signal of verification either way round. Rows are batched [`MAX_BATCH`] at a time among
//! sequences of the same shape, and the tokens a batch shares run once ([`ScoringPlan`]).

use super::backbone::{Backbone, MAX_BATCH, Positions};
use super::format::Sequence;
use crate::error::{Error, Result};
use std::ops::Range;

/// Log-likelihood of a completion's tokens.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    /// Summed over the tokens: log p(completion | prompt).
    pub sum: f32,
    /// Per token.
    pub mean: f32,
}

/// `log Σ exp(x)` of a row of logits.
pub(crate) fn log_sum_exp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max + row.iter().map(|v| (v - max).exp()).sum::<f32>().ln()
}

/// How `n` sequences of one shape are scored in one batch, whatever runs the model: the tokens
/// all rows share before the completion run once as `prefix`, then each row's `rest`; the
/// logits at positions `span` of each rest predict the completion's tokens.
pub(crate) struct ScoringPlan {
    pub(crate) n: usize,
    pub(crate) prefix: Vec<u32>,
    /// `n` rows of equal length, concatenated.
    pub(crate) rest: Vec<u32>,
    pub(crate) span: Range<usize>,
    /// The tokens the span predicts, per row.
    targets: Vec<Vec<u32>>,
}

impl ScoringPlan {
    /// A plan for sequences of one [`shape`]; each completion is one run of positions.
    pub(crate) fn new(seqs: &[Sequence]) -> Result<Self> {
        let Some(first_seq) = seqs.first() else {
            return Err(Error::Invalid("nothing to score".into()));
        };
        let (len, completion) = shape(first_seq)?;
        if let Some(other) = seqs
            .iter()
            .find(|s| shape(s).ok() != Some((len, completion.clone())))
        {
            return Err(Error::Invalid(format!(
                "sequences of different shapes in one scoring batch ({} and {} tokens)",
                len,
                other.ids.len()
            )));
        }
        let first = completion.start;
        // Positions from `first - 1` on predict the completion.
        let shared = (0..first - 1)
            .take_while(|&i| seqs.iter().all(|s| s.ids[i] == first_seq.ids[i]))
            .count();
        Ok(ScoringPlan {
            n: seqs.len(),
            prefix: first_seq.ids[..shared].to_vec(),
            rest: seqs
                .iter()
                .flat_map(|s| s.ids[shared..].iter().copied())
                .collect(),
            span: first - 1 - shared..completion.end - 1 - shared,
            targets: seqs
                .iter()
                .map(|s| s.ids[completion.clone()].to_vec())
                .collect(),
        })
    }

    /// The scores from the logits of the span (`n x span x vocab`, row-major).
    pub(crate) fn scores(&self, logits: &[f32]) -> Vec<Score> {
        let k = self.span.len();
        let v = logits.len() / (self.n * k);
        logits
            .chunks(k * v)
            .zip(&self.targets)
            .map(|(rows, targets)| {
                let sum: f32 = rows
                    .chunks(v)
                    .zip(targets)
                    .map(|(row, &t)| row[t as usize] - log_sum_exp(row))
                    .sum();
                Score {
                    sum,
                    mean: sum / k as f32,
                }
            })
            .collect()
    }
}

/// A sequence's length and the positions of its completion.
pub(crate) type Shape = (usize, Range<usize>);

/// The [`Shape`] of a sequence whose completion is one run after at least one prompt token.
pub(crate) fn shape(seq: &Sequence) -> Result<Shape> {
    let mut at = seq.completion();
    let first = at
        .next()
        .ok_or_else(|| Error::Invalid("a sequence to score has no completion".into()))?;
    let end = at.last().map_or(first + 1, |last| last + 1);
    if first == 0 || seq.completion().count() != end - first {
        return Err(Error::Invalid(
            "a sequence to score needs a prompt and one unbroken completion".into(),
        ));
    }
    Ok((seq.ids.len(), first..end))
}

/// The score of each sequence's completion, in the order given: sequences of one shape run
/// together, [`MAX_BATCH`] per batch, so memory does not grow with their number.
pub(crate) async fn score_sequences<B: Backbone>(
    backbone: &B,
    seqs: &[Sequence],
) -> Result<Vec<Score>> {
    // Rows by shape (length and completion), in order of first appearance.
    let mut groups: Vec<(Shape, Vec<usize>)> = Vec::new();
    for (i, s) in seqs.iter().enumerate() {
        let key = shape(s)?;
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, rows)) => rows.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    let mut scores = vec![None; seqs.len()];
    for (_, rows) in groups {
        for batch in rows.chunks(MAX_BATCH) {
            let batch_seqs: Vec<Sequence> = batch.iter().map(|&i| seqs[i].clone()).collect();
            let plan = ScoringPlan::new(&batch_seqs)?;
            let mut cache = if plan.prefix.is_empty() {
                backbone.new_cache(plan.n)?
            } else {
                let mut one = backbone.new_cache(1)?;
                backbone.prefill(&plan.prefix, &mut one).await?;
                backbone.repeat_cache(one, plan.n)?
            };
            let span = Positions::Span(plan.span.clone());
            let logits = backbone.forward(&plan.rest, &mut cache, span).await?;
            for (&i, score) in batch.iter().zip(plan.scores(&logits)) {
                scores[i] = Some(score);
            }
        }
    }
    Ok(scores
        .into_iter()
        .map(|s| s.expect("every row scored"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(ids: &[u32], weights: &[f32]) -> Sequence {
        Sequence {
            ids: ids.to_vec(),
            weights: weights.to_vec(),
        }
    }

    #[test]
    fn a_plan_shares_the_common_prompt_and_spans_the_completion() {
        // Prompts share two tokens; completions are positions 3..5, then a trailing token.
        let w = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0];
        let plan = ScoringPlan::new(&[seq(&[1, 2, 3, 7, 8, 9], &w), seq(&[1, 2, 4, 5, 6, 9], &w)])
            .unwrap();
        assert_eq!(plan.prefix, vec![1, 2]);
        assert_eq!(plan.rest, vec![3, 7, 8, 9, 4, 5, 6, 9]);
        // Rest positions 0 and 1 (ids 2..4 of the row) predict the tokens at 3 and 4.
        assert_eq!(plan.span, 0..2);
        assert_eq!(plan.targets, vec![vec![7, 8], vec![5, 6]]);
    }

    #[test]
    fn scores_are_log_softmax_of_the_completion_tokens() {
        let w = [0.0, 1.0];
        let plan = ScoringPlan::new(&[seq(&[0, 1], &w), seq(&[0, 2], &w)]).unwrap();
        // One position per row over a vocabulary of 3: uniform, then certain of token 2.
        let logits = [0.0, 0.0, 0.0, -1e9, -1e9, 0.0];
        let s = plan.scores(&logits);
        assert!((s[0].sum + 3f32.ln()).abs() < 1e-6, "{:?}", s[0]);
        assert!(s[1].sum.abs() < 1e-6, "{:?}", s[1]);
    }

    #[test]
    fn shapes_must_be_one_completion_after_a_prompt() {
        assert!(shape(&seq(&[1, 2], &[1.0, 1.0])).is_err(), "no prompt");
        assert!(
            shape(&seq(&[1, 2, 3, 4], &[0.0, 1.0, 0.0, 1.0])).is_err(),
            "broken"
        );
        assert!(shape(&seq(&[1, 2], &[0.0, 0.0])).is_err(), "no completion");
        assert_eq!(
            shape(&seq(&[1, 2, 3], &[0.0, 1.0, 0.0])).unwrap(),
            (3, 1..2)
        );
        let mixed = [seq(&[1, 2], &[0.0, 1.0]), seq(&[1, 2, 3], &[0.0, 1.0, 1.0])];
        assert!(ScoringPlan::new(&mixed).is_err());
    }
}
