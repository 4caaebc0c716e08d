//! Means with 95 % confidence intervals (Student's t, for the handful of seeds an ablation runs).

use serde::{Deserialize, Serialize};

/// A mean over runs and its two-sided 95 % confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The mean.
    pub mean: f64,
    /// The interval's lower end.
    pub ci_low: f64,
    /// The interval's upper end.
    pub ci_high: f64,
    /// Runs behind it.
    pub n: usize,
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom.
pub(crate) fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        d if d <= 30 => TABLE[d - 1],
        _ => 1.960,
    }
}

impl Estimate {
    /// Mean and t-interval of `values`. One value gives an interval of zero width (no spread
    /// can be measured); none gives NaN.
    pub fn of(values: &[f64]) -> Estimate {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        if n < 2 {
            return Estimate {
                mean,
                ci_low: mean,
                ci_high: mean,
                n,
            };
        }
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let half = t_975(n - 1) * (var / n as f64).sqrt();
        Estimate {
            mean,
            ci_low: mean - half,
            ci_high: mean + half,
            n,
        }
    }

    /// A proportion `successes / n` with Wilson's 95 % score interval (right near 0 and 1,
    /// where the t-interval of 0/1 values is not). `n = 0` gives NaN.
    pub fn proportion(successes: usize, n: usize) -> Estimate {
        let (k, m) = (successes as f64, n as f64);
        let p = k / m;
        let z = 1.959_963_985;
        let denom = 1.0 + z * z / m;
        let centre = (p + z * z / (2.0 * m)) / denom;
        let half = z * (p * (1.0 - p) / m + z * z / (4.0 * m * m)).sqrt() / denom;
        Estimate {
            mean: p,
            ci_low: (centre - half).max(0.0),
            ci_high: (centre + half).min(1.0),
            n,
        }
    }

    /// The paired difference `a[i] - b[i]` (the same seed under two conditions).
    #[cfg(feature = "fs")]
    pub(crate) fn paired(a: &[f64], b: &[f64]) -> Estimate {
        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        Estimate::of(&d)
    }

    /// Whether the interval excludes zero.
    #[cfg(test)]
    pub(crate) fn significant(&self) -> bool {
        self.ci_low > 0.0 || self.ci_high < 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_the_textbook_values() {
        // Wilson 95 % intervals, e.g. Newcombe (1998), Table I: 5/10 -> [0.2366, 0.7634].
        let e = Estimate::proportion(5, 10);
        assert!(
            (e.ci_low - 0.2366).abs() < 1e-4 && (e.ci_high - 0.7634).abs() < 1e-4,
            "{e:?}"
        );
        let none = Estimate::proportion(0, 10);
        assert_eq!((none.mean, none.ci_low), (0.0, 0.0));
        assert!((none.ci_high - 0.2775).abs() < 1e-4, "{none:?}");
        let all = Estimate::proportion(10, 10);
        assert_eq!((all.mean, all.ci_high), (1.0, 1.0));
        assert!((all.ci_low - 0.7225).abs() < 1e-4, "{all:?}");
        assert!(Estimate::proportion(0, 0).mean.is_nan());
    }

    #[test]
    fn interval_by_hand() {
        // 1, 2, 3: mean 2, sd 1, half-width 4.303 / sqrt(3).
        let e = Estimate::of(&[1.0, 2.0, 3.0]);
        assert_eq!(e.mean, 2.0);
        assert!((e.ci_high - (2.0 + 4.303 / 3f64.sqrt())).abs() < 1e-12);
        assert!((e.ci_low - (2.0 - 4.303 / 3f64.sqrt())).abs() < 1e-12);
        assert!(!e.significant(), "the interval spans 0");
        assert!(Estimate::of(&[2.0, 3.0, 4.0]).significant());
        let flat = Estimate::of(&[5.0]);
        assert_eq!((flat.ci_low, flat.ci_high, flat.n), (5.0, 5.0, 1));
    }

    #[test]
    fn paired_differences() {
        let e = Estimate::paired(&[3.0, 4.0, 5.0], &[1.0, 2.0, 3.0]);
        assert_eq!((e.mean, e.ci_low, e.ci_high), (2.0, 2.0, 2.0));
        assert!(!Estimate::paired(&[1.0, 3.0], &[2.0, 2.0]).significant());
        assert_eq!(t_975(2), 4.303);
        assert_eq!(t_975(100), 1.96);
    }
}
