//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) and the inputs of fixed
//! crashes (`fuzz/regressions/<target>/`) through the fuzz targets' bodies (`fuzz/entries.rs`)
//! on the stable toolchain: every input that once led libFuzzer to a new path through a parser
//! of outside input, or crashed one, gets an answer, never a panic. `just fuzz` grows the
//! corpora with cargo-fuzz on nightly.

#[allow(dead_code)]
#[path = "../fuzz/entries.rs"]
mod entries;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn every_corpus_replays_without_a_panic() {
    let mut panicked = Vec::new();
    let mut replayed = 0;
    for (name, body) in entries::TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}; every target needs a corpus", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!inputs.is_empty(), "{} is empty", dir.display());
        if let Ok(fixed) = std::fs::read_dir(fuzz_dir().join("regressions").join(name)) {
            inputs.extend(fixed.map(|e| e.unwrap().path()));
        }
        inputs.sort();
        for path in inputs {
            let data = std::fs::read(&path).unwrap();
            if std::panic::catch_unwind(|| body(&data)).is_err() {
                panicked.push(path.display().to_string());
            }
            replayed += 1;
        }
    }
    entries::clean_up();
    assert!(panicked.is_empty(), "these inputs panic: {panicked:#?}");
    assert!(replayed >= entries::TARGETS.len());
}

/// Each body is a cargo-fuzz target of the same name, and each target has a body.
#[test]
fn the_targets_are_the_fuzz_crates_binaries() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let bins: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .map(|b| b.split('"').nth(1).expect("a [[bin]] with a name"))
        .collect();
    let names: Vec<&str> = entries::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(bins, names);
    for name in names {
        let src = std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz_targets/{name}.rs: {e}"));
        assert!(src.contains(&format!("entries::{name}(data)")), "{name}");
    }
}
