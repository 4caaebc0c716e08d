//! Real Chameleon/Anole checkpoints in the Hugging Face layout: a directory with `config.json`
//! (HF `ChameleonConfig`, `vq_config` and `vocabulary_map` included), the weights as one
//! `model.safetensors` or as shards listed by `model.safetensors.index.json`, and
//! `tokenizer.json`. The weights are memory-mapped and go into the same [`Chameleon`] backbone
//! the embedded models use; the VQ encoder stored under `model.vqmodel.*` goes into
//! [`crate::tokenize::ChameleonVq`].
//!
//! Chameleon's vocabulary does not keep image codes at an offset: codebook index `i` is the
//! token named `IMGIMG<digits of i as letters A-J>Z`, wherever the BPE put it.
//! [`ImageVocabulary`] is that mapping (HF's `ChameleonImageVocabularyMapping`).

use crate::error::{Error, Result, candle_reason};
use crate::model::chameleon::{Chameleon, ChameleonConfig};
use crate::tokenize::chameleon_vq::ChameleonVqConfig;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Chameleon's special tokens (names in its vocabulary).
pub(crate) const BOS: &str = "<s>";
pub(crate) const EOS: &str = "</s>";
pub(crate) const PAD: &str = "<pad>";
/// Begin-of-image: Chameleon calls it `<racm3:break>`.
pub(crate) const BOI: &str = "<racm3:break>";
/// End-of-image: `<eoss>`.
pub(crate) const EOI: &str = "<eoss>";

/// The parts of an HF `config.json` dynaboot reads besides the backbone's fields.
#[derive(Debug, Deserialize)]
struct HfConfigExtras {
    #[serde(default)]
    rope_parameters: Option<RopeParameters>,
    #[serde(default)]
    vq_config: Option<ChameleonVqConfig>,
    #[serde(default)]
    vocabulary_map: Option<BTreeMap<String, u32>>,
    #[serde(default)]
    model_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RopeParameters {
    #[serde(default)]
    rope_type: Option<String>,
    rope_theta: f64,
}

/// Which token id holds which image code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageVocabulary {
    /// `token_of_code[i]`: the token id of codebook index `i`.
    pub(crate) token_of_code: Vec<u32>,
    code_of_token: HashMap<u32, u32>,
}

impl ImageVocabulary {
    /// Reads the `IMGIMG...Z` entries of a vocabulary map; every codebook index
    /// `0..codebook_size` must have exactly one token.
    pub(crate) fn from_vocabulary_map(
        map: &BTreeMap<String, u32>,
        codebook_size: usize,
    ) -> Result<Self> {
        let bad = |m: String| Error::Malformed {
            file: "config.json".into(),
            row: None,
            field: Some("vocabulary_map".into()),
            message: m,
        };
        let mut token_of_code = vec![None; codebook_size];
        for (name, &id) in map {
            let Some(digits) = name
                .strip_prefix("IMGIMG")
                .and_then(|s| s.strip_suffix('Z'))
            else {
                continue;
            };
            let code: String = digits
                .chars()
                .map(|c| match c {
                    'A'..='J' => Ok((b'0' + (c as u8 - b'A')) as char),
                    _ => Err(bad(format!(
                        "image token `{name}` has a character outside A-J"
                    ))),
                })
                .collect::<Result<_>>()?;
            let code: usize = code
                .parse()
                .map_err(|_| bad(format!("image token `{name}` names no number")))?;
            let slot = token_of_code.get_mut(code).ok_or_else(|| {
                bad(format!(
                    "image token `{name}` is code {code}, beyond the codebook of {codebook_size}"
                ))
            })?;
            if slot.replace(id).is_some() {
                return Err(bad(format!("code {code} has two image tokens")));
            }
        }
        let token_of_code: Vec<u32> = token_of_code
            .into_iter()
            .enumerate()
            .map(|(i, t)| t.ok_or_else(|| bad(format!("no image token for codebook index {i}"))))
            .collect::<Result<_>>()?;
        let code_of_token = token_of_code
            .iter()
            .enumerate()
            .map(|(c, &t)| (t, c as u32))
            .collect();
        Ok(ImageVocabulary {
            token_of_code,
            code_of_token,
        })
    }

    /// The model's token id of codebook index `code` (below the codebook size).
    pub fn token(&self, code: u32) -> u32 {
        self.token_of_code[code as usize]
    }

    /// The codebook index of token id `token`, if it is an image token.
    pub fn code(&self, token: u32) -> Option<u32> {
        self.code_of_token.get(&token).copied()
    }
}

/// An HF Chameleon checkpoint directory, read but not yet loaded.
#[derive(Clone, Debug)]
pub struct HfCheckpoint {
    pub(crate) dir: PathBuf,
    pub(crate) config: ChameleonConfig,
    /// The VQ image tokenizer's config (`vq_config`), when the checkpoint has one.
    pub vq_config: Option<ChameleonVqConfig>,
    /// The vocabulary map (token name -> id), when the config carries one.
    pub(crate) vocabulary_map: BTreeMap<String, u32>,
    /// The safetensors files holding the weights.
    pub weight_files: Vec<PathBuf>,
}

fn read(path: &Path) -> Result<String> {
    crate::files::read_input_text(path, crate::files::Input::Json)
}

impl HfCheckpoint {
    /// Reads `config.json` and finds the weight files (`model.safetensors`, or the shards
    /// named by `model.safetensors.index.json`).
    pub fn open(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        if !config_path.exists() {
            return Err(Error::Invalid(format!(
                "{} is not an HF checkpoint directory: it has no config.json (point --base at \
                 the folder holding config.json and model*.safetensors)",
                dir.display()
            )));
        }
        let text = read(&config_path)?;
        let malformed = |field: Option<&str>, message: String| Error::Malformed {
            file: config_path.display().to_string(),
            row: None,
            field: field.map(str::to_string),
            message,
        };
        let unreadable = |e: serde_json::Error| {
            malformed(
                None,
                format!(
                    "{e}; it must be the config.json `dynaboot train` writes, or an HF Chameleon \
                     checkpoint's: copy the checkpoint again"
                ),
            )
        };
        let mut config: ChameleonConfig = serde_json::from_str(&text).map_err(unreadable)?;
        let extras: HfConfigExtras = serde_json::from_str(&text).map_err(unreadable)?;
        if let Some(t) = extras.model_type.as_deref()
            && t != "chameleon"
        {
            return Err(malformed(
                Some("model_type"),
                format!("`{t}` is not a Chameleon checkpoint (expected `chameleon`)"),
            ));
        }
        if let Some(rope) = extras.rope_parameters {
            match rope.rope_type.as_deref() {
                None | Some("default") => config.rope_theta = rope.rope_theta,
                Some(other) => {
                    return Err(malformed(
                        Some("rope_parameters.rope_type"),
                        format!("rope type `{other}` is not supported (only `default`)"),
                    ));
                }
            }
        }
        config.validate().map_err(|m| malformed(None, m))?;
        let index = dir.join("model.safetensors.index.json");
        let weight_files = if index.exists() {
            #[derive(Deserialize)]
            struct Index {
                weight_map: BTreeMap<String, String>,
            }
            let idx: Index =
                serde_json::from_str(&read(&index)?).map_err(|e| Error::Malformed {
                    file: index.display().to_string(),
                    row: None,
                    field: Some("weight_map".into()),
                    message: e.to_string(),
                })?;
            let mut files: Vec<String> = idx.weight_map.into_values().collect();
            files.sort();
            files.dedup();
            files.into_iter().map(|f| dir.join(f)).collect::<Vec<_>>()
        } else {
            vec![dir.join("model.safetensors")]
        };
        for f in &weight_files {
            if !f.exists() {
                return Err(Error::Invalid(format!(
                    "{}: weight file {} is missing (is the download complete?)",
                    dir.display(),
                    f.display()
                )));
            }
        }
        Ok(HfCheckpoint {
            dir: dir.to_path_buf(),
            config,
            vq_config: extras.vq_config,
            vocabulary_map: extras.vocabulary_map.unwrap_or_default(),
            weight_files,
        })
    }

    /// A var builder over the memory-mapped weights, converting to `dtype` on `device`.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
        // SAFETY: the files are mapped read-only; like every mmap reader we rely on nobody
        // truncating them while the model is loaded.
        unsafe { VarBuilder::from_mmaped_safetensors(&self.weight_files, dtype, device) }
            .map_err(|e| Error::Invalid(format!("{}: {}", self.dir.display(), candle_reason(&e))))
    }

    /// The backbone with the checkpoint's weights.
    pub fn load_backbone(&self, dtype: DType, device: &Device) -> Result<Chameleon> {
        let vb = self.var_builder(dtype, device)?;
        Chameleon::new(self.config.clone(), vb).map_err(|e| {
            Error::Invalid(format!(
                "{}: the weights do not fit config.json: {e}",
                self.dir.display()
            ))
        })
    }

    /// The image-token mapping of the checkpoint's vocabulary.
    pub fn image_vocabulary(&self) -> Result<ImageVocabulary> {
        let size = self
            .vq_config
            .as_ref()
            .map(|c| c.num_embeddings)
            .ok_or_else(|| Error::Malformed {
                file: self.dir.join("config.json").display().to_string(),
                row: None,
                field: Some("vq_config".into()),
                message: "missing: this checkpoint has no image tokenizer".into(),
            })?;
        ImageVocabulary::from_vocabulary_map(&self.vocabulary_map, size)
    }

    /// The id of a named token of the vocabulary map.
    pub(crate) fn token_id(&self, name: &str) -> Result<u32> {
        self.vocabulary_map
            .get(name)
            .copied()
            .ok_or_else(|| Error::Malformed {
                file: self.dir.join("config.json").display().to_string(),
                row: None,
                field: Some("vocabulary_map".into()),
                message: format!("has no `{name}` token"),
            })
    }
}
