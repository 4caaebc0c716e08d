//! `dynaboot logits` (a base's logits for a token sequence, to compare with other
//! implementations) and `dynaboot merge` (fold a LoRA adapter into its base and save).

use crate::predict_cmd::BaseArgs;
use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use clap::Args;
use dynaboot::model::Pass;
use dynaboot::model::base::{BaseKind, BaseModel};
use std::path::{Path, PathBuf};

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
    /// --base) for an HF base. A new folder, not --base's or --adapter's.
    #[arg(long)]
    out: PathBuf,
    /// Replace a checkpoint already in --out (its weights and configs are removed first).
    #[arg(long)]
    force: bool,
}

/// What makes a folder a checkpoint: configs and weights (HF shards and their index too).
fn checkpoint_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let ours = name.ends_with(".safetensors")
            || name.ends_with(".safetensors.index.json")
            || ["config.json", "adapter_config.json", "tokenizer.json"].contains(&name.as_str());
        if ours {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Refuses an --out that is an input, or that holds a checkpoint unless `--force` (which
/// removes its files first, so no old shard loads beside the merged weights).
fn clear_out(a: &MergeArgs) -> Result<()> {
    for (flag, dir) in [("--base", &a.base), ("--adapter", &a.adapter)] {
        if dynaboot::files::same_folder(&a.out, dir) {
            bail!(
                "--out {} is the {flag} folder; merge into a new folder (the {flag} files would \
                 be mixed with the merged ones)",
                a.out.display()
            );
        }
    }
    let existing = checkpoint_files(&a.out)?;
    Ok(dynaboot::files::clear_earlier_output(
        &a.out,
        &existing,
        "a checkpoint",
        None,
        a.force,
    )?)
}

pub fn merge(a: MergeArgs) -> Result<()> {
    let dev = Device::Cpu;
    let base = BaseModel::open(&a.base, None, DType::F32, &dev)?;
    let (mut backbone, cfg) = base
        .adapted_backbone(&a.adapter, &dev)
        .with_context(|| format!("--adapter {}", a.adapter.display()))?;
    let merged = backbone.merged_tensors()?;
    clear_out(&a)?;
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
            dynaboot::files::write_safetensors(&a.out.join("model.safetensors"), &tensors, None)?;
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
