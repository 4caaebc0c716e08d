//! End to end: `dynaboot train | predict | explain` on tiny tokenizers and a tiny model, every
//! bad-input path of those commands, and a training run killed mid-way that resumes to the
//! same weights as an uninterrupted one.

use dynaboot_tests::{bin, fails, ok, refused, s};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Data, tiny tokenizers and a tiny model trained for both roles, made once for all tests.
struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    tok: PathBuf,
    ckpt: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let tok = dir.path().join("tok");
        let ckpt = dir.path().join("ckpt");
        ok(&[
            "world",
            "generate",
            "--split",
            "train",
            "--n",
            "24",
            "--out",
            s(&data),
            "--size",
            "32",
        ]);
        ok(&[
            "tokenizer",
            "train",
            "--data",
            s(&data),
            "--out",
            s(&tok),
            "--tiny",
            "--steps",
            "10",
            "--batch",
            "8",
            "--vocab-size",
            "320",
        ]);
        let out = ok(&[
            "train",
            "--role",
            "both",
            "--data",
            s(&data),
            "--tokenizers",
            s(&tok),
            "--preset",
            "tiny",
            "--steps",
            "12",
            "--out",
            s(&ckpt),
            "--eval-examples",
            "4",
            "--eval-every",
            "6",
            "--weighted",
            "0.5",
        ]);
        assert!(out.contains("trained to step 12"), "{out}");
        Fixture {
            _dir: dir,
            data,
            tok,
            ckpt,
        }
    })
}

fn first_input(data: &Path) -> PathBuf {
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("data.json")).unwrap()).unwrap();
    data.join(rows[0]["input"].as_str().unwrap())
}

fn first_output(data: &Path) -> PathBuf {
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("data.json")).unwrap()).unwrap();
    data.join(rows[0]["output"].as_str().unwrap())
}

#[test]
fn a_checkpoint_holds_what_it_needs_and_metrics_are_logged() {
    let f = fixture();
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "train_state.safetensors",
        "metrics.jsonl",
    ] {
        assert!(f.ckpt.join(file).exists(), "missing {file}");
    }
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.ckpt.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        cfg["hidden_size"], 32,
        "HF ChameleonConfig fields at the top level"
    );
    assert_eq!(
        cfg["dynaboot"]["roles"],
        serde_json::json!(["world", "dynamics"])
    );
    let vq = f.ckpt.join(cfg["dynaboot"]["vq_path"].as_str().unwrap());
    assert_eq!(
        vq.canonicalize().unwrap(),
        f.tok.join("vq").canonicalize().unwrap()
    );
    // The recognition weights were cached beside the dataset.
    assert!(std::fs::read_dir(&f.data).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tokens-")
    }));
    let metrics = std::fs::read_to_string(f.ckpt.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12);
    assert!(
        lines.iter().all(|l| l["loss"].as_f64().unwrap().is_finite()
            && l["tokens_per_s"].as_f64().unwrap() > 0.0)
    );
    assert!(lines[5]["eval_loss_world"].is_number() && lines[5]["eval_loss_dynamics"].is_number());
}

/// A foundation trains on the data's images without their actions (captions, drawings,
/// transitions; two `--data` folders concatenated), and a dynamics model fine-tunes from it.
#[test]
fn a_foundation_pretrains_without_actions_and_fine_tunes() {
    let f = fixture();
    let found = f.ckpt.parent().unwrap().join("foundation");
    // The fixture's 320-token text vocabulary spells scene descriptions too long for a tiny
    // context: the run says so and names the fix.
    let too_long = fails(&[
        "train",
        "--role",
        "foundation",
        "--data",
        s(&f.data),
        "--tokenizers",
        s(&f.tok),
        "--preset",
        "tiny",
        "--out",
        s(&found),
    ]);
    assert!(
        too_long.contains("scene description of") && too_long.contains("larger vocabulary"),
        "{too_long}"
    );
    assert!(
        !found.join("metrics.jsonl").exists(),
        "a run refused at its first batch left a log behind"
    );
    let tok = f.ckpt.parent().unwrap().join("tok-wide");
    ok(&[
        "tokenizer",
        "train",
        "--data",
        s(&f.data),
        "--out",
        s(&tok),
        "--tiny",
        "--steps",
        "2",
        "--batch",
        "8",
        "--vocab-size",
        "1200",
    ]);
    let out = ok(&[
        "train",
        "--role",
        "foundation",
        "--data",
        s(&f.data),
        "--data",
        s(&f.data),
        "--tokenizers",
        s(&tok),
        "--preset",
        "tiny",
        "--steps",
        "4",
        "--eval-every",
        "2",
        "--eval-examples",
        "4",
        "--out",
        s(&found),
    ]);
    // The data given twice: the held-out rows' second copies are not trained on either.
    assert!(out.contains("on 40 examples, 4 held out"), "{out}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(found.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["dynaboot"]["roles"], serde_json::json!([]));
    let metrics = std::fs::read_to_string(found.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    for task in ["captions", "drawings", "transitions"] {
        let l = last[format!("eval_loss_{task}")].as_f64();
        assert!(l.is_some_and(f64::is_finite), "{task}: {last}");
    }
    assert!(last.get("eval_loss_world").is_none());
    let tuned = f.ckpt.parent().unwrap().join("from-foundation");
    let out = ok(&[
        "train",
        "--role",
        "dynamics",
        "--base",
        s(&found),
        "--data",
        s(&f.data),
        "--steps",
        "2",
        "--eval-examples",
        "4",
        "--out",
        s(&tuned),
    ]);
    assert!(out.contains("all trained, from"), "{out}");
}

#[test]
fn predict_ranks_candidates_and_explain_prints_an_action() {
    let f = fixture();
    let out = f.ckpt.parent().unwrap().join("pred");
    let image = first_input(&f.data);
    let args = |n: &'static str, extra: &[&'static str]| {
        let mut args = predict_args(&f.ckpt, &image, "push the red cube to the left", &out);
        args.extend(["--n", n]);
        args.extend_from_slice(extra);
        args
    };
    ok(&[args("3", &["--seed", "4"]), vec!["--verify", s(&f.ckpt)]].concat());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("predictions.json")).unwrap())
            .unwrap();
    let c = json["candidates"].as_array().unwrap();
    assert_eq!(c.len(), 3);
    let scores: Vec<f64> = c.iter().map(|c| c["log_prob"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    for cand in c {
        let img = image::open(out.join(cand["file"].as_str().unwrap())).unwrap();
        assert_eq!((img.width(), img.height()), (32, 32));
    }

    // A second prediction into the same folder replaces the first only when told to, and then
    // leaves no candidate of the first behind.
    let before = std::fs::read(out.join("predictions.json")).unwrap();
    let e = fails(&args("2", &[]));
    assert!(e.contains(s(&out)) && e.contains("--force"), "{e}");
    assert!(std::fs::read(out.join("predictions.json")).unwrap() == before);
    assert!(out.join("candidate-2.png").exists());
    ok(&args("2", &["--force"]));
    assert!(out.join("candidate-1.png").exists());
    assert!(
        !out.join("candidate-2.png").exists(),
        "a stale candidate of the first run is left"
    );
    let printed = ok(&[
        "explain",
        "--dynamics",
        s(&f.ckpt),
        "--before",
        s(&image),
        "--after",
        s(&first_output(&f.data)),
    ]);
    assert!(printed.contains("log-likelihood"), "{printed}");
    // With a world model, the explanation printed is the best of the proposals it checked.
    let after = first_output(&f.data);
    let base = [
        "explain",
        "--dynamics",
        s(&f.ckpt),
        "--world",
        s(&f.ckpt),
        "--before",
        s(&image),
        "--after",
        s(&after),
    ];
    let explain = |more: &[&'static str]| [&base[..], more].concat();
    let printed = ok(&explain(&["--proposals", "3"]));
    assert!(
        printed.contains("distinct proposals (3 asked for)"),
        "{printed}"
    );
    let first_line = printed.lines().next().unwrap();
    assert!(printed.contains(&format!("  1. {first_line}")), "{printed}");
    let e = refused(&explain(&["--proposals", "0"]));
    assert!(e.contains("--proposals") && e.contains("1 to 64"), "{e}");
    let e = refused(&explain(&["--world-weight", "NaN"]));
    assert!(e.contains("--world-weight"), "{e}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let image = first_input(&f.data);
    let out = dir.path().join("p");
    let predict = |img: &Path, action: &str, ckpt: &Path| {
        let mut args = predict_args(ckpt, img, action, &out);
        args.extend(["--n", "2"]);
        fails(&args)
    };
    assert!(predict(&image, "  ", &f.ckpt).contains("the action is empty"));
    let long = "push the red cube to the left ".repeat(170);
    let e = predict(&image, &long, &f.ckpt);
    assert!(e.contains("tokens long") && e.contains("shorten it"), "{e}");
    let big = dir.path().join("big.png");
    image::RgbImage::new(64, 64).save(&big).unwrap();
    let e = predict(&big, "push the red cube to the left", &f.ckpt);
    assert!(e.contains("64x64") && e.contains("32x32"), "{e}");
    let rgba = dir.path().join("rgba.png");
    image::RgbaImage::new(32, 32).save(&rgba).unwrap();
    assert!(predict(&rgba, "push the red cube to the left", &f.ckpt).contains("4 channel"));

    // A checkpoint whose config does not match its weights.
    let copy = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for e in std::fs::read_dir(&f.ckpt).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
        }
        // Keep the relative reference to the image tokenizer valid.
        let cfg = d.join("config.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
        v["dynaboot"]["vq_path"] = serde_json::json!(f.tok.join("vq").to_str().unwrap());
        std::fs::write(&cfg, serde_json::to_string(&v).unwrap()).unwrap();
        d
    };
    // A copy whose config.json says `field: value`.
    let edited = |name: &str, field: &str, value: serde_json::Value| {
        let d = copy(name);
        let cfg = d.join("config.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
        v[field] = value;
        std::fs::write(&cfg, serde_json::to_string(&v).unwrap()).unwrap();
        d
    };
    let mismatched = edited("mismatched", "intermediate_size", serde_json::json!(80));
    let e = predict(&image, "push the red cube to the left", &mismatched);
    assert!(
        e.contains("mismatched/config.json") && e.contains("`intermediate_size` is 80"),
        "{e}"
    );

    let truncated = copy("truncated");
    let w = truncated.join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let e = predict(&image, "push the red cube to the left", &truncated);
    assert!(e.contains("truncated"), "{e}");

    let e = fails(&[
        "explain",
        "--dynamics",
        s(&f.ckpt.join("nope")),
        "--before",
        s(&image),
        "--after",
        s(&image),
    ]);
    assert!(e.contains("config.json"), "{e}");
    let fresh = dir.path().join("fresh");
    let e = fails(&[train_args(f, s(&fresh), "12"), vec!["--resume"]].concat());
    assert!(e.contains("start without --resume"), "{e}");

    // Sampling settings that mean nothing are refused, not used.
    let sample = |flag: &str, value: &str| {
        let pair = format!("{flag}={value}");
        let mut args = predict_args(&f.ckpt, &image, "push the red cube to the left", &out);
        args.push(&pair);
        refused(&args)
    };
    for t in ["NaN", "-1", "inf", "warm"] {
        let e = sample("--temperature", t);
        assert!(
            e.contains("--temperature") && e.contains("greedy"),
            "{t}: {e}"
        );
    }
    for p in ["0", "1.5", "NaN"] {
        let e = sample("--top-p", p);
        assert!(
            e.contains("--top-p") && e.contains("probability"),
            "{p}: {e}"
        );
    }
    for n in ["0", "100000"] {
        let e = sample("--n", n);
        assert!(e.contains("--n") && e.contains("1 to 1024"), "{n}: {e}");
    }
    assert!(!out.exists(), "a refused predict wrote {}", out.display());
    for (cmd, data) in [("eval", "--data"), ("demo", "--out")] {
        let e = refused(&[
            cmd,
            "--world",
            s(&f.ckpt),
            "--dynamics",
            s(&f.ckpt),
            data,
            s(&dir.path().join("nothing")),
            "--n",
            "5000",
        ]);
        assert!(e.contains("--n") && e.contains("1 to 1024"), "{cmd}: {e}");
    }
    // A checkpoint copied alone (`cp -r`) loses the tokenizer its relative `vq_path` names:
    // the error says what to copy where; a copy of the tokenizer inside the checkpoint serves.
    let alone = dir.path().join("elsewhere/alone");
    std::fs::create_dir_all(&alone).unwrap();
    for e in std::fs::read_dir(&f.ckpt).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), alone.join(e.file_name())).unwrap();
    }
    let e = predict(&image, "push the red cube to the left", &alone);
    assert!(
        e.contains("image tokenizer is missing") && e.contains("vq_path") && e.contains("Copy"),
        "{e}"
    );
    assert_eq!(e.matches("os error").count(), 0, "{e}");
    std::fs::create_dir_all(alone.join("vq")).unwrap();
    for name in ["config.json", "model.safetensors"] {
        std::fs::copy(f.tok.join("vq").join(name), alone.join("vq").join(name)).unwrap();
    }
    let alone_out = dir.path().join("alone-pred");
    let mut args = predict_args(&alone, &image, "push the red cube to the left", &alone_out);
    args.extend(["--n", "1"]);
    ok(&args);
    // A missing file is named once, with the OS's reason once.
    let e = fails(&[
        "explain",
        "--dynamics",
        s(&f.ckpt),
        "--before",
        s(&dir.path().join("no-such.png")),
        "--after",
        s(&image),
    ]);
    assert_eq!(e.matches("os error 2").count(), 1, "{e}");

    // Weights full of NaN (a diverged run) are refused at load, not turned into empty actions.
    let broken = copy("broken");
    let w = broken.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&w, &candle_core::Device::Cpu).unwrap();
    let head = tensors.get_mut("lm_head.weight").unwrap();
    *head = (head.ones_like().unwrap() * f64::NAN).unwrap();
    candle_core::safetensors::save(&tensors, &w).unwrap();
    let e = fails(&[
        "explain",
        "--dynamics",
        s(&broken),
        "--before",
        s(&image),
        "--after",
        s(&image),
    ]);
    assert!(
        e.contains("lm_head.weight") && e.contains("NaN") && e.contains("train again"),
        "{e}"
    );

    // A dataset row may not point outside its folder.
    let escape = dir.path().join("escape");
    std::fs::create_dir_all(&escape).unwrap();
    std::fs::write(
        escape.join("data.json"),
        r#"[{"input": "../../../etc/passwd", "output": "b.png", "instruction": "x", "task": "kubric"}]"#,
    )
    .unwrap();
    let e = fails(&[
        "eval",
        "--world",
        s(&f.ckpt),
        "--data",
        s(&escape),
        "--out",
        s(&dir.path().join("escape.json")),
    ]);
    assert!(
        e.contains("data.json") && e.contains("row 0") && e.contains("leaves the dataset"),
        "{e}"
    );

    // A context too small for two images is the config's fault, not the action's.
    let cramped = edited("cramped", "max_position_embeddings", serde_json::json!(30));
    let e = predict(&image, "push the red cube to the left", &cramped);
    assert!(
        e.contains("config.json")
            && e.contains("field `max_position_embeddings`")
            && e.contains("two images")
            && !e.contains("shorten"),
        "{e}"
    );

    // A context no model could hold (it used to allocate rotary tables for every position).
    let endless = edited(
        "endless",
        "max_position_embeddings",
        serde_json::json!(1_000_000_000u64),
    );
    let e = predict(&image, "push the red cube to the left", &endless);
    assert!(
        e.contains("config.json") && e.contains("max_position_embeddings") && e.contains("4096"),
        "{e}"
    );
    let e = refused(&[
        "bootstrap",
        "--dynamics",
        s(&f.ckpt),
        "--videos",
        s(&f.data),
        "--out",
        s(&dir.path().join("syn")),
        "--keep",
        "0",
    ]);
    assert!(e.contains("--keep") && e.contains("from 1 to"), "{e}");

    // Every size and rate a command line sets is bounded, refused before any work.
    let run_dir = dir.path().join("bounded");
    for (flag, value, says) in [
        ("--lr", "NaN", "learning rate"),
        ("--lr", "-1e-3", "learning rate"),
        ("--weighted", "2", "0 to 1"),
        ("--weighted", "NaN", "0 to 1"),
        ("--batch", "0", "1 to 1024"),
        ("--batch", "100000000", "1 to 1024"),
        ("--accum", "5000", "1 to 1024"),
        ("--steps", "0", "from 1 to"),
        ("--steps", "18446744073709551615", "from 1 to"),
        ("--eval-every", "1e300", "0: only at the end"),
    ] {
        let mut args: Vec<String> = train_args(f, s(&run_dir), "2")
            .into_iter()
            .map(String::from)
            .collect();
        if let Some(i) = args.iter().position(|a| a == flag) {
            args.drain(i..i + 2);
        }
        args.push(format!("{flag}={value}"));
        let e = refused(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(e.contains(flag) && e.contains(says), "{flag} {value}: {e}");
    }
    assert!(!run_dir.exists(), "a refused train created its --out");
    let generated = dir.path().join("gen");
    for (flag, value) in [
        ("--n", "0"),
        ("--n", "1000000000"),
        ("--size", "1000000000"),
    ] {
        let e = refused(&[
            "world",
            "generate",
            "--split",
            "train",
            "--out",
            s(&generated),
            flag,
            value,
        ]);
        assert!(
            e.contains(flag) && e.contains("whole number from"),
            "{flag} {value}: {e}"
        );
    }
    let e = refused(&[
        "tokenizer",
        "train",
        "--data",
        s(&f.data),
        "--out",
        s(&generated),
        "--vocab-size",
        "100",
    ]);
    assert!(e.contains("--vocab-size") && e.contains("256 bytes"), "{e}");
    assert!(!generated.exists(), "a refused command created its --out");
}

/// A held-out set that repeats training rows still trains, with a warning that names it.
#[test]
fn held_out_rows_that_are_also_trained_on_are_reported() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = train_args(f, s(&out), "1");
    args.extend(["--eval", s(&f.data)]);
    let got = dynaboot_tests::run(&args);
    let stderr = String::from_utf8_lossy(&got.stderr);
    assert!(got.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning")
            && stderr.contains("also training rows")
            && stderr.contains(s(&f.data)),
        "{stderr}"
    );
}

/// `predict` of `action` on `image` with the world model `ckpt`, into `out` (add `--n` etc.).
fn predict_args<'a>(
    ckpt: &'a Path,
    image: &'a Path,
    action: &'a str,
    out: &'a Path,
) -> Vec<&'a str> {
    vec![
        "predict",
        "--world",
        s(ckpt),
        "--image",
        s(image),
        "--action",
        action,
        "--out",
        s(out),
    ]
}

/// Trains `steps` steps into `out`, checkpointing every step.
fn train_args<'a>(f: &'a Fixture, out: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--role",
        "world",
        "--data",
        s(&f.data),
        "--tokenizers",
        s(&f.tok),
        "--preset",
        "tiny",
        "--steps",
        steps,
        "--out",
        out,
        "--checkpoint-every",
        "1",
        "--eval-examples",
        "2",
        "--batch",
        "4",
        "--weighted",
        "1",
    ]
}

/// The kill soak: a run killed with SIGKILL at random moments (many land while a checkpoint
/// is being written: it checkpoints every step) and resumed each time ends with the weights
/// and the log of an uninterrupted run, bit for bit. `DYNABOOT_SOAK_KILLS` kills (3 here;
/// `just soak` runs 10); the moments come from a fixed seed.
#[test]
fn a_run_killed_at_random_moments_resumes_to_the_same_weights() {
    let kills: usize = std::env::var("DYNABOOT_SOAK_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(3);
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    // Every write lingers between its temp file and its rename, so kills land inside them.
    const SLOW_WRITES_MS: &str = "20";
    let t0 = std::time::Instant::now();
    let uninterrupted = std::process::Command::new(bin())
        .args(train_args(f, s(&a), "40"))
        .env("DYNABOOT_SLOW_WRITES_MS", SLOW_WRITES_MS)
        .output()
        .unwrap();
    assert!(uninterrupted.status.success());
    let whole = t0.elapsed();
    // A fixed xorshift stream of moments within the first 90 % of a whole run's time.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut moment = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        whole.mul_f64(0.05 + 0.85 * (state % 10_000) as f64 / 10_000.0)
    };
    let (mut during_writes, mut before_first_checkpoint) = (0, 0);
    for _ in 0..kills {
        let mut args = train_args(f, s(&b), "40");
        // Resume what was saved; with nothing saved yet, start over.
        args.push(if b.join("train_state.safetensors").exists() {
            "--resume"
        } else {
            "--force"
        });
        let mut child = std::process::Command::new(bin())
            .args(&args)
            .env("DYNABOOT_SLOW_WRITES_MS", SLOW_WRITES_MS)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(moment());
        child.kill().ok();
        child.wait().unwrap();
        let names: Vec<String> = std::fs::read_dir(&b)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        during_writes += usize::from(names.iter().any(|n| n.ends_with(".tmp")));
        before_first_checkpoint +=
            usize::from(!names.iter().any(|n| n == "train_state.safetensors"));
    }
    let mut args = train_args(f, s(&b), "40");
    if b.join("train_state.safetensors").exists() {
        args.push("--resume");
    } else {
        args.push("--force");
    }
    let last = ok(&args);
    assert!(last.contains("trained to step 40"), "{last}");
    let left: Vec<_> = std::fs::read_dir(&b)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(
        left.is_empty(),
        "the resumed run left half-written files: {left:?}"
    );
    let read = |d: &Path, name: &str| std::fs::read(d.join(name)).unwrap();
    assert!(
        read(&a, "model.safetensors") == read(&b, "model.safetensors"),
        "after {kills} kills ({during_writes} during a checkpoint write, \
         {before_first_checkpoint} before the first) the weights differ from the uninterrupted run"
    );
    let steps = |d: &Path| -> Vec<serde_json::Value> {
        String::from_utf8(read(d, "metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("tokens_per_s");
                v
            })
            .collect()
    };
    assert_eq!(
        steps(&a),
        steps(&b),
        "the log differs from the uninterrupted run's"
    );
    eprintln!(
        "kill soak: {kills} kills, {during_writes} during a checkpoint write, \
         {before_first_checkpoint} before the first checkpoint; weights and log identical"
    );
}

#[test]
fn a_fresh_run_never_replaces_an_earlier_one_unless_forced() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(&train_args(f, s(&out), "3"));
    let snapshot = || {
        let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = snapshot();
    let e = fails(&train_args(f, s(&out), "5"));
    assert!(
        e.contains(s(&out)) && e.contains("--resume") && e.contains("--force"),
        "{e}"
    );
    assert!(
        snapshot() == before,
        "a refused run changed {}",
        out.display()
    );
    let forced = ok(&[train_args(f, s(&out), "5"), vec!["--force"]].concat());
    assert!(forced.contains("trained to step 5"), "{forced}");
    let lines = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(
        lines, 5,
        "the replaced run's log must hold only the new run"
    );
}

/// The first `n` rows of each family of a freshly generated 32-pixel test split, as a json
/// file beside it (the judge needs the sidecars the generator writes).
fn small_test_split(dir: &Path, n: usize) -> PathBuf {
    let data = dir.join("test");
    ok(&[
        "world",
        "generate",
        "--split",
        "test",
        "--out",
        s(&data),
        "--size",
        "32",
    ]);
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(data.join("data.json")).unwrap()).unwrap();
    let picked: Vec<&serde_json::Value> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 50 < n)
        .map(|(_, r)| r)
        .collect();
    let json = data.join("small.json");
    std::fs::write(&json, serde_json::to_string(&picked).unwrap()).unwrap();
    json
}

#[test]
fn eval_reports_the_judge_per_family_with_baselines() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let data = small_test_split(dir.path(), 2);
    let (json, html) = (dir.path().join("eval.json"), dir.path().join("eval.html"));
    let printed = ok(&[
        "eval",
        "--world",
        s(&f.ckpt),
        "--dynamics",
        s(&f.ckpt),
        "--n",
        "4",
        "--data",
        s(&data),
        "--out",
        s(&json),
        "--html",
        s(&html),
    ]);
    assert!(printed.contains("| **average** |"), "{printed}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let avg = r["average"].as_f64().unwrap();
    assert!((0.0..=10.0).contains(&avg), "{avg}");
    let tasks: Vec<&String> = r["per_task"].as_object().unwrap().keys().collect();
    assert_eq!(tasks, ["kubric", "magicbrush", "something", "whatsup"]);
    let ns: Vec<u64> = r["best_of"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [1, 2, 4]);
    assert_eq!(
        r["best_of"][2]["average"], r["average"],
        "the report is best-of-4"
    );
    // Copying the source scores (almost) nothing on the judge; its pixel error is lowest.
    assert!(
        r["copy_source"]["average"].as_f64().unwrap() <= 1.0,
        "{}",
        r["copy_source"]
    );
    assert_eq!(r["rows"], 8);
    let d = &r["dynamics"];
    for key in ["exact", "bleu", "rouge_l", "parsed"] {
        let v = d[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    for key in [
        "random_action",
        "random_observation",
        "copied_observation",
        "swapped_observations",
    ] {
        assert!(d["preference"][key].as_f64().is_some(), "{key}");
    }
    // The world model checks the dynamics model's proposals: the best of them is never worse
    // than what any proposal reaches, and the greedy reading is among them.
    let c = &r["checked_explanations"];
    assert_eq!(c["config"]["proposals"], 8);
    let (exact, any) = (
        c["exact"].as_f64().unwrap(),
        c["any_exact"].as_f64().unwrap(),
    );
    assert!(exact <= any && d["exact"].as_f64().unwrap() <= any, "{c}");
    assert!(
        (1.0..=8.0).contains(&c["distinct"].as_f64().unwrap()),
        "{c}"
    );
    assert!(
        printed.contains("Explanations checked by the world model"),
        "{printed}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("data:image/png;base64,") && page.contains("kubric"));
}

#[test]
fn bootstrap_labels_videos_and_feeds_training() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let (videos, syn) = (dir.path().join("videos"), dir.path().join("syn"));
    ok(&[
        "world",
        "generate",
        "--split",
        "videos",
        "--n",
        "3",
        "--out",
        s(&videos),
        "--size",
        "32",
    ]);
    let bootstrap = |keep: &'static str, more: &[&'static str]| {
        let base = [
            "bootstrap",
            "--dynamics",
            s(&f.ckpt),
            "--videos",
            s(&videos),
            "--out",
            s(&syn),
            "--keep",
            keep,
        ];
        [&base[..], more].concat()
    };
    // A first run with more pairs, replaced below: refused without --force, and --force
    // leaves none of its frames behind.
    ok(&bootstrap("8", &[]));
    let first = std::fs::read(syn.join("data.json")).unwrap();
    let e = fails(&bootstrap("4", &[]));
    assert!(e.contains("--force") && e.contains(s(&syn)), "{e}");
    assert!(std::fs::read(syn.join("data.json")).unwrap() == first);
    let printed = ok(&bootstrap("4", &["--force"]));
    assert!(printed.contains("annotator vs hidden labels"), "{printed}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(syn.join("bootstrap.json")).unwrap())
            .unwrap();
    let kept = report["kept"].as_u64().unwrap();
    assert!(kept <= 4 && kept <= report["pairs"].as_u64().unwrap());
    assert!(report["quality_all"]["pair_precision"].as_f64().is_some());
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(syn.join("data.json")).unwrap()).unwrap();
    assert_eq!(rows.len() as u64, kept);
    let images = std::fs::read_dir(syn.join("images")).unwrap().count() as u64;
    assert_eq!(images, 2 * kept, "a frame of the replaced run is left");
    for r in &rows {
        assert_eq!(r["task"], "synthetic");
        assert!(syn.join(r["input"].as_str().unwrap()).is_file());
        assert!(
            r.get("action").is_none(),
            "hidden labels never reach the synthetic data"
        );
    }
    if kept > 0 {
        let out = dir.path().join("fdm");
        let mut args = train_args(f, s(&out), "2");
        args.extend(["--synthetic", s(&syn)]);
        let printed = ok(&args);
        assert!(
            printed.contains(&format!("+ {kept} synthetic examples")),
            "{printed}"
        );
    }
}

#[test]
fn demo_and_export_run_on_given_checkpoints() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let shipped = dir.path().join("shipped");
    ok(&["export", "--from", s(&f.ckpt), "--to", s(&shipped)]);
    // Exporting again must not silently replace it, and a folder is never its own export
    // (that once emptied metrics.jsonl and turned the weights to f16 in place).
    let before = std::fs::read(shipped.join("model.safetensors")).unwrap();
    let e = fails(&[
        "export",
        "--from",
        s(&f.ckpt),
        "--to",
        s(&shipped),
        "--full",
    ]);
    assert!(e.contains("--force") && e.contains(s(&shipped)), "{e}");
    let e = fails(&[
        "export",
        "--from",
        s(&shipped),
        "--to",
        s(&shipped),
        "--force",
    ]);
    assert!(e.contains("same folder"), "{e}");
    assert!(std::fs::read(shipped.join("model.safetensors")).unwrap() == before);
    let metrics = std::fs::read(f.ckpt.join("metrics.jsonl")).unwrap();
    assert!(std::fs::read(shipped.join("metrics.jsonl")).unwrap() == metrics);
    let size = |p: &Path| {
        std::fs::metadata(p.join("model.safetensors"))
            .unwrap()
            .len()
    };
    assert!(
        size(&shipped) * 10 < size(&f.ckpt) * 6,
        "f16 halves the weights"
    );
    let out = dir.path().join("demo");
    let printed = ok(&[
        "demo",
        "--world",
        s(&shipped),
        "--dynamics",
        s(&f.ckpt),
        "--per-family",
        "1",
        "--n",
        "2",
        "--out",
        s(&out),
    ]);
    for family in ["kubric", "something", "whatsup", "magicbrush", "average"] {
        assert!(printed.contains(&format!("| {family} |")), "{printed}");
    }
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("<img"), "examples are in the report");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["world"]["rows"], 4);
    // A missing model is a clear error, not a panic.
    let err = fails(&[
        "demo",
        "--world",
        s(&dir.path().join("nope")),
        "--out",
        s(&out),
    ]);
    assert!(err.contains("--world"), "{err}");
}
