//! Evaluation: measuring tokenizers and models against the world's ground truth.
//!
//! `judge` scores generated images like the paper's GPT-4o judge, exactly; [`world_model_eval`]
//! runs best-of-N over a labelled set; `dynamics_model_eval` measures the dynamics model (exact
//! action, BLEU-4, ROUGE-L, the preference test) and its explanations checked by a world model;
//! `text` holds the text metrics (intervals and tests are [`crate::stats`]); [`report`]
//! writes the tables and example pages;
//! [`conditioning_test`] runs the teacher-forced conditioning test on labelled rows;
//! `vlm_judge`
//! (feature `vlm`) asks a VLM the judge's questions where the recogniser cannot look.

pub(crate) mod dynamics_model_eval;
pub(crate) mod judge;
#[cfg(feature = "fs")]
pub mod plan_eval;
pub mod report;
pub mod rollout_eval;
pub(crate) mod text;
pub mod tokenizer;
#[cfg(feature = "vlm")]
pub mod vlm_judge;
pub mod world_model_eval;

pub use dynamics_model_eval::{
    CheckedReport, DynamicsEvalConfig, DynamicsReport, Preference, evaluate_checked_explanations,
    evaluate_dynamics,
};
pub use judge::{Judge, Judgement};
pub use tokenizer::{TokenizerReport, evaluate_tokenizer};
#[cfg(feature = "fs")]
pub(crate) use world_model_eval::evaluate_world_verified;
pub use world_model_eval::{WorldEvalConfig, WorldExample, WorldReport, evaluate_world};

use crate::data::Sidecar;
use crate::error::{Error, Result};
use crate::model::{DynamicsModel, WorldModel};
use crate::train::conditioning::{Conditioning, dynamics_conditioning, world_conditioning};
use image::RgbImage;
use std::collections::BTreeMap;

/// One labelled test row: source, instruction, true target and (on the embedded world) the
/// scene states the judge compares against.
#[derive(Clone, Debug)]
pub struct EvalItem {
    /// The source image.
    pub source: RgbImage,
    /// The true next image.
    pub target: RgbImage,
    /// The action in words.
    pub instruction: String,
    /// The family name (AURORA's `task` field).
    pub family: String,
    /// The scene states and structured action (the embedded world's rows).
    pub sidecar: Option<Sidecar>,
}

impl EvalItem {
    /// The ground truth the judge needs.
    pub fn sidecar(&self) -> Result<&Sidecar> {
        self.sidecar.as_ref().ok_or_else(|| {
            Error::Invalid(format!(
                "row \"{}\" has no sidecar (action, source_state, target_state): the judge reads \
                 scene states, which only the embedded world's data carries; generate it with \
                 `dynaboot world generate --split test`",
                self.instruction
            ))
        })
    }
}

/// The first `per_family` rows of each family, in their order (a quick look at a labelled set
/// with every family in it).
pub fn first_per_family(
    items: impl IntoIterator<Item = EvalItem>,
    per_family: usize,
) -> Vec<EvalItem> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    items
        .into_iter()
        .filter(|it| {
            let n = seen.entry(it.family.clone()).or_default();
            *n += 1;
            *n <= per_family
        })
        .collect()
}

/// The embedded world's fixed test split rendered at `size` pixels, the first `per_family`
/// rows of each family (all 50 with `per_family >= 50`).
pub fn test_split_items(per_family: usize, size: u32) -> Vec<EvalItem> {
    use crate::world::generate::{TEST_PER_FAMILY, test_split};
    let rows = test_split()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % TEST_PER_FAMILY < per_family)
        .map(|(_, t)| t);
    triplet_items(rows, size)
}

/// A split of the train generator with `seed` (families in turn), `per_family` rows of each,
/// rendered at `size` pixels: a tuning split, or a fresh one to confirm a result on.
#[cfg(feature = "fs")]
pub(crate) fn generated_items(seed: u64, per_family: usize, size: u32) -> Vec<EvalItem> {
    use crate::world::Family;
    let rows = crate::world::generate::triplets(seed, per_family * Family::ALL.len());
    triplet_items(rows, size)
}

fn triplet_items(
    rows: impl IntoIterator<Item = crate::world::Triplet>,
    size: u32,
) -> Vec<EvalItem> {
    use crate::world::generate::render_triplet;
    let render = crate::world::RenderConfig {
        size,
        ..Default::default()
    };
    rows.into_iter()
        .map(|t| {
            let (source, target) = render_triplet(&t, render);
            EvalItem {
                source,
                target,
                instruction: t.text.clone(),
                family: t.family().name().to_string(),
                sidecar: Some(Sidecar {
                    action: t.action,
                    source_state: t.source,
                    target_state: t.target,
                }),
            }
        })
        .collect()
}

/// Row indices per family, families in name order.
pub(crate) fn by_family(items: &[EvalItem]) -> BTreeMap<String, Vec<usize>> {
    let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        m.entry(it.family.clone()).or_default().push(i);
    }
    m
}

/// The labelled rows of an AURORA folder (rows without a target image are skipped).
#[cfg(feature = "fs")]
pub fn load_items(dataset: &crate::data::AuroraDataset) -> Result<Vec<EvalItem>> {
    let mut items = Vec::new();
    for (i, row) in dataset.rows.iter().enumerate() {
        let Some(target) = dataset.output_image(i)? else {
            continue;
        };
        items.push(EvalItem {
            source: dataset.input_image(i)?,
            target,
            instruction: row.instruction.clone(),
            family: row.family.clone(),
            sidecar: row.sidecar.clone(),
        });
    }
    if items.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no row has an `output` image; evaluation needs ground-truth targets",
            dataset.json.display()
        )));
    }
    Ok(items)
}

/// The conditioning test ([`crate::train::conditioning`]) of the world model, and of the
/// dynamics model when given, on labelled rows.
pub fn conditioning_test(
    world: &WorldModel,
    dynamics: Option<&DynamicsModel>,
    items: &[EvalItem],
) -> Result<Conditioning> {
    let rows = |m: &crate::model::Model| {
        let triplets: Vec<_> = items
            .iter()
            .map(|it| {
                let (s, t) = (it.source.clone(), it.target.clone());
                (s, t, it.instruction.clone(), it.family.clone())
            })
            .collect();
        crate::train::data::tokenize(&m.vq, &m.text, &triplets)
    };
    let w = &world.model;
    let world_rows = rows(w)?;
    Ok(Conditioning {
        world: Some(world_conditioning(&w.backbone, &w.format, &world_rows)?),
        dynamics: match dynamics {
            Some(d) => {
                let m = &d.model;
                Some(dynamics_conditioning(&m.backbone, &m.format, &rows(m)?)?)
            }
            None => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_rows_of_each_family_in_order() {
        let item = |family: &str, i: usize| EvalItem {
            source: RgbImage::new(1, 1),
            target: RgbImage::new(1, 1),
            instruction: format!("{family} {i}"),
            family: family.into(),
            sidecar: None,
        };
        let items = vec![
            item("a", 0),
            item("b", 1),
            item("a", 2),
            item("a", 3),
            item("b", 4),
        ];
        let kept: Vec<String> = first_per_family(items.clone(), 2)
            .into_iter()
            .map(|it| it.instruction)
            .collect();
        assert_eq!(kept, ["a 0", "b 1", "a 2", "b 4"]);
        assert!(first_per_family(items, 0).is_empty());
    }
}
