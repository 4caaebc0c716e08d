//! The fuzz targets' bodies, shared by `cargo fuzz` (`fuzz/fuzz_targets/`) and the stable
//! replay of the committed corpora (`tests/fuzz_corpora.rs`). Each feeds bytes from outside to
//! one parser exactly as dynaboot calls it (through a file where dynaboot reads a file). An
//! error is the right answer to junk; a panic, an abort, a hang or a runaway allocation is a
//! bug.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A target's body: bytes from outside in, any answer but a crash.
pub type Body = fn(&[u8]);

/// Every target: its name (the folder of its corpus) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("aurora_json", aurora_json),
    ("videos_json", videos_json),
    ("checkpoint_config", checkpoint_config),
    ("hf_config", hf_config),
    ("safetensors", safetensors),
    ("tokenizer_json", tokenizer_json),
    ("image", image),
    ("vqgan_ckpt", vqgan_ckpt),
    ("action", action),
    ("adapter_config", adapter_config),
];

/// This process's scratch folder for the parsers that read files.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dynaboot-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        dir
    })
}

/// Removes the scratch folder (when the replay is done).
#[allow(dead_code)]
pub fn clean_up() {
    let _ = std::fs::remove_dir_all(scratch());
}

/// `data` written as `name` in the scratch folder.
fn file(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("writing to the scratch folder");
    path
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// An AURORA `data.json`.
pub fn aurora_json(data: &[u8]) {
    if let Some(t) = text(data) {
        let _ = dynaboot::data::aurora::parse_rows(t, "data.json");
    }
}

/// A videos folder's `videos.json` and its hidden labels.
pub fn videos_json(data: &[u8]) {
    if let Some(t) = text(data) {
        let _ = dynaboot::data::video::parse_videos(t, "videos.json");
        let _ = dynaboot::data::video::parse_labels(t, "labels.json");
    }
}

/// A dynaboot checkpoint's `config.json`.
pub fn checkpoint_config(data: &[u8]) {
    if let Some(t) = text(data) {
        let _ = dynaboot::model::checkpoint::parse_config(t, "config.json");
    }
}

/// An HF Chameleon folder's `config.json` (and the weight files it leads to look for).
pub fn hf_config(data: &[u8]) {
    let dir = scratch().join("hf");
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    std::fs::write(dir.join("config.json"), data).expect("writing to the scratch folder");
    let _ = dynaboot::model::hf::HfCheckpoint::open(&dir);
}

/// A checkpoint's `model.safetensors` as loading reads it (its recorded config parsed,
/// NaN/Inf refused), and an image tokenizer's as its fingerprint reads it.
pub fn safetensors(data: &[u8]) {
    let _ = dynaboot::weights::Weights::read(data, "model.safetensors");
    let _ = dynaboot::model::checkpoint::vq_weights_fingerprint(data);
}

/// A `tokenizer.json`.
pub fn tokenizer_json(data: &[u8]) {
    if let Some(t) = text(data) {
        let _ = dynaboot::tokenize::TextTokenizer::from_json(t);
    }
}

/// An image given to `predict`, `explain` or a dataset (PNG or JPEG, checked for channels and
/// size).
pub fn image(data: &[u8]) {
    let _ = dynaboot::files::load_model_image(&file("image", data), 64);
}

/// Anole's `vqgan.ckpt` (a PyTorch zip with a pickle).
pub fn vqgan_ckpt(data: &[u8]) {
    let _ = dynaboot::tokenize::chameleon_vq::read_taming_state_dict(&file("vqgan.ckpt", data));
}

/// An action in the world's language (what `eval` and `bootstrap` read in explanations).
pub fn action(data: &[u8]) {
    if let Some(t) = text(data) {
        let _ = dynaboot::world::parse(t);
    }
}

/// A LoRA adapter folder's `adapter_config.json`.
pub fn adapter_config(data: &[u8]) {
    let dir = scratch().join("adapter");
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    std::fs::write(dir.join("adapter_config.json"), data).expect("writing to the scratch folder");
    let _ = dynaboot::model::base::load_adapter_config(&dir);
}
