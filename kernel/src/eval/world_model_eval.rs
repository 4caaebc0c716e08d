//! Evaluating a world model the paper's way: for every test row sample N candidates, pick the
//! best by the dynamics model's log p(action | source, candidate) (best-of-N; the plain sample
//! without a dynamics model), and judge it. Every one of the N candidates is judged, so best-of-n
//! for n < N is the expected score of the verifier's pick among n of them drawn at random
//! (`best_of_k_weights`: an unbiased estimate from all N samples, where judging only the first
//! n would use n of them): best-of-1 is the mean over the N samples. Per family and on average,
//! with pixel metrics and the two baselines (copy the source; the true target through the VQ).

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
    /// Mean judge score per family.
    #[serde(rename = "per_task")] // AURORA calls a family a task
    pub per_family: BTreeMap<String, f64>,
    /// Mean editing success (0-10), over families.
    pub success: f64,
    /// Mean minimal editing (0-10), over families.
    pub minimal: f64,
    /// Mean absolute pixel error to the true target (0-1).
    pub l1: f64,
    /// Mean PSNR to the true target (dB, capped at 99).
    pub(crate) psnr: f64,
}

/// Best-of-n scores for one n.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestOfScores {
    /// Candidates the verifier chose among.
    pub n: usize,
    /// The chosen candidates' scores.
    #[serde(flatten)]
    pub scores: Scores,
}

/// The whole evaluation of a world model on a labelled set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldReport {
    /// Candidates sampled per row (best-of-`n` when a dynamics model verified them).
    pub n: usize,
    pub(crate) verified: bool,
    pub(crate) rows: usize,
    /// The returned image's scores (best-of-`n`).
    #[serde(flatten)]
    pub scores: Scores,
    /// Best-of-n for n = 1, 2, 4, ... up to `n`: for n below `n`, the expected score of the
    /// verifier's pick among n of the `n` candidates drawn at random.
    pub best_of: Vec<BestOfScores>,
    /// Copying the source (must score 0 on the judge) and the true target through the image
    /// tokenizer (the best any token model can do).
    pub copy_source: Scores,
    pub(crate) target_through_vq: Scores,
}

/// One row's candidates, for reports with images.
#[derive(Clone, Debug)]
pub struct WorldExample {
    /// The row's family.
    pub family: String,
    /// The action in words.
    pub instruction: String,
    /// The source image.
    pub source: RgbImage,
    /// The true next image.
    pub target: RgbImage,
    /// Candidates in sampling order, with verification score (when verified) and judgement.
    pub candidates: Vec<(RgbImage, Option<Score>, Judgement)>,
    /// Index of the candidate best-of-N returns.
    pub(crate) chosen: usize,
}

/// How to evaluate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldEvalConfig {
    /// Candidates per row (N of best-of-N; 1 without a dynamics model).
    pub n: usize,
    /// Sampling of the world model; row `r` uses seed `sampling.seed + r`.
    pub sampling: Sampling,
    /// Rows per family kept with all their images for reports.
    #[serde(rename = "examples_per_task")] // AURORA calls a family a task
    pub examples_per_family: usize,
}

impl Default for WorldEvalConfig {
    fn default() -> Self {
        WorldEvalConfig {
            n: 8,
            sampling: Sampling::default(),
            examples_per_family: 2,
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

impl RowScore {
    /// The weighted sum of `rows`' numbers (weights summing to 1: an expectation).
    fn expected(rows: &[RowScore], weights: &[f64]) -> RowScore {
        let sum = |f: &dyn Fn(&RowScore) -> f64| -> f64 {
            rows.iter().zip(weights).map(|(r, w)| w * f(r)).sum()
        };
        RowScore {
            judgement: Judgement {
                success: sum(&|r| r.judgement.success),
                minimal: sum(&|r| r.judgement.minimal),
                score: sum(&|r| r.judgement.score),
            },
            l1: sum(&|r| r.l1),
            psnr: sum(&|r| r.psnr),
        }
    }
}

/// For `n` candidates ranked best first, the probability that candidate `i` is the best of `k`
/// drawn at random without replacement: C(n-1-i, k-1) / C(n, k) (the pass@k estimator of Chen et
/// al. 2021, generalised to a ranking). Weighting each candidate's score by it gives the expected
/// score of best-of-k from all n candidates; k = 1 weighs them equally, k = n takes the first.
pub(crate) fn best_of_k_weights(n: usize, k: usize) -> Vec<f64> {
    assert!(1 <= k && k <= n, "best-of-{k} from {n} candidates");
    // C(n-1-i, k-1) / C(n, k) for i = 0 is k / n; each next i multiplies by (n-i-k) / (n-1-i).
    let mut w = Vec::with_capacity(n);
    let mut p = k as f64 / n as f64;
    for i in 0..n {
        w.push(p);
        p = if i + k < n {
            p * (n - i - k) as f64 / (n - 1 - i) as f64
        } else {
            0.0
        };
    }
    w
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
            .map(|(it, r)| (it.family.as_str(), r.judgement, r.l1, r.psnr)),
    )
}

impl Scores {
    /// Per-family means of judged rows `(family, judgement, pixel L1, PSNR)`, and their means
    /// over families (each family weighs the same, however many rows it has).
    pub(crate) fn over_families<'a>(
        rows: impl IntoIterator<Item = (&'a str, Judgement, f64, f64)>,
    ) -> Scores {
        let mut per: BTreeMap<&str, Vec<(Judgement, f64, f64)>> = BTreeMap::new();
        for (family, judgement, l1, psnr) in rows {
            per.entry(family).or_default().push((judgement, l1, psnr));
        }
        let mean_of = |f: fn(&(Judgement, f64, f64)) -> f64| -> BTreeMap<String, f64> {
            per.iter()
                .map(|(t, v)| (t.to_string(), v.iter().map(f).sum::<f64>() / v.len() as f64))
                .collect()
        };
        let macro_mean =
            |m: &BTreeMap<String, f64>| m.values().sum::<f64>() / m.len().max(1) as f64;
        let per_family = mean_of(|r| r.0.score);
        Scores {
            average: macro_mean(&per_family),
            success: macro_mean(&mean_of(|r| r.0.success)),
            minimal: macro_mean(&mean_of(|r| r.0.minimal)),
            l1: macro_mean(&mean_of(|r| r.1)),
            psnr: macro_mean(&mean_of(|r| r.2)),
            per_family,
        }
    }
}

/// The n values best-of-n is reported for: powers of two below `n`, and `n`.
pub(crate) fn best_of_ns(n: usize) -> Vec<usize> {
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
    progress: impl FnMut(usize),
) -> Result<(WorldReport, Vec<WorldExample>)> {
    let verifiers: Vec<&DynamicsModel> = dynamics.into_iter().collect();
    let (mut reports, examples) =
        evaluate_world_verified(world, &verifiers, items, config, judge, progress)?;
    Ok((reports.remove(0), examples))
}

/// Evaluates `world` on `items` once for each of `verifiers`: the same `config.n` candidates
/// per row, drawn and judged once, ranked by each verifier in turn (so the reports differ only
/// in the ranking). No verifier: one report of single samples. The examples show the first
/// verifier's ranking.
pub(crate) fn evaluate_world_verified(
    world: &WorldModel,
    verifiers: &[&DynamicsModel],
    items: &[EvalItem],
    config: &WorldEvalConfig,
    judge: &Judge,
    mut progress: impl FnMut(usize),
) -> Result<(Vec<WorldReport>, Vec<WorldExample>)> {
    if items.is_empty() {
        return Err(Error::Invalid("no rows to evaluate".into()));
    }
    let n = if verifiers.is_empty() {
        1
    } else {
        config.n.max(1)
    };
    for d in verifiers {
        crate::model::verifier::check_compatible(&world.model, &d.model)?;
    }
    let m = &world.model;
    let ns = best_of_ns(n);
    let weights: Vec<Vec<f64>> = ns.iter().map(|&k| best_of_k_weights(n, k)).collect();
    // Per report (one per verifier, or the unverified one), per n, per row.
    let reports = verifiers.len().max(1);
    let mut per_n: Vec<Vec<Vec<RowScore>>> =
        vec![vec![Vec::with_capacity(items.len()); ns.len()]; reports];
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
        let scores: Vec<Vec<Score>> = verifiers
            .iter()
            .map(|d| d.score_codes(&codes[0], &samples, &action))
            .collect::<Result<_>>()?;
        // Each verifier's order of all n samples, best first (sampling order without one).
        let orders: Vec<Vec<usize>> = if scores.is_empty() {
            vec![(0..n).collect()]
        } else {
            scores
                .iter()
                .map(|s| {
                    rank(samples.clone(), s.clone())
                        .into_iter()
                        .map(|r| r.sample)
                        .collect()
                })
                .collect()
        };
        let images = m.decode_images(&samples)?;
        let judged: Vec<RowScore> = images
            .iter()
            .map(|img| row_score(judge, item, img))
            .collect::<Result<_>>()?;
        for (order, per_n) in orders.iter().zip(per_n.iter_mut()) {
            let ranked: Vec<RowScore> = order.iter().map(|&i| judged[i]).collect();
            for (rows, w) in per_n.iter_mut().zip(&weights) {
                rows.push(RowScore::expected(&ranked, w));
            }
        }
        copy.push(row_score(judge, item, &item.source)?);
        let through_vq = m.decode_images(&codes[1..])?.remove(0);
        upper.push(row_score(judge, item, &through_vq)?);
        let keep =
            kept.get(item.family.as_str()).copied().unwrap_or(0) < config.examples_per_family;
        if keep {
            *kept.entry(item.family.as_str()).or_insert(0) += 1;
            examples.push(WorldExample {
                family: item.family.clone(),
                instruction: item.instruction.clone(),
                source: item.source.clone(),
                target: item.target.clone(),
                candidates: images
                    .into_iter()
                    .zip(&judged)
                    .enumerate()
                    .map(|(i, (img, s))| (img, scores.first().map(|s| s[i]), s.judgement))
                    .collect(),
                chosen: orders[0][0],
            });
        }
        progress(r + 1);
    }
    let (copy_source, target_through_vq) = (aggregate(items, &copy), aggregate(items, &upper));
    let reports = per_n
        .iter()
        .map(|per_n| {
            let best_of: Vec<BestOfScores> = ns
                .iter()
                .zip(per_n)
                .map(|(&k, rows)| BestOfScores {
                    n: k,
                    scores: aggregate(items, rows),
                })
                .collect();
            WorldReport {
                n,
                verified: !verifiers.is_empty(),
                rows: items.len(),
                scores: best_of.last().expect("at least n = 1").scores.clone(),
                best_of,
                copy_source: copy_source.clone(),
                target_through_vq: target_through_vq.clone(),
            }
        })
        .collect();
    Ok((reports, examples))
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
    fn best_of_k_weights_are_the_best_of_every_subset() {
        for n in 1..=8usize {
            for k in 1..=n {
                // Count, over every k-subset of 0..n, which member ranks first (smallest index).
                let mut first = vec![0usize; n];
                let mut subsets = 0;
                for mask in 0u32..(1 << n) {
                    if mask.count_ones() as usize == k {
                        first[mask.trailing_zeros() as usize] += 1;
                        subsets += 1;
                    }
                }
                let w = best_of_k_weights(n, k);
                for i in 0..n {
                    let want = first[i] as f64 / subsets as f64;
                    assert!(
                        (w[i] - want).abs() < 1e-12,
                        "n {n} k {k} i {i}: {} vs {want}",
                        w[i]
                    );
                }
            }
        }
        assert_eq!(best_of_k_weights(4, 1), vec![0.25; 4]);
        assert_eq!(best_of_k_weights(4, 4), vec![1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn the_expected_row_weighs_every_number() {
        let row = |score: f64, l1: f64| RowScore {
            judgement: Judgement {
                success: score,
                minimal: 10.0 - score,
                score,
            },
            l1,
            psnr: 20.0 + score,
        };
        let e = RowScore::expected(&[row(8.0, 0.1), row(2.0, 0.3)], &[0.75, 0.25]);
        assert!((e.judgement.score - 6.5).abs() < 1e-12);
        assert!((e.judgement.minimal - 3.5).abs() < 1e-12);
        assert!((e.l1 - 0.15).abs() < 1e-12);
        assert!((e.psnr - 26.5).abs() < 1e-12);
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
        assert_eq!(s.per_family["a"], 4.0);
        assert_eq!(s.per_family["b"], 10.0);
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
