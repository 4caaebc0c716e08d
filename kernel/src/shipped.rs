//! Where the shipped models are (`models/` of the repository: the tokenizers, the foundations,
//! the world and dynamics models): one lookup for the CLI, the notebooks and the tests.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The environment variable that names the shipped models' folder.
pub(crate) const MODELS_ENV: &str = "DYNABOOT_MODELS";

/// The shipped models' folder: `DYNABOOT_MODELS` when set, else the first `models/` holding
/// `world/config.json` and `vq/config.json` from the current folder upwards (so the CLI finds
/// them from any folder of the repository and the notebooks from `notebooks/`). The error
/// lists every place it looked.
pub fn shipped_models() -> Result<PathBuf> {
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    find(std::env::var_os(MODELS_ENV).map(PathBuf::from), &cwd)
}

fn find(from_env: Option<PathBuf>, start: &Path) -> Result<PathBuf> {
    if let Some(dir) = from_env {
        return if dir.is_dir() {
            Ok(dir)
        } else {
            Err(Error::Invalid(format!(
                "{MODELS_ENV}={}: no such folder; set it to the shipped models' folder (models/ \
                 of the repository) or unset it to search upwards from the current folder",
                dir.display()
            )))
        };
    }
    let candidates: Vec<PathBuf> = start.ancestors().map(|d| d.join("models")).collect();
    candidates
        .iter()
        .find(|m| m.join("world/config.json").is_file() && m.join("vq/config.json").is_file())
        .cloned()
        .ok_or_else(|| {
            Error::Invalid(format!(
                "no shipped models (models/ with world/ and vq/): {MODELS_ENV} is not set and \
                 none of {} holds them; run from the repository (any folder of it) or set \
                 {MODELS_ENV}=PATH",
                candidates
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_from_any_folder_below_the_repository_and_named_where_it_looked_otherwise() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let models = repo.join("models");
        for start in [
            repo.clone(),
            repo.join("kernel/src/model"),
            repo.join("notebooks"),
        ] {
            let found = find(None, &start).unwrap();
            assert_eq!(
                found.canonicalize().unwrap(),
                models.canonicalize().unwrap()
            );
        }
        let elsewhere = tempfile::tempdir().unwrap();
        let e = find(None, elsewhere.path()).unwrap_err().to_string();
        assert!(e.contains(MODELS_ENV), "{e}");
        assert!(
            e.contains(&elsewhere.path().join("models").display().to_string()),
            "{e}"
        );
        // The variable wins over the search, and a wrong one is named.
        let there = find(Some(elsewhere.path().into()), &repo).unwrap();
        assert_eq!(there, elsewhere.path());
        let e = find(Some(elsewhere.path().join("nope")), &repo)
            .unwrap_err()
            .to_string();
        assert!(e.contains("DYNABOOT_MODELS=") && e.contains("nope"), "{e}");
    }
}
