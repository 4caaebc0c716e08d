//! `dynaboot logits` (a base's logits for a token sequence, to compare with other
//! implementations) and `dynaboot merge` (fold a LoRA adapter into its base and save).

use crate::predict_cmd::BaseArgs;
use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use clap::Args;
use dynaboot::model::Pass;
use dynaboot::model::base::{BaseKind, BaseModel};
use std::path::PathBuf;

#[derive(Args)]
pub struct LogitsArgs {
    #[command(flatten)]
    model: BaseArgs,
    /// Token ids, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    tokens: Vec<u32>,
    /// Print one JSON object: `{"tokens": [...], "logits": [[...], ...]}` (every position,
    /// the full vocabulary, before any mask).
    #[arg(long)]
    json: bool,
}

pub fn logits(a: LogitsArgs) -> Result<()> {
    let Some(base) = &a.model.base else {
        bail!("--base DIR is required");
    };
    let model = a.model.load(None)?;
    let vocab = model.config.backbone.vocab_size as u32;
    if let Some(t) = a.tokens.iter().find(|&&t| t >= vocab) {
        bail!(
            "--tokens: id {t} is outside the vocabulary of {} ({vocab} ids)",
            base.display()
        );
    }
    let ids = Tensor::new(a.tokens.as_slice(), model.device())?.unsqueeze(0)?;
    let logits = model
        .backbone
        .forward(&ids, None, Pass::Infer)?
        .squeeze(0)?
        .to_dtype(DType::F32)?
        .to_vec2::<f32>()?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({ "tokens": a.tokens, "logits": logits })
        );
        return Ok(());
    }
    for (pos, (tok, row)) in a.tokens.iter().zip(&logits).enumerate() {
        let mut top: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
        top.sort_by(|x, y| y.1.total_cmp(&x.1));
        let top: Vec<String> = top[..5.min(top.len())]
            .iter()
            .map(|(i, l)| format!("{i}:{l:.4}"))
            .collect();
        println!("{pos} (token {tok}): top {}", top.join(" "));
    }
    Ok(())
}

#[derive(Args)]
pub struct MergeArgs {
    /// Base checkpoint (dynaboot or HF Chameleon).
    #[arg(long)]
    base: PathBuf,
    /// LoRA adapter folder trained on --base.
    #[arg(long)]
    adapter: PathBuf,
    /// Output folder: a dynaboot checkpoint for a dynaboot base, an HF folder (loadable as
    /// --base) for an HF base.
    #[arg(long)]
    out: PathBuf,
}

pub fn merge(a: MergeArgs) -> Result<()> {
    let dev = Device::Cpu;
    let base = BaseModel::open(&a.base, None, DType::F32, &dev)?;
    let (mut backbone, cfg) = base
        .adapted_backbone(&a.adapter, &dev)
        .with_context(|| format!("--adapter {}", a.adapter.display()))?;
    let merged = backbone.merged_tensors()?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    match base.kind {
        BaseKind::Dynaboot => {
            let mut config = base.model_config(cfg.dynaboot.roles.clone());
            config.dynaboot.vq_path =
                dynaboot::files::relative_path(&a.out, base.meta.vq_path.as_ref())?
                    .to_string_lossy()
                    .into_owned();
            dynaboot::model::checkpoint::save(&a.out, &config, &merged, &base.text)?;
        }
        BaseKind::Chameleon => {
            // Everything the base's files hold (the VQ encoder too), in their own dtypes,
            // with the merged projections in place.
            let mut all: std::collections::BTreeMap<String, Tensor> =
                base.all_tensors(&dev)?.into_iter().collect();
            for (name, t) in merged {
                let dtype = all.get(&name).map_or(DType::F32, |o| o.dtype());
                all.insert(name, t.to_dtype(dtype)?);
            }
            let tensors: Vec<(String, Tensor)> = all.into_iter().collect();
            dynaboot::files::write_safetensors(&a.out.join("model.safetensors"), &tensors)?;
            for f in ["config.json", "tokenizer.json", "generation_config.json"] {
                let from = a.base.join(f);
                if from.exists() {
                    let bytes = std::fs::read(&from).with_context(|| from.display().to_string())?;
                    dynaboot::files::write_atomic(&a.out.join(f), &bytes)?;
                }
            }
        }
    }
    println!(
        "merged {} (r={}, alpha={}) into {} -> {}",
        a.adapter.display(),
        cfg.lora.r,
        cfg.lora.lora_alpha,
        a.base.display(),
        a.out.display()
    );
    Ok(())
}
