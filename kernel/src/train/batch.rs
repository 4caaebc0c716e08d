//! A padded training batch: sequences of different lengths right-padded to one length (the
//! causal mask keeps padding from touching real tokens), with the flat indices of the rows
//! that predict each completion token, the tokens, and their loss weights.

use crate::model::Sequence;
use candle_core::{Device, Result, Tensor};

pub(crate) struct Batch {
    /// `(batch, len)` token ids.
    pub(crate) ids: Tensor,
    /// For each completion token, the flat row `b * len + p - 1` of the hidden state that
    /// predicts it.
    pub(crate) predict_from: Tensor,
    /// The completion tokens.
    pub(crate) targets: Tensor,
    /// Their loss weights.
    pub(crate) weights: Tensor,
}

impl Batch {
    pub(crate) fn new(seqs: &[Sequence], pad: u32, device: &Device) -> Result<Self> {
        let len = seqs.iter().map(|s| s.ids.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(seqs.len() * len);
        let (mut from, mut targets, mut weights) = (Vec::new(), Vec::new(), Vec::new());
        for (b, s) in seqs.iter().enumerate() {
            ids.extend_from_slice(&s.ids);
            ids.extend(std::iter::repeat_n(pad, len - s.ids.len()));
            for p in s.completion() {
                from.push((b * len + p - 1) as u32);
                targets.push(s.ids[p]);
                weights.push(s.weights[p]);
            }
        }
        if targets.is_empty() {
            candle_core::bail!("a training batch has no completion tokens");
        }
        let n = targets.len();
        Ok(Batch {
            ids: Tensor::from_vec(ids, (seqs.len(), len), device)?,
            predict_from: Tensor::from_vec(from, n, device)?,
            targets: Tensor::from_vec(targets, n, device)?,
            weights: Tensor::from_vec(weights, n, device)?,
        })
    }

    /// Number of token positions in the batch, padding included (what tokens/s counts).
    pub(crate) fn tokens(&self) -> usize {
        self.ids.elem_count()
    }
}
