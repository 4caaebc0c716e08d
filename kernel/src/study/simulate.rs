//! Simulated raters, to exercise a study end to end without people: each rater marks best and
//! worst by a known score of each candidate (the exact judge's, on the embedded world) plus
//! Gaussian noise of their own. The analysis must then recover the order the scores imply, with
//! agreement between raters falling as the noise grows. A study filled this way says so in its
//! raters' names; it is not a human evaluation.

use super::order::candidate_order;
use super::store::{Image, Study};
use crate::error::{Error, Result};
use crate::eval::Judge;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// The exact judge's score of every candidate of a study from the embedded world, keyed by
/// (item, system).
pub fn exact_scores(study: &Study, judge: &Judge) -> Result<BTreeMap<(i64, i64), f64>> {
    let systems = study.systems()?;
    let mut out = BTreeMap::new();
    for item in study.items()? {
        let sc = study.sidecar(item.id)?.ok_or_else(|| {
            Error::Invalid(format!(
                "item {} has no scene states: the exact judge scores only studies made from \
                 the embedded world's rows",
                item.id
            ))
        })?;
        for s in &systems {
            let png = study
                .image(item.id, Image::Candidate(s.id))?
                .ok_or_else(|| {
                    Error::NotFound(format!("item {}: no candidate of system {}", item.id, s.id))
                })?;
            let image = image::load_from_memory(&png)
                .map_err(|e| Error::Invalid(format!("item {}: candidate {}: {e}", item.id, s.id)))?
                .to_rgb8();
            out.insert(
                (item.id, s.id),
                judge
                    .judge(&sc.source_state, &sc.target_state, &image)
                    .score,
            );
        }
    }
    Ok(out)
}

/// Adds `raters` simulated raters (named `simulated-1`, ...) who judge every item: best is
/// the candidate with the highest `score + noise * N(0, 1)`, worst the lowest. `scores` holds
/// each (item, system)'s score.
pub fn simulate_raters(
    study: &mut Study,
    scores: &BTreeMap<(i64, i64), f64>,
    raters: usize,
    noise: f64,
    seed: u64,
) -> Result<()> {
    let systems: Vec<i64> = study.systems()?.iter().map(|s| s.id).collect();
    let items = study.items()?;
    let first = study.raters()?.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for k in 0..raters {
        let rater = study.add_rater(&format!("simulated-{}", first + k + 1))?;
        for item in &items {
            let shown = candidate_order(&systems, rater.seed, item.id);
            let seen: Vec<(i64, f64)> = shown
                .iter()
                .map(|&s| {
                    let score = scores.get(&(item.id, s)).ok_or_else(|| {
                        Error::Invalid(format!(
                            "simulate: no score for item {}, system {s}",
                            item.id
                        ))
                    })?;
                    // Box-Muller: one standard normal draw.
                    let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
                    let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
                    Ok((s, score + noise * z))
                })
                .collect::<Result<_>>()?;
            let by = |better: bool| {
                seen.iter()
                    .copied()
                    .reduce(|a, b| if (b.1 > a.1) == better { b } else { a })
                    .expect("two or more systems")
                    .0
            };
            let (best, mut worst) = (by(true), by(false));
            if best == worst {
                // All equal after the noise (noise 0, equal scores): the last shown other one.
                worst = *shown
                    .iter()
                    .rev()
                    .find(|&&s| s != best)
                    .expect("two systems");
            }
            study.judge(rater.id, item.id, &shown, best, worst, 0)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::report::analyse;
    use crate::study::store::tests::small_study;

    #[test]
    fn the_analysis_recovers_the_order_the_scores_imply() {
        let dir = tempfile::tempdir().unwrap();
        let mut study = small_study(&dir.path().join("s.sqlite"), 40);
        // A is best and C worst on every item, by a margin the noise rarely overturns.
        let scores: BTreeMap<(i64, i64), f64> = (1..=40)
            .flat_map(|i| [((i, 1), 8.0), ((i, 2), 5.0), ((i, 3), 1.0)])
            .collect();
        simulate_raters(&mut study, &scores, 3, 1.0, 7).unwrap();
        let r = analyse(&study).unwrap();
        assert_eq!((r.raters, r.judgments), (3, 120));
        let mean = |k: usize| r.systems[k].overall.mean;
        assert!(mean(0) > 0.9 && mean(2) < -0.9, "{:?}", r.systems);
        assert!(r.pairs.iter().all(|p| p.significant), "{:?}", r.pairs);
        let agree_low_noise = r.agreement.unwrap();
        assert!(agree_low_noise > 0.8, "{agree_low_noise}");

        // Much more noise: the raters agree less.
        let mut noisy = small_study(&dir.path().join("n.sqlite"), 40);
        simulate_raters(&mut noisy, &scores, 3, 8.0, 7).unwrap();
        let noisy_alpha = analyse(&noisy).unwrap().agreement.unwrap();
        assert!(
            noisy_alpha < agree_low_noise - 0.3,
            "{noisy_alpha} vs {agree_low_noise}"
        );

        let e = simulate_raters(&mut noisy, &BTreeMap::new(), 1, 0.0, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no score"), "{e}");
    }
}
