//! What the scaling study's cells add up to: per labelled size the judge of FT and FDM and
//! their paired difference with 95 % intervals over seeds, the dynamics model's and the world
//! model's normalised scores side by side (the paper's premise as a curve), the annotation's
//! accuracy, the crossover size where FDM stops helping, and the coverage variant's judge on
//! the covered and the uncovered families.

use super::ScalingConfig;
use super::run::{Cell, CellResult};
use crate::ablation::Variant;
use crate::eval::WorldReport;
use crate::stats::Estimate;
use rand::SeedableRng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

/// One labelled size, over its seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizeRow {
    /// Labelled triplets L.
    pub size: usize,
    /// Fine-tuning steps of every model at this size.
    pub steps: usize,
    /// Judge of FT at N = 1.
    pub ft: Estimate,
    /// Judge of FDM (plain loss) at N = 1.
    pub fdm: Estimate,
    /// FDM minus FT at N = 1, paired by seed: what the synthetic data adds.
    pub fdm_minus_ft: Estimate,
    /// FT and FDM at N = max, verified by this size's dynamics model ...
    pub ft_best_own: Estimate,
    /// ...
    pub fdm_best_own: Estimate,
    /// ... and by the shipped one.
    pub ft_best_shipped: Estimate,
    /// ...
    pub fdm_best_shipped: Estimate,
    /// FDM with the weighted loss at N = 1, and minus FDM, where it was trained.
    pub fdm_weighted: Option<Estimate>,
    /// ...
    pub weighted_minus_plain: Option<Estimate>,
    /// ... and minus FT: the paper's full method against fine-tuning on L alone.
    #[serde(default)]
    pub weighted_minus_ft: Option<Estimate>,
    /// The dynamics model's exact-action rate on the test rows.
    pub dynamics_exact: Estimate,
    /// Its ROUGE-L rescaled (a random valid action 0, the reference 1).
    pub dynamics_normalised: Estimate,
    /// FT's judge / 10 (copying the source 0).
    pub world_normalised: Estimate,
    /// The two, paired by seed: positive where the dynamics model is ahead.
    pub dynamics_minus_world: Estimate,
    /// The kept annotations' exact rate over all their pairs ...
    pub annotation_exact: Estimate,
    /// ... and over the pairs that span one action (the annotator's own accuracy).
    pub annotation_exact_spanning: Estimate,
    /// Synthetic triplets the top-K kept.
    pub synthetic: Estimate,
}

/// The judge on the covered and the uncovered families.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoveragePart {
    /// FT at N = 1.
    pub ft: Estimate,
    /// FDM at N = 1.
    pub fdm: Estimate,
    /// FDM minus FT, paired by seed.
    pub fdm_minus_ft: Estimate,
}

/// The coverage variant's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoverageResult {
    /// Labelled triplets.
    pub size: usize,
    /// The families they show.
    pub families: Vec<String>,
    /// On the test rows of those families.
    pub covered: CoveragePart,
    /// On the rest.
    pub uncovered: CoveragePart,
}

/// Where FDM stops helping: the size at which the mean FDM - FT crosses zero going up in L
/// (interpolated in log L), with a 95 % interval from resampling each size's seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Crossover {
    /// The crossing, if the mean curve crosses from above zero to below it.
    pub size: Option<f64>,
    /// The 2.5 and 97.5 percentiles of the crossing over resamples that cross.
    pub interval: Option<(f64, f64)>,
    /// Share of resamples whose curve crosses.
    pub resamples_crossing: f64,
    /// In words.
    pub reading: String,
}

/// The study's record (`results.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingResults {
    /// The configuration it ran.
    pub config: ScalingConfig,
    /// One row per labelled size.
    pub sizes: Vec<SizeRow>,
    /// The coverage variant, where it ran.
    pub coverage: Option<CoverageResult>,
    /// Where FDM stops helping.
    pub crossover: Crossover,
    /// Every cell's numbers.
    pub cells: Vec<CellResult>,
    /// Compute time of all cells, summed (a resumed study counts each stage once).
    pub seconds: f64,
    /// The cells still to run, for the record of a study in progress (empty when it is
    /// done): the rows above add up the finished cells only.
    #[serde(default)]
    pub missing: Vec<Cell>,
}

impl ScalingResults {
    /// Reads a study's record (`results.json`, as `dynaboot scale` writes it).
    pub fn load(path: &std::path::Path) -> crate::error::Result<ScalingResults> {
        let text = crate::files::read_input_text(path, crate::files::Input::Json)?;
        serde_json::from_str(&text).map_err(|e| {
            crate::error::Error::Invalid(format!(
                "{}: not a scaling study's record ({e}); make one with `dynaboot scale`",
                path.display()
            ))
        })
    }
}

fn n1(r: &WorldReport) -> f64 {
    r.best_of[0].scores.average
}

/// The mean over families of `r`'s N = 1 judge, on the families `keep` accepts.
fn n1_on(r: &WorldReport, keep: impl Fn(&str) -> bool) -> f64 {
    let v: Vec<f64> = r.best_of[0]
        .scores
        .per_family
        .iter()
        .filter(|(f, _)| keep(f))
        .map(|(_, s)| *s)
        .collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Adds the finished cells up; `missing` are those still to run (a size or the coverage
/// variant without a finished cell has no row).
pub(crate) fn summarise(
    cfg: &ScalingConfig,
    cells: Vec<CellResult>,
    missing: Vec<Cell>,
) -> ScalingResults {
    let at = |size: usize| -> Vec<&CellResult> {
        cells
            .iter()
            .filter(|c| !c.cell.coverage && c.cell.size == size)
            .collect()
    };
    let measured: Vec<usize> = cfg
        .sizes
        .iter()
        .copied()
        .filter(|&size| !at(size).is_empty())
        .collect();
    let sizes: Vec<SizeRow> = measured
        .iter()
        .map(|&size| size_row(size, &at(size)))
        .collect();
    let covered: Vec<&CellResult> = cells.iter().filter(|c| c.cell.coverage).collect();
    let coverage = cfg
        .coverage
        .as_ref()
        .filter(|_| !covered.is_empty())
        .map(|c| {
            let runs = &covered;
            let names: Vec<String> = c.families.iter().map(|f| f.name().to_string()).collect();
            let part = |covered: bool| {
                let on = |v: Variant| -> Vec<f64> {
                    runs.iter()
                        .map(|r| {
                            n1_on(&r.worlds[&v].own, |f| {
                                names.iter().any(|n| n == f) == covered
                            })
                        })
                        .collect()
                };
                let (ft, fdm) = (on(Variant::Ft), on(Variant::FdmWithoutWeighting));
                CoveragePart {
                    ft: Estimate::of(&ft),
                    fdm: Estimate::of(&fdm),
                    fdm_minus_ft: Estimate::paired(&fdm, &ft),
                }
            };
            CoverageResult {
                size: c.size,
                families: names.clone(),
                covered: part(true),
                uncovered: part(false),
            }
        });
    let diffs: Vec<(usize, Vec<f64>)> = measured
        .iter()
        .map(|&size| {
            let d = at(size)
                .iter()
                .map(|c| {
                    n1(&c.worlds[&Variant::FdmWithoutWeighting].own)
                        - n1(&c.worlds[&Variant::Ft].own)
                })
                .collect();
            (size, d)
        })
        .collect();
    let seconds = cells.iter().map(|c| c.seconds).sum();
    ScalingResults {
        config: cfg.clone(),
        sizes,
        coverage,
        crossover: crossover(&diffs),
        cells,
        seconds,
        missing,
    }
}

fn size_row(size: usize, runs: &[&CellResult]) -> SizeRow {
    let of = |f: &dyn Fn(&CellResult) -> f64| -> Vec<f64> { runs.iter().map(|r| f(r)).collect() };
    let world = |v: Variant| of(&|r| n1(&r.worlds[&v].own));
    let (ft, fdm) = (world(Variant::Ft), world(Variant::FdmWithoutWeighting));
    let best = |v: Variant, shipped: bool| {
        Estimate::of(&of(&|r| {
            let w = &r.worlds[&v];
            if shipped {
                w.shipped.scores.average
            } else {
                w.own.scores.average
            }
        }))
    };
    let weighted = runs
        .iter()
        .all(|r| r.worlds.contains_key(&Variant::Fdm))
        .then(|| world(Variant::Fdm));
    let dyn_norm = of(&|r| r.dynamics_normalised);
    let world_norm: Vec<f64> = ft.iter().map(|s| s / 10.0).collect();
    SizeRow {
        size,
        steps: runs.first().map_or(0, |r| r.steps),
        ft: Estimate::of(&ft),
        fdm: Estimate::of(&fdm),
        fdm_minus_ft: Estimate::paired(&fdm, &ft),
        ft_best_own: best(Variant::Ft, false),
        fdm_best_own: best(Variant::FdmWithoutWeighting, false),
        ft_best_shipped: best(Variant::Ft, true),
        fdm_best_shipped: best(Variant::FdmWithoutWeighting, true),
        fdm_weighted: weighted.as_ref().map(|w| Estimate::of(w)),
        weighted_minus_plain: weighted.as_ref().map(|w| Estimate::paired(w, &fdm)),
        weighted_minus_ft: weighted.as_ref().map(|w| Estimate::paired(w, &ft)),
        dynamics_exact: Estimate::of(&of(&|r| r.dynamics.exact)),
        dynamics_normalised: Estimate::of(&dyn_norm),
        world_normalised: Estimate::of(&world_norm),
        dynamics_minus_world: Estimate::paired(&dyn_norm, &world_norm),
        annotation_exact: Estimate::of(&of(&|r| r.annotator_kept.exact)),
        annotation_exact_spanning: Estimate::of(&of(&|r| r.annotator_kept.exact_spanning)),
        synthetic: Estimate::of(&of(&|r| r.synthetic as f64)),
    }
}

/// The seed of the crossover's resamples.
const RESAMPLE_SEED: u64 = 0x5ca1e;
/// Resamples of the crossover's interval.
const RESAMPLES: usize = 2000;

/// Where the curve of mean differences per size first goes from above zero to at or below
/// it, interpolated linearly in log size.
fn crossing(points: &[(usize, f64)]) -> Option<f64> {
    points.windows(2).find_map(|w| {
        let ((l0, d0), (l1, d1)) = (w[0], w[1]);
        (d0 > 0.0 && d1 <= 0.0).then(|| {
            let (x0, x1) = ((l0 as f64).ln(), (l1 as f64).ln());
            (x0 + (x1 - x0) * d0 / (d0 - d1)).exp()
        })
    })
}

/// The crossover of the per-seed differences `diffs` (size, FDM - FT per seed), with its
/// interval from resampling each size's seeds with replacement.
fn crossover(diffs: &[(usize, Vec<f64>)]) -> Crossover {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let curve: Vec<(usize, f64)> = diffs.iter().map(|(l, d)| (*l, mean(d))).collect();
    let size = crossing(&curve);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(RESAMPLE_SEED);
    let mut found: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| {
            let resampled: Vec<(usize, f64)> = diffs
                .iter()
                .map(|(l, d)| {
                    let pick: Vec<f64> = (0..d.len())
                        .filter_map(|_| d.choose(&mut rng).copied())
                        .collect();
                    (*l, mean(&pick))
                })
                .collect();
            crossing(&resampled)
        })
        .collect();
    found.sort_by(f64::total_cmp);
    let share = found.len() as f64 / RESAMPLES as f64;
    let interval = (!found.is_empty()).then(|| {
        let at = |q: f64| found[((found.len() - 1) as f64 * q).round() as usize];
        (at(0.025), at(0.975))
    });
    let ahead = curve.iter().filter(|(_, d)| *d > 0.0).count();
    let reading = match size {
        Some(l) => format!(
            "FDM is ahead of FT below L = {l:.0} and not above it ({:.0} % of resamples cross)",
            100.0 * share
        ),
        None if ahead == 0 => "FDM is never ahead of FT on average: no crossover".into(),
        None if ahead == curve.len() => {
            "FDM is ahead of FT on average at every size: any crossover lies beyond the largest"
                .into()
        }
        None => "FDM - FT changes sign, but not from ahead to behind as L grows".into(),
    };
    Crossover {
        size,
        interval,
        resamples_crossing: share,
        reading,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crossing_is_interpolated_in_log_size() {
        // +1 at 100, -1 at 10 000: halfway in log size is 1 000.
        let l = crossing(&[(100, 1.0), (10_000, -1.0)]).unwrap();
        assert!((l - 1000.0).abs() < 1e-6, "{l}");
        assert_eq!(crossing(&[(100, -1.0), (1000, -0.5)]), None);
        assert_eq!(
            crossing(&[(100, -1.0), (1000, 0.5)]),
            None,
            "rising is not a crossover"
        );
        // The first fall counts.
        let l = crossing(&[(10, 1.0), (100, 0.0), (1000, 1.0)]).unwrap();
        assert!((l - 100.0).abs() < 1e-9);
    }

    #[test]
    fn a_clear_crossover_has_a_tight_interval_and_no_crossover_says_so() {
        let clear = [
            (250, vec![1.0, 1.1, 0.9, 1.0, 1.05]),
            (1000, vec![0.5, 0.45, 0.55, 0.5, 0.5]),
            (4000, vec![-0.5, -0.45, -0.55]),
        ];
        let c = crossover(&clear);
        let l = c.size.unwrap();
        assert!((1000.0..4000.0).contains(&l), "{l}");
        let (lo, hi) = c.interval.unwrap();
        assert!(
            lo <= l && l <= hi && lo >= 1000.0 && hi <= 4000.0,
            "{lo} {hi}"
        );
        assert_eq!(c.resamples_crossing, 1.0);
        let never = [(250, vec![-1.0, -0.5]), (1000, vec![-0.2, -0.1])];
        let c = crossover(&never);
        assert_eq!((c.size, c.interval), (None, None));
        assert!(c.reading.contains("never ahead"), "{}", c.reading);
    }
}
