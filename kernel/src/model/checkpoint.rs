//! A model checkpoint: the backbone's config and weights with everything needed to use them —
//! the vocabulary layout, the roles it was trained for, the text tokenizer and a reference to
//! the image tokenizer. On disk, a folder:
//!
//! - `config.json`: HF `ChameleonConfig` fields at the top level, plus a `dynaboot` object
//!   ([`ModelMeta`]: roles, vocabulary layout, image tokenizer reference);
//! - `model.safetensors`: the weights under HF names;
//! - `tokenizer.json`: the text tokenizer;
//! - the image tokenizer is referenced by path (relative to the folder) and fingerprint, so
//!   the world and dynamics checkpoints of one run share a single copy.

use super::chameleon::{Chameleon, ChameleonConfig};
use super::format::{Format, Role, WorldLayout};
use super::vocab::Vocab;
use crate::error::{Error, Result};
use crate::tokenize::{ImageCodec, ImageTokenizer, TextTokenizer};
use crate::weights::Weights;
use candle_core::Device;
#[cfg(feature = "fs")]
use candle_core::Tensor;
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// What a checkpoint is besides its architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// The roles these weights were trained for; both means one set of weights serves the
    /// world and the dynamics model (told apart by the task tokens).
    pub roles: Vec<Role>,
    /// The token ranges of text, image codes and markers.
    pub vocab: Vocab,
    /// Image tokens per image (the image tokenizer's grid squared).
    pub image_tokens: usize,
    /// Folder of the image tokenizer, relative to the checkpoint folder.
    pub vq_path: String,
    /// FNV-1a of the image tokenizer's `model.safetensors`, hex: the tokens mean nothing with
    /// another tokenizer.
    pub vq_fingerprint: String,
    /// Where the world model's prompt puts the action (absent in older checkpoints: source
    /// first).
    #[serde(default)]
    pub world_layout: WorldLayout,
}

/// Fields of `config.json` that cannot change what the weights compute: the initialiser's
/// range and where the image tokenizer's folder is (its fingerprint is checked).
const INERT_FIELDS: &[&str] = &["initializer_range", "dynaboot.vq_path"];

/// `config.json` of a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The transformer's shape, in HF Chameleon's field names.
    #[serde(flatten)]
    pub backbone: ChameleonConfig,
    /// What dynaboot adds: roles, vocabulary layout, image tokenizer.
    pub dynaboot: ModelMeta,
}

impl ModelConfig {
    pub(crate) fn format(&self) -> Format {
        Format {
            vocab: self.dynaboot.vocab.clone(),
            image_tokens: self.dynaboot.image_tokens,
            max_len: self.backbone.max_position_embeddings,
            world_layout: self.dynaboot.world_layout,
        }
    }

    pub(crate) fn has_role(&self, role: Role) -> bool {
        self.dynaboot.roles.contains(&role)
    }

    /// An error naming the roles the checkpoint has unless it was trained for `role`.
    pub(crate) fn require_role(&self, role: Role) -> Result<()> {
        if self.has_role(role) {
            return Ok(());
        }
        let trained: Vec<&str> = self.dynaboot.roles.iter().map(|r| r.name()).collect();
        Err(Error::Invalid(format!(
            "this checkpoint was trained as a {} model, not as a {} model: give one trained \
             with `--role {}` (or `--role both`)",
            trained.join(" and "),
            role.name(),
            role.name()
        )))
    }
}

/// A loaded checkpoint: backbone, tokenizers and the sequence format, ready for inference.
pub struct Model {
    /// The checkpoint's `config.json`.
    pub config: ModelConfig,
    /// The transformer.
    pub backbone: Chameleon,
    /// The image tokenizer the checkpoint was trained with.
    pub vq: ImageCodec,
    pub(crate) text: TextTokenizer,
    /// How prompts and completions are laid out as tokens.
    pub format: Format,
}

impl Model {
    /// Puts a checkpoint together from its parts (what the browser does after fetching them);
    /// `files` names its config and weights in errors.
    pub(crate) fn from_parts(
        config: ModelConfig,
        weights: Vec<u8>,
        vq: impl Into<ImageCodec>,
        text: TextTokenizer,
        device: &Device,
        files: [&str; 2],
    ) -> Result<Self> {
        let [config_file, weights_file] = files;
        // Parsed once: checked (values, the config they were saved with, every tensor
        // used), then handed to the model.
        let weights = Weights::read(&weights, weights_file)?;
        weights.check_config(&config, config_file, INERT_FIELDS)?;
        let backbone = weights.build(config_file, device, |vb| {
            Chameleon::new(config.backbone.clone(), vb)
        })?;
        Self::assemble(config, backbone, vq, text)
            .map_err(|e| Error::Invalid(format!("{config_file}: {e}")))
    }

    /// Puts a checkpoint together from the contents of its files, as the browser fetches
    /// them: `config.json`, `model.safetensors`, `tokenizer.json`, and the image tokenizer's
    /// `config.json` and `model.safetensors` (checked against the fingerprint the checkpoint
    /// recorded).
    pub fn from_files(
        config_json: &str,
        weights: Vec<u8>,
        tokenizer_json: &str,
        vq_config_json: &str,
        vq_weights: Vec<u8>,
        device: &Device,
    ) -> Result<Self> {
        let config = parse_config(config_json, "config.json")?;
        let found = vq_weights_fingerprint(&vq_weights)?;
        if found != config.dynaboot.vq_fingerprint {
            return Err(Error::Invalid(format!(
                "the image tokenizer (fingerprint {found}) is not the one this model was trained \
                 with ({}); serve the vq/ folder that shipped with it",
                config.dynaboot.vq_fingerprint
            )));
        }
        let vq_config = serde_json::from_str(vq_config_json).map_err(|e| Error::Malformed {
            file: "vq/config.json".into(),
            row: None,
            field: None,
            message: e.to_string(),
        })?;
        let vq_files = ["vq/config.json", "vq/model.safetensors"];
        let vq = ImageTokenizer::from_safetensors(vq_config, vq_weights, device, vq_files)?;
        let text = TextTokenizer::from_json(tokenizer_json)?;
        let files = ["config.json", "model.safetensors"];
        Self::from_parts(config, weights, vq, text, device, files)
    }

    /// Wraps a backbone (e.g. one just trained) with its tokenizers.
    pub(crate) fn assemble(
        config: ModelConfig,
        mut backbone: Chameleon,
        vq: impl Into<ImageCodec>,
        text: TextTokenizer,
    ) -> Result<Self> {
        let vq = vq.into();
        let meta = &config.dynaboot;
        meta.vocab.check_text(&text)?;
        if meta.vocab.codebook_size as usize != vq.codebook_size()
            || meta.image_tokens != vq.tokens_per_image()
        {
            return Err(Error::Invalid(format!(
                "the image tokenizer (codebook {}, {} tokens per image) is not the one the model was \
                 trained with (codebook {}, {} tokens)",
                vq.codebook_size(),
                vq.tokens_per_image(),
                meta.vocab.codebook_size,
                meta.image_tokens
            )));
        }
        if meta.vocab.size() != config.backbone.vocab_size {
            return Err(Error::Invalid(format!(
                "vocab_size {} but the vocabulary layout has {} ids",
                config.backbone.vocab_size,
                meta.vocab.size()
            )));
        }
        backbone.fuse_for_inference()?;
        let format = config.format();
        Ok(Model {
            config,
            backbone,
            vq,
            text,
            format,
        })
    }

    /// Loads a checkpoint folder (see the module doc). A LoRA adapter folder (its base with
    /// the adapter merged in) or an HF Chameleon folder loads too, so every command that takes
    /// a checkpoint takes those ([`super::base`]).
    #[cfg(feature = "fs")]
    pub fn load(dir: &std::path::Path, device: &Device) -> Result<Self> {
        use super::base;
        if dir.join(base::ADAPTER_CONFIG).exists() {
            return base::load_adapter(dir, device);
        }
        if dir.join("config.json").exists() && !base::is_dynaboot_checkpoint(dir) {
            return base::load_model(dir, None, None, device);
        }
        let config = load_config(dir)?;
        let w = dir.join("model.safetensors");
        let weights = crate::files::read_input(&w, crate::files::Input::Weights)?;
        let vq_dir = checked_vq_dir(dir, &config)?;
        let vq = ImageTokenizer::load(&vq_dir, device)?;
        let text = TextTokenizer::load(&dir.join("tokenizer.json"))?;
        let config_file = dir.join("config.json").display().to_string();
        let files = [config_file.as_str(), &w.display().to_string()];
        Self::from_parts(config, weights, vq, text, device, files)
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.backbone.device()
    }

    /// Image codes of RGB images (each must be the tokenizer's size).
    pub(crate) fn encode_images(&self, images: &[RgbImage]) -> Result<Vec<Vec<u32>>> {
        Ok(self.vq.encode(images)?.codes)
    }

    /// RGB images of image codes.
    pub fn decode_images(&self, codes: &[Vec<u32>]) -> Result<Vec<RgbImage>> {
        self.vq.decode(codes)
    }

    /// Text token ids of an action, checked against the context of `role`.
    pub(crate) fn encode_action(&self, action: &str, role: Role) -> Result<Vec<u32>> {
        let ids = self.text.encode(action.trim())?;
        self.format.check_action(&ids, role)?;
        Ok(ids)
    }
}

/// The fingerprint a checkpoint records of the image tokenizer in `vq_dir`, see
/// [`vq_weights_fingerprint`].
#[cfg(feature = "fs")]
pub fn vq_fingerprint(vq_dir: &std::path::Path) -> Result<String> {
    let path = vq_dir.join("model.safetensors");
    let bytes = crate::files::read_input(&path, crate::files::Input::Weights)?;
    vq_weights_fingerprint(&bytes).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// The fingerprint of an image tokenizer's weights (`model.safetensors` bytes): FNV-1a over
/// the name, shape and values of every tensor that decides token ids — the encoder and the
/// codebook — in name order. The decoder only draws the ids, so a decoder trained further or
/// replaced by a wider one (`tokenizer train --decoder-only`) keeps the fingerprint, and the
/// models and token caches made with those ids stay valid.
pub fn vq_weights_fingerprint(weights: &[u8]) -> Result<String> {
    let st = safetensors::SafeTensors::deserialize(weights).map_err(|e| {
        Error::Invalid(format!(
            "the image tokenizer weights are not a safetensors file ({e})"
        ))
    })?;
    let mut names: Vec<&str> = st
        .names()
        .into_iter()
        .filter(|n| !crate::tokenize::vq_train::is_decoder(n))
        .collect();
    names.sort();
    let mut bytes = Vec::new();
    for name in names {
        let t = st
            .tensor(name)
            .map_err(|e| Error::Invalid(format!("image tokenizer tensor {name}: {e}")))?;
        bytes.extend_from_slice(name.as_bytes());
        for d in t.shape() {
            bytes.extend_from_slice(&(*d as u64).to_le_bytes());
        }
        bytes.extend_from_slice(t.data());
    }
    Ok(fingerprint(&bytes))
}

/// The image tokenizer folder a checkpoint in `dir` references, checked against the
/// fingerprint it recorded. Where `vq_path` leads nowhere (a checkpoint copied without the
/// tokenizer beside it), a `vq/` inside the checkpoint or the working directory's
/// `models/vq` is used if its fingerprint is the recorded one; otherwise the error says what
/// to copy where.
#[cfg(feature = "fs")]
pub(crate) fn checked_vq_dir(
    dir: &std::path::Path,
    config: &ModelConfig,
) -> Result<std::path::PathBuf> {
    let meta = &config.dynaboot;
    let vq_dir = dir.join(&meta.vq_path);
    let weights = |d: &std::path::Path| d.join("model.safetensors");
    if !weights(&vq_dir).exists() {
        let fallbacks = [dir.join("vq"), std::path::PathBuf::from("models/vq")];
        for d in fallbacks.iter().filter(|d| weights(d).exists()) {
            if vq_fingerprint(d)? == meta.vq_fingerprint {
                return Ok(d.clone());
            }
        }
        return Err(Error::Invalid(format!(
            "{}: its image tokenizer is missing: `vq_path` in config.json is {:?}, and {} holds \
             no model.safetensors (was the checkpoint copied without the tokenizer beside it?). \
             Copy the tokenizer folder it was trained with (config.json and model.safetensors, \
             fingerprint {}) to {}, or set `vq_path` to where that folder is",
            dir.display(),
            meta.vq_path,
            vq_dir.display(),
            meta.vq_fingerprint,
            vq_dir.display(),
        )));
    }
    let found = vq_fingerprint(&vq_dir)?;
    if found != meta.vq_fingerprint {
        return Err(Error::Invalid(format!(
            "{}: the image tokenizer at {} is not the one this model was trained with \
             (fingerprint {found}, expected {}); point `vq_path` in config.json at the right one",
            dir.display(),
            vq_dir.display(),
            meta.vq_fingerprint
        )));
    }
    Ok(vq_dir)
}

/// Reads and checks `config.json` of a checkpoint folder.
#[cfg(feature = "fs")]
pub(crate) fn load_config(dir: &std::path::Path) -> Result<ModelConfig> {
    let path = dir.join("config.json");
    let text = crate::files::read_input_text(&path, crate::files::Input::Json)?;
    parse_config(&text, &path.display().to_string())
}

/// Parses and checks a checkpoint's `config.json`; `file` names it in errors.
pub fn parse_config(text: &str, file: &str) -> Result<ModelConfig> {
    let config: ModelConfig = serde_json::from_str(text).map_err(|e| Error::Malformed {
        file: file.into(),
        row: None,
        field: None,
        message: format!("{e}; it must be a config.json written by `dynaboot train`"),
    })?;
    config.backbone.validate().map_err(|m| Error::Malformed {
        file: file.into(),
        row: None,
        field: None,
        message: m,
    })?;
    let (context, tokens) = (
        config.backbone.max_position_embeddings,
        config.dynaboot.image_tokens,
    );
    let need = Format::min_context(tokens);
    if context < need {
        return Err(Error::Malformed {
            file: file.into(),
            row: None,
            field: Some("max_position_embeddings".into()),
            message: format!(
                "{context} positions cannot hold two images of {tokens} tokens and an action; \
                 it needs at least {need} ({} as `train` writes it, for actions of up to {} \
                 tokens): set it to what the weights were trained with",
                Format::context_for(tokens),
                Format::ACTION_ROOM
            ),
        });
    }
    Ok(config)
}

/// The FNV-1a fingerprint of bytes, as checkpoints record it of their image tokenizer.
pub(crate) fn fingerprint(vq_weights: &[u8]) -> String {
    format!("{:016x}", crate::nn::init::fnv1a(vq_weights))
}

/// Copies the checkpoint in `from` to `to` with its weights stored as `dtype` (f16 halves what
/// ships; loading converts back to f32) and `vq_path` rewritten for the new place. Training
/// state (`train_state.safetensors`, metrics) is not copied.
#[cfg(feature = "fs")]
pub fn export(
    from: &std::path::Path,
    to: &std::path::Path,
    dtype: candle_core::DType,
) -> Result<()> {
    if crate::files::same_folder(from, to) {
        return Err(Error::Invalid(format!(
            "export: {} and {} are the same folder; export to another one",
            from.display(),
            to.display()
        )));
    }
    let mut config = load_config(from)?;
    let vq_dir = checked_vq_dir(from, &config)?;
    let w = from.join("model.safetensors");
    // Read as loading reads it: what is exported is a checkpoint that loads.
    let bytes = crate::files::read_input(&w, crate::files::Input::Weights)?;
    let weights = Weights::read(&bytes, &w.display().to_string())?;
    let config_file = from.join("config.json").display().to_string();
    weights.check_config(&config, &config_file, INERT_FIELDS)?;
    let tensors = weights.into_tensors();
    let mut named: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(k, v)| Ok((k, v.to_dtype(dtype)?)))
        .collect::<Result<_>>()?;
    named.sort_by(|a, b| a.0.cmp(&b.0));
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    config.dynaboot.vq_path = crate::files::relative_path(to, &vq_dir)?
        .to_string_lossy()
        .into_owned();
    let text = TextTokenizer::load(&from.join("tokenizer.json"))?;
    save(to, &config, &named, &text)?;
    let metrics = from.join("metrics.jsonl");
    if metrics.exists() {
        let bytes = crate::files::read_input(&metrics, crate::files::Input::Json)?;
        crate::files::write_atomic(&to.join("metrics.jsonl"), &bytes)?;
    }
    Ok(())
}

/// Writes `config.json`, `model.safetensors` and `tokenizer.json` into `dir`, each atomically.
#[cfg(feature = "fs")]
pub fn save(
    dir: &std::path::Path,
    config: &ModelConfig,
    tensors: &[(String, Tensor)],
    text: &TextTokenizer,
) -> Result<()> {
    crate::files::write_safetensors(
        &dir.join("model.safetensors"),
        tensors,
        Some(crate::weights::metadata(config)),
    )?;
    text.save(&dir.join("tokenizer.json"))?;
    let json = serde_json::to_string_pretty(config).expect("configs serialise");
    crate::files::write_atomic(&dir.join("config.json"), json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::{VqConfig, VqTrainer};
    use candle_core::Tensor;

    /// The tiny VQ's weights as safetensors bytes, with `change` applied to each named tensor.
    fn weights(change: impl Fn(&str, Tensor) -> Tensor) -> Vec<u8> {
        let tr = VqTrainer::new(VqConfig::tiny(32), 1e-3, 7, &Device::Cpu).unwrap();
        let tensors: Vec<(String, Tensor)> = tr
            .tensors()
            .into_iter()
            .map(|(n, t)| {
                let t = change(&n, t);
                (n, t)
            })
            .collect();
        safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None).unwrap()
    }

    #[test]
    fn the_vq_fingerprint_follows_the_encoder_and_codebook_not_the_decoder() -> Result<()> {
        let plus_one = |t: Tensor| (t + 1.0).unwrap();
        let base = vq_weights_fingerprint(&weights(|_, t| t))?;
        for part in ["decoder.", "post_quant_conv."] {
            let changed = weights(|n, t| if n.starts_with(part) { plus_one(t) } else { t });
            assert_eq!(vq_weights_fingerprint(&changed)?, base, "{part}");
        }
        for part in ["encoder.", "quant_conv.", "quantize."] {
            let changed = weights(|n, t| if n.starts_with(part) { plus_one(t) } else { t });
            assert_ne!(vq_weights_fingerprint(&changed)?, base, "{part}");
        }
        let e = vq_weights_fingerprint(b"not safetensors").unwrap_err();
        assert!(e.to_string().contains("safetensors"), "{e}");
        Ok(())
    }
}
