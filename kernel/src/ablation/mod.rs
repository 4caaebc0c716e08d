//! The paper's experiment on the embedded world, per seed, every model a full fine-tune of the
//! shipped foundation (as the paper fine-tunes Chameleon): the dynamics model on the labelled
//! triplets; it labels unlabelled videos (weak supervision); world models FT (labelled data
//! only), FDM (+ synthetic data + recognition-weighted loss) and FDM without each of the two;
//! each evaluated with best-of-N verification. The paper's four findings with 95 % intervals
//! over seeds, paired by seed:
//! (a) the dynamics model is learned more easily than the world model: at equal fine-tuning
//!     steps, each on its own metric normalised to 0-1 with a trivial answer at 0 (the world
//!     model's judge score / 10, where copying the source scores 0; the dynamics model's
//!     ROUGE-L, the paper's text metric, rescaled so that a random valid action of the source
//!     scene scores 0 and the reference 1), on every evaluation row after the last step, and
//!     as learning curves (on fewer rows) on one axis;
//! (b) synthetic data helps (FDM vs FDM without synthetic data, N = 1);
//! (c) the weighted loss helps (FDM vs FDM without weighting, N = 1);
//! (d) best-of-N helps (FDM at N = max vs N = 1).
//! Every one of the N samples of a row is judged, so N = 1 is their mean (at N = 8 an eighth of
//! the sampling variance of judging one sample) and best-of-n the expected verified pick.
//! Beside them the relative gains the paper reports: FDM over FT, best-of-N over best-of-1.
//!
//! The files are its concepts: `config` (presets and settings), `variant` (the world
//! models), `run` (training and evaluating the variants per seed), `findings` (the
//! statistics over seeds) and `report` (tables, `results.json`, `report.md`, `report.html`).

mod config;
mod findings;
mod report;
mod run;
mod variant;

pub use config::{AblationConfig, AblationPreset};
pub use findings::{AblationResults, BestOf, Finding, Findings, RelativeGain};
pub use report::{load_results, tables, write_reports};
pub(crate) use run::guess_rouge_l;
pub use run::{CurvePoint, SeedRun, run_ablation};
pub use variant::Variant;
