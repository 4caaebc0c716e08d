//! The hostile user's corpus: every command run on bad input with the shipped models fails
//! cleanly (exit 2 for a refused argument, 1 for a failed command; never a panic), names the
//! file, field or flag at fault and what to do, and leaves every file of the user's folder as
//! it was (no file changed, added or removed).

use dynaboot_tests::{ok, run};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

struct Case {
    name: &'static str,
    /// Prepares the user's folder (besides `scene.png`, a valid 64x64 image).
    setup: fn(&Path),
    /// The command line, run in the user's folder; `{models}` is the repository's models/.
    args: &'static [&'static str],
    exit: i32,
    /// What the message must say: the file, field or flag at fault, and the fix.
    says: &'static [&'static str],
}

const ACTION: &str = "push the red cube to the left";

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn nothing(_: &Path) {}

fn png(dir: &Path, name: &str, img: image::DynamicImage) {
    img.save(dir.join(name)).unwrap();
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A copy of a shipped checkpoint (and of the image tokenizer its `vq_path` names).
fn copy_checkpoint(dir: &Path, name: &str, to: &str) {
    for (from, to) in [(name, to), ("vq", "vq")] {
        let (src, dst) = (models().join(from), dir.join(to));
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(&src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

/// The world model's copy in `w/` with one field of its config.json changed.
fn edited_config(dir: &Path, field: &str, value: serde_json::Value) {
    copy_checkpoint(dir, "world", "w");
    let path = dir.join("w/config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v[field] = value;
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// A dataset `ds/` whose data.json is `rows` (images: `ds/a.png`, a valid scene).
fn dataset(dir: &Path, rows: &str) {
    std::fs::create_dir_all(dir.join("ds")).unwrap();
    png(dir, "ds/a.png", scene());
    write(dir, "ds/data.json", rows);
}

fn scene() -> image::DynamicImage {
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 4) as u8, 120])
    }))
}

const ROW: &str = r#"[{"input": "a.png", "output": "a.png", "instruction": "push the red cube to the left", "task": "kubric"}]"#;

const CASES: &[Case] = &[
    // predict: images
    Case {
        name: "predict, image missing",
        setup: nothing,
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "nope.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["nope.png", "No such file"],
    },
    Case {
        name: "predict, image is a device that never ends",
        setup: nothing,
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "/dev/zero",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["/dev/zero", "is a device", "give an image"],
    },
    Case {
        name: "predict, a folder for a checkpoint's config",
        setup: |d| std::fs::create_dir_all(d.join("ckpt/config.json")).unwrap(),
        args: &[
            "predict", "--world", "ckpt", "--image", "nope.png", "--action", ACTION, "--out", "out",
        ],
        exit: 1,
        says: &["config.json", "is a folder", "give a JSON file"],
    },
    Case {
        name: "predict, image not an image",
        setup: |d| write(d, "text.png", "hello"),
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "text.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["text.png", "cannot decode", "PNG and JPEG"],
    },
    Case {
        name: "predict, image of the wrong size",
        setup: |d| {
            png(
                d,
                "small.png",
                scene().resize_exact(32, 32, image::imageops::FilterType::Nearest),
            )
        },
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "small.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["small.png", "32x32", "64x64", "resize"],
    },
    Case {
        name: "predict, image with alpha",
        setup: |d| {
            png(
                d,
                "rgba.png",
                image::DynamicImage::ImageRgba8(scene().to_rgba8()),
            )
        },
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "rgba.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["rgba.png", "4 channel", "convert"],
    },
    Case {
        name: "predict, grey image",
        setup: |d| {
            png(
                d,
                "grey.png",
                image::DynamicImage::ImageLuma8(scene().to_luma8()),
            )
        },
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "grey.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["grey.png", "1 channel", "convert"],
    },
    // predict: actions and sampling
    Case {
        name: "predict, empty action",
        setup: nothing,
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "scene.png",
            "--action",
            "   ",
            "--out",
            "out",
        ],
        exit: 1,
        says: &["the action is empty", "describe the change"],
    },
    Case {
        name: "predict, action longer than the context",
        setup: nothing,
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "scene.png",
            "--action",
            "push the red cube to the left and then push the blue ball to the right and then turn the green cup upside down and then open the yellow box and then close it again and then make the purple cone bigger",
            "--out",
            "out",
        ],
        exit: 1,
        says: &["tokens long", "shorten it"],
    },
    Case {
        name: "predict, no candidates",
        setup: nothing,
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
            "--n",
            "0",
        ],
        exit: 2,
        says: &["--n", "1 to 1024"],
    },
    Case {
        name: "predict, a hundred thousand candidates",
        setup: nothing,
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
            "--n",
            "100000",
        ],
        exit: 2,
        says: &["--n", "1 to 1024"],
    },
    Case {
        name: "predict, temperature NaN",
        setup: nothing,
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
            "--temperature",
            "NaN",
        ],
        exit: 2,
        says: &["--temperature", "greedy"],
    },
    Case {
        name: "predict, negative temperature",
        setup: nothing,
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
            "--temperature=-1",
        ],
        exit: 2,
        says: &["--temperature", "positive number samples"],
    },
    Case {
        name: "predict, top-p 0",
        setup: nothing,
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
            "--top-p",
            "0",
        ],
        exit: 2,
        says: &["--top-p", "probability"],
    },
    Case {
        name: "predict, top-p above 1",
        setup: nothing,
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
            "--top-p",
            "1.5",
        ],
        exit: 2,
        says: &["--top-p", "at most 1"],
    },
    // predict: checkpoints
    Case {
        name: "predict, checkpoint folder missing",
        setup: nothing,
        args: &[
            "predict",
            "--world",
            "nowhere",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["nowhere/config.json", "No such file"],
    },
    Case {
        name: "predict, a dynamics model as the world model",
        setup: nothing,
        args: &[
            "predict",
            "--world",
            "{models}/dynamics",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["--world", "not as a world model", "--role world"],
    },
    Case {
        name: "predict, a world model as the verifier",
        setup: nothing,
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--verify",
            "{models}/foundation",
            "--n",
            "2",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["--verify", "not as a dynamics model", "--role dynamics"],
    },
    Case {
        name: "predict, into an earlier prediction",
        setup: |d| {
            write(d, "out/predictions.json", "{}");
            png(d, "out/candidate-0.png", scene());
        },
        args: &[
            "predict",
            "--world",
            "{models}/world",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["--out out", "earlier prediction", "--force"],
    },
    Case {
        name: "predict, config.json not JSON",
        setup: |d| {
            copy_checkpoint(d, "world", "w");
            write(d, "w/config.json", "{ not json");
        },
        args: &[
            "predict",
            "--world",
            "w",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["w/config.json", "dynaboot train"],
    },
    Case {
        name: "predict, config.json that does not match the weights",
        setup: |d| edited_config(d, "intermediate_size", serde_json::json!(80)),
        args: &[
            "predict",
            "--world",
            "w",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &[
            "w/config.json",
            "`intermediate_size` is 80",
            "saved with 512",
            "set `intermediate_size` back to 512",
        ],
    },
    Case {
        name: "predict, a context of a billion positions",
        setup: |d| {
            edited_config(
                d,
                "max_position_embeddings",
                serde_json::json!(1_000_000_000u64),
            )
        },
        args: &[
            "predict",
            "--world",
            "w",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["w/config.json", "max_position_embeddings", "set it to"],
    },
    Case {
        name: "predict, a context too small for two images",
        setup: |d| edited_config(d, "max_position_embeddings", serde_json::json!(30)),
        args: &[
            "predict",
            "--world",
            "w",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &[
            "w/config.json",
            "`max_position_embeddings`",
            "cannot hold two images",
            "set it to",
        ],
    },
    Case {
        name: "predict, vocabulary of the wrong size",
        setup: |d| edited_config(d, "vocab_size", serde_json::json!(12)),
        args: &[
            "predict",
            "--world",
            "w",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["w/config.json", "`vocab_size` is 12", "saved with 960"],
    },
    Case {
        name: "predict, truncated weights",
        setup: |d| {
            copy_checkpoint(d, "world", "w");
            let path = d.join("w/model.safetensors");
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        },
        args: &[
            "predict",
            "--world",
            "w",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["model.safetensors", "truncated", "again"],
    },
    Case {
        name: "predict, weights full of NaN",
        setup: |d| {
            copy_checkpoint(d, "world", "w");
            let path = d.join("w/model.safetensors");
            let mut t = candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap();
            let head = t.get_mut("lm_head.weight").unwrap();
            *head = (head.ones_like().unwrap() * f64::NAN).unwrap();
            candle_core::safetensors::save(&t, &path).unwrap();
        },
        args: &[
            "predict",
            "--world",
            "w",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["lm_head.weight", "NaN", "train again"],
    },
    Case {
        name: "predict, checkpoint copied without its image tokenizer",
        setup: |d| {
            copy_checkpoint(d, "world", "alone/w");
            std::fs::remove_dir_all(d.join("vq")).unwrap();
        },
        args: &[
            "predict",
            "--world",
            "alone/w",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["image tokenizer is missing", "vq_path", "Copy"],
    },
    Case {
        name: "predict, weights that are not safetensors",
        setup: |d| {
            copy_checkpoint(d, "world", "w");
            write(d, "w/model.safetensors", "these are not weights");
        },
        args: &[
            "predict",
            "--world",
            "w",
            "--image",
            "scene.png",
            "--action",
            ACTION,
            "--out",
            "out",
        ],
        exit: 1,
        says: &["model.safetensors", "not safetensors"],
    },
    // explain
    Case {
        name: "explain, before missing",
        setup: nothing,
        args: &[
            "explain",
            "--dynamics",
            "{models}/dynamics",
            "--before",
            "nope.png",
            "--after",
            "scene.png",
        ],
        exit: 1,
        says: &["nope.png", "No such file"],
    },
    Case {
        name: "explain, after of the wrong size",
        setup: |d| {
            png(
                d,
                "small.png",
                scene().resize_exact(32, 32, image::imageops::FilterType::Nearest),
            )
        },
        args: &[
            "explain",
            "--dynamics",
            "{models}/dynamics",
            "--before",
            "scene.png",
            "--after",
            "small.png",
        ],
        exit: 1,
        says: &["small.png", "32x32", "resize"],
    },
    Case {
        name: "explain, a world model as the dynamics model",
        setup: nothing,
        args: &[
            "explain",
            "--dynamics",
            "{models}/world",
            "--before",
            "scene.png",
            "--after",
            "scene.png",
        ],
        exit: 1,
        says: &["--dynamics", "not as a dynamics model", "--role dynamics"],
    },
    Case {
        name: "explain, a dynamics model as the checking world model",
        setup: nothing,
        args: &[
            "explain",
            "--dynamics",
            "{models}/dynamics",
            "--world",
            "{models}/dynamics",
            "--before",
            "scene.png",
            "--after",
            "scene.png",
        ],
        exit: 1,
        says: &["--world", "not as a world model", "--role world"],
    },
    Case {
        name: "explain, no proposals",
        setup: nothing,
        args: &[
            "explain",
            "--dynamics",
            "{models}/dynamics",
            "--world",
            "{models}/world",
            "--proposals",
            "0",
            "--before",
            "scene.png",
            "--after",
            "scene.png",
        ],
        exit: 2,
        says: &["--proposals", "1 to 64"],
    },
    Case {
        name: "explain, a thousand proposals",
        setup: nothing,
        args: &[
            "explain",
            "--dynamics",
            "{models}/dynamics",
            "--world",
            "{models}/world",
            "--proposals",
            "1000",
            "--before",
            "scene.png",
            "--after",
            "scene.png",
        ],
        exit: 2,
        says: &["--proposals", "1 to 64"],
    },
    Case {
        name: "explain, negative world weight",
        setup: nothing,
        args: &[
            "explain",
            "--dynamics",
            "{models}/dynamics",
            "--world",
            "{models}/world",
            "--world-weight=-1",
            "--before",
            "scene.png",
            "--after",
            "scene.png",
        ],
        exit: 2,
        says: &["--world-weight", "from 0 to 1000"],
    },
    Case {
        name: "explain, sampled and checked at once",
        setup: nothing,
        args: &[
            "explain",
            "--dynamics",
            "{models}/dynamics",
            "--world",
            "{models}/world",
            "--sample",
            "--before",
            "scene.png",
            "--after",
            "scene.png",
        ],
        exit: 2,
        says: &["--world", "--sample", "cannot be used with"],
    },
    // eval: datasets
    Case {
        name: "eval, dataset missing",
        setup: nothing,
        args: &[
            "eval",
            "--world",
            "{models}/world",
            "--data",
            "nowhere",
            "--out",
            "e.json",
        ],
        exit: 1,
        says: &["nowhere", "no such file or folder"],
    },
    Case {
        name: "eval, folder without a json",
        setup: |d| std::fs::create_dir_all(d.join("ds")).unwrap(),
        args: &[
            "eval",
            "--world",
            "{models}/world",
            "--data",
            "ds",
            "--out",
            "e.json",
        ],
        exit: 1,
        says: &["ds", "no AURORA json", "data.json"],
    },
    Case {
        name: "eval, folder with two jsons",
        setup: |d| {
            write(d, "ds/a.json", "[]");
            write(d, "ds/b.json", "[]");
        },
        args: &[
            "eval",
            "--world",
            "{models}/world",
            "--data",
            "ds",
            "--out",
            "e.json",
        ],
        exit: 1,
        says: &["several json files", "a.json, b.json", "pass the one"],
    },
    Case {
        name: "eval, data.json not JSON",
        setup: |d| dataset(d, "{ not json"),
        args: &[
            "eval",
            "--world",
            "{models}/world",
            "--data",
            "ds",
            "--out",
            "e.json",
        ],
        exit: 1,
        says: &["ds/data.json", "not valid JSON", "list of rows"],
    },
    Case {
        name: "eval, data.json not a list",
        setup: |d| dataset(d, r#"{"input": "a.png"}"#),
        args: &[
            "eval",
            "--world",
            "{models}/world",
            "--data",
            "ds",
            "--out",
            "e.json",
        ],
        exit: 1,
        says: &["ds/data.json", "expected a JSON list"],
    },
    Case {
        name: "eval, row without an instruction",
        setup: |d| {
            dataset(
                d,
                r#"[{"input": "a.png", "output": "a.png", "task": "kubric"}]"#,
            )
        },
        args: &[
            "eval",
            "--world",
            "{models}/world",
            "--data",
            "ds",
            "--out",
            "e.json",
        ],
        exit: 1,
        says: &[
            "ds/data.json, row 0, field `instruction`",
            "add the action text",
        ],
    },
    Case {
        name: "eval, row whose image is missing",
        setup: |d| {
            dataset(
                d,
                r#"[{"input": "a.png", "output": "b.png", "instruction": "x", "task": "kubric"}]"#,
            )
        },
        args: &[
            "eval",
            "--world",
            "{models}/world",
            "--data",
            "ds",
            "--out",
            "e.json",
        ],
        exit: 1,
        says: &[
            "row 0, field `output`",
            "ds/b.png",
            "relative to the json file's folder",
        ],
    },
    Case {
        name: "eval, row pointing outside the dataset",
        setup: |d| {
            dataset(
                d,
                r#"[{"input": "../../../etc/passwd", "output": "a.png", "instruction": "x", "task": "kubric"}]"#,
            )
        },
        args: &[
            "eval",
            "--world",
            "{models}/world",
            "--data",
            "ds",
            "--out",
            "e.json",
        ],
        exit: 1,
        says: &["data.json", "row 0", "leaves the dataset"],
    },
    Case {
        name: "eval, five thousand candidates",
        setup: |d| dataset(d, ROW),
        args: &[
            "eval",
            "--world",
            "{models}/world",
            "--dynamics",
            "{models}/dynamics",
            "--n",
            "5000",
            "--data",
            "ds",
            "--out",
            "e.json",
        ],
        exit: 2,
        says: &["--n", "1 to 1024"],
    },
    Case {
        name: "eval, a world model as the dynamics model",
        setup: |d| dataset(d, ROW),
        args: &[
            "eval",
            "--world",
            "{models}/world",
            "--dynamics",
            "{models}/world",
            "--data",
            "ds",
            "--out",
            "e.json",
        ],
        exit: 1,
        says: &["--dynamics", "not as a dynamics model"],
    },
    Case {
        name: "eval, no proposals to check",
        setup: |d| dataset(d, ROW),
        args: &[
            "eval",
            "--world",
            "{models}/world",
            "--dynamics",
            "{models}/dynamics",
            "--proposals",
            "0",
            "--data",
            "ds",
            "--out",
            "e.json",
        ],
        exit: 2,
        says: &["--proposals", "1 to 64"],
    },
    // train
    Case {
        name: "train, onto an earlier run",
        setup: |d| {
            copy_checkpoint(d, "world", "run");
            dataset(d, ROW);
        },
        args: &[
            "train",
            "--role",
            "world",
            "--tokenizers",
            "{models}",
            "--data",
            "ds",
            "--out",
            "run",
            "--steps",
            "2",
        ],
        exit: 1,
        says: &["--out run", "already holds a run", "--resume", "--force"],
    },
    Case {
        name: "train, resume of nothing",
        setup: |d| dataset(d, ROW),
        args: &[
            "train",
            "--role",
            "world",
            "--tokenizers",
            "{models}",
            "--data",
            "ds",
            "--out",
            "fresh",
            "--steps",
            "2",
            "--resume",
        ],
        exit: 1,
        says: &["--resume", "fresh", "start without --resume"],
    },
    Case {
        name: "train, tokenizers missing",
        setup: |d| dataset(d, ROW),
        args: &[
            "train",
            "--role",
            "world",
            "--tokenizers",
            "nowhere",
            "--data",
            "ds",
            "--out",
            "run",
            "--steps",
            "2",
        ],
        exit: 1,
        says: &["--tokenizers nowhere", "tokenizer train --out"],
    },
    Case {
        name: "train, dataset missing",
        setup: nothing,
        args: &[
            "train",
            "--role",
            "world",
            "--tokenizers",
            "{models}",
            "--data",
            "nowhere",
            "--out",
            "run",
            "--steps",
            "2",
        ],
        exit: 1,
        says: &["nowhere", "no such file or folder"],
    },
    Case {
        name: "train, zero steps",
        setup: |d| dataset(d, ROW),
        args: &[
            "train",
            "--role",
            "world",
            "--tokenizers",
            "{models}",
            "--data",
            "ds",
            "--out",
            "run",
            "--steps",
            "0",
        ],
        exit: 2,
        says: &["--steps", "from 1 to"],
    },
    Case {
        name: "train, a family repeated 0 times",
        setup: |d| dataset(d, ROW),
        args: &[
            "train",
            "--role",
            "world",
            "--tokenizers",
            "{models}",
            "--data",
            "ds",
            "--out",
            "run",
            "--repeat",
            "kubric=0",
        ],
        exit: 2,
        says: &["--repeat", "FAMILY=TIMES", "1 to 100"],
    },
    Case {
        name: "train, a repeated family the data lacks",
        setup: |d| dataset(d, ROW),
        args: &[
            "train",
            "--role",
            "world",
            "--tokenizers",
            "{models}",
            "--data",
            "ds",
            "--out",
            "run",
            "--steps",
            "2",
            "--repeat",
            "whatsup=2",
        ],
        exit: 1,
        says: &["--repeat", "\"whatsup\"", "families are kubric"],
    },
    Case {
        name: "train, learning rate NaN",
        setup: |d| dataset(d, ROW),
        args: &[
            "train",
            "--role",
            "world",
            "--tokenizers",
            "{models}",
            "--data",
            "ds",
            "--out",
            "run",
            "--lr",
            "NaN",
        ],
        exit: 2,
        says: &["--lr", "not a learning rate"],
    },
    Case {
        name: "train, empty batches",
        setup: |d| dataset(d, ROW),
        args: &[
            "train",
            "--role",
            "world",
            "--tokenizers",
            "{models}",
            "--data",
            "ds",
            "--out",
            "run",
            "--batch",
            "0",
        ],
        exit: 2,
        says: &["--batch", "1 to 1024"],
    },
    // export
    Case {
        name: "export, onto itself",
        setup: |d| copy_checkpoint(d, "world", "w"),
        args: &["export", "--from", "w", "--to", "w", "--force"],
        exit: 1,
        says: &["same folder", "another one"],
    },
    Case {
        name: "export, onto another checkpoint",
        setup: |d| {
            copy_checkpoint(d, "world", "w");
            copy_checkpoint(d, "dynamics", "d");
        },
        args: &["export", "--from", "w", "--to", "d"],
        exit: 1,
        says: &["--to d", "--force"],
    },
    Case {
        name: "export, from nothing",
        setup: nothing,
        args: &["export", "--from", "nowhere", "--to", "x"],
        exit: 1,
        says: &["nowhere", "config.json"],
    },
    // world generate
    Case {
        name: "world generate, onto another dataset",
        setup: |d| dataset(d, ROW),
        args: &["world", "generate", "--split", "test", "--out", "ds"],
        exit: 1,
        says: &["--out ds", "already holds a dataset", "--force"],
    },
    Case {
        name: "world generate, no rows",
        setup: nothing,
        args: &[
            "world", "generate", "--split", "train", "--n", "0", "--out", "g",
        ],
        exit: 2,
        says: &["--n", "1 to 1000000"],
    },
    Case {
        name: "world generate, huge images",
        setup: nothing,
        args: &[
            "world", "generate", "--split", "train", "--size", "100000", "--out", "g",
        ],
        exit: 2,
        says: &["--size", "16 to 1024"],
    },
    Case {
        name: "world generate, unknown split",
        setup: nothing,
        args: &["world", "generate", "--split", "holdout", "--out", "g"],
        exit: 2,
        says: &["--split", "possible values"],
    },
    // tokenizers
    Case {
        name: "tokenizer eval, tokenizers missing",
        setup: |d| dataset(d, ROW),
        args: &[
            "tokenizer",
            "eval",
            "--tokenizers",
            "nowhere",
            "--data",
            "ds",
        ],
        exit: 1,
        says: &["--tokenizers nowhere", "tokenizer train --out"],
    },
    Case {
        name: "tokenizer train, vocabulary smaller than the bytes",
        setup: |d| dataset(d, ROW),
        args: &[
            "tokenizer",
            "train",
            "--data",
            "ds",
            "--out",
            "tk",
            "--vocab-size",
            "262",
        ],
        exit: 2,
        says: &["--vocab-size", "263 to 65536"],
    },
    // bootstrap
    Case {
        name: "bootstrap, videos missing",
        setup: nothing,
        args: &[
            "bootstrap",
            "--dynamics",
            "{models}/dynamics",
            "--videos",
            "nowhere",
            "--out",
            "syn",
        ],
        exit: 1,
        says: &["--videos nowhere", "world generate --split videos"],
    },
    Case {
        name: "bootstrap, videos.json malformed",
        setup: |d| write(d, "v/videos.json", "{"),
        args: &[
            "bootstrap",
            "--dynamics",
            "{models}/dynamics",
            "--videos",
            "v",
            "--out",
            "syn",
        ],
        exit: 1,
        says: &["v/videos.json", "expected a list"],
    },
    Case {
        name: "bootstrap, frames of the wrong size",
        setup: |d| {
            write(
                d,
                "v/videos.json",
                r#"[{"id": "v0", "frames": ["0.png", "1.png"]}]"#,
            );
            png(
                d,
                "v/0.png",
                scene().resize_exact(32, 32, image::imageops::FilterType::Nearest),
            );
            png(
                d,
                "v/1.png",
                scene().resize_exact(32, 32, image::imageops::FilterType::Nearest),
            );
        },
        args: &[
            "bootstrap",
            "--dynamics",
            "{models}/dynamics",
            "--videos",
            "v",
            "--out",
            "syn",
        ],
        exit: 1,
        says: &["v/0.png", "32x32", "64x64", "resize"],
    },
    Case {
        name: "bootstrap, keep nothing",
        setup: nothing,
        args: &[
            "bootstrap",
            "--dynamics",
            "{models}/dynamics",
            "--videos",
            "v",
            "--out",
            "syn",
            "--keep",
            "0",
        ],
        exit: 2,
        says: &["--keep", "from 1 to"],
    },
    Case {
        name: "bootstrap, onto a dataset",
        setup: |d| dataset(d, ROW),
        args: &[
            "bootstrap",
            "--dynamics",
            "{models}/dynamics",
            "--videos",
            "v",
            "--out",
            "ds",
        ],
        exit: 1,
        says: &["--out ds", "already holds a dataset", "--force"],
    },
    Case {
        name: "bootstrap, a world model as the annotator",
        setup: |d| write(d, "v/videos.json", "[]"),
        args: &[
            "bootstrap",
            "--dynamics",
            "{models}/world",
            "--videos",
            "v",
            "--out",
            "syn",
        ],
        exit: 1,
        says: &["--dynamics", "not as a dynamics model"],
    },
    // ablate
    Case {
        name: "ablate, a models folder without the foundation",
        setup: |d| write(d, "m/tokenizer.json", "{}"),
        args: &[
            "ablate", "--preset", "smoke", "--seeds", "1", "--models", "m", "--out", "abl",
        ],
        exit: 1,
        says: &[
            "--models m",
            "foundation-changes/",
            "models/ of the repository",
        ],
    },
    Case {
        name: "ablate, a device that is not one",
        setup: nothing,
        args: &[
            "ablate", "--preset", "smoke", "--seeds", "1", "--device", "gpu", "--out", "abl",
        ],
        exit: 1,
        says: &["--device gpu", "cpu, cuda or cuda:N"],
    },
    Case {
        name: "ablate, no labelled rows",
        setup: nothing,
        args: &[
            "ablate",
            "--preset",
            "smoke",
            "--seeds",
            "1",
            "--train-rows",
            "0",
            "--out",
            "abl",
        ],
        exit: 2,
        says: &["--train-rows", "from 1 to"],
    },
    Case {
        name: "ablate, a weight above 1",
        setup: nothing,
        args: &[
            "ablate",
            "--preset",
            "smoke",
            "--seeds",
            "1",
            "--weighted",
            "2",
            "--out",
            "abl",
        ],
        exit: 2,
        says: &["--weighted", "from 0 to 1"],
    },
    Case {
        name: "ablate, a dynamics learning rate of zero",
        setup: nothing,
        args: &[
            "ablate",
            "--preset",
            "smoke",
            "--seeds",
            "1",
            "--dynamics-lr",
            "0",
            "--out",
            "abl",
        ],
        exit: 2,
        says: &["--dynamics-lr", "positive number"],
    },
    // scale
    Case {
        name: "scale, sizes not ascending",
        setup: nothing,
        args: &["scale", "--sizes", "1000,250", "--out", "s"],
        exit: 1,
        says: &["--sizes", "ascending"],
    },
    Case {
        name: "scale, a size of zero",
        setup: nothing,
        args: &["scale", "--sizes", "0,250", "--out", "s"],
        exit: 2,
        says: &["--sizes", "from 1 to"],
    },
    Case {
        name: "scale, more seeds than a study runs",
        setup: nothing,
        args: &["scale", "--seeds-small", "100", "--out", "s"],
        exit: 1,
        says: &["--seeds-small 100", "at most 20"],
    },
    Case {
        name: "scale, more test rows than the split has",
        setup: nothing,
        args: &["scale", "--test-per-family", "60", "--out", "s"],
        exit: 1,
        says: &["--test-per-family 60", "at most 50"],
    },
    Case {
        name: "scale, --resume where no study is",
        setup: nothing,
        args: &[
            "scale", "--preset", "smoke", "--models", "{models}", "--resume", "--out", "s",
        ],
        exit: 1,
        says: &["--resume", "holds no study", "without --resume"],
    },
    Case {
        name: "scale, a folder that holds a study",
        setup: |d| write(d, "s/study.json", "{}"),
        args: &[
            "scale", "--preset", "smoke", "--models", "{models}", "--out", "s",
        ],
        exit: 1,
        says: &["already holds a scaling study", "--resume", "--force"],
    },
    Case {
        name: "scale, --resume of a study of other flags",
        setup: |d| write(d, "s/study.json", "{}"),
        args: &[
            "scale", "--preset", "smoke", "--models", "{models}", "--resume", "--out", "s",
        ],
        exit: 1,
        says: &["another configuration", "study.json"],
    },
    Case {
        name: "scale, --resume and --force",
        setup: nothing,
        args: &["scale", "--resume", "--force", "--out", "s"],
        exit: 2,
        says: &["--resume", "--force"],
    },
    // merge, demo, study
    Case {
        name: "merge, adapter missing",
        setup: nothing,
        args: &[
            "merge",
            "--base",
            "{models}/foundation",
            "--adapter",
            "nowhere",
            "--out",
            "m",
        ],
        exit: 1,
        says: &["--adapter nowhere", "adapter_config.json"],
    },
    Case {
        name: "merge, adapter_config.json malformed",
        setup: |d| write(d, "a/adapter_config.json", "{ not json"),
        args: &[
            "merge",
            "--base",
            "{models}/foundation",
            "--adapter",
            "a",
            "--out",
            "m",
        ],
        exit: 1,
        says: &["a/adapter_config.json", "dynaboot train --lora"],
    },
    Case {
        name: "demo, five thousand candidates",
        setup: nothing,
        args: &["demo", "--n", "5000"],
        exit: 2,
        says: &["--n", "1 to 1024"],
    },
    Case {
        name: "demo, models missing",
        setup: nothing,
        args: &["demo", "--world", "nowhere"],
        exit: 1,
        says: &["nowhere", "--world"],
    },
    // Outputs: an existing file is replaced only with --force; what is not a file, never.
    Case {
        name: "eval, --out and --html exist",
        setup: |d| {
            write(d, "notes.json", "my notes");
            write(d, "notes.html", "<p>my page</p>");
        },
        args: &[
            "eval",
            "--world",
            "{models}/world",
            "--data",
            "nope",
            "--out",
            "notes.json",
            "--html",
            "notes.html",
        ],
        exit: 1,
        says: &["--out notes.json already exists", "--force"],
    },
    Case {
        name: "study report, --html exists",
        setup: |d| write(d, "page.html", "<p>mine</p>"),
        args: &[
            "study",
            "report",
            "--study",
            "s.sqlite",
            "--out",
            "r.json",
            "--html",
            "page.html",
        ],
        exit: 1,
        says: &["--html page.html already exists", "--force"],
    },
    Case {
        name: "world show, --out is a model's weights",
        setup: |d| write(d, "ckpt/model.safetensors", "weights"),
        args: &[
            "world",
            "show",
            "--data",
            "nope",
            "--out",
            "ckpt/model.safetensors",
        ],
        exit: 1,
        says: &["--out ckpt/model.safetensors already exists", "--force"],
    },
    Case {
        name: "world show, --out is a device, even with --force",
        setup: nothing,
        args: &[
            "world",
            "show",
            "--data",
            "nope",
            "--out",
            "/dev/null",
            "--force",
        ],
        exit: 1,
        says: &["--out /dev/null exists and is not a file"],
    },
    Case {
        name: "judge, --out is a folder",
        setup: |d| std::fs::create_dir_all(d.join("report")).unwrap(),
        args: &[
            "judge",
            "--vlm",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
            "--world",
            "{models}/world",
            "--out",
            "report",
            "--force",
        ],
        exit: 1,
        says: &["--out report exists and is not a file"],
    },
    Case {
        name: "study report, not a study",
        setup: |d| write(d, "s.sqlite", "not a database"),
        args: &["study", "report", "--study", "s.sqlite", "--out", "r.html"],
        exit: 1,
        says: &["s.sqlite", "not an SQLite database"],
    },
];

/// Every entry under `dir` with its bytes (a symlink: its target; a named pipe: a mark).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let (path, kind) = (e.path(), e.file_type().unwrap());
            let bytes = if kind.is_dir() {
                stack.push(path.clone());
                Vec::new()
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                target.to_string_lossy().as_bytes().to_vec()
            } else if kind.is_file() {
                std::fs::read(&path).unwrap()
            } else {
                b"not a file".to_vec()
            };
            files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
        }
    }
    files
}

#[test]
fn bad_inputs_fail_clearly_and_leave_the_users_files_alone() {
    let models = models();
    let models = models.to_str().unwrap();
    let mut failures = Vec::new();
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        png(dir.path(), "scene.png", scene());
        (case.setup)(dir.path());
        let before = snapshot(dir.path());
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| a.replace("{models}", models))
            .collect();
        let out = std::process::Command::new(dynaboot_tests::bin())
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut wrong = Vec::new();
        if out.status.code() != Some(case.exit) {
            wrong.push(format!("exit {:?}, not {}", out.status.code(), case.exit));
        }
        if stderr.contains("panicked") {
            wrong.push("panicked".into());
        }
        for s in case.says.iter().filter(|s| !stderr.contains(*s)) {
            wrong.push(format!("does not say {s:?}"));
        }
        if stderr.matches("os error").count() > 1 {
            wrong.push("the OS error twice".into());
        }
        let after = snapshot(dir.path());
        if after != before {
            let changed: Vec<_> = before
                .keys()
                .chain(after.keys())
                .filter(|k| before.get(*k) != after.get(*k))
                .collect();
            wrong.push(format!("files changed: {changed:?}"));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {}\n  stderr: {stderr}",
                case.name,
                wrong.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(CASES.len() >= 60, "{} cases", CASES.len());
}

/// The corpus is what it claims: without the run, `run` on a good input succeeds, so a case
/// fails for its bad input and not for a broken command line around it.
#[test]
fn the_corpus_command_lines_work_on_good_input() {
    let dir = tempfile::tempdir().unwrap();
    png(dir.path(), "scene.png", scene());
    let models = models();
    let world = models.join("world");
    let out = run(&[
        "predict",
        "--world",
        world.to_str().unwrap(),
        "--image",
        dir.path().join("scene.png").to_str().unwrap(),
        "--action",
        ACTION,
        "--out",
        dir.path().join("out").to_str().unwrap(),
        "--n",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every leaf of `v` as a JSON pointer, in order.
fn leaves(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| leaves(v, format!("{at}/{k}"), out)),
        serde_json::Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| leaves(v, format!("{at}/{i}"), out)),
        _ => out.push(at),
    }
}

/// Another value of the same kind: the nearest number, the other boolean, another name of
/// the same set where the field holds one (a role, a layout), else an edited string.
fn another(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(n) if n.is_u64() => (n.as_u64().unwrap() + 1).into(),
        Value::Number(n) => match n.as_f64().unwrap() {
            0.0 => 0.5.into(),
            x => (x * 2.0).into(),
        },
        Value::String(s) => match s.as_str() {
            "world" => "dynamics".into(),
            "dynamics" => "world".into(),
            "action_first" => "source_first".into(),
            "source_first" => "action_first".into(),
            s => format!("{s}-edited").into(),
        },
        other => panic!("not a leaf: {other}"),
    }
}

/// The issue's config-perturbation test: each field of a shipped checkpoint's config.json
/// (the world model's, the dynamics model's, the image tokenizer's) set to another value is
/// refused when loading, naming the field, unless the field cannot change what the model
/// computes; those load. The weights are never touched.
#[test]
fn every_config_field_of_the_shipped_checkpoints_is_checked_against_the_weights() {
    // Fields that only shape training (an initialiser, the VQ's losses and codebook updates).
    const INERT: [&str; 4] = [
        "/initializer_range",
        "/commitment",
        "/ema_decay",
        "/dead_code_threshold",
    ];
    let mut cases = 0;
    let mut wrong = Vec::new();
    for checkpoint in ["world", "dynamics", "vq"] {
        let dir = tempfile::tempdir().unwrap();
        copy_checkpoint(dir.path(), checkpoint, checkpoint);
        let config_path = dir.path().join(checkpoint).join("config.json");
        let original = std::fs::read_to_string(&config_path).unwrap();
        let config: serde_json::Value = serde_json::from_str(&original).unwrap();
        let weights = std::fs::read(dir.path().join(checkpoint).join("model.safetensors")).unwrap();
        let load = || -> Result<(), String> {
            let dir = dir.path().join(checkpoint);
            let cpu = &candle_core::Device::Cpu;
            match checkpoint {
                "vq" => dynaboot::tokenize::ImageTokenizer::load(&dir, cpu).map(|_| ()),
                _ => dynaboot::model::Model::load(&dir, cpu).map(|_| ()),
            }
            .map_err(|e| e.to_string())
        };
        load().expect("the shipped checkpoint loads");
        let mut fields = Vec::new();
        leaves(&config, String::new(), &mut fields);
        for field in fields {
            cases += 1;
            let mut edited = config.clone();
            let leaf = edited.pointer_mut(&field).unwrap();
            *leaf = another(leaf);
            std::fs::write(&config_path, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
            let name = field
                .trim_start_matches('/')
                .split('/')
                .next_back()
                .unwrap();
            match (load(), INERT.contains(&field.as_str())) {
                (Ok(()), false) => wrong.push(format!("{checkpoint} {field}: loaded")),
                (Err(e), true) => wrong.push(format!("{checkpoint} {field} (inert): {e}")),
                (Err(e), false) if !e.contains(name) && !e.contains("config.json") => {
                    wrong.push(format!("{checkpoint} {field}: names neither: {e}"))
                }
                _ => {}
            }
        }
        std::fs::write(&config_path, &original).unwrap();
        load().expect("the restored checkpoint loads");
        let after = std::fs::read(dir.path().join(checkpoint).join("model.safetensors")).unwrap();
        assert!(after == weights, "{checkpoint}: the weights changed");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(cases > 40, "{cases} fields");
}

/// What a flag's value is, for the systematic hostile test.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    /// A file or folder the command reads.
    Input,
    /// A file the command writes.
    OutFile,
    /// A folder the command writes into.
    OutDir,
    /// Not a path (a number, a word, a list), or a program to run (`bench --torch`) or a
    /// path inside a spec (`study create --system NAME=WORLD`), which the corpus covers.
    Other,
}

/// Every flag of the CLI by its role; the test refuses a flag missing here, so a new path
/// flag is hostile-tested from the day it lands. Per command where the same name differs.
fn role(command: &str, flag: &str) -> Option<Role> {
    use Role::*;
    const INPUTS: &[&str] = &[
        "world",
        "dynamics",
        "base",
        "adapter",
        "verify",
        "verify-adapter",
        "vqgan",
        "data",
        "tokenizers",
        "synthetic",
        "eval",
        "videos",
        "from",
        "models",
        "init",
        "image",
        "before",
        "after",
        "start",
        "goal",
        "study",
        "cache",
    ];
    const OTHERS: &[&str] = &[
        "split",
        "n",
        "seed",
        "size",
        "index",
        "steps",
        "batch",
        "lr",
        "vocab-size",
        "channels",
        "codebook",
        "device",
        "decoder-channels",
        "decoder-blocks",
        "restarts",
        "dead-code-threshold",
        "limit",
        "role",
        "weighted",
        "weighting",
        "preset",
        "lora",
        "eval-examples",
        "accum",
        "eval-every",
        "checkpoint-every",
        "stop-after",
        "action",
        "temperature",
        "top-k",
        "top-p",
        "proposals",
        "world-weight",
        "depth",
        "problem-seed",
        "max-depth",
        "beam",
        "candidates",
        "proposal-weight",
        "step-cost",
        "verify-weight",
        "chains",
        "keep",
        "frames-per-video",
        "gap",
        "vlm",
        "model",
        "key-env",
        "per-family",
        "concurrency",
        "rpm",
        "retries",
        "timeout-s",
        "name",
        "addr",
        "raters",
        "noise",
        "examples",
        "seeds",
        "tune-seed",
        "train-rows",
        "dynamics-lr",
        "sizes",
        "seeds-small",
        "seeds-large",
        "seeds-coverage",
        "test-per-family",
        "train-steps",
        "repeats",
        "tokens",
        "actions",
        "system",
        "torch",
        "repeat",
    ];
    let out_files = [
        ("world show", "out"),
        ("tokenizer eval", "json"),
        ("plan eval", "out"),
        ("plan eval", "html"),
        ("rollout eval", "out"),
        ("eval", "out"),
        ("eval", "html"),
        ("judge", "out"),
        ("study create", "out"),
        ("study report", "out"),
        ("study report", "html"),
    ];
    if out_files.contains(&(command, flag)) {
        Some(OutFile)
    } else if flag == "out" || (command, flag) == ("export", "to") {
        Some(OutDir)
    } else if INPUTS.contains(&flag) {
        Some(Input)
    } else if OTHERS.contains(&flag) {
        Some(Other)
    } else {
        None
    }
}

/// Every command of the CLI (space-separated words) with the flags that take a value, read
/// from `--help` the way a user finds them.
fn commands() -> Vec<(String, Vec<String>)> {
    fn help(words: &[&str]) -> String {
        let mut args = words.to_vec();
        args.push("--help");
        let out = run(&args);
        assert!(out.status.success(), "{words:?} --help");
        String::from_utf8(out.stdout).unwrap()
    }
    let mut found = Vec::new();
    let mut stack: Vec<Vec<String>> = vec![vec![]];
    while let Some(words) = stack.pop() {
        let text = help(&words.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        let mut in_commands = false;
        for line in text.lines() {
            if line == "Commands:" {
                in_commands = true;
            } else if line.is_empty() {
                in_commands = false;
            } else if in_commands {
                let name = line.split_whitespace().next().unwrap();
                if name != "help" {
                    let mut sub = words.clone();
                    sub.push(name.to_string());
                    stack.push(sub);
                }
            }
        }
        if !words.is_empty() {
            let mut flags: Vec<String> = text
                .lines()
                .filter_map(|l| {
                    let l = l.trim_start();
                    let l = l.split_once(", ").map_or(l, |(_, long)| long);
                    let (flag, rest) = l.strip_prefix("--")?.split_once(' ')?;
                    rest.starts_with('<').then(|| flag.to_string())
                })
                .collect();
            flags.dedup();
            if !flags.is_empty() {
                found.push((words.join(" "), flags));
            }
        }
    }
    found.sort();
    found
}

/// A command line for `command` that is right but for the flag under test (which is added
/// to it): the paths it names are in the shared fixture folder `{fx}` or the models.
fn base_line(command: &str) -> Option<&'static [&'static str]> {
    Some(match command {
        "demo" => &["--per-family", "1", "--n", "1"],
        "world generate" => &["--split", "train", "--n", "1"],
        "world show" => &["--data", "{fx}/ds"],
        "tokenizer train" => &["--data", "{fx}/ds", "--steps", "1"],
        "tokenizer eval" => &["--tokenizers", "{models}", "--data", "{fx}/ds"],
        "train" => &["--role", "world", "--data", "{fx}/ds", "--steps", "1"],
        "predict" => &[
            "--world",
            "{models}/world",
            "--image",
            "{fx}/scene.png",
            "--action",
            ACTION,
            "--n",
            "1",
        ],
        "explain" => &[
            "--dynamics",
            "{models}/dynamics",
            "--before",
            "{fx}/scene.png",
            "--after",
            "{fx}/scene.png",
        ],
        "plan" => &[
            "--start",
            "{fx}/scene.png",
            "--goal",
            "{fx}/scene.png",
            "--depth",
            "1",
        ],
        "plan eval" => &["--depth", "1", "--n", "1"],
        "rollout" => &["--image", "{fx}/scene.png", "--actions", ACTION, "--n", "1"],
        "rollout eval" => &["--steps", "1", "--n", "1", "--chains", "1"],
        "bootstrap" => &["--dynamics", "{models}/dynamics", "--videos", "{fx}/videos"],
        "eval" => &["--world", "{models}/world", "--data", "{fx}/ds", "--n", "1"],
        "judge" => &[
            "--vlm",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
            "--world",
            "{models}/world",
            "--per-family",
            "1",
            "--n",
            "1",
            "--retries",
            "0",
        ],
        "export" => &["--from", "{models}/world"],
        "study create" => &[
            "--system",
            "a={models}/world",
            "--system",
            "b={models}/world",
            "--data",
            "{fx}/ds",
        ],
        "study rater" => &["--study", "{fx}/study.sqlite", "--name", "r"],
        "study serve" => &["--study", "{fx}/study.sqlite", "--addr", "127.0.0.1:0"],
        "study simulate" => &["--study", "{fx}/study.sqlite"],
        "study report" => &["--study", "{fx}/study.sqlite"],
        "ablate" => &["--preset", "smoke"],
        "scale" => &["--preset", "smoke"],
        "bench" => &["--train-steps", "1", "--repeats", "1"],
        "logits" => &["--tokens", "1,2,3", "--base", "{models}/world"],
        "merge" => &["--base", "{models}/world", "--adapter", "{fx}/adapter"],
        _ => return None,
    })
}

/// The issue's systematic hostile test: every path flag of every command, found by walking
/// the CLI's help, pointed at what a hostile user would give it: an input at a device that
/// never ends (/dev/zero), a named pipe nobody writes, an empty file and a symlink loop; an
/// output at the user's existing file (without --force), a device (/dev/null) and a named
/// pipe. Each must fail with a message that names the flag or the path, never panic, end in
/// bounded time (the command is killed after 60 s) and memory (6 GiB of address space), and
/// leave every file of the user's folder as it was. (A read-only folder cannot be tested as
/// root, which bypasses permissions.)
#[test]
fn every_path_flag_of_every_command_refuses_hostile_paths() {
    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};
    let models = models();
    let models = models.to_str().unwrap();
    let fx = tempfile::tempdir().unwrap();
    let fxs = fx.path().to_str().unwrap();
    png(fx.path(), "scene.png", scene());
    for args in [
        vec![
            "world",
            "generate",
            "--split",
            "train",
            "--n",
            "1",
            "--out",
            &format!("{fxs}/ds"),
        ],
        vec![
            "world",
            "generate",
            "--split",
            "videos",
            "--n",
            "1",
            "--out",
            &format!("{fxs}/videos"),
        ],
    ] {
        ok(&args);
    }
    ok(&[
        "train",
        "--base",
        &format!("{models}/world"),
        "--lora",
        "r=2",
        "--role",
        "world",
        "--data",
        &format!("{fxs}/ds"),
        "--steps",
        "1",
        "--out",
        &format!("{fxs}/adapter"),
    ]);
    let world = format!("a={models}/world");
    ok(&[
        "study",
        "create",
        "--out",
        &format!("{fxs}/study.sqlite"),
        "--system",
        &world,
        "--system",
        &world.replacen("a=", "b=", 1),
        "--data",
        &format!("{fxs}/ds"),
        "--per-family",
        "1",
    ]);
    let fixtures = snapshot(fx.path());

    let mut unknown = Vec::new();
    let mut cases = Vec::new();
    for (command, flags) in commands() {
        let Some(base) = base_line(&command) else {
            unknown.push(format!("{command}: no base command line"));
            continue;
        };
        for flag in flags {
            match role(&command, &flag) {
                None => unknown.push(format!("{command} --{flag}: no role")),
                Some(Role::Other) => {}
                Some(r) => {
                    let values: &[&str] = match r {
                        Role::Input => &["/dev/zero", "fifo", "empty", "loop"],
                        _ => &["existing", "/dev/null", "fifo"],
                    };
                    for v in values {
                        cases.push((command.clone(), base, flag.clone(), r, *v));
                    }
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "the test does not know:\n{}",
        unknown.join("\n")
    );

    let run_case = |(command, base, flag, role, value): &(String, &[&str], String, Role, &str)| -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("existing"), b"the user's notes").unwrap();
        std::fs::write(d.join("empty"), b"").unwrap();
        symlink("loop", d.join("loop")).unwrap();
        let fifo = d.join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let before = snapshot(d);
        let mut args: Vec<String> = command.split(' ').map(String::from).collect();
        let mut rest: Vec<String> = base.iter().map(|a| a.replace("{models}", models).replace("{fx}", fxs)).collect();
        // The flag under test replaces the base's value where the base gives one.
        if let Some(i) = rest.iter().position(|a| *a == format!("--{flag}")) {
            rest.drain(i..i + 2);
        }
        args.extend(rest);
        args.push(format!("--{flag}"));
        args.push(value.to_string());
        if *role != Role::OutDir && *role != Role::OutFile && !args.contains(&"--out".to_string()) && base_line(command).is_some() {
            // Commands that write need somewhere harmless to write.
            if ["demo", "world generate", "tokenizer train", "train", "predict", "plan", "rollout", "bootstrap", "export", "ablate", "scale", "merge"].contains(&command.as_str()) {
                args.extend([if command == "export" { "--to" } else { "--out" }.into(), "fresh-out".into()]);
            } else if ["world show", "plan eval", "rollout eval", "eval", "judge", "study report"].contains(&command.as_str()) {
                args.extend(["--out".into(), "fresh-out.json".into()]);
            }
        }
        let start = Instant::now();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 6291456; exec \"$0\" \"$@\"")
            .arg(dynaboot_tests::bin())
            .args(&args)
            .current_dir(d)
            .env("DYNABOOT_MODELS", models)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        use std::io::Read;
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let mut wrong = Vec::new();
        match status.map(|s| s.code()) {
            None => wrong.push("still running after 60 s".to_string()),
            Some(Some(1 | 2)) => {}
            Some(code) => wrong.push(format!("exit {code:?}")),
        }
        if stderr.contains("panicked") {
            wrong.push("panicked".into());
        }
        if status.is_some() && !stderr.contains(&format!("--{flag}")) && !stderr.contains(value) {
            wrong.push("names neither the flag nor the path".into());
        }
        // As root a rename onto /dev/null replaces it: it must still be the device.
        use std::os::unix::fs::FileTypeExt;
        let null = std::fs::symlink_metadata("/dev/null").unwrap().file_type();
        if !null.is_char_device() {
            wrong.push("replaced /dev/null".into());
        }
        let after = snapshot(d);
        if after.get(Path::new("existing")) != before.get(Path::new("existing")) || after.keys().filter(|k| before.contains_key(*k)).count() != before.len() {
            wrong.push("the user's files changed".into());
        }
        (!wrong.is_empty()).then(|| format!("{} --{flag} {value}: {}\n  {}", command, wrong.join("; "), stderr.trim().lines().last().unwrap_or("")))
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    if let Some(f) = run_case(case) {
                        failures.lock().unwrap().push(f);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        snapshot(fx.path()) == fixtures,
        "the shared fixtures changed"
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() > 150, "{} cases", cases.len());
}
