//! The study's analysis, as the paper reports its human evaluation: each judgment gives the
//! best candidate +1, the worst -1 and the others 0; an item's score for a system is the mean
//! over the raters who judged it. Per system (and per family): the mean over items with a 95 %
//! interval; per pair of systems: the Wilcoxon signed-rank test on the items' score differences
//! (Pratt's zeros), Holm-corrected across the pairs; agreement between raters: Krippendorff's
//! alpha on the +1 / -1 / 0 each rater gave each candidate.

use super::store::{Image, Study};
use crate::error::Result;
use crate::eval::report::{Table, escape, html_page};
use crate::stats::Estimate;
use crate::stats::agreement::{Metric, krippendorff_alpha};
use crate::stats::wilcoxon::{SignedRank, Zeros, holm, signed_rank};
use base64::Engine;
use serde::Serialize;
use std::collections::BTreeMap;

/// The significance level of the pairwise tests (after Holm's correction).
pub(crate) const ALPHA: f64 = 0.05;

/// One system's scores.
#[derive(Clone, Debug, Serialize)]
pub struct SystemScore {
    /// The system's name.
    pub system: String,
    pub(crate) description: String,
    /// Mean score over the judged items, with its 95 % interval.
    pub overall: Estimate,
    #[serde(rename = "by_task")] // AURORA calls a family a task
    pub(crate) by_family: BTreeMap<String, Estimate>,
    /// Judgments that marked it best and worst.
    pub(crate) best: usize,
    pub(crate) worst: usize,
}

/// Two systems compared on the items both were judged on.
#[derive(Clone, Debug, Serialize)]
pub struct PairTest {
    /// The first system's name.
    pub a: String,
    /// The second system's name.
    pub b: String,
    /// Mean of `a`'s item score minus `b`'s.
    pub mean_difference: f64,
    /// `None` when every item scored the two the same.
    pub(crate) test: Option<SignedRank>,
    /// Holm-adjusted p-value.
    pub(crate) p_holm: Option<f64>,
    /// `p_holm < ALPHA`.
    pub significant: bool,
}

/// Everything `study report` prints and writes.
#[derive(Clone, Debug, Serialize)]
pub struct StudyReport {
    pub(crate) name: String,
    pub(crate) items: usize,
    /// Items judged by at least one rater.
    pub items_judged: usize,
    /// Raters who judged at least one item.
    pub raters: usize,
    /// Judgments that count (one per rater and item).
    pub judgments: usize,
    /// Submissions in all, changes of mind included.
    pub(crate) submissions: usize,
    pub(crate) median_ms: Option<i64>,
    /// Each system's scores.
    pub systems: Vec<SystemScore>,
    /// Every pair of systems compared (signed-rank test, Holm-adjusted).
    pub pairs: Vec<PairTest>,
    /// Krippendorff's alpha (nominal) over (item, system) units; `None` with fewer than two
    /// raters on any item.
    pub agreement: Option<f64>,
    pub(crate) zero_method: Zeros,
}

/// Analyses every judgment in `study`.
pub fn analyse(study: &Study) -> Result<StudyReport> {
    let info = study.info()?;
    let items = study.items()?;
    let family_of: BTreeMap<i64, &str> = items.iter().map(|i| (i.id, i.family.as_str())).collect();
    let judgments = study.judgments()?;
    let systems = &info.systems;

    // Per item and system: the score each rater gave (+1, -1, 0).
    let mut given: BTreeMap<(i64, i64), Vec<f64>> = BTreeMap::new();
    for j in &judgments {
        for &s in &j.shown {
            let v = if s == j.best {
                1.0
            } else if s == j.worst {
                -1.0
            } else {
                0.0
            };
            given.entry((j.item, s)).or_default().push(v);
        }
    }
    let judged: Vec<i64> = {
        let mut v: Vec<i64> = judgments.iter().map(|j| j.item).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let score = |item: i64, system: i64| -> Option<f64> {
        given
            .get(&(item, system))
            .map(|v| v.iter().sum::<f64>() / v.len() as f64)
    };

    let scores = systems
        .iter()
        .map(|s| {
            let on = |pred: &dyn Fn(i64) -> bool| -> Vec<f64> {
                judged
                    .iter()
                    .filter(|&&i| pred(i))
                    .filter_map(|&i| score(i, s.id))
                    .collect()
            };
            let mut by_family = BTreeMap::new();
            for family in family_of
                .values()
                .copied()
                .collect::<std::collections::BTreeSet<_>>()
            {
                let v = on(&|i| family_of.get(&i) == Some(&family));
                if !v.is_empty() {
                    by_family.insert(family.to_string(), Estimate::of(&v));
                }
            }
            SystemScore {
                system: s.name.clone(),
                description: s.description.clone(),
                overall: Estimate::of(&on(&|_| true)),
                by_family,
                best: judgments.iter().filter(|j| j.best == s.id).count(),
                worst: judgments.iter().filter(|j| j.worst == s.id).count(),
            }
        })
        .collect();

    let mut pairs = Vec::new();
    for (x, a) in systems.iter().enumerate() {
        for b in &systems[x + 1..] {
            let d: Vec<f64> = judged
                .iter()
                .filter_map(|&i| Some(score(i, a.id)? - score(i, b.id)?))
                .collect();
            pairs.push(PairTest {
                a: a.name.clone(),
                b: b.name.clone(),
                mean_difference: d.iter().sum::<f64>() / d.len().max(1) as f64,
                test: signed_rank(&d, Zeros::Pratt),
                p_holm: None,
                significant: false,
            });
        }
    }
    let tested: Vec<usize> = (0..pairs.len())
        .filter(|&i| pairs[i].test.is_some())
        .collect();
    let p: Vec<f64> = tested
        .iter()
        .map(|&i| pairs[i].test.as_ref().expect("tested").p_value)
        .collect();
    for (&i, adj) in tested.iter().zip(holm(&p)) {
        pairs[i].p_holm = Some(adj);
        pairs[i].significant = adj < ALPHA;
    }

    let units: Vec<Vec<f64>> = given.values().cloned().collect();
    let mut ms: Vec<i64> = judgments.iter().map(|j| j.ms).collect();
    ms.sort_unstable();
    Ok(StudyReport {
        name: info.name,
        items: info.items,
        items_judged: judged.len(),
        raters: {
            let mut r: Vec<i64> = judgments.iter().map(|j| j.rater).collect();
            r.sort_unstable();
            r.dedup();
            r.len()
        },
        judgments: judgments.len(),
        submissions: study.submissions()?,
        median_ms: ms.get(ms.len() / 2).copied(),
        systems: scores,
        pairs,
        agreement: krippendorff_alpha(&units, Metric::Nominal),
        zero_method: Zeros::Pratt,
    })
}

fn interval(e: &Estimate) -> String {
    if e.n == 0 {
        return "—".into();
    }
    format!(
        "{:+.2} [{:+.2}, {:+.2}] (n {})",
        e.mean, e.ci_low, e.ci_high, e.n
    )
}

/// The per-system table (overall and per family).
pub fn systems_table(r: &StudyReport) -> Table {
    let families: std::collections::BTreeSet<&String> =
        r.systems.iter().flat_map(|s| s.by_family.keys()).collect();
    let mut header = vec!["system", "score (95 % interval)", "best", "worst"];
    header.extend(families.iter().map(|t| t.as_str()));
    let mut t = Table::new(
        "Mean score per item (+1 best, -1 worst, 0 otherwise; mean over raters)",
        &header,
    );
    for s in &r.systems {
        let mut row = vec![
            s.system.clone(),
            interval(&s.overall),
            s.best.to_string(),
            s.worst.to_string(),
        ];
        row.extend(
            families
                .iter()
                .map(|k| s.by_family.get(*k).map(interval).unwrap_or("—".into())),
        );
        t.push(row);
    }
    t
}

/// The pairwise tests.
pub fn pairs_table(r: &StudyReport) -> Table {
    let mut t = Table::new(
        &format!(
            "Wilcoxon signed-rank tests between systems (Pratt's zeros; Holm-corrected, \
             significant at p < {ALPHA})"
        ),
        &[
            "A",
            "B",
            "mean A - B",
            "W",
            "p",
            "p (Holm)",
            "method",
            "significant",
        ],
    );
    for p in &r.pairs {
        let (w, raw, method) = match &p.test {
            Some(t) => (
                format!("{}", t.statistic),
                format!("{:.4}", t.p_value),
                format!("{:?}", t.method).to_lowercase(),
            ),
            None => ("—".into(), "—".into(), "all ties".into()),
        };
        t.push(vec![
            p.a.clone(),
            p.b.clone(),
            format!("{:+.3}", p.mean_difference),
            w,
            raw,
            p.p_holm.map(|v| format!("{v:.4}")).unwrap_or("—".into()),
            method,
            if p.significant { "yes" } else { "no" }.into(),
        ]);
    }
    t
}

/// The report as an HTML page: the summary, both tables and the first `examples` judged items
/// with every system's candidate (named here, unlike on the rating page) and the true target.
pub fn report_html(study: &Study, r: &StudyReport, examples: usize) -> Result<String> {
    let mut body = format!(
        "<p>{} of {} items judged by {} raters: {} judgments ({} submissions); median time per \
         item {}; agreement between raters (Krippendorff's alpha, nominal): {}.</p>",
        r.items_judged,
        r.items,
        r.raters,
        r.judgments,
        r.submissions,
        r.median_ms
            .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
            .unwrap_or("—".into()),
        r.agreement
            .map(|a| format!("{a:.3}"))
            .unwrap_or("— (needs two raters on an item)".into()),
    );
    body.push_str(&systems_table(r).html());
    body.push_str(&pairs_table(r).html());
    let uri = |png: Vec<u8>| {
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        )
    };
    let systems = study.systems()?;
    let judgments = study.judgments()?;
    let mut shown = 0;
    body.push_str("<h2>Examples</h2>");
    for item in study.items()? {
        if shown == examples {
            break;
        }
        let on_item: Vec<_> = judgments.iter().filter(|j| j.item == item.id).collect();
        if on_item.is_empty() {
            continue;
        }
        shown += 1;
        body.push_str(&format!(
            "<div class=\"example\"><p><b>{}</b> ({})</p><div class=\"row\">",
            escape(&item.instruction),
            escape(&item.family)
        ));
        let mut figure = |png: Option<Vec<u8>>, caption: String| {
            if let Some(png) = png {
                body.push_str(&format!(
                    "<figure><img src=\"{}\" alt=\"{}\" width=\"128\"><figcaption>{}</figcaption></figure>",
                    uri(png),
                    escape(&caption),
                    escape(&caption)
                ));
            }
        };
        figure(study.image(item.id, Image::Source)?, "source".into());
        for s in &systems {
            let best = on_item.iter().filter(|j| j.best == s.id).count();
            let worst = on_item.iter().filter(|j| j.worst == s.id).count();
            figure(
                study.image(item.id, Image::Candidate(s.id))?,
                format!("{}: best {best}, worst {worst}", s.name),
            );
        }
        figure(study.image(item.id, Image::Target)?, "true target".into());
        body.push_str("</div></div>");
    }
    Ok(html_page(&format!("Study {}", escape(&r.name)), &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::store::tests::small_study;

    #[test]
    fn scores_tests_and_agreement_of_a_small_study() {
        let dir = tempfile::tempdir().unwrap();
        let mut study = small_study(&dir.path().join("s.sqlite"), 4);
        let (a, b) = (
            study.add_rater("alice").unwrap(),
            study.add_rater("bob").unwrap(),
        );
        // Systems A = 1, B = 2, C = 3: (rater, item, best, worst).
        for (r, item, best, worst) in [
            (&a, 1, 1, 3),
            (&a, 2, 1, 2),
            (&a, 3, 2, 3),
            (&a, 4, 1, 3),
            (&b, 1, 1, 3),
            (&b, 2, 2, 3),
        ] {
            study
                .judge(r.id, item, &[2, 3, 1], best, worst, 1000 * item)
                .unwrap();
        }
        let r = analyse(&study).unwrap();
        assert_eq!(
            (r.items, r.items_judged, r.raters, r.judgments),
            (4, 4, 2, 6)
        );
        // Item scores of A: 1, (1 + 0) / 2, 0, 1.
        let sys_a = &r.systems[0];
        assert!((sys_a.overall.mean - 0.625).abs() < 1e-12, "{sys_a:?}");
        assert_eq!((sys_a.best, sys_a.worst), (4, 0));
        assert_eq!(r.systems[2].worst, 5);
        assert_eq!(sys_a.by_family["even"].n + sys_a.by_family["odd"].n, 4);
        assert_eq!(r.pairs.len(), 3);
        for p in &r.pairs {
            let t = p.test.as_ref().unwrap();
            assert!(p.p_holm.unwrap() >= t.p_value && p.p_holm.unwrap() <= 1.0);
        }
        // A minus B per item: 1, 0.5, -1, 1.
        assert!((r.pairs[0].mean_difference - 0.375).abs() < 1e-12);
        // Units rated twice: item 1 (A 1,1; B 0,0; C -1,-1) and item 2 (A 1,0; B -1,1;
        // C 0,-1): 12 pairable values, 6 disagreeing pairs, 4 of each value:
        // alpha = 1 - 11 * 6 / (4 * 4 * 6) = 0.3125.
        assert!(
            (r.agreement.unwrap() - 0.3125).abs() < 1e-12,
            "{:?}",
            r.agreement
        );
        assert_eq!(r.median_ms, Some(2000));

        let html = report_html(&study, &r, 2).unwrap();
        assert_eq!(html.matches("class=\"example\"").count(), 2);
        assert!(html.contains("true target") && html.contains("Holm"));
    }
}
