//! The conditioning test: does a model read its inputs? Teacher-forced on labelled rows:
//!
//! - a world model's negative log-likelihood per target token, split into the tokens equal to
//!   the source token at the same position ("unchanged": most of an image) and the others
//!   ("changed"), with each row's own source and with another row's. A model that copies from
//!   its source puts almost all probability on unchanged tokens with the true source and
//!   loses it with a shuffled one; one that ignores the source scores both alike.
//! - a dynamics model's action NLL per token with the true pair and with another row's target.
//!
//! Row `i`'s shuffled partner is row `i + n/2` (cyclically, of `n` rows): deterministic, and
//! far from it in a split whose neighbours share a source or an action.

use super::batch::Batch;
use super::data::Example;
use super::loss::completion_nll;
use crate::error::{Error, Result};
use crate::model::{Chameleon, Format, Pass, Sequence};
use serde::{Deserialize, Serialize};

/// A world model's conditioning test: mean NLL per target token (nats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorldConditioning {
    /// Tokens equal to the source token at their position, with the row's own source.
    pub unchanged_true: f64,
    /// The same tokens with another row's source.
    pub unchanged_shuffled: f64,
    /// The other target tokens, with the row's own source.
    pub(crate) changed_true: f64,
    /// The other target tokens with another row's source.
    pub(crate) changed_shuffled: f64,
    /// Share of target tokens that are unchanged.
    pub(crate) unchanged_share: f64,
}

/// A dynamics model's conditioning test: mean NLL per action token (with `<eos>`, nats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DynamicsConditioning {
    /// With the row's own (source, target).
    pub action_true: f64,
    /// With the row's source and another row's target.
    pub action_shuffled: f64,
}

/// Both tests on a run's held-out rows, for the roles it trains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Conditioning {
    /// The world model's test, when the run trains one.
    pub world: Option<WorldConditioning>,
    /// The dynamics model's test, when the run trains one.
    pub dynamics: Option<DynamicsConditioning>,
}

/// Rows per forward pass.
const BATCH: usize = 16;

/// The NLL of every completion token of each sequence, sequence by sequence.
fn nll_per_sequence(
    backbone: &Chameleon,
    format: &Format,
    seqs: &[Sequence],
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(BATCH) {
        let batch = Batch::new(chunk, format.vocab.specials.pad, backbone.device())?;
        let nll = completion_nll(backbone, &batch, Pass::Infer)?.to_vec1::<f32>()?;
        let mut at = 0;
        for s in chunk {
            let n = s.completion().count();
            out.push(nll[at..at + n].to_vec());
            at += n;
        }
    }
    Ok(out)
}

/// Each row's sequence built with the row `shift` places on (cyclically) as its partner.
fn with_partners(
    rows: &[Example],
    shift: usize,
    sequence: impl Fn(&Example, &Example) -> Result<Sequence>,
) -> Result<Vec<Sequence>> {
    let n = rows.len();
    (0..n)
        .map(|i| sequence(&rows[i], &rows[(i + shift) % n]))
        .collect()
}

fn check_rows(rows: &[Example]) -> Result<()> {
    if rows.len() < 2 {
        return Err(Error::Invalid(format!(
            "the conditioning test needs at least 2 labelled rows (one's inputs are swapped \
             with another's), got {}",
            rows.len()
        )));
    }
    Ok(())
}

fn mean(sum_count: (f64, usize)) -> f64 {
    sum_count.0 / sum_count.1.max(1) as f64
}

/// The world model's conditioning test on `rows`.
pub fn world_conditioning(
    backbone: &Chameleon,
    format: &Format,
    rows: &[Example],
) -> Result<WorldConditioning> {
    check_rows(rows)?;
    let nll = |shift: usize| {
        let seqs = with_partners(rows, shift, |r, partner| {
            format.world_sequence(&partner.source, &r.action, &r.target, None)
        })?;
        nll_per_sequence(backbone, format, &seqs)
    };
    let true_nll = nll(0)?;
    let shuffled_nll = nll(rows.len() / 2)?;
    // (sum, count) of: unchanged true, unchanged shuffled, changed true, changed shuffled.
    let mut acc = [(0.0f64, 0usize); 4];
    for ((r, t), s) in rows.iter().zip(&true_nll).zip(&shuffled_nll) {
        for (k, (&a, &b)) in t.iter().zip(s).enumerate() {
            let at = if r.target[k] == r.source[k] { 0 } else { 2 };
            for (slot, v) in [(at, a), (at + 1, b)] {
                acc[slot].0 += v as f64;
                acc[slot].1 += 1;
            }
        }
    }
    Ok(WorldConditioning {
        unchanged_true: mean(acc[0]),
        unchanged_shuffled: mean(acc[1]),
        changed_true: mean(acc[2]),
        changed_shuffled: mean(acc[3]),
        unchanged_share: acc[0].1 as f64 / (acc[0].1 + acc[2].1).max(1) as f64,
    })
}

/// The dynamics model's conditioning test on `rows`.
pub fn dynamics_conditioning(
    backbone: &Chameleon,
    format: &Format,
    rows: &[Example],
) -> Result<DynamicsConditioning> {
    check_rows(rows)?;
    let mean_nll = |shift: usize| -> Result<f64> {
        let seqs = with_partners(rows, shift, |r, partner| {
            format.dynamics_sequence(&r.source, &partner.target, &r.action)
        })?;
        let nll = nll_per_sequence(backbone, format, &seqs)?;
        let count: usize = nll.iter().map(Vec::len).sum();
        let sum: f64 = nll.iter().flatten().map(|&v| v as f64).sum();
        Ok(sum / count.max(1) as f64)
    };
    Ok(DynamicsConditioning {
        action_true: mean_nll(0)?,
        action_shuffled: mean_nll(rows.len() / 2)?,
    })
}
