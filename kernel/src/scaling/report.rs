//! The scaling study's report: its tables (the world models and the paper's premise per
//! labelled size, verification, the annotation, the coverage variant) and the files a study
//! writes and reads back (`results.json`, `report.md`, `report.html`).

use super::findings::ScalingResults;
use crate::error::Result;
use crate::eval::report::{Table, html_page};
use crate::stats::Estimate;
use std::path::Path;

/// An estimate in a table: its mean and 95 % interval, or no interval from a single seed.
fn interval(e: &Estimate, scale: f64, number: impl Fn(f64) -> String) -> String {
    if e.n < 2 {
        return format!("{} (one seed)", number(scale * e.mean));
    }
    format!(
        "{} [{}, {}]",
        number(scale * e.mean),
        number(scale * e.ci_low),
        number(scale * e.ci_high)
    )
}

fn est(e: &Estimate) -> String {
    interval(e, 1.0, |v| format!("{v:.2}"))
}

fn diff(e: &Estimate) -> String {
    interval(e, 1.0, |v| format!("{v:+.2}"))
}

fn pct(e: &Estimate) -> String {
    interval(e, 100.0, |v| format!("{v:.1}")).replacen(' ', " % ", 1)
}

/// The report's tables.
pub fn tables(r: &ScalingResults) -> Vec<Table> {
    let n = r.config.n;
    let mut world = Table::new(
        "World models per labelled size L: judge at N = 1 (mean over seeds [95 % CI])",
        &[
            "L",
            "seeds",
            "steps",
            "FT",
            "FDM",
            "FDM - FT",
            "FDM + weighted loss",
            "weighted - plain",
            "weighted - FT",
        ],
    );
    for s in &r.sizes {
        world.push(vec![
            s.size.to_string(),
            s.ft.n.to_string(),
            s.steps.to_string(),
            est(&s.ft),
            est(&s.fdm),
            diff(&s.fdm_minus_ft),
            s.fdm_weighted.as_ref().map_or("—".into(), est),
            s.weighted_minus_plain.as_ref().map_or("—".into(), diff),
            s.weighted_minus_ft.as_ref().map_or("—".into(), diff),
        ]);
    }
    let mut premise = Table::new(
        "The premise per L: each model on its own metric normalised to 0-1 with a trivial \
         answer at 0 (the dynamics model's ROUGE-L rescaled so a random valid action scores 0; \
         FT's judge / 10), and the dynamics model's exact actions",
        &[
            "L",
            "dynamics model",
            "world model (FT)",
            "dynamics - world",
            "dynamics exact",
        ],
    );
    for s in &r.sizes {
        premise.push(vec![
            s.size.to_string(),
            format!(
                "{:.3} [{:.3}, {:.3}]",
                s.dynamics_normalised.mean,
                s.dynamics_normalised.ci_low,
                s.dynamics_normalised.ci_high
            ),
            format!(
                "{:.3} [{:.3}, {:.3}]",
                s.world_normalised.mean, s.world_normalised.ci_low, s.world_normalised.ci_high
            ),
            format!(
                "{:+.3} [{:+.3}, {:+.3}]",
                s.dynamics_minus_world.mean,
                s.dynamics_minus_world.ci_low,
                s.dynamics_minus_world.ci_high
            ),
            pct(&s.dynamics_exact),
        ]);
    }
    let mut verified = Table::new(
        &format!(
            "Best-of-{n}: judge with this L's dynamics model as verifier, and with the shipped one"
        ),
        &[
            "L",
            "FT, own verifier",
            "FDM, own verifier",
            "FT, shipped verifier",
            "FDM, shipped verifier",
        ],
    );
    for s in &r.sizes {
        verified.push(vec![
            s.size.to_string(),
            est(&s.ft_best_own),
            est(&s.fdm_best_own),
            est(&s.ft_best_shipped),
            est(&s.fdm_best_shipped),
        ]);
    }
    let mut annotation = Table::new(
        &format!(
            "The annotation: {} videos labelled by each L's dynamics model, the top {} kept, \
             against the videos' hidden labels",
            r.config.videos, r.config.keep
        ),
        &[
            "L",
            "synthetic triplets",
            "exact (kept pairs)",
            "exact (kept pairs spanning one action)",
        ],
    );
    for s in &r.sizes {
        annotation.push(vec![
            s.size.to_string(),
            format!("{:.0}", s.synthetic.mean),
            pct(&s.annotation_exact),
            pct(&s.annotation_exact_spanning),
        ]);
    }
    let mut out = vec![world, premise, verified, annotation];
    if let Some(c) = &r.coverage {
        let mut t = Table::new(
            &format!(
                "Coverage: {} labelled triplets of {} only; videos and test rows of every family \
                 (judge at N = 1, {} seeds)",
                c.size,
                c.families.join(" and "),
                c.covered.ft.n
            ),
            &["test rows", "FT", "FDM", "FDM - FT"],
        );
        for (name, p) in [("covered", &c.covered), ("uncovered", &c.uncovered)] {
            t.push(vec![
                name.into(),
                est(&p.ft),
                est(&p.fdm),
                diff(&p.fdm_minus_ft),
            ]);
        }
        out.push(t);
    }
    out
}

/// The study's power target: the widest half-width an FDM - FT interval may have for its
/// size to say whether the synthetic data helps (issue 42's; more seeds narrow it).
pub(crate) const POWER_HALF_WIDTH: f64 = 0.4;

/// Which sizes' FDM - FT intervals (and the coverage variant's) are wider than the power target.
fn power(r: &ScalingResults) -> String {
    let half = |e: &Estimate| (e.ci_high - e.ci_low) / 2.0;
    let mut wide: Vec<String> = r
        .sizes
        .iter()
        .filter(|s| s.fdm_minus_ft.n < 2 || half(&s.fdm_minus_ft) > POWER_HALF_WIDTH)
        .map(|s| match s.fdm_minus_ft.n {
            0 | 1 => format!("L = {} (one seed)", s.size),
            _ => format!("L = {} (±{:.2})", s.size, half(&s.fdm_minus_ft)),
        })
        .collect();
    if let Some(c) = &r.coverage {
        for (name, part) in [("covered", &c.covered), ("uncovered", &c.uncovered)] {
            if half(&part.fdm_minus_ft) > POWER_HALF_WIDTH {
                wide.push(format!(
                    "coverage, {name} (±{:.2})",
                    half(&part.fdm_minus_ft)
                ));
            }
        }
    }
    match wide.is_empty() {
        true => format!("Every FDM - FT interval is within ±{POWER_HALF_WIDTH} judge points.\n\n"),
        false => format!(
            "FDM - FT intervals wider than ±{POWER_HALF_WIDTH} judge points (more seeds would \
             narrow them): {}.\n\n",
            wide.join(", ")
        ),
    }
}

/// The paper's premise per size in words: where the dynamics model's normalised score is
/// ahead of the world model's, level with it or behind it (by the paired interval).
fn premise(r: &ScalingResults) -> String {
    let at = |keep: &dyn Fn(&Estimate) -> bool| -> String {
        let sizes: Vec<String> = r
            .sizes
            .iter()
            .filter(|s| s.dynamics_minus_world.n >= 2 && keep(&s.dynamics_minus_world))
            .map(|s| s.size.to_string())
            .collect();
        match sizes.is_empty() {
            true => "no L".into(),
            false => format!("L = {}", sizes.join(", ")),
        }
    };
    format!(
        "The premise (the dynamics model learns more from L triplets than the world model, each \
         on its normalised score; paired 95 % intervals over seeds): ahead at {}; level at {}; \
         behind at {}.\n\n",
        at(&|e| e.ci_low > 0.0),
        at(&|e| e.ci_low <= 0.0 && e.ci_high >= 0.0),
        at(&|e| e.ci_high < 0.0),
    )
}

/// For a study in progress, which cells the numbers leave out.
fn progress(r: &ScalingResults) -> String {
    if r.missing.is_empty() {
        return String::new();
    }
    let names: Vec<String> = r.missing.iter().map(|c| c.to_string()).collect();
    format!(
        "A study in progress: {} of {} cells finished; the numbers add up those only. Still \
         to run: {}.\n\n",
        r.cells.len(),
        r.cells.len() + r.missing.len(),
        names.join(", ")
    )
}

/// Writes `results.json`, `report.md` and `report.html` into `dir`; `command` is the command
/// line that ran the study, quoted in the report.
pub fn write_reports(dir: &Path, r: &ScalingResults, command: &str) -> Result<()> {
    use crate::files::write_atomic;
    let json = serde_json::to_string_pretty(r).expect("results serialise");
    write_atomic(&dir.join("results.json"), json.as_bytes())?;
    let c = &r.config;
    let cross = &r.crossover;
    let intro = format!(
        "Scaling study on the embedded world (`{command}`): at each labelled size L (the \
         first L of one pool of triplets, so the sets are nested) a dynamics model fine-tuned \
         from {dynamics_base} on the L triplets labels {videos} videos (the top {keep} kept), \
         and world models FT (L only) and FDM (L + those synthetic triplets, plain loss; with \
         the weighted loss at λ = {w} at the smallest and largest L) are fine-tuned from \
         {world_base} on the same L. Fine-tuning length: {epochs} epochs of the L triplets, at least {min} and \
         at most {max} steps of batch {batch}, the same for every model at an L. {seeds_small} \
         seeds up to L = {small_max}, {seeds_large} above; {test} rows per family of {split}, \
         {n} samples a row, all judged. Crossover: {reading}{interval}. {seconds:.0} s of \
         compute in all.\n\n",
        dynamics_base = c.dynamics_base,
        world_base = c.world_base,
        videos = c.videos,
        keep = c.keep,
        w = c.weighted,
        epochs = c.epochs,
        min = c.min_steps,
        max = c.max_steps,
        batch = c.batch_size,
        seeds_small = c.seeds_small,
        small_max = c.small_max,
        seeds_large = c.seeds_large,
        test = c.test_per_family,
        split = match c.tune_seed {
            Some(s) => format!("a tuning split (train generator, seed {s})"),
            None => "the fixed test split".into(),
        },
        n = c.n,
        reading = cross.reading,
        interval = match (cross.size, cross.interval) {
            (Some(_), Some((lo, hi))) => {
                format!(" (95 % interval of the crossing: L = {lo:.0} to {hi:.0})")
            }
            // The mean curve does not cross, but some resamples of the seeds do.
            (None, Some((lo, hi))) => format!(
                " ({:.0} % of the resamples of the seeds cross, between L = {lo:.0} and \
                 {hi:.0})",
                100.0 * cross.resamples_crossing
            ),
            (_, None) => String::new(),
        },
        seconds = r.seconds,
    ) + &premise(r)
        + &power(r)
        + &progress(r);
    let ts = tables(r);
    let md = format!("# dynaboot scaling study\n\n{intro}")
        + &ts.iter().map(Table::markdown).collect::<String>();
    write_atomic(&dir.join("report.md"), md.as_bytes())?;
    let body = format!("<p>{}</p>", crate::eval::report::escape(&intro))
        + &ts.iter().map(Table::html).collect::<String>();
    write_atomic(
        &dir.join("report.html"),
        html_page("dynaboot scaling study", &body).as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaling::{Crossover, ScalingPreset, SizeRow};

    fn e(mean: f64, half: f64, n: usize) -> Estimate {
        Estimate {
            mean,
            ci_low: mean - half,
            ci_high: mean + half,
            n,
        }
    }

    /// A size whose dynamics-minus-world and FDM - FT are the given estimates.
    fn row(size: usize, premise: Estimate, fdm_minus_ft: Estimate) -> SizeRow {
        let z = e(0.0, 0.0, 3);
        SizeRow {
            size,
            steps: 250,
            ft: z,
            fdm: z,
            fdm_minus_ft,
            ft_best_own: z,
            fdm_best_own: z,
            ft_best_shipped: z,
            fdm_best_shipped: z,
            fdm_weighted: None,
            weighted_minus_plain: None,
            weighted_minus_ft: None,
            dynamics_exact: z,
            dynamics_normalised: z,
            world_normalised: z,
            dynamics_minus_world: premise,
            annotation_exact: z,
            annotation_exact_spanning: z,
            synthetic: z,
        }
    }

    #[test]
    fn the_intro_reads_the_premise_and_the_power_of_every_size() {
        let r = ScalingResults {
            config: ScalingPreset::Default.config(),
            sizes: vec![
                row(250, e(-0.15, 0.05, 5), e(-0.1, 0.48, 5)),
                row(1000, e(0.0, 0.1, 5), e(-0.2, 0.3, 5)),
                row(4000, e(0.2, 0.1, 3), e(-0.7, 0.0, 1)),
            ],
            coverage: None,
            crossover: Crossover {
                size: None,
                interval: None,
                resamples_crossing: 0.0,
                reading: String::new(),
            },
            cells: Vec::new(),
            seconds: 0.0,
            missing: Vec::new(),
        };
        assert!(
            premise(&r).contains("ahead at L = 4000; level at L = 1000; behind at L = 250."),
            "{}",
            premise(&r)
        );
        let p = power(&r);
        assert!(
            p.contains("L = 250 (±0.48), L = 4000 (one seed).") && !p.contains("1000"),
            "{p}"
        );
        let narrow = ScalingResults {
            sizes: vec![r.sizes[1].clone()],
            ..r
        };
        assert!(power(&narrow).starts_with("Every FDM - FT interval is within ±0.4"));
        assert!(premise(&narrow).contains("ahead at no L; level at L = 1000; behind at no L"));
    }
}
