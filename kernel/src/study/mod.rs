//! The paper's human evaluation as a study: items (a source image and an action) with one
//! candidate from each of K systems, raters who mark the best (+1) and the worst (-1) candidate
//! of each item, blind and in an order of their own; everything in one SQLite file.
//!
//! `schema` versions the file, `store` reads and writes it, `create` generates the
//! candidates, `order` shuffles per rater, [`report`] analyses the judgments, `simulate`
//! fills a study with simulated raters (to check the analysis, never as people), and
//! `server` (feature `serve`) serves the rating page.

pub(crate) mod create;
pub(crate) mod order;
pub mod report;
pub(crate) mod schema;
#[cfg(feature = "serve")]
pub mod server;
pub(crate) mod simulate;
pub(crate) mod store;

pub use create::{Contender, study_items};
pub use report::{StudyReport, analyse, report_html};
pub use simulate::{exact_scores, simulate_raters};
pub use store::{Image, Item, Judgment, NewItem, Rater, Study, StudyInfo, System};
