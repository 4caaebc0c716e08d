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
        e.contains("model.safetensors") && e.contains("do not match"),
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
