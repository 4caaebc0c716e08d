//! End to end: `dynaboot world generate|show` write AURORA folders that load back.

use dynaboot::data::{AuroraDataset, VideoDataset};
use dynaboot::world::{Family, parse};
use dynaboot_tests::{fails, ok, s};

#[test]
fn generate_train_split_and_show_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("train");
    ok(&[
        "world",
        "generate",
        "--split",
        "train",
        "--n",
        "8",
        "--seed",
        "3",
        "--out",
        s(&out),
    ]);
    let ds = AuroraDataset::load(&out).unwrap();
    assert_eq!(ds.rows.len(), 8);
    for (i, row) in ds.rows.iter().enumerate() {
        let side = row
            .sidecar
            .as_ref()
            .expect("generated rows carry their ground truth");
        assert_eq!(parse(&row.instruction).unwrap(), side.action);
        assert_eq!(
            side.action.apply(&side.source_state).unwrap(),
            side.target_state
        );
        assert_eq!(row.family, side.action.family().name());
        assert_eq!(ds.input_image(i).unwrap().dimensions(), (64, 64));
        assert!(ds.output_image(i).unwrap().is_some());
    }
    let png = dir.path().join("row.png");
    let printed = ok(&[
        "world",
        "show",
        "--data",
        s(&out),
        "--index",
        "2",
        "--out",
        s(&png),
    ]);
    assert!(printed.contains(&ds.rows[2].instruction));
    let sheet = image::open(&png).unwrap();
    assert!(
        sheet.width() > 2 * sheet.height() - 10,
        "source and target side by side"
    );
}

#[test]
fn test_split_is_fixed_and_balanced() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&["world", "generate", "--split", "test", "--out", s(&a)]);
    ok(&[
        "world",
        "generate",
        "--split",
        "test",
        "--seed",
        "99",
        "--out",
        s(&b),
    ]);
    let ds = AuroraDataset::load(&a).unwrap();
    assert_eq!(ds.rows.len(), 200);
    for fam in Family::ALL {
        assert_eq!(
            ds.rows.iter().filter(|r| r.family == fam.name()).count(),
            50
        );
    }
    for f in [
        "data.json",
        "images/00123_input.png",
        "images/00123_output.png",
    ] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
}

#[test]
fn videos_and_large_images() {
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("videos");
    ok(&[
        "world",
        "generate",
        "--split",
        "videos",
        "--n",
        "2",
        "--out",
        s(&v),
        "--size",
        "32",
    ]);
    let ds = VideoDataset::load(&v).unwrap();
    assert_eq!(ds.videos.len(), 2);
    let frames = ds.frames(0).unwrap();
    assert!(frames.len() > 20 && frames[0].dimensions() == (32, 32));
    let labels = ds.labels_for_evaluation().unwrap();
    assert!(labels[0].segments.iter().all(|seg| seg.end < frames.len()));

    let big = dir.path().join("big");
    ok(&[
        "world",
        "generate",
        "--split",
        "train",
        "--n",
        "2",
        "--out",
        s(&big),
        "--size",
        "128",
    ]);
    assert_eq!(
        AuroraDataset::load(&big)
            .unwrap()
            .input_image(0)
            .unwrap()
            .dimensions(),
        (128, 128)
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    assert!(fails(&["world", "show", "--data", s(&missing)]).contains("missing"));
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("data.json"),
        r#"[{"input": "a.png", "instruction": "x"}, {"task": "kubric"}]"#,
    )
    .unwrap();
    let e = fails(&["world", "show", "--data", s(&bad), "--index", "0"]);
    assert!(
        e.contains("data.json") && e.contains("row 1") && e.contains("`input`"),
        "{e}"
    );
    let e = fails(&[
        "world",
        "generate",
        "--split",
        "train",
        "--n",
        "1",
        "--size",
        "50",
        "--out",
        s(&bad),
    ]);
    assert!(e.contains("--size"), "{e}");
    let e = fails(&[
        "world",
        "generate",
        "--split",
        "test",
        "--n",
        "5",
        "--out",
        s(&bad),
    ]);
    assert!(e.contains("fixed"), "{e}");
    let ok_dir = dir.path().join("ok");
    ok(&[
        "world",
        "generate",
        "--split",
        "train",
        "--n",
        "1",
        "--out",
        s(&ok_dir),
    ]);
    let e = fails(&["world", "show", "--data", s(&ok_dir), "--index", "7"]);
    assert!(e.contains("has 1 rows"), "{e}");
}

#[test]
fn generate_keeps_a_dataset_it_did_not_write_in_this_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    let args = |n: &'static str| {
        vec![
            "world",
            "generate",
            "--split",
            "train",
            "--n",
            n,
            "--size",
            "32",
            "--out",
            s(&out),
        ]
    };
    ok(&args("6"));
    let data = || std::fs::read(out.join("data.json")).unwrap();
    let before = data();
    let again = ok(&args("6"));
    assert!(again.contains("nothing to do"), "{again}");
    let e = fails(&args("4"));
    assert!(
        e.contains(s(&out)) && e.contains("--force") && e.contains("data.json"),
        "{e}"
    );
    assert!(data() == before, "a refused run changed data.json");
    ok(&[args("4"), vec!["--force"]].concat());
    assert_eq!(AuroraDataset::load(&out).unwrap().rows.len(), 4);
}

/// A `--force` rewrite that stops half-way (here an image it cannot write; a kill or a full
/// disk alike) leaves a folder every command refuses, never the old rows beside new images.
#[test]
fn an_interrupted_rewrite_leaves_no_dataset_to_mistake_for_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    let args = |seed: &'static str| {
        vec![
            "world",
            "generate",
            "--split",
            "train",
            "--n",
            "6",
            "--seed",
            seed,
            "--size",
            "32",
            "--out",
            s(&out),
            "--force",
        ]
    };
    ok(&args("0"));
    // The fourth row's image cannot be written: a folder holds its name.
    let blocked = out.join("images/00003_input.png");
    std::fs::remove_file(&blocked).unwrap();
    std::fs::create_dir(&blocked).unwrap();
    let e = fails(&args("1"));
    assert!(e.contains("00003_input.png"), "{e}");
    assert!(
        !out.join("data.json").exists(),
        "the old rows survived the rewrite"
    );
    let e = fails(&[
        "world",
        "show",
        "--data",
        s(&out),
        "--out",
        s(&dir.path().join("s.png")),
    ]);
    assert!(e.contains("data.json"), "{e}");
}

/// Two runs never write into one folder at once: the second is refused while the first is
/// alive, and the folder is free again once it ends (here: killed).
#[test]
fn a_second_run_on_an_output_folder_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    let args = |n: &str| {
        let words = [
            "world", "generate", "--split", "train", "--size", "32", "--out",
        ];
        let mut v: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        v.extend([s(&out).to_string(), "--n".into(), n.into()]);
        v
    };
    let mut first = std::process::Command::new(dynaboot_tests::bin())
        .args(args("3000"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The first run has claimed the folder once it has written an image into it.
    let started = std::time::Instant::now();
    while !out.join("images").exists() {
        assert!(
            started.elapsed().as_secs() < 60,
            "the first run wrote nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second: Vec<String> = args("4");
    let e = fails(&second.iter().map(|a| a.as_str()).collect::<Vec<_>>());
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        e.contains(s(&out)) && e.contains("another dynaboot run"),
        "{e}"
    );
    ok(&[
        second.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        vec!["--force"],
    ]
    .concat());
    assert_eq!(AuroraDataset::load(&out).unwrap().rows.len(), 4);
}
