//! The frozen model a fine-tune starts from, and the LoRA adapters trained on top of it.
//!
//! A base is either a dynaboot checkpoint folder (`config.json` with a `dynaboot` object) or
//! a real Chameleon/Anole checkpoint in the HF layout ([`super::hf`]); both give the same
//! things: the backbone's config and memory-mapped weights, the vocabulary layout, the image
//! and text tokenizers. An adapter folder (PEFT's layout, see [`super::lora`]) names its base
//! and the roles it was trained for; [`load_model`] puts base and adapter together.

use super::chameleon::{Chameleon, ChameleonConfig};
use super::checkpoint::{Model, ModelConfig, ModelMeta, checked_vq_dir, load_config};
use super::format::{Role, WorldLayout};
use super::hf::{self, HfCheckpoint};
use super::lora::LoraConfig;
use super::vocab::{Specials, Vocab};
use crate::error::{Error, Result, candle_reason};
use crate::tokenize::{ChameleonVq, ImageCodec, ImageTokenizer, TextTokenizer};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub(crate) const ADAPTER_CONFIG: &str = "adapter_config.json";
pub(crate) const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// Where a base came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseKind {
    /// A checkpoint written by `dynaboot train`.
    Dynaboot,
    /// An HF Chameleon/Anole checkpoint.
    Chameleon,
}

/// A base model, opened: configs, tokenizers and a view of its weights.
pub struct BaseModel {
    pub(crate) dir: PathBuf,
    /// A dynaboot checkpoint or an HF Chameleon folder.
    pub kind: BaseKind,
    /// The checkpoint's own `dynaboot` metadata with `roles` left to the caller.
    pub meta: ModelMeta,
    pub(crate) backbone_config: ChameleonConfig,
    /// The image tokenizer the base was trained with.
    pub vq: ImageCodec,
    /// The text tokenizer the base was trained with.
    pub text: TextTokenizer,
    /// The taming VQGAN checkpoint whose decoder `vq` carries, when one was given.
    pub(crate) vqgan: Option<PathBuf>,
    weights: VarBuilder<'static>,
    /// All tensors of the weight files (HF checkpoints keep the VQ encoder beside the
    /// backbone; a merge copies it along).
    weight_files: Vec<PathBuf>,
}

impl BaseModel {
    /// Opens `dir` as a dynaboot checkpoint or an HF Chameleon checkpoint. `vqgan` is the
    /// taming VQGAN checkpoint with the image decoder (HF checkpoints store only the encoder);
    /// without it images can be encoded (training) but not decoded (prediction).
    pub fn open(dir: &Path, vqgan: Option<&Path>, dtype: DType, device: &Device) -> Result<Self> {
        if is_dynaboot_checkpoint(dir) {
            if let Some(path) = vqgan {
                return Err(Error::Invalid(format!(
                    "--vqgan {}: {} is a dynaboot checkpoint, which brings its own image \
                     tokenizer; --vqgan is for HF Chameleon bases only: leave it out",
                    path.display(),
                    dir.display()
                )));
            }
            Self::open_dynaboot(dir, dtype, device)
        } else {
            Self::open_chameleon(dir, vqgan, dtype, device)
        }
    }

    fn open_dynaboot(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let config = load_config(dir)?;
        let vq_dir = checked_vq_dir(dir, &config)?;
        let vq = ImageTokenizer::load(&vq_dir, device)?.into();
        let text = TextTokenizer::load(&dir.join("tokenizer.json"))?;
        let files = vec![dir.join("model.safetensors")];
        let weights = mmap(&files, dtype, device, dir)?;
        let mut meta = config.dynaboot;
        meta.vq_path = std::fs::canonicalize(&vq_dir)
            .map_err(|e| Error::io(&vq_dir, e))?
            .to_string_lossy()
            .into_owned();
        Ok(BaseModel {
            dir: dir.to_path_buf(),
            kind: BaseKind::Dynaboot,
            meta,
            backbone_config: config.backbone,
            vq,
            text,
            vqgan: None,
            weights,
            weight_files: files,
        })
    }

    fn open_chameleon(
        dir: &Path,
        vqgan: Option<&Path>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let ckpt = HfCheckpoint::open(dir)?;
        let weights = ckpt.var_builder(dtype, device)?;
        let vq_config = ckpt.vq_config.clone().ok_or_else(|| Error::Malformed {
            file: dir.join("config.json").display().to_string(),
            row: None,
            field: Some("vq_config".into()),
            message: "missing: dynaboot needs Chameleon's image tokenizer".into(),
        })?;
        let mut vq = ChameleonVq::load_encoder(vq_config, &weights.pp("model.vqmodel"))?;
        if let Some(path) = vqgan {
            vq = vq.with_taming_decoder(path, device)?;
        }
        let fingerprint = crate::model::checkpoint::fingerprint(
            &vq.codebook_bytes()?, // the codes mean what this codebook says
        );
        let text = TextTokenizer::load(&dir.join("tokenizer.json"))?;
        let specials = chameleon_specials(&ckpt)?;
        let table = ckpt.image_vocabulary()?.token_of_code;
        let vocab = Vocab::with_image_table(ckpt.config.vocab_size as u32, specials, table)?;
        let meta = ModelMeta {
            roles: Vec::new(),
            vocab,
            image_tokens: vq.config.tokens_per_image(),
            vq_path: std::fs::canonicalize(dir)
                .map_err(|e| Error::io(dir, e))?
                .to_string_lossy()
                .into_owned(),
            vq_fingerprint: fingerprint,
            world_layout: WorldLayout::ActionFirst,
        };
        Ok(BaseModel {
            dir: dir.to_path_buf(),
            kind: BaseKind::Chameleon,
            meta,
            backbone_config: ckpt.config.clone(),
            vq: ImageCodec::Chameleon(Box::new(vq)),
            text,
            vqgan: vqgan.map(Path::to_path_buf),
            weights,
            weight_files: ckpt.weight_files,
        })
    }

    /// The checkpoint configuration of a fine-tune of this base for `roles`.
    pub fn model_config(&self, roles: Vec<Role>) -> ModelConfig {
        ModelConfig {
            backbone: self.backbone_config.clone(),
            dynaboot: ModelMeta {
                roles,
                ..self.meta.clone()
            },
        }
    }

    /// The frozen backbone (weights are plain tensors: no gradient reaches them).
    pub fn backbone(&self) -> Result<Chameleon> {
        Chameleon::new(self.backbone_config.clone(), self.weights.clone()).map_err(|e| {
            Error::Invalid(format!(
                "{}: the weights do not fit config.json: {e}",
                self.dir.display()
            ))
        })
    }

    /// The backbone with the LoRA adapter in `dir` (trained on this base) added, and the
    /// adapter's config.
    pub fn adapted_backbone(
        &self,
        dir: &Path,
        device: &Device,
    ) -> Result<(Chameleon, AdapterConfig)> {
        let cfg = load_adapter_config(dir)?;
        if cfg.dynaboot.vocab != self.meta.vocab {
            return Err(Error::Invalid(format!(
                "{}: this adapter was trained on another base (its vocabulary differs from \
                 {}'s); pass the --base it names: {}",
                dir.display(),
                self.dir.display(),
                cfg.base_model_name_or_path
            )));
        }
        let w = dir.join(ADAPTER_WEIGHTS);
        // SAFETY: as above, a read-only mapping.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&w], DType::F32, device) }
            .map_err(|e| Error::Invalid(format!("{}: {}", w.display(), candle_reason(&e))))?;
        let mut backbone = self.backbone()?;
        backbone.add_lora(&cfg.lora, vb).map_err(|e| {
            let e = candle_reason(&e);
            Error::Invalid(format!(
                "{}: the adapter does not fit the base ({e})",
                w.display()
            ))
        })?;
        Ok((backbone, cfg))
    }

    /// Every tensor the base's weight files hold, by name (for a merge, which must keep
    /// what the backbone does not use, such as an HF checkpoint's VQ encoder).
    pub fn all_tensors(&self, device: &Device) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for f in &self.weight_files {
            let t = candle_core::safetensors::load(f, device)
                .map_err(|e| Error::Invalid(format!("{}: {}", f.display(), candle_reason(&e))))?;
            out.extend(t);
        }
        Ok(out)
    }
}

fn mmap(
    files: &[PathBuf],
    dtype: DType,
    device: &Device,
    dir: &Path,
) -> Result<VarBuilder<'static>> {
    for f in files {
        if !f.exists() {
            return Err(Error::Invalid(format!(
                "{}: {} is missing",
                dir.display(),
                f.display()
            )));
        }
    }
    // SAFETY: read-only mapping of files nobody truncates while the model is loaded.
    unsafe { VarBuilder::from_mmaped_safetensors(files, dtype, device) }
        .map_err(|e| Error::Invalid(format!("{}: {}", dir.display(), candle_reason(&e))))
}

/// Chameleon's special tokens, plus two of its reserved tokens as the task markers of the
/// world and the dynamics model (Chameleon has no such tokens; the paper trains one model per
/// role, so with separate checkpoints they are constant prefixes).
fn chameleon_specials(ckpt: &HfCheckpoint) -> Result<Specials> {
    let mut reserved: Vec<u32> = ckpt
        .vocabulary_map
        .iter()
        .filter(|(name, _)| name.starts_with("<reserved"))
        .map(|(_, &id)| id)
        .collect();
    reserved.sort_unstable();
    if reserved.len() < 2 {
        return Err(Error::Malformed {
            file: ckpt.dir.join("config.json").display().to_string(),
            row: None,
            field: Some("vocabulary_map".into()),
            message: "needs two `<reserved…>` tokens for the task markers".into(),
        });
    }
    Ok(Specials {
        pad: ckpt.token_id(hf::PAD)?,
        bos: ckpt.token_id(hf::BOS)?,
        eos: ckpt.token_id(hf::EOS)?,
        boi: ckpt.token_id(hf::BOI)?,
        eoi: ckpt.token_id(hf::EOI)?,
        wm: reserved[0],
        dm: reserved[1],
    })
}

/// `adapter_config.json`: PEFT's fields plus what dynaboot needs to use the adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    /// PEFT's adapter type: `"LORA"`.
    pub peft_type: String,
    pub(crate) base_model_name_or_path: String,
    /// Rank, alpha, dropout and target modules, in PEFT's field names.
    #[serde(flatten)]
    pub lora: LoraConfig,
    /// What dynaboot adds.
    pub dynaboot: AdapterMeta,
}

/// An adapter's dynaboot metadata: what it was trained for and on which base.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterMeta {
    /// The roles the adapter was trained for.
    pub roles: Vec<Role>,
    /// The taming VQGAN checkpoint that decodes the base's image codes, when one was given
    /// (HF Chameleon folders hold only the encoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) vqgan: Option<String>,
    /// The base's vocabulary layout, to refuse a base it was not trained on.
    pub(crate) vocab: Vocab,
}

/// Writes an adapter folder (atomically, file by file).
pub(crate) fn save_adapter(
    dir: &Path,
    config: &AdapterConfig,
    tensors: &[(String, Tensor)],
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    crate::files::write_safetensors(&dir.join(ADAPTER_WEIGHTS), tensors, None)?;
    let json = serde_json::to_string_pretty(config).expect("configs serialise");
    crate::files::write_atomic(&dir.join(ADAPTER_CONFIG), json.as_bytes())
}

/// Reads an adapter folder's config.
pub fn load_adapter_config(dir: &Path) -> Result<AdapterConfig> {
    let path = dir.join(ADAPTER_CONFIG);
    let text = crate::files::read_input_text(&path, crate::files::Input::Json)?;
    let c: AdapterConfig = serde_json::from_str(&text).map_err(|e| Error::Malformed {
        file: path.display().to_string(),
        row: None,
        field: None,
        message: format!("{e}; it must be written by `dynaboot train --lora`"),
    })?;
    c.lora.validate()?;
    Ok(c)
}

/// The model of an adapter folder: its base (as `adapter_config.json` names it) with the
/// adapter merged in, decoding images with the VQGAN it recorded.
pub(crate) fn load_adapter(dir: &Path, device: &Device) -> Result<Model> {
    let cfg = load_adapter_config(dir)?;
    let base = PathBuf::from(&cfg.base_model_name_or_path);
    load_model(
        &base,
        Some(dir),
        cfg.dynaboot.vqgan.as_deref().map(Path::new),
        device,
    )
}

/// Whether `dir` holds a dynaboot checkpoint (a `config.json` with a `dynaboot` object).
pub(crate) fn is_dynaboot_checkpoint(dir: &Path) -> bool {
    crate::files::read_input_text(&dir.join("config.json"), crate::files::Input::Json)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("dynaboot").is_some())
}

/// A model ready for inference: `base`, with the adapter in `adapter` merged in when given.
/// Roles come from the adapter, else from a dynaboot base, else both.
pub fn load_model(
    base: &Path,
    adapter: Option<&Path>,
    vqgan: Option<&Path>,
    device: &Device,
) -> Result<Model> {
    let base = BaseModel::open(base, vqgan, DType::F32, device)?;
    let (backbone, roles) = match adapter {
        Some(dir) => {
            let (backbone, cfg) = base.adapted_backbone(dir, device)?;
            (backbone, cfg.dynaboot.roles)
        }
        None if !base.meta.roles.is_empty() => (base.backbone()?, base.meta.roles.clone()),
        None => (base.backbone()?, vec![Role::World, Role::Dynamics]),
    };
    let config = base.model_config(roles);
    Model::assemble(config, backbone, base.vq, base.text)
}
