//! The statistics both the evaluation and the human study use: means with 95 % intervals over
//! seeds (`estimate`), the Wilcoxon signed-rank test with Holm's correction ([`wilcoxon`]),
//! and agreement between raters or judges ([`agreement`]: Krippendorff's alpha, Spearman's rho).

pub mod agreement;
pub(crate) mod estimate;
pub mod wilcoxon;

pub use estimate::Estimate;
