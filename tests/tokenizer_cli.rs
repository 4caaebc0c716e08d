//! End to end: `dynaboot tokenizer train|eval` on a small generated dataset.

use dynaboot::tokenize::{ImageTokenizer, TextTokenizer};
use dynaboot_tests::{fails, ok, s};

#[test]
fn train_then_eval_tiny_tokenizers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tok = dir.path().join("tok");
    ok(&[
        "world",
        "generate",
        "--split",
        "train",
        "--n",
        "12",
        "--out",
        s(&data),
        "--size",
        "32",
    ]);
    let out = ok(&[
        "tokenizer",
        "train",
        "--data",
        s(&data),
        "--out",
        s(&tok),
        "--tiny",
        "--steps",
        "20",
        "--batch",
        "8",
        "--vocab-size",
        "320",
    ]);
    assert!(
        out.contains("text tokenizer") && out.contains("image tokenizer"),
        "{out}"
    );
    let text = TextTokenizer::load(&tok.join("tokenizer.json")).unwrap();
    assert_eq!(text.vocab_size(), 320);
    let vq = ImageTokenizer::load(&tok.join("vq"), &candle_core::Device::Cpu).unwrap();
    assert_eq!(vq.config.tokens_per_image(), 16);

    // The VQ's size is chosen on the command line: two stages give a 8x8 grid for 32x32.
    let sized = dir.path().join("sized");
    let args = |channels: &'static str| {
        let mut a = vec!["tokenizer", "train", "--data", s(&data), "--out", s(&sized)];
        a.extend(["--steps", "3", "--batch", "4", "--vocab-size", "320"]);
        a.extend(["--channels", channels, "--codebook", "24"]);
        a
    };
    ok(&args("8,12"));
    let vq = ImageTokenizer::load(&sized.join("vq"), &candle_core::Device::Cpu).unwrap();
    assert_eq!(vq.config.tokens_per_image(), 64);
    assert_eq!(vq.config.codebook_size, 24);
    assert_eq!(vq.config.channels, vec![8, 12]);
    assert!(!vq.config.local_encoder);
    let mut local = args("8,12");
    local.push("--local-encoder");
    ok(&local);
    let vq = ImageTokenizer::load(&sized.join("vq"), &candle_core::Device::Cpu).unwrap();
    assert!(vq.config.local_encoder, "{:?}", vq.config);
    let e = fails(&args("8,8,8,8,8,8"));
    assert!(
        e.contains("--channels") && e.contains("divide the image side (32)"),
        "{e}"
    );

    // --decoder-only keeps every token id: the text tokenizer and the code fingerprint stay,
    // only the decoder's weights move.
    let fingerprint = || dynaboot::model::checkpoint::vq_fingerprint(&tok.join("vq")).unwrap();
    let (text_before, fp_before) = (
        std::fs::read(tok.join("tokenizer.json")).unwrap(),
        fingerprint(),
    );
    let weights_before = std::fs::read(tok.join("vq/model.safetensors")).unwrap();
    let init = dir.path().join("init");
    std::fs::create_dir_all(&init).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(tok.join("vq").join(f), init.join(f)).unwrap();
    }
    let out = ok(&[
        "tokenizer",
        "train",
        "--data",
        s(&data),
        "--out",
        s(&tok),
        "--init",
        s(&init),
        "--decoder-only",
        "--steps",
        "5",
        "--batch",
        "4",
        "--vocab-size",
        "300",
    ]);
    assert!(out.contains("left as it is"), "{out}");
    assert_eq!(
        std::fs::read(tok.join("tokenizer.json")).unwrap(),
        text_before
    );
    assert_eq!(fingerprint(), fp_before);
    assert_ne!(
        std::fs::read(tok.join("vq/model.safetensors")).unwrap(),
        weights_before
    );

    // A wider decoder with residual blocks, trained from scratch on the same frozen codes:
    // still the same ids; the config records the decoder, and eval below loads it.
    let wider = |channels: &'static str| {
        vec![
            "tokenizer",
            "train",
            "--data",
            s(&data),
            "--out",
            s(&tok),
            "--init",
            s(&init),
            "--decoder-only",
            "--decoder-channels",
            channels,
            "--decoder-blocks",
            "1",
            "--steps",
            "5",
            "--batch",
            "4",
        ]
    };
    let e = fails(&wider("8,8"));
    assert!(
        e.contains("decoder_channels") && e.contains("--decoder-channels"),
        "{e}"
    );
    let out = ok(&wider("12,20,24"));
    assert!(out.contains("widths [12, 20, 24]"), "{out}");
    assert_eq!(fingerprint(), fp_before);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tok.join("vq/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["decoder_channels"], serde_json::json!([12, 20, 24]));
    assert_eq!(config["decoder_blocks"], 1);

    let json = dir.path().join("eval.json");
    let printed = ok(&[
        "tokenizer",
        "eval",
        "--tokenizers",
        s(&tok),
        "--data",
        s(&data),
        "--limit",
        "4",
        "--json",
        s(&json),
    ]);
    assert!(printed.contains("PSNR"), "{printed}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["images"], 8);
    let psnr = report["psnr"].as_f64().unwrap();
    assert!(psnr > 5.0 && psnr < 60.0, "{psnr}");
    // Locality on the 4 (source, target) pairs: every token of each edited pair counted once.
    let l = &report["locality"];
    let pairs = l["pairs"].as_u64().unwrap();
    assert!((1..=4).contains(&pairs), "{l}");
    let tokens: u64 = l["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .sum();
    assert_eq!(tokens, pairs * 16, "{l}");
    assert!(printed.contains("distance 4+"), "{printed}");

    // A config that does not match the weights is refused with the file named.
    let cfg = tok.join("vq/config.json");
    let changed = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"code_dim\": 8", "\"code_dim\": 9");
    std::fs::write(&cfg, changed).unwrap();
    let e = fails(&[
        "tokenizer",
        "eval",
        "--tokenizers",
        s(&tok),
        "--data",
        s(&data),
    ]);
    assert!(
        e.contains("vq/config.json") && e.contains("`code_dim` is 9") && e.contains("back to 8"),
        "{e}"
    );
    // A truncated weights file is refused too.
    let w = tok.join("vq/model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let e = fails(&[
        "tokenizer",
        "eval",
        "--tokenizers",
        s(&tok),
        "--data",
        s(&data),
    ]);
    assert!(e.contains("model.safetensors"), "{e}");
}

/// The shipped tokenizers load with today's code and still reconstruct the world: this fails
/// when someone changes the VQ architecture without retraining `models/`.
#[test]
fn shipped_tokenizers_load_and_reconstruct() {
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let text = TextTokenizer::load(&models.join("tokenizer.json")).unwrap();
    let ids = text.encode("put the red ball into the blue bowl").unwrap();
    assert_eq!(
        text.decode(&ids).unwrap(),
        "put the red ball into the blue bowl"
    );
    let vq = ImageTokenizer::load(&models.join("vq"), &candle_core::Device::Cpu).unwrap();
    let scenes: Vec<_> = dynaboot::world::generate::test_split()
        .into_iter()
        .take(8)
        .map(|t| t.source)
        .collect();
    let imgs: Vec<_> = scenes
        .iter()
        .map(|s| dynaboot::world::render::render_scene(s, Default::default()))
        .collect();
    let recon = vq.reconstruct(&imgs).unwrap();
    let psnr: f64 = imgs
        .iter()
        .zip(&recon)
        .map(|(a, b)| dynaboot::tokenize::vq::psnr(a, b))
        .sum::<f64>()
        / 8.0;
    assert!(psnr > 27.0, "shipped VQ reconstructs at {psnr:.1} dB");
}
