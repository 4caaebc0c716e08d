//! Evaluating a world model the paper's way: for every test row sample N candidates, pick the
//! best by the dynamics model's log p(action | source, candidate) (best-of-N; the plain sample
//! without a dynamics model), and judge it. Sample `i` of a row is the same for any N, so one
//! pass of N_max samples gives best-of-n for every n ≤ N_max. Per family and on average, with
//! pixel metrics and the two baselines (copy the source; the true target through the VQ).

use super::EvalItem;
use super::judge::{Judge, Judgement};
use crate::error::{Error, Result};
use crate::model::verifier::rank;
use crate::model::{DynamicsModel, Role, Sampling, Score, WorldModel};
use crate::tokenize::vq::psnr;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Judge and pixel scores averaged over rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Mean judge score (0-10) over families (each family's mean weighs the same).
    pub average: f64,
    pub per_task: BTreeMap<String, f64>,
    /// Mean editing success and minimal editing (0-10), over families.
    pub success: f64,
    pub minimal: f64,
    /// Mean absolute pixel error to the true target (0-1).
    pub l1: f64,
    /// Mean PSNR to the true target (dB, capped at 99).
    pub psnr: f64,
}

/// Best-of-n scores for one n.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestOf {
    pub n: usize,
    #[serde(flatten)]
    pub scores: Scores,
}

/// The whole evaluation of a world model on a labelled set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldReport {
    /// Candidates sampled per row (best-of-`n` when a dynamics model verified them).
    pub n: usize,
    pub verified: bool,
    pub rows: usize,
    /// The returned image's scores (best-of-`n`).
    #[serde(flatten)]
    pub scores: Scores,
    /// Best-of-n for n = 1, 2, 4, ... up to `n`.
    pub best_of: Vec<BestOf>,
    /// Copying the source (must score 0 on the judge) and the true target through the image
    /// tokenizer (the best any token model can do).
    pub copy_source: Scores,
    pub target_through_vq: Scores,
}

/// One row's candidates, for reports with images.
#[derive(Clone, Debug)]
pub struct WorldExample {
    pub task: String,
    pub instruction: String,
    pub source: RgbImage,
    pub target: RgbImage,
    /// Candidates in sampling order, with verification score (when verified) and judgement.
    pub candidates: Vec<(RgbImage, Option<Score>, Judgement)>,
    /// Index of the candidate best-of-N returns.
    pub chosen: usize,
}

/// How to evaluate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldEvalConfig {
    /// Candidates per row (N of best-of-N; 1 without a dynamics model).
    pub n: usize,
    /// Sampling of the world model; row `r` uses seed `sampling.seed + r`.
    pub sampling: Sampling,
    /// Rows per family kept with all their images for reports.
    pub examples_per_task: usize,
}

impl Default for WorldEvalConfig {
    fn default() -> Self {
        WorldEvalConfig {
            n: 8,
            sampling: Sampling::default(),
            examples_per_task: 2,
        }
    }
}

/// Per-row numbers of one image.
#[derive(Clone, Copy, Debug)]
struct RowScore {
    judgement: Judgement,
    l1: f64,
    psnr: f64,
}

fn row_score(judge: &Judge, item: &EvalItem, image: &RgbImage) -> Result<RowScore> {
    let sc = item.sidecar()?;
    Ok(RowScore {
        judgement: judge.judge(&sc.source_state, &sc.target_state, image),
        l1: l1(image, &item.target),
        psnr: psnr(&item.target, image).min(99.0),
    })
}

/// Mean absolute difference of two images, channels in 0..1.
pub fn l1(a: &RgbImage, b: &RgbImage) -> f64 {
    let sum: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .sum();
    sum / (255.0 * a.as_raw().len().max(1) as f64)
}

fn aggregate(items: &[EvalItem], rows: &[RowScore]) -> Scores {
    Scores::over_families(
        items
            .iter()
            .zip(rows)
            .map(|(it, r)| (it.task.as_str(), r.judgement, r.l1, r.psnr)),
    )
}

impl Scores {
    /// Per-family means of judged rows `(family, judgement, pixel L1, PSNR)`, and their means
    /// over families (each family weighs the same, however many rows it has).
    pub fn over_families<'a>(
        rows: impl IntoIterator<Item = (&'a str, Judgement, f64, f64)>,
    ) -> Scores {
        let mut per: BTreeMap<&str, Vec<(Judgement, f64, f64)>> = BTreeMap::new();
        for (task, judgement, l1, psnr) in rows {
            per.entry(task).or_default().push((judgement, l1, psnr));
        }
        let mean_of = |f: fn(&(Judgement, f64, f64)) -> f64| -> BTreeMap<String, f64> {
            per.iter()
                .map(|(t, v)| (t.to_string(), v.iter().map(f).sum::<f64>() / v.len() as f64))
                .collect()
        };
        let macro_mean =
            |m: &BTreeMap<String, f64>| m.values().sum::<f64>() / m.len().max(1) as f64;
        let per_task = mean_of(|r| r.0.score);
        Scores {
            average: macro_mean(&per_task),
            success: macro_mean(&mean_of(|r| r.0.success)),
            minimal: macro_mean(&mean_of(|r| r.0.minimal)),
            l1: macro_mean(&mean_of(|r| r.1)),
            psnr: macro_mean(&mean_of(|r| r.2)),
            per_task,
        }
    }
}

/// The n values best-of-n is reported for: powers of two below `n`, and `n`.
pub fn best_of_ns(n: usize) -> Vec<usize> {
    let mut ns: Vec<usize> = std::iter::successors(Some(1), |k| Some(k * 2))
        .take_while(|&k| k < n)
        .collect();
    ns.push(n.max(1));
    ns
}

/// Evaluates `world` (verified by `dynamics` when given) on `items`; `progress` is called with
/// the number of rows done.
pub fn evaluate_world(
    world: &WorldModel,
    dynamics: Option<&DynamicsModel>,
    items: &[EvalItem],
    config: &WorldEvalConfig,
    judge: &Judge,
    mut progress: impl FnMut(usize),
) -> Result<(WorldReport, Vec<WorldExample>)> {
    if items.is_empty() {
        return Err(Error::Invalid("no rows to evaluate".into()));
    }
    let n = if dynamics.is_some() {
        config.n.max(1)
    } else {
        1
    };
    if let Some(d) = dynamics {
        crate::model::verifier::check_compatible(&world.model, &d.model)?;
    }
    let m = &world.model;
    let ns = best_of_ns(n);
    let mut per_n: Vec<Vec<RowScore>> = vec![Vec::with_capacity(items.len()); ns.len()];
    let (mut copy, mut upper) = (Vec::new(), Vec::new());
    let mut examples = Vec::new();
    let mut kept: BTreeMap<&str, usize> = BTreeMap::new();
    for (r, item) in items.iter().enumerate() {
        let codes = m.encode_images(&[item.source.clone(), item.target.clone()])?;
        let action = m.encode_action(&item.instruction, Role::World)?;
        let sampling = Sampling {
            seed: config.sampling.seed.wrapping_add(r as u64),
            ..config.sampling.clone()
        };
        let samples = world.sample_codes(&codes[0], &action, n, &sampling)?;
        let scores: Option<Vec<Score>> = match dynamics {
            Some(d) => Some(d.score_codes(&codes[0], &samples, &action)?),
            None => None,
        };
        // The candidate best-of-k returns for each reported k: the verifier's rule over the
        // first k samples.
        let chosen: Vec<usize> = ns
            .iter()
            .map(|&k| match &scores {
                Some(s) => rank(samples[..k].to_vec(), s[..k].to_vec())[0].sample,
                None => 0,
            })
            .collect();
        let keep = kept.get(item.task.as_str()).copied().unwrap_or(0) < config.examples_per_task;
        let wanted: Vec<usize> = if keep {
            (0..n).collect()
        } else {
            let mut w = chosen.clone();
            w.sort_unstable();
            w.dedup();
            w
        };
        let images = m.decode_images(
            &wanted
                .iter()
                .map(|&i| samples[i].clone())
                .collect::<Vec<_>>(),
        )?;
        let mut judged: BTreeMap<usize, (RgbImage, RowScore)> = BTreeMap::new();
        for (&i, img) in wanted.iter().zip(images) {
            let s = row_score(judge, item, &img)?;
            judged.insert(i, (img, s));
        }
        for (k, &c) in chosen.iter().enumerate() {
            per_n[k].push(judged[&c].1);
        }
        copy.push(row_score(judge, item, &item.source)?);
        let through_vq = m.decode_images(&codes[1..])?.remove(0);
        upper.push(row_score(judge, item, &through_vq)?);
        if keep {
            *kept.entry(item.task.as_str()).or_insert(0) += 1;
            examples.push(WorldExample {
                task: item.task.clone(),
                instruction: item.instruction.clone(),
                source: item.source.clone(),
                target: item.target.clone(),
                candidates: judged
                    .into_values()
                    .enumerate()
                    .map(|(i, (img, s))| (img, scores.as_ref().map(|s| s[i]), s.judgement))
                    .collect(),
                chosen: *chosen.last().expect("at least n = 1"),
            });
        }
        progress(r + 1);
    }
    let best_of: Vec<BestOf> = ns
        .iter()
        .zip(&per_n)
        .map(|(&k, rows)| BestOf {
            n: k,
            scores: aggregate(items, rows),
        })
        .collect();
    Ok((
        WorldReport {
            n,
            verified: dynamics.is_some(),
            rows: items.len(),
            scores: best_of.last().expect("at least n = 1").scores.clone(),
            best_of,
            copy_source: aggregate(items, &copy),
            target_through_vq: aggregate(items, &upper),
        },
        examples,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_ns() {
        assert_eq!(best_of_ns(1), vec![1]);
        assert_eq!(best_of_ns(8), vec![1, 2, 4, 8]);
        assert_eq!(best_of_ns(6), vec![1, 2, 4, 6]);
    }

    #[test]
    fn every_family_weighs_the_same() {
        let j = |score: f64| Judgement {
            success: score,
            minimal: 10.0,
            score,
        };
        let s = Scores::over_families([
            ("a", j(2.0), 0.1, 20.0),
            ("a", j(4.0), 0.3, 30.0),
            ("a", j(6.0), 0.2, 40.0),
            ("b", j(10.0), 0.0, 99.0),
        ]);
        assert_eq!(s.per_task["a"], 4.0);
        assert_eq!(s.per_task["b"], 10.0);
        // Families, not rows: (4 + 10) / 2, where the row mean would be 5.5.
        assert_eq!(s.average, 7.0);
        assert_eq!(s.success, 7.0);
        assert_eq!(s.minimal, 10.0);
        assert!((s.l1 - 0.1).abs() < 1e-12);
        assert!((s.psnr - 64.5).abs() < 1e-12);
        assert_eq!(Scores::over_families([]).average, 0.0);
    }

    #[test]
    fn l1_by_hand() {
        let a = RgbImage::from_pixel(2, 1, image::Rgb([0, 0, 0]));
        let mut b = a.clone();
        b.put_pixel(0, 0, image::Rgb([255, 255, 255]));
        assert!((l1(&a, &b) - 0.5).abs() < 1e-12);
        assert_eq!(l1(&a, &a), 0.0);
    }
}
