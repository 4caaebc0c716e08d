//! Evaluating a dynamics model: it explains each (source, target) pair greedily, and the text is
//! compared with the reference — exact structured match through the world's parser, BLEU-4 and
//! ROUGE-L. The explained action is also *executed*: applied to the source's scene state, the
//! state it leads to is judged against the true target with the world model's judge (partial
//! credit on the same facts, 0-10), so the two models can be compared on one scale. Then the
//! paper's zero-shot preference test: is log p(action | source, target) of
//! the true trajectory higher than that of negatives made with a random action, a random
//! observation, a copied observation (target = source) or swapped observations?

use super::judge::judge_states;
use super::text::{corpus_bleu, rouge_l, sentence_bleu};
use super::{EvalItem, by_family};
use crate::error::{Error, Result};
use crate::model::{DynamicsModel, ExplainConfig, Explainer, Model, Role, Sampling};
use crate::world::{Action, parse};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Win rates of the true trajectory against each kind of negative (0-1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Preference {
    /// Against the same images with another row's action.
    pub random_action: f64,
    /// Against another row's target image.
    pub random_observation: f64,
    /// Against the source image copied as the target.
    pub copied_observation: f64,
    /// Against the two images swapped.
    pub swapped_observations: f64,
}

/// How to evaluate a dynamics model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DynamicsEvalConfig {
    /// Pairs explained per generation pass.
    pub batch: usize,
    /// Picks the preference test's random negatives.
    pub seed: u64,
    /// Run the preference test (three scoring passes per row).
    pub preference: bool,
}

impl Default for DynamicsEvalConfig {
    fn default() -> Self {
        DynamicsEvalConfig {
            batch: 16,
            seed: 0,
            preference: true,
        }
    }
}

/// The evaluation of a dynamics model on a labelled set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DynamicsReport {
    /// Rows explained.
    pub rows: usize,
    /// Share of explanations whose parsed action equals the true action, over families.
    pub exact: f64,
    /// `exact` per family.
    #[serde(rename = "exact_per_task")] // AURORA calls a family a task
    pub exact_per_family: BTreeMap<String, f64>,
    /// The explained action executed on the source state and judged against the true target
    /// (0-10, the world model's judge; unreadable or refused actions score 0), over families.
    pub judge: f64,
    /// `judge` per family.
    #[serde(rename = "judge_per_task")] // AURORA calls a family a task
    pub judge_per_family: BTreeMap<String, f64>,
    /// Share of explanations the world's parser understands at all.
    pub(crate) parsed: f64,
    /// Corpus BLEU-4 and mean sentence BLEU-4 (0-1).
    pub(crate) bleu: f64,
    pub(crate) sentence_bleu: f64,
    /// Mean ROUGE-L F1 (0-1).
    pub(crate) rouge_l: f64,
    /// Absent when not asked for.
    pub preference: Option<Preference>,
    /// The first explanations, for reading: (reference, generated).
    pub(crate) samples: Vec<(String, String)>,
}

/// The true action of a row: the sidecar's, else what the parser reads in the instruction.
fn reference_action(item: &EvalItem) -> Option<Action> {
    match &item.sidecar {
        Some(s) => Some(s.action),
        None => parse(&item.instruction).ok(),
    }
}

/// The preference test: win rates of the true trajectory's log p(action | source, target)
/// against the four kinds of negative.
fn preference_test(
    dynamics: &DynamicsModel,
    items: &[EvalItem],
    codes: &[(Vec<u32>, Vec<u32>)],
    seed: u64,
) -> Result<Preference> {
    let m = &dynamics.model;
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
    let rate = |w: usize| w as f64 / items.len() as f64;
    Ok(Preference {
        random_action: rate(wins[0]),
        random_observation: rate(wins[1]),
        copied_observation: rate(wins[2]),
        swapped_observations: rate(wins[3]),
    })
}

/// The judge score (0-10) of executing `text` on the row's source state; 0 when the text does
/// not parse, the action is refused, or the row has no scene states.
pub(crate) fn executed_judge(item: &EvalItem, text: &str) -> f64 {
    let Some(sc) = &item.sidecar else {
        return 0.0;
    };
    match parse(text).map(|a| a.apply(&sc.source_state)) {
        Ok(Ok(predicted)) => judge_states(&sc.source_state, &sc.target_state, &predicted).score,
        _ => 0.0,
    }
}

/// 1 when `text` parses to the row's true action, else 0.
fn exact(item: &EvalItem, text: &str) -> f64 {
    match (reference_action(item), parse(text)) {
        (Some(a), Ok(b)) if a == b => 1.0,
        _ => 0.0,
    }
}

/// The mean of per-row values in each family, and the mean over families (each family
/// weighs the same, as in AURORA-Bench).
fn over_families(items: &[EvalItem], values: &[f64]) -> (f64, BTreeMap<String, f64>) {
    let per_family: BTreeMap<String, f64> = by_family(items)
        .into_iter()
        .map(|(family, idx)| {
            let mean = idx.iter().map(|&i| values[i]).sum::<f64>() / idx.len() as f64;
            (family, mean)
        })
        .collect();
    (
        per_family.values().sum::<f64>() / per_family.len() as f64,
        per_family,
    )
}

/// The (source, target) image codes of every row.
fn pair_codes(model: &Model, items: &[EvalItem]) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
    let mut codes = Vec::with_capacity(items.len());
    for chunk in items.chunks(32) {
        let imgs: Vec<_> = chunk
            .iter()
            .flat_map(|it| [it.source.clone(), it.target.clone()])
            .collect();
        let c = model.encode_images(&imgs)?;
        codes.extend(c.chunks(2).map(|p| (p[0].clone(), p[1].clone())));
    }
    Ok(codes)
}

/// Evaluates `dynamics` on `items`; the preference test's random negatives come from row
/// `(r + shift) % rows` with `shift` derived from the seed.
pub fn evaluate_dynamics(
    dynamics: &DynamicsModel,
    items: &[EvalItem],
    config: &DynamicsEvalConfig,
    mut progress: impl FnMut(usize),
) -> Result<DynamicsReport> {
    let batch = config.batch.max(1);
    if items.len() < 2 {
        return Err(Error::Invalid(
            "the dynamics evaluation needs at least 2 rows (negatives come from other rows)".into(),
        ));
    }
    let codes = pair_codes(&dynamics.model, items)?;
    let mut texts = Vec::with_capacity(items.len());
    for (k, chunk) in codes.chunks(batch).enumerate() {
        let ex = dynamics.explain_codes(chunk, &Sampling::greedy())?;
        texts.extend(ex.into_iter().map(|e| e.text));
        progress((k * batch + chunk.len()).min(items.len()));
    }
    let exact_of: Vec<f64> = items
        .iter()
        .zip(&texts)
        .map(|(it, t)| exact(it, t))
        .collect();
    let judge_of: Vec<f64> = items
        .iter()
        .zip(&texts)
        .map(|(it, t)| executed_judge(it, t))
        .collect();
    let (exact, exact_per_family) = over_families(items, &exact_of);
    let (judge, judge_per_family) = over_families(items, &judge_of);
    let pairs: Vec<(&str, &str)> = texts
        .iter()
        .zip(items)
        .map(|(t, it)| (t.as_str(), it.instruction.as_str()))
        .collect();
    let n = items.len() as f64;

    let preference = if config.preference {
        Some(preference_test(dynamics, items, &codes, config.seed)?)
    } else {
        None
    };
    Ok(DynamicsReport {
        rows: items.len(),
        exact,
        exact_per_family,
        judge,
        judge_per_family,
        parsed: texts.iter().filter(|t| parse(t).is_ok()).count() as f64 / n,
        bleu: corpus_bleu(&pairs),
        sentence_bleu: pairs.iter().map(|(c, r)| sentence_bleu(c, r)).sum::<f64>() / n,
        rouge_l: pairs.iter().map(|(c, r)| rouge_l(c, r)).sum::<f64>() / n,
        preference,
        samples: items
            .iter()
            .zip(&texts)
            .take(8)
            .map(|(it, t)| (it.instruction.clone(), t.clone()))
            .collect(),
    })
}

/// The dynamics model's explanations checked by a world model ([`Explainer`]), scored as
/// [`evaluate_dynamics`] scores its greedy ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckedReport {
    pub(crate) rows: usize,
    pub(crate) config: ExplainConfig,
    /// Share of top-ranked explanations equal to the true action, over families.
    pub(crate) exact: f64,
    #[serde(rename = "exact_per_task")] // AURORA calls a family a task
    pub(crate) exact_per_family: BTreeMap<String, f64>,
    /// The top-ranked action executed and judged (0-10), over families.
    pub(crate) judge: f64,
    #[serde(rename = "judge_per_task")] // AURORA calls a family a task
    pub(crate) judge_per_family: BTreeMap<String, f64>,
    /// Share of rows where some proposal is the true action (what a perfect ranking would
    /// reach), over families.
    pub any_exact: f64,
    #[serde(rename = "any_exact_per_task")] // AURORA calls a family a task
    pub(crate) any_exact_per_family: BTreeMap<String, f64>,
    /// Distinct proposals per row, on average.
    pub(crate) distinct: f64,
    /// The first rows, for reading: (reference, top-ranked explanation).
    pub samples: Vec<(String, String)>,
}

/// Evaluates the explanations `explainer` ranks first on `items`, `batch` pairs per pass.
pub fn evaluate_checked_explanations(
    explainer: &Explainer,
    items: &[EvalItem],
    config: &ExplainConfig,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Result<CheckedReport> {
    if items.is_empty() {
        return Err(Error::Invalid("no rows to explain".into()));
    }
    let codes = pair_codes(&explainer.dynamics.model, items)?;
    let mut ranked = Vec::with_capacity(items.len());
    for chunk in codes.chunks(batch.max(1)) {
        ranked.extend(explainer.explain_codes(chunk, config)?);
        progress(ranked.len());
    }
    let top: Vec<&str> = ranked.iter().map(|r| r[0].text.as_str()).collect();
    let exact_of: Vec<f64> = items.iter().zip(&top).map(|(it, t)| exact(it, t)).collect();
    let judge_of: Vec<f64> = items
        .iter()
        .zip(&top)
        .map(|(it, t)| executed_judge(it, t))
        .collect();
    let any_of: Vec<f64> = items
        .iter()
        .zip(&ranked)
        .map(|(it, r)| r.iter().map(|e| exact(it, &e.text)).fold(0.0, f64::max))
        .collect();
    let (exact, exact_per_family) = over_families(items, &exact_of);
    let (judge, judge_per_family) = over_families(items, &judge_of);
    let (any_exact, any_exact_per_family) = over_families(items, &any_of);
    Ok(CheckedReport {
        rows: items.len(),
        config: config.clone(),
        exact,
        exact_per_family,
        judge,
        judge_per_family,
        any_exact,
        any_exact_per_family,
        distinct: ranked.iter().map(Vec::len).sum::<usize>() as f64 / items.len() as f64,
        samples: items
            .iter()
            .zip(&top)
            .take(8)
            .map(|(it, t)| (it.instruction.clone(), t.to_string()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Sidecar;
    use crate::world::generate::{random_triplet, rng};
    use crate::world::{Family, describe};

    #[test]
    fn executed_actions_are_judged_like_world_model_outputs() {
        let t = random_triplet(&mut rng(9), Family::Kubric);
        let img = image::RgbImage::new(1, 1);
        let item = EvalItem {
            source: img.clone(),
            target: img,
            instruction: t.text.clone(),
            family: "kubric".into(),
            sidecar: Some(Sidecar {
                action: t.action,
                source_state: t.source.clone(),
                target_state: t.target.clone(),
            }),
        };
        // Any paraphrase of the true action scores 10; nonsense scores 0.
        let other_words = describe(&t.action, &t.source, 1).unwrap();
        assert_eq!(executed_judge(&item, &t.text), 10.0);
        assert_eq!(executed_judge(&item, &other_words), 10.0);
        assert_eq!(executed_judge(&item, "dance a little jig"), 0.0);
        let no_truth = EvalItem {
            sidecar: None,
            ..item
        };
        assert_eq!(executed_judge(&no_truth, &t.text), 0.0);
    }
}
