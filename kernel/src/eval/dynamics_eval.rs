//! Evaluating a dynamics model: it explains each (source, target) pair greedily, and the text is
//! compared with the reference — exact structured match through the world's parser, BLEU-4 and
//! ROUGE-L. Then the paper's zero-shot preference test: is log p(action | source, target) of
//! the true trajectory higher than that of negatives made with a random action, a random
//! observation, a copied observation (target = source) or swapped observations?

use super::text::{corpus_bleu, rouge_l, sentence_bleu};
use super::{EvalItem, by_task};
use crate::error::{Error, Result};
use crate::model::{DynamicsModel, Role, Sampling};
use crate::world::{Action, parse};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Win rates of the true trajectory against each kind of negative (0-1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Preference {
    pub random_action: f64,
    pub random_observation: f64,
    pub copied_observation: f64,
    pub swapped_observations: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DynamicsReport {
    pub rows: usize,
    /// Share of explanations whose parsed action equals the true action, over families.
    pub exact: f64,
    pub exact_per_task: BTreeMap<String, f64>,
    /// Share of explanations the world's parser understands at all.
    pub parsed: f64,
    /// Corpus BLEU-4 and mean sentence BLEU-4 (0-1).
    pub bleu: f64,
    pub sentence_bleu: f64,
    /// Mean ROUGE-L F1 (0-1).
    pub rouge_l: f64,
    pub preference: Preference,
    /// The first explanations, for reading: (reference, generated).
    pub samples: Vec<(String, String)>,
}

/// The true action of a row: the sidecar's, else what the parser reads in the instruction.
fn reference_action(item: &EvalItem) -> Option<Action> {
    match &item.sidecar {
        Some(s) => Some(s.action),
        None => parse(&item.instruction).ok(),
    }
}

/// Evaluates `dynamics` on `items`, `batch` pairs per generation pass; the preference test's
/// random negatives come from row `(r + shift) % rows` with `shift` derived from `seed`.
pub fn evaluate_dynamics(
    dynamics: &DynamicsModel,
    items: &[EvalItem],
    batch: usize,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> Result<DynamicsReport> {
    if items.len() < 2 {
        return Err(Error::Invalid(
            "the dynamics evaluation needs at least 2 rows (negatives come from other rows)".into(),
        ));
    }
    let m = &dynamics.model;
    let mut codes = Vec::with_capacity(items.len());
    for chunk in items.chunks(32) {
        let imgs: Vec<_> = chunk
            .iter()
            .flat_map(|it| [it.source.clone(), it.target.clone()])
            .collect();
        let c = m.encode_images(&imgs)?;
        codes.extend(c.chunks(2).map(|p| (p[0].clone(), p[1].clone())));
    }
    let mut texts = Vec::with_capacity(items.len());
    for (k, chunk) in codes.chunks(batch.max(1)).enumerate() {
        let ex = dynamics.explain_codes(chunk, &Sampling::greedy())?;
        texts.extend(ex.into_iter().map(|e| e.text));
        progress((k * batch.max(1) + chunk.len()).min(items.len()));
    }
    let exact_of: Vec<bool> = items
        .iter()
        .zip(&texts)
        .map(|(it, t)| match (reference_action(it), parse(t)) {
            (Some(a), Ok(b)) => a == b,
            _ => false,
        })
        .collect();
    let exact_per_task: BTreeMap<String, f64> = by_task(items)
        .into_iter()
        .map(|(task, idx)| {
            let ok = idx.iter().filter(|&&i| exact_of[i]).count();
            (task, ok as f64 / idx.len() as f64)
        })
        .collect();
    let pairs: Vec<(&str, &str)> = texts
        .iter()
        .zip(items)
        .map(|(t, it)| (t.as_str(), it.instruction.as_str()))
        .collect();
    let n = items.len() as f64;

    // Preference test.
    let shift = 1 + (seed as usize % (items.len() - 1));
    let mut wins = [0usize; 4];
    for (r, it) in items.iter().enumerate() {
        let other = (r + shift) % items.len();
        let (src, tgt) = &codes[r];
        let action = m.encode_action(&it.instruction, Role::Dynamics)?;
        let true_and_obs = dynamics.score_codes(
            src,
            &[tgt.clone(), codes[other].1.clone(), src.clone()],
            &action,
        )?;
        let truth = true_and_obs[0].sum;
        let other_action = m.encode_action(&items[other].instruction, Role::Dynamics)?;
        let rand_action =
            dynamics.score_codes(src, std::slice::from_ref(tgt), &other_action)?[0].sum;
        let swapped = dynamics.score_codes(tgt, std::slice::from_ref(src), &action)?[0].sum;
        for (w, neg) in wins.iter_mut().zip([
            rand_action,
            true_and_obs[1].sum,
            true_and_obs[2].sum,
            swapped,
        ]) {
            *w += usize::from(truth > neg);
        }
    }
    let rate = |w: usize| w as f64 / n;
    Ok(DynamicsReport {
        rows: items.len(),
        exact: exact_per_task.values().sum::<f64>() / exact_per_task.len() as f64,
        exact_per_task,
        parsed: texts.iter().filter(|t| parse(t).is_ok()).count() as f64 / n,
        bleu: corpus_bleu(&pairs),
        sentence_bleu: pairs.iter().map(|(c, r)| sentence_bleu(c, r)).sum::<f64>() / n,
        rouge_l: pairs.iter().map(|(c, r)| rouge_l(c, r)).sum::<f64>() / n,
        preference: Preference {
            random_action: rate(wins[0]),
            random_observation: rate(wins[1]),
            copied_observation: rate(wins[2]),
            swapped_observations: rate(wins[3]),
        },
        samples: items
            .iter()
            .zip(&texts)
            .take(8)
            .map(|(it, t)| (it.instruction.clone(), t.clone()))
            .collect(),
    })
}
