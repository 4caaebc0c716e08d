//! Agreement between raters: Krippendorff's alpha (Krippendorff 2011, "Computing Krippendorff's
//! Alpha-Reliability"), which allows any number of raters, missing ratings and unequal numbers
//! of ratings per unit: 1 is perfect agreement, 0 what chance gives, below 0 systematic
//! disagreement. And between two judges scoring the same samples: Spearman's rank correlation.

#[cfg(feature = "study")]
use serde::{Deserialize, Serialize};

/// How far apart two values are.
#[cfg(feature = "study")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Metric {
    /// Categories: equal or not.
    Nominal,
    /// Numbers: squared difference.
    Interval,
}

#[cfg(feature = "study")]
impl Metric {
    fn delta2(self, a: f64, b: f64) -> f64 {
        match self {
            Metric::Nominal => f64::from(u8::from(a != b)),
            Metric::Interval => (a - b) * (a - b),
        }
    }
}

/// Krippendorff's alpha over `units`, each the values the raters who rated it gave (missing
/// ratings left out). Units with fewer than two values cannot be paired and are skipped.
/// `None` when fewer than two values are pairable or every pairable value is the same (no
/// variation to agree on).
#[cfg(feature = "study")]
pub(crate) fn krippendorff_alpha(units: &[Vec<f64>], metric: Metric) -> Option<f64> {
    // The distinct values, and the coincidence matrix o[c][k]: each ordered pair of values
    // within a unit, weighted 1 / (m_u - 1).
    let mut values: Vec<f64> = units.iter().flatten().copied().collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let index = |v: f64| values.partition_point(|&x| x < v);
    let k = values.len();
    let mut o = vec![0.0f64; k * k];
    for unit in units.iter().filter(|u| u.len() >= 2) {
        let w = 1.0 / (unit.len() - 1) as f64;
        for (i, &a) in unit.iter().enumerate() {
            for (j, &b) in unit.iter().enumerate() {
                if i != j {
                    o[index(a) * k + index(b)] += w;
                }
            }
        }
    }
    let n_c: Vec<f64> = (0..k).map(|c| o[c * k..(c + 1) * k].iter().sum()).collect();
    let n: f64 = n_c.iter().sum();
    if n < 2.0 {
        return None;
    }
    let (mut observed, mut expected) = (0.0, 0.0);
    for c in 0..k {
        for e in 0..k {
            let d = metric.delta2(values[c], values[e]);
            observed += o[c * k + e] * d;
            expected += n_c[c] * n_c[e] * d;
        }
    }
    if expected == 0.0 {
        return None;
    }
    Some(1.0 - (n - 1.0) * observed / expected)
}

/// Spearman's rank correlation of paired scores (average ranks for ties, as
/// `scipy.stats.spearmanr`); `None` with fewer than two pairs or when either side is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (ra, _) = crate::stats::wilcoxon::average_ranks(a);
    let (rb, _) = crate::stats::wilcoxon::average_ranks(b);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (ma, mb) = (mean(&ra), mean(&rb));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Krippendorff's worked example (2011, section C): 4 observers, 12 units, values 1-5,
    /// missing data; he reports alpha = 0.743 (nominal) and 0.849 (interval).
    fn example() -> Vec<Vec<f64>> {
        let rows: [[Option<u8>; 12]; 4] = {
            let (a, b, c, d) = (
                "1 2 3 3 2 1 4 1 2 . . .",
                "1 2 3 3 2 2 4 1 2 5 . 3",
                ". 3 3 3 2 3 4 2 2 5 1 .",
                "1 2 3 3 2 4 4 1 2 5 1 .",
            );
            [a, b, c, d].map(|r| {
                let v: Vec<Option<u8>> = r.split(' ').map(|s| s.parse().ok()).collect();
                v.try_into().unwrap()
            })
        };
        (0..12)
            .map(|u| rows.iter().filter_map(|r| r[u]).map(f64::from).collect())
            .collect()
    }

    #[test]
    fn matches_krippendorffs_worked_example() {
        let nominal = krippendorff_alpha(&example(), Metric::Nominal).unwrap();
        let interval = krippendorff_alpha(&example(), Metric::Interval).unwrap();
        assert!((nominal - 0.743).abs() < 5e-4, "{nominal}");
        assert!((interval - 0.849).abs() < 5e-4, "{interval}");
    }

    #[test]
    fn spearman_is_one_for_any_increasing_map_and_handles_ties() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [10.0, 20.0, 35.0, 90.0, 100.0];
        assert!((spearman(&a, &b).unwrap() - 1.0).abs() < 1e-12);
        let rev: Vec<f64> = b.iter().rev().copied().collect();
        assert!((spearman(&a, &rev).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&a, &[3.0; 5]), None);
        assert_eq!(spearman(&a[..1], &b[..1]), None);
    }

    #[test]
    fn perfect_agreement_is_one_and_no_variation_is_undefined() {
        let units = vec![vec![1.0, 1.0], vec![-1.0, -1.0, -1.0], vec![0.0, 0.0]];
        assert_eq!(krippendorff_alpha(&units, Metric::Nominal), Some(1.0));
        assert_eq!(
            krippendorff_alpha(&[vec![1.0, 1.0], vec![1.0]], Metric::Nominal),
            None
        );
        // Units rated once cannot be paired.
        assert_eq!(
            krippendorff_alpha(&[vec![1.0], vec![0.0]], Metric::Nominal),
            None
        );
        // Raters who always disagree score below chance.
        let split = vec![vec![1.0, -1.0], vec![-1.0, 1.0], vec![1.0, -1.0]];
        assert!(krippendorff_alpha(&split, Metric::Nominal).unwrap() < 0.0);
    }
}
