//! The Wilcoxon signed-rank test on paired differences, as the paper compares systems in its
//! human evaluation, and Holm's correction across the pairs of systems.
//!
//! It follows `scipy.stats.wilcoxon(d, zero_method=..., correction=False, method="auto")`
//! (checked against SciPy's values in `tests/fixtures/wilcoxon.json`): the exact null
//! distribution for 50 or fewer differences without ties or zeros; with ties or zeros, the exact
//! distribution of all 2^n sign flips for 13 or fewer differences; otherwise the normal
//! approximation with the tie correction of the variance, and, for Pratt's treatment of zeros,
//! Cureton's correction of mean and variance.

use serde::{Deserialize, Serialize};

/// What to do with zero differences (ties between the two systems).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Zeros {
    /// Wilcoxon's: drop them before ranking.
    Wilcox,
    /// Pratt's: rank them with the rest, then leave their ranks out of both sums (keeps the
    /// information that many items were ties; SciPy's `zero_method="pratt"`).
    Pratt,
}

/// How the p-value was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The exact null distribution of the rank sum (no ties, no zeros, n <= 50).
    Exact,
    /// Every one of the 2^n sign flips of the differences (ties or zeros, n <= 13).
    Permutation,
    /// The normal approximation.
    Normal,
}

/// The test's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignedRank {
    /// Sum of the ranks of the positive differences.
    pub(crate) r_plus: f64,
    /// Sum of the ranks of the negative differences.
    pub(crate) r_minus: f64,
    /// `min(r_plus, r_minus)`, SciPy's two-sided statistic.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// The standardised rank sum (normal approximation only).
    pub(crate) z: Option<f64>,
    /// How the p-value was computed (exact or normal approximation).
    pub method: Method,
    /// Differences that were not zero.
    pub(crate) nonzero: usize,
    pub(crate) zeros: usize,
}

/// Largest n with an exact distribution (SciPy's switch for `method="auto"`).
const EXACT_MAX: usize = 50;
/// Largest n whose 2^n sign flips are enumerated when there are ties or zeros.
const PERMUTATION_MAX: usize = 13;

/// Average ranks (1-based) of `values` and the sizes of their groups of equal values.
pub(crate) fn average_ranks(values: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut groups = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = rank;
        }
        groups.push(j - i);
        i = j;
    }
    (ranks, groups)
}

/// Rank sums of the positive and negative entries of `d` under the zero treatment.
fn rank_sums(d: &[f64], zeros: Zeros) -> (f64, f64, Vec<usize>) {
    let kept: Vec<f64> = match zeros {
        Zeros::Wilcox => d.iter().copied().filter(|&x| x != 0.0).collect(),
        Zeros::Pratt => d.to_vec(),
    };
    let (ranks, groups) = average_ranks(&kept.iter().map(|x| x.abs()).collect::<Vec<_>>());
    let sum = |keep: fn(f64) -> bool| -> f64 {
        kept.iter()
            .zip(&ranks)
            .filter(|(x, _)| keep(**x))
            .map(|(_, r)| r)
            .sum()
    };
    (sum(|x| x > 0.0), sum(|x| x < 0.0), groups)
}

/// Counts of subsets of {1..n} by their sum: the null distribution of the rank sum without
/// ties, times 2^n.
fn exact_counts(n: usize) -> Vec<f64> {
    let max = n * (n + 1) / 2;
    let mut counts = vec![0.0f64; max + 1];
    counts[0] = 1.0;
    for k in 1..=n {
        for s in (k..=max).rev() {
            counts[s] += counts[s - k];
        }
    }
    counts
}

/// Standard normal upper tail.
fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// The Wilcoxon signed-rank test of paired differences `d` (e.g. system A's score minus system
/// B's on the same items). `None` when every difference is zero (or there are none): there is
/// nothing to test.
pub fn signed_rank(d: &[f64], zeros: Zeros) -> Option<SignedRank> {
    let n_zero = d.iter().filter(|&&x| x == 0.0).count();
    let nonzero = d.len() - n_zero;
    if nonzero == 0 {
        return None;
    }
    let (r_plus, r_minus, groups) = rank_sums(d, zeros);
    let has_ties = groups.iter().any(|&g| g > 1);
    let two_sided = |lower: f64, upper: f64| (2.0 * lower.min(upper)).clamp(0.0, 1.0);
    let (method, p_value, z) = if d.len() <= EXACT_MAX && !has_ties && n_zero == 0 {
        let counts = exact_counts(nonzero);
        let total: f64 = counts.iter().sum();
        let at_most = |k: f64| {
            counts[..=(k as usize).min(counts.len() - 1)]
                .iter()
                .sum::<f64>()
        };
        let at_least = |k: f64| counts[(k as usize).min(counts.len())..].iter().sum::<f64>();
        let p = two_sided(
            at_most(r_plus.ceil()) / total,
            at_least(r_plus.floor()) / total,
        );
        (Method::Exact, p, None)
    } else if d.len() <= PERMUTATION_MAX {
        // Every sign flip of the differences, the observed one included (SciPy's
        // `permutation_test` with its relative tolerance on equal statistics).
        let n = d.len();
        let gamma = (r_plus * f64::EPSILON * 100.0).abs();
        let (mut at_most, mut at_least) = (0usize, 0usize);
        let mut flipped = d.to_vec();
        for mask in 0u32..(1 << n) {
            for (i, x) in flipped.iter_mut().enumerate() {
                *x = if mask >> i & 1 == 1 { -d[i] } else { d[i] };
            }
            let t = rank_sums(&flipped, zeros).0;
            at_most += usize::from(t <= r_plus + gamma);
            at_least += usize::from(t >= r_plus - gamma);
        }
        let total = (1usize << n) as f64;
        let p = two_sided(at_most as f64 / total, at_least as f64 / total);
        (Method::Permutation, p, None)
    } else {
        let count = match zeros {
            Zeros::Wilcox => nonzero,
            Zeros::Pratt => d.len(),
        } as f64;
        let mut mean = count * (count + 1.0) / 4.0;
        let mut var = count * (count + 1.0) * (2.0 * count + 1.0);
        let mut ties: f64 = groups.iter().map(|&g| (g * g * g - g) as f64).sum();
        if zeros == Zeros::Pratt && n_zero > 0 {
            let z0 = n_zero as f64;
            mean -= z0 * (z0 + 1.0) / 4.0;
            var -= z0 * (z0 + 1.0) * (2.0 * z0 + 1.0);
            // The zeros' own group is not a tie among the ranked differences.
            ties -= (n_zero * n_zero * n_zero - n_zero) as f64;
        }
        let se = ((var - ties / 2.0) / 24.0).sqrt();
        let z = (r_plus - mean) / se;
        (
            Method::Normal,
            (2.0 * normal_sf(z.abs())).min(1.0),
            Some(-z.abs()),
        )
    };
    Some(SignedRank {
        r_plus,
        r_minus,
        statistic: r_plus.min(r_minus),
        p_value,
        z,
        method,
        nonzero,
        zeros: n_zero,
    })
}

/// Holm's step-down adjustment of `p` (same order out as in): the family-wise error rate
/// stays at the level across all the pairs tested.
#[cfg(feature = "study")]
pub(crate) fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_over_ties() {
        let (r, g) = average_ranks(&[3.0, 1.0, 3.0, 2.0]);
        assert_eq!(r, vec![3.5, 1.0, 3.5, 2.0]);
        assert_eq!(g, vec![1, 1, 2]);
    }

    #[test]
    fn the_exact_distribution_sums_to_two_to_the_n() {
        for n in [1, 5, 20, 50] {
            let c = exact_counts(n);
            assert_eq!(c.iter().sum::<f64>(), 2f64.powi(n as i32), "n = {n}");
            // Symmetric around n(n+1)/4.
            assert!(c.iter().zip(c.iter().rev()).all(|(a, b)| a == b));
        }
    }

    #[test]
    fn all_positive_differences_give_the_smallest_exact_p() {
        // 8 positive, distinct differences: only 1 of 2^8 sign patterns is as extreme on
        // each side.
        let d: Vec<f64> = (1..=8).map(f64::from).collect();
        let t = signed_rank(&d, Zeros::Wilcox).unwrap();
        assert_eq!(t.method, Method::Exact);
        assert_eq!((t.r_plus, t.r_minus), (36.0, 0.0));
        assert!((t.p_value - 2.0 / 256.0).abs() < 1e-15, "{}", t.p_value);
        // Swapping the systems keeps the two-sided p.
        let neg: Vec<f64> = d.iter().map(|x| -x).collect();
        assert_eq!(signed_rank(&neg, Zeros::Wilcox).unwrap().p_value, t.p_value);
    }

    #[test]
    fn nothing_to_test_when_every_difference_is_zero() {
        assert!(signed_rank(&[0.0; 5], Zeros::Pratt).is_none());
        assert!(signed_rank(&[], Zeros::Wilcox).is_none());
    }

    #[test]
    fn holm_steps_down_and_stays_monotone() {
        let adj = holm(&[0.01, 0.04, 0.03, 0.5]);
        // Sorted: 0.01*4, 0.03*3, 0.04*2 -> max(0.09, 0.08) = 0.09, 0.5*1 -> 0.5.
        let want = [0.04, 0.09, 0.09, 0.5];
        for (a, w) in adj.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adj:?}");
        }
    }
}
