//! End to end: `dynaboot scale --preset smoke` (nested labelled sizes, each size's own
//! dynamics model labelling the videos, FT / FDM / FDM with the weighted loss, two verifiers,
//! the findings) writes well-formed results, and a study killed midway and resumed with
//! `--resume` ends with the numbers of an uninterrupted one; `--report` writes the record of a
//! study so far.

use dynaboot_tests::{bin, fails, ok, s};
use std::path::Path;
use std::time::{Duration, Instant};

fn models() -> String {
    s(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")).to_string()
}

fn args<'a>(models: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "scale",
        "--preset",
        "smoke",
        "--seeds-small",
        "1",
        "--seeds-large",
        "1",
        "--no-coverage",
        "--models",
        models,
        "--out",
        out,
    ]
}

fn results(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `v` without the compute times, which differ from run to run.
fn without_seconds(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .filter(|(k, _)| *k != "seconds")
            .map(|(k, v)| (k.clone(), without_seconds(v)))
            .collect(),
        serde_json::Value::Array(a) => a.iter().map(without_seconds).collect(),
        v => v.clone(),
    }
}

#[test]
fn a_study_killed_midway_resumes_to_the_uninterrupted_numbers() {
    let models = models();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));

    let printed = ok(&args(&models, s(&a)));
    assert!(
        printed.contains("### World models per labelled size"),
        "{printed}"
    );
    let r = results(&a);
    let sizes = r["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 2, "the smoke preset's two sizes");
    for row in sizes {
        for key in ["ft", "fdm", "ft_best_own", "fdm_best_shipped"] {
            let mean = row[key]["mean"].as_f64().unwrap();
            assert!((0.0..=10.0).contains(&mean), "{key}: {row}");
        }
        // FDM - FT is the paired difference of the two.
        let d = row["fdm"]["mean"].as_f64().unwrap() - row["ft"]["mean"].as_f64().unwrap();
        assert!((row["fdm_minus_ft"]["mean"].as_f64().unwrap() - d).abs() < 1e-9);
        // The smallest and the largest size train FDM with the weighted loss too.
        assert!(row["fdm_weighted"]["mean"].is_f64(), "{row}");
    }
    let cells = r["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    for cell in cells {
        // Each size's dynamics model labelled the videos and FDM trained on what it kept.
        assert!(cell["synthetic"].as_u64().unwrap() >= 1, "{cell}");
        for world in ["FT", "FDM", "FDM - weighting"] {
            let w = &cell["worlds"][world];
            assert_eq!(w["own"]["n"], 2, "{world}");
            // The two verifiers rank the same candidates: N = 1 is the same.
            assert_eq!(
                w["own"]["best_of"][0], w["shipped"]["best_of"][0],
                "{world}"
            );
        }
    }
    assert!(
        r["crossover"]["reading"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let report = std::fs::read_to_string(a.join("report.md")).unwrap();
    assert!(
        report.contains("dynaboot scale --preset smoke"),
        "the command that made it"
    );
    // One seed measures no spread: the report says those sizes need more.
    assert!(
        report.contains("wider than ±0.4") && report.contains("L = 8 (one seed)"),
        "{report}"
    );
    // `--report` reads a finished study back to the record its run wrote.
    ok(&report_args(&models, s(&a)));
    assert_eq!(results(&a), r);

    // Killed while its second size trains a world model, or wherever it got to.
    let mut child = std::process::Command::new(bin())
        .args(args(&models, s(&b)))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mark = b.join("sizes/L16/seed0/world-ft/train_state.safetensors");
    let t0 = Instant::now();
    while !mark.exists() && child.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "the study never got there"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    child.wait().unwrap();
    // Without --resume the folder is not touched.
    let e = fails(&args(&models, s(&b)));
    assert!(e.contains("--resume"), "{e}");
    // Its record so far, running nothing: the first size's cell, the second named as missing.
    ok(&report_args(&models, s(&b)));
    let partial = results(&b);
    assert_eq!(partial["cells"].as_array().unwrap().len(), 1, "{partial}");
    assert_eq!(partial["missing"][0]["size"], 16, "{partial}");
    assert_eq!(
        partial["sizes"].as_array().unwrap().len(),
        1,
        "no row without a cell"
    );
    let progress = std::fs::read_to_string(b.join("report.md")).unwrap();
    assert!(
        progress.contains("1 of 2 cells finished") && progress.contains("L = 16 seed 0"),
        "{progress}"
    );
    ok(&resume_args(&models, s(&b)));
    assert_eq!(without_seconds(&results(&a)), without_seconds(&results(&b)));

    // Carried over to another machine as runs/scaling/.gitignore keeps it: the stages' json
    // only, no data, checkpoints or synthetic images; resumed, the same numbers.
    let c = dir.path().join("c");
    copy_stage_records(&a, &c);
    assert!(!c.join("data").exists() && c.join("study.json").exists());
    std::fs::remove_file(c.join("results.json")).unwrap();
    ok(&resume_args(&models, s(&c)));
    assert_eq!(without_seconds(&results(&a)), without_seconds(&results(&c)));
    // Resumed without its seed counts, a study keeps its own (the preset's 2 would add cells).
    ok(&[
        "scale",
        "--preset",
        "smoke",
        "--no-coverage",
        "--models",
        &models,
        "--out",
        s(&c),
        "--resume",
    ]);
    assert_eq!(without_seconds(&results(&a)), without_seconds(&results(&c)));
}

fn report_args<'a>(models: &'a str, out: &'a str) -> Vec<&'a str> {
    vec!["scale", "--report", "--models", models, "--out", out]
}

fn resume_args<'a>(models: &'a str, out: &'a str) -> Vec<&'a str> {
    let mut a = args(models, out);
    a.push("--resume");
    a
}

/// The json files of the study in `from` outside its data and run folders, copied to `to`.
fn copy_stage_records(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        if path.is_dir() {
            let derived =
                ["data", "dynamics", "synthetic"].contains(&name) || name.starts_with("world-");
            if !derived {
                copy_stage_records(&path, &to.join(name));
            }
        } else if name.ends_with(".json") {
            std::fs::create_dir_all(to).unwrap();
            std::fs::copy(&path, to.join(name)).unwrap();
        }
    }
}
