//! The ablation's report: its tables (findings, per family, what the models draw, best-of-N,
//! learning curves, the annotator) and the files an ablation writes and reads back
//! (`results.json`, `report.md`, `report.html`).

use super::Variant;
use super::findings::{AblationResults, BestOf, at_n};
use super::run::SeedRun;
use crate::error::{Error, Result};
use crate::eval::WorldExample;
use crate::eval::report::{Table, examples_html, html_page};
use crate::stats::Estimate;
use crate::train::Weighting;
use std::path::Path;

fn est(e: &Estimate) -> String {
    format!("{:.2} [{:.2}, {:.2}]", e.mean, e.ci_low, e.ci_high)
}

/// The report's tables: findings, Table 2 (per family, N = 1), best-of-N, learning curves,
/// annotator quality.
pub fn tables(r: &AblationResults) -> Vec<Table> {
    let seeds = r.seeds.len();
    let mut f = Table::new(
        &format!("Findings (mean over {seeds} seeds [95 % CI])"),
        &[
            "finding",
            "comparison",
            "effect",
            "95 % CI",
            "unit",
            "reproduced",
        ],
    );
    let fd = &r.findings;
    for (name, x) in [
        (
            "(a) dynamics model learned more easily",
            &fd.dynamics_easier,
        ),
        ("(b) synthetic data helps", &fd.synthetic_data),
        ("(c) weighted loss helps", &fd.weighted_loss),
        ("(d) best-of-N helps", &fd.best_of_n),
    ] {
        f.push(vec![
            name.into(),
            x.comparison.clone(),
            format!("{:+.3}", x.effect),
            format!("[{:+.3}, {:+.3}]", x.ci_low, x.ci_high),
            x.unit.clone(),
            if x.reproduced { "yes" } else { "no" }.into(),
        ]);
    }
    let mut t2 = Table::new(
        "Judge score per family, N = 1 (mean [95 % CI])",
        &[
            "family",
            Variant::ALL[0].name(),
            Variant::ALL[1].name(),
            Variant::ALL[2].name(),
            Variant::ALL[3].name(),
        ],
    );
    for family in r.world_per_family[&Variant::Ft].keys() {
        let mut row = vec![family.clone()];
        row.extend(
            Variant::ALL
                .iter()
                .map(|m| est(&r.world_per_family[m][family])),
        );
        t2.push(row);
    }
    let mut avg = vec!["average".to_string()];
    avg.extend(Variant::ALL.iter().map(|m| est(&r.world[m][&BestOf(1)])));
    t2.push(avg);
    let draws = draws_table(r);
    let ns: Vec<BestOf> = r.world[&Variant::Ft].keys().copied().collect();
    let ns_text: Vec<String> = ns.iter().map(BestOf::to_string).collect();
    let mut header = vec!["model"];
    header.extend(ns_text.iter().map(String::as_str));
    let mut bon = Table::new(
        "Best-of-N with the dynamics model as verifier (average judge score)",
        &header,
    );
    for m in [Variant::Ft, Variant::Fdm] {
        let mut row = vec![m.to_string()];
        row.extend(ns.iter().map(|n| est(&r.world[&m][n])));
        bon.push(row);
    }
    let mut rel = Table::new(
        &format!("Relative gains (mean over {seeds} seeds [95 % CI]) beside the paper's"),
        &["comparison", "here", "95 % CI", "paper"],
    );
    for g in &r.relative {
        rel.push(vec![
            g.comparison.clone(),
            format!("{:+.1} %", 100.0 * g.gain.mean),
            format!(
                "[{:+.1}, {:+.1}] %",
                100.0 * g.gain.ci_low,
                100.0 * g.gain.ci_high
            ),
            format!("{:+.1} %", 100.0 * g.paper),
        ]);
    }
    let mut lc = Table::new(
        &format!(
            "Learning curves at equal fine-tuning steps, each model on its own metric normalised to 0-1 with a trivial answer at 0 (mean over seeds): the dynamics model's ROUGE-L rescaled so that a random valid action ({:.3}) scores 0, its exact-action rate beside; the FT world model's judge / 10",
            r.guess_rouge_l
        ),
        &[
            "step",
            "dynamics model (ROUGE-L, rescaled)",
            "dynamics model (exact action)",
            "world model (judge / 10)",
        ],
    );
    for (k, p) in r.runs[0].dynamics_curve.iter().enumerate() {
        let mean =
            |f: &dyn Fn(&SeedRun) -> f64| r.runs.iter().map(f).sum::<f64>() / r.runs.len() as f64;
        lc.push(vec![
            p.step.to_string(),
            format!("{:.3}", mean(&|s| s.dynamics_curve[k].score)),
            format!("{:.3}", mean(&|s| s.dynamics_curve_exact[k].score)),
            format!("{:.3}", mean(&|s| s.world_curve[k].score)),
        ]);
    }
    let mut aq = Table::new(
        "Weak supervision: the annotator against the videos' hidden labels",
        &[
            "seed",
            "pairs",
            "span one action",
            "actions spanned",
            "kept",
            "exact: pairs spanning one action (all / kept)",
            "exact: all pairs (all / kept)",
            "BLEU-4 (kept)",
            "dynamics exact on test",
            "dynamics judge on test",
        ],
    );
    for s in &r.runs {
        let (a, k) = (&s.annotator_all, &s.annotator_kept);
        aq.push(vec![
            s.seed.to_string(),
            s.annotated.to_string(),
            format!("{:.1} %", 100.0 * a.pair_precision),
            format!("{:.1} %", 100.0 * a.pair_recall),
            s.synthetic.to_string(),
            format!(
                "{:.1} / {:.1} %",
                100.0 * a.exact_spanning,
                100.0 * k.exact_spanning
            ),
            format!("{:.1} / {:.1} %", 100.0 * a.exact, 100.0 * k.exact),
            format!("{:.3}", k.bleu),
            format!("{:.1} %", 100.0 * s.dynamics.exact),
            format!("{:.2}", s.dynamics.judge),
        ]);
    }
    vec![f, rel, t2, draws, bon, lc, aq]
}

/// What each world model draws at N = 1, over seeds: the judge's two halves (does the edit
/// happen, is everything else left alone) and the pixel distance to the true target, beside
/// the unchanged source. A loss that trades leaving things alone for editing shows here.
fn draws_table(r: &AblationResults) -> Table {
    let mut t = Table::new(
        "What the world models draw, N = 1 (mean [95 % CI]): the judge's editing success and minimal editing (0-10), and the L1 pixel error to the true target (0-1)",
        &["model", "success", "minimal editing", "L1 to the target"],
    );
    let over_seeds =
        |f: &dyn Fn(&SeedRun) -> f64| Estimate::of(&r.runs.iter().map(f).collect::<Vec<_>>());
    let l1 = |e: &Estimate| format!("{:.4} [{:.4}, {:.4}]", e.mean, e.ci_low, e.ci_high);
    for m in Variant::ALL {
        t.push(vec![
            m.to_string(),
            est(&over_seeds(&|s| at_n(&s.worlds[&m], 1).success)),
            est(&over_seeds(&|s| at_n(&s.worlds[&m], 1).minimal)),
            l1(&over_seeds(&|s| at_n(&s.worlds[&m], 1).l1)),
        ]);
    }
    // The source is the same in every seed: one number each.
    let copy = &r.runs[0].worlds[&Variant::Ft].copy_source;
    t.push(vec![
        "copying the source".into(),
        format!("{:.2}", copy.success),
        format!("{:.2}", copy.minimal),
        format!("{:.4}", copy.l1),
    ]);
    t
}

/// Reads the `results.json` an ablation wrote (the shipped record is
/// `models/ablation/results.json`).
#[cfg(feature = "fs")]
pub fn load_results(path: &Path) -> Result<AblationResults> {
    let text = crate::files::read_input_text(path, crate::files::Input::Json)?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Invalid(format!(
            "{}: not the results.json of `dynaboot ablate` ({e}); rerun the ablation to \
             write it",
            path.display()
        ))
    })
}

/// Writes `results.json`, `report.md` and `report.html` into `dir`.
#[cfg(feature = "fs")]
pub fn write_reports(dir: &Path, r: &AblationResults, examples: &[WorldExample]) -> Result<()> {
    use crate::files::write_atomic;
    let json = serde_json::to_string_pretty(r).expect("results serialise");
    write_atomic(&dir.join("results.json"), json.as_bytes())?;
    let ts = tables(r);
    let intro = format!(
        "Ablation on the embedded world: {} seeds; every model a full fine-tune ({} steps, batch \
         {}, learning rate {}) of the shipped foundation ({}); \
         {} labelled triplets, {} videos labelled (the top {} kept) and candidates verified by \
         {}; the weighted loss at λ = {} on {}{}; {} rows per family of {}, {} samples a row, all judged (best-of-n is the expected \
         score of the verifier's pick among n of them, so N = 1 is their mean); {:.0} s in all. A finding counts as reproduced when its 95 % interval lies \
         above zero; every other number is in results.json.\n\n",
        r.seeds.len(),
        r.config.steps,
        r.config.batch_size,
        match r.config.dynamics_lr {
            Some(d) => format!("{}, the dynamics model's {d}", r.config.lr),
            None => r.config.lr.to_string(),
        },
        if r.config.dynamics_base == r.config.world_base {
            format!("every model from {}", r.config.dynamics_base)
        } else {
            format!(
                "the dynamics model from {}, the world models from {}",
                r.config.dynamics_base, r.config.world_base
            )
        },
        r.config.train_rows,
        r.config.videos,
        r.config.keep,
        match &r.config.annotator {
            Some(a) => format!("the dynamics model `{a}`"),
            None => "each seed's dynamics model".into(),
        },
        r.config.weighted,
        match r.config.weighting {
            Weighting::Target => "each position's own change (the paper's)",
            Weighting::Causal => "the positions drawn after each change (causal: no tilt)",
        },
        if r.config.undo_tilt {
            ", its tilt undone when sampling"
        } else {
            ""
        },
        r.config.test_per_family,
        match r.config.tune_seed {
            Some(s) => format!("a tuning split (train generator, seed {s})"),
            None => "the fixed test split".into(),
        },
        r.config.n,
        r.seconds
    );
    let md = format!("# dynaboot ablation\n\n{intro}")
        + &ts.iter().map(Table::markdown).collect::<String>();
    write_atomic(&dir.join("report.md"), md.as_bytes())?;
    let body = format!("<p>{}</p>", crate::eval::report::escape(&intro))
        + &ts.iter().map(Table::html).collect::<String>()
        + &examples_html(examples)?;
    write_atomic(
        &dir.join("report.html"),
        html_page("dynaboot ablation", &body).as_bytes(),
    )
}
