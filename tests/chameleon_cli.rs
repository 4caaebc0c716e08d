//! End to end on the tiny real-architecture Chameleon fixture: `dynaboot logits` matches
//! transformers, `train --base --lora` writes an adapter, `predict` / `explain` run with
//! `--base --adapter --vqgan`, `merge` folds the adapter in (the merged folder is itself a
//! base with the adapted logits), and bad input gets a clear message.

use dynaboot_tests::{chameleon_fixture, fails, ok, s, square_scene};
use image::{Rgb, RgbImage};
use std::path::Path;

/// An AURORA folder of 32x32 triplets in the fixture's words.
fn aurora(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut rows = Vec::new();
    for (k, (word, colour)) in [
        ("red", [220, 30, 30]),
        ("green", [30, 200, 40]),
        ("blue", [40, 40, 220]),
    ]
    .into_iter()
    .enumerate()
    {
        for (j, (from, to, verb, side)) in [(20, 2, "move", "left"), (2, 20, "push", "right")]
            .into_iter()
            .enumerate()
        {
            let (a, b) = (format!("{k}{j}-in.png"), format!("{k}{j}-out.png"));
            square_scene(from, colour).save(dir.join(&a)).unwrap();
            square_scene(to, colour).save(dir.join(&b)).unwrap();
            rows.push(serde_json::json!({"input": a, "output": b,
                "instruction": format!("{verb} the {word} cube to {side}"), "task": "kubric"}));
        }
    }
    std::fs::write(
        dir.join("train.json"),
        serde_json::to_string(&rows).unwrap(),
    )
    .unwrap();
}

fn logits(args: &[&str]) -> Vec<Vec<f32>> {
    let out = ok(&[&["logits", "--json"], args].concat());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    serde_json::from_value(v["logits"].clone()).unwrap()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn logits_train_predict_explain_merge_on_a_real_architecture_checkpoint() {
    let fx = chameleon_fixture();
    let tmp = tempfile::tempdir().unwrap();
    let (data, adapter, merged, pred) = (
        tmp.path().join("data"),
        tmp.path().join("adapter"),
        tmp.path().join("merged"),
        tmp.path().join("pred"),
    );
    aurora(&data);

    // logits == transformers' (the reference's first sequence).
    let r =
        candle_core::safetensors::load(fx.join("reference.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    let ids: Vec<i64> = r["ids.0"].to_vec1().unwrap();
    let want: Vec<Vec<f32>> = r["logits.0"].to_vec2().unwrap();
    let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let ids = ids.join(",");
    let base_logits = logits(&["--base", s(&fx), "--tokens", &ids]);
    let scale = want.iter().flatten().fold(0f32, |m, x| m.max(x.abs()));
    assert!(max_diff(&base_logits, &want) / scale <= 1e-4);

    let out = ok(&[
        "train",
        "--role",
        "both",
        "--base",
        s(&fx),
        "--lora",
        "r=4,alpha=8",
        "--data",
        s(&data),
        "--steps",
        "12",
        "--batch",
        "4",
        "--lr",
        "3e-3",
        "--eval-examples",
        "2",
        "--vqgan",
        &format!("{}", fx.join("vqgan.ckpt").display()),
        "--out",
        s(&adapter),
    ]);
    assert!(out.contains("adapters only"), "{out}");
    assert!(
        adapter.join("adapter_config.json").exists()
            && adapter.join("adapter_model.safetensors").exists()
    );
    assert!(!adapter.join("model.safetensors").exists());

    let src = tmp.path().join("src.png");
    square_scene(20, [220, 30, 30]).save(&src).unwrap();
    let model = [
        "--base",
        s(&fx),
        "--adapter",
        s(&adapter),
        "--vqgan",
        &format!("{}", fx.join("vqgan.ckpt").display()),
    ];
    ok(&[
        &["predict"],
        &model[..],
        &[
            "--image",
            s(&src),
            "--action",
            "move the red cube to left",
            "--n",
            "3",
            "--verify-adapter",
            s(&adapter),
            "--out",
            s(&pred),
        ],
    ]
    .concat());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pred.join("predictions.json")).unwrap())
            .unwrap();
    let c = json["candidates"].as_array().unwrap();
    assert_eq!(c.len(), 3);
    let scores: Vec<f64> = c.iter().map(|c| c["log_prob"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(
        image::open(pred.join("candidate-0.png")).unwrap().width(),
        32
    );
    let said = ok(&[
        &["explain"],
        &model[..],
        &[
            "--before",
            s(&src),
            "--after",
            s(&pred.join("candidate-0.png")),
        ],
    ]
    .concat());
    assert!(said.contains("log-likelihood"), "{said}");

    // An adapter folder is a checkpoint like any other (its base and VQGAN are recorded).
    let pred2 = tmp.path().join("pred2");
    ok(&[
        "predict",
        "--world",
        s(&adapter),
        "--verify",
        s(&adapter),
        "--image",
        s(&src),
        "--action",
        "move the red cube to left",
        "--n",
        "3",
        "--out",
        s(&pred2),
    ]);
    assert_eq!(
        std::fs::read(pred.join("predictions.json")).unwrap(),
        std::fs::read(pred2.join("predictions.json")).unwrap(),
        "the same model, the same seed: the same predictions"
    );

    // Chameleon's preprocessing takes any size (centre crop, then resize).
    let wide = tmp.path().join("wide.png");
    RgbImage::from_fn(48, 40, |i, _| Rgb([(i * 5) as u8, 90, 200]))
        .save(&wide)
        .unwrap();
    let said = ok(&[
        &["explain", "--dynamics", s(&adapter)][..],
        &["--before", s(&wide), "--after", s(&src)],
    ]
    .concat());
    assert!(said.contains("log-likelihood"), "{said}");

    // Merge: the merged folder is an HF base whose logits are the adapted model's.
    let merge = |out: &Path, force: bool| -> Vec<String> {
        let mut args = vec![
            "merge",
            "--base",
            s(&fx),
            "--adapter",
            s(&adapter),
            "--out",
            s(out),
        ];
        if force {
            args.push("--force");
        }
        args.into_iter().map(String::from).collect()
    };
    ok(&as_refs(&merge(&merged, false)));
    let adapted = logits(&["--base", s(&fx), "--adapter", s(&adapter), "--tokens", &ids]);
    let merged_logits = logits(&["--base", s(&merged), "--tokens", &ids]);
    assert!(max_diff(&adapted, &merged_logits) < 1e-5);
    assert!(
        max_diff(&adapted, &base_logits) > 1e-4,
        "the adapter changed the model"
    );

    // Merging into an input folder or over a checkpoint is refused; --force replaces the
    // checkpoint whole (no old shard left to load beside the merged weights).
    let snapshot = |dir: &Path| -> Vec<(std::ffi::OsString, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                (
                    p.file_name().unwrap().to_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    let (base_before, adapter_before) = (snapshot(&fx), snapshot(&adapter));
    for input in [&fx, &adapter] {
        let e = fails(&as_refs(&merge(input, true)));
        assert!(e.contains("merge into a new folder"), "{e}");
    }
    assert!(snapshot(&fx) == base_before && snapshot(&adapter) == adapter_before);
    let stale = merged.join("model-00002-of-00002.safetensors");
    std::fs::write(&stale, b"an old shard").unwrap();
    let merged_before = snapshot(&merged);
    let e = fails(&as_refs(&merge(&merged, false)));
    assert!(
        e.contains("already holds a checkpoint") && e.contains("--force"),
        "{e}"
    );
    assert!(
        snapshot(&merged) == merged_before,
        "a refused merge changed its --out"
    );
    ok(&as_refs(&merge(&merged, true)));
    assert!(
        !stale.exists(),
        "--force left an old shard beside the merged weights"
    );
    let again = logits(&["--base", s(&merged), "--tokens", &ids]);
    assert!(max_diff(&adapted, &again) < 1e-5);
}

#[test]
fn bad_base_and_lora_input_gets_clear_messages() {
    let fx = chameleon_fixture();
    let tmp = tempfile::tempdir().unwrap();
    let e = fails(&["logits", "--base", s(tmp.path()), "--tokens", "1,2"]);
    assert!(e.contains("config.json"), "{e}");
    let e = fails(&["logits", "--base", s(&fx), "--tokens", "1,5000"]);
    assert!(e.contains("5000") && e.contains("vocabulary"), "{e}");
    let e = fails(&[
        "train",
        "--role",
        "world",
        "--base",
        s(&fx),
        "--lora",
        "r=0",
        "--data",
        s(tmp.path()),
        "--out",
        s(tmp.path()),
    ]);
    assert!(e.contains("rank") && e.contains("--lora"), "{e}");
    let e = fails(&[
        "predict",
        "--base",
        s(&fx),
        "--image",
        s(&fx.join("nope.png")),
        "--action",
        "move",
        "--out",
        s(tmp.path()),
    ]);
    assert!(e.contains("nope.png"), "{e}");
    let e = fails(&[
        "logits",
        "--base",
        s(&fx),
        "--adapter",
        s(tmp.path()),
        "--tokens",
        "1",
    ]);
    assert!(e.contains("adapter_config.json"), "{e}");
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
