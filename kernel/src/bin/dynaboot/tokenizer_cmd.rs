//! `dynaboot tokenizer ...`: train and evaluate the image and text tokenizers.

use crate::progress::bar;
use anyhow::{Context, Result, bail};
use candle_core::Device;
use clap::Subcommand;
use dynaboot::data::AuroraDataset;
use dynaboot::eval::evaluate_tokenizer;
use dynaboot::eval::tokenizer::token_locality;
use dynaboot::tokenize::vq_train::{CodeRestarts, VqTrainConfig};
use dynaboot::tokenize::{ImageTokenizer, TextTokenizer, VqConfig, VqTrainer};
use dynaboot::world::language::corpus;
use dynaboot::world::{Recogniser, RenderConfig};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Subcommand)]
pub enum TokenizerCommand {
    /// Train the VQ-VAE on a dataset's images and the BPE tokenizer on the world's language.
    Train {
        #[arg(long)]
        data: PathBuf,
        /// Folder to write `vq/` and `tokenizer.json` into.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = VqTrainConfig::default().steps, value_parser = crate::args::steps)]
        steps: usize,
        #[arg(long, default_value_t = VqTrainConfig::default().batch_size, value_parser = crate::args::batch)]
        batch: usize,
        #[arg(long, default_value_t = VqTrainConfig::default().lr, value_parser = crate::args::learning_rate)]
        lr: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Text vocabulary size, special tokens and the 256 bytes included.
        #[arg(long, default_value_t = 448, value_parser = crate::args::vocab_size)]
        vocab_size: usize,
        /// A few-thousand-parameter VQ for quick checks.
        #[arg(long, conflicts_with_all = ["channels", "codebook"])]
        tiny: bool,
        /// Channels of the encoder's stages (the decoder mirrors them); each stage halves the
        /// side, so three stages give 64x64 -> 8x8 tokens.
        #[arg(long, value_delimiter = ',', default_values_t = VqConfig::default().channels, value_parser = crate::args::channels)]
        channels: Vec<usize>,
        /// Codebook entries (image token ids).
        #[arg(long, default_value_t = VqConfig::default().codebook_size, value_parser = crate::args::codebook)]
        codebook: usize,
        /// Each token sees only its own patch (1x1 convs, non-overlapping downsamplings): an
        /// edit changes only the ids of the cells whose pixels it changed.
        #[arg(long, conflicts_with_all = ["tiny", "init"])]
        local_encoder: bool,
        /// Where to train: cpu, cuda or cuda:N (needs `--features cuda`).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Continue training from this VQ folder (`config.json` + `model.safetensors`).
        #[arg(long)]
        init: Option<PathBuf>,
        /// With `--init`: train only the decoder. The encoder, the codebook and the text
        /// tokenizer stay as they are, so every token id is kept and models trained on them stay
        /// valid.
        #[arg(long, requires = "init")]
        decoder_only: bool,
        /// Conv widths of the decoder, full size first (default: mirror `--channels`, or keep
        /// the `--init` VQ's). With `--init --decoder-only` a wider decoder learns to draw the
        /// same token ids.
        #[arg(long, value_delimiter = ',', value_parser = crate::args::channels)]
        decoder_channels: Option<Vec<usize>>,
        /// Residual blocks after each upsampling of the decoder (default: 0, or the `--init`
        /// VQ's).
        #[arg(long, value_parser = crate::args::blocks)]
        decoder_blocks: Option<usize>,
        /// Where dead codes restart: at random encoder outputs of the batch, or at those the
        /// codebook fits worst (rare patches get codes of their own).
        #[arg(long, value_enum, default_value_t = CodeRestarts::Random)]
        restarts: CodeRestarts,
        /// A code whose moving-average usage per step falls below this restarts (default:
        /// 0.03, or the `--init` VQ's).
        #[arg(long, value_parser = crate::args::fraction)]
        dead_code_threshold: Option<f64>,
    },
    /// PSNR of reconstructions and recogniser accuracy on images and reconstructions.
    Eval {
        /// Folder written by `tokenizer train`.
        #[arg(long)]
        tokenizers: PathBuf,
        /// AURORA folder with scene-state sidecars (e.g. the test split).
        #[arg(long)]
        data: PathBuf,
        /// Evaluate at most this many rows.
        #[arg(long, value_parser = crate::args::count)]
        limit: Option<usize>,
        /// Also write the numbers here as json.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Replace an existing --json file.
        #[arg(long, requires = "json")]
        force: bool,
    },
}

pub fn run(cmd: TokenizerCommand) -> Result<()> {
    match cmd {
        TokenizerCommand::Train {
            data,
            out,
            steps,
            batch,
            lr,
            seed,
            vocab_size,
            tiny,
            channels,
            codebook,
            local_encoder,
            device,
            init,
            decoder_only,
            decoder_channels,
            decoder_blocks,
            restarts,
            dead_code_threshold,
        } => {
            let size = if tiny {
                Size::Tiny
            } else {
                Size::Given {
                    channels,
                    codebook,
                    local_encoder,
                }
            };
            let train_config = VqTrainConfig {
                steps,
                batch_size: batch,
                lr,
                seed,
                decoder_only,
                restarts,
                ..Default::default()
            };
            let device = crate::device(&device)?;
            train(
                &data,
                &out,
                train_config,
                vocab_size,
                Shape {
                    size,
                    decoder_channels,
                    decoder_blocks,
                    dead_code_threshold,
                },
                init.as_deref(),
                &device,
            )
        }
        TokenizerCommand::Eval {
            tokenizers,
            data,
            limit,
            json,
            force,
        } => eval(&tokenizers, &data, limit, json, force),
    }
}

fn dataset_images(ds: &AuroraDataset) -> Result<Vec<image::RgbImage>> {
    let pb = bar(ds.rows.len(), "loading");
    let mut out = Vec::new();
    for i in 0..ds.rows.len() {
        out.push(ds.input_image(i)?);
        out.extend(ds.output_image(i)?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(out)
}

/// The size of a fresh VQ.
pub enum Size {
    Tiny,
    Given {
        channels: Vec<usize>,
        codebook: usize,
        local_encoder: bool,
    },
}

/// The VQ's shape asked for on the command line: the size of a fresh one, and the decoder
/// (`None` keeps the default, or the `--init` VQ's).
pub struct Shape {
    size: Size,
    decoder_channels: Option<Vec<usize>>,
    decoder_blocks: Option<usize>,
    dead_code_threshold: Option<f64>,
}

pub fn train(
    data: &Path,
    out: &Path,
    train: VqTrainConfig,
    vocab_size: usize,
    shape: Shape,
    init: Option<&Path>,
    device: &Device,
) -> Result<()> {
    let ds = AuroraDataset::load(data)?;
    let images = dataset_images(&ds)?;
    let side = images[0].width() as usize;
    let init_config = init
        .map(|dir| ImageTokenizer::load(dir, &Device::Cpu).map(|vq| vq.config))
        .transpose()?;
    let mut config = match (&init_config, shape.size) {
        (Some(c), _) => c.clone(),
        (None, Size::Tiny) => VqConfig::tiny(side),
        (
            None,
            Size::Given {
                channels,
                codebook,
                local_encoder,
            },
        ) => {
            let halvings = u32::try_from(channels.len())
                .ok()
                .and_then(|n| 1usize.checked_shl(n))
                .unwrap_or(0);
            if channels.is_empty()
                || channels.contains(&0)
                || halvings == 0
                || !side.is_multiple_of(halvings)
                || codebook < 2
            {
                bail!(
                    "--channels {channels:?} / --codebook {codebook}: give 1 or more non-zero \
                     stages whose halvings divide the image side ({side}) and a codebook of 2 \
                     or more entries"
                );
            }
            VqConfig {
                image_size: side,
                channels,
                codebook_size: codebook,
                local_encoder,
                ..Default::default()
            }
        }
    };
    if let Some(channels) = shape.decoder_channels {
        config.decoder_channels = Some(channels);
    }
    if let Some(blocks) = shape.decoder_blocks {
        config.decoder_blocks = blocks;
    }
    if let Some(t) = shape.dead_code_threshold {
        if !(t >= 0.0 && t.is_finite()) {
            bail!("--dead-code-threshold {t}: give a usage of 0 or more (0.03 by default)");
        }
        config.dead_code_threshold = t;
    }
    config.validate().map_err(|e| {
        anyhow::anyhow!("{e} (set by --channels / --decoder-channels or the --init VQ's config)")
    })?;
    if let Some(c) = &init_config
        && (c.decoder_widths(), c.decoder_blocks)
            != (config.decoder_widths(), config.decoder_blocks)
    {
        println!(
            "decoder: widths {:?}, {} residual blocks per level, new: it starts from scratch on \
             the --init VQ's encoder and codebook",
            config.decoder_widths(),
            config.decoder_blocks
        );
    }

    if train.decoder_only {
        // The token ids of both kinds stay as they are: models trained on them stay valid.
        println!("text tokenizer: left as it is (--decoder-only)");
    } else {
        let t0 = Instant::now();
        let mut corpus = corpus(train.seed, 300);
        corpus.extend(ds.rows.iter().map(|r| r.instruction.clone()));
        let text = TextTokenizer::train(&corpus, vocab_size)?;
        text.save(&out.join("tokenizer.json"))?;
        println!(
            "text tokenizer: {} tokens from {} sentences in {:.1}s",
            text.vocab_size(),
            corpus.len(),
            t0.elapsed().as_secs_f64()
        );
    }

    let t0 = Instant::now();
    let pb = bar(train.steps, "vq");
    let trainer = VqTrainer::fit(
        config.clone(),
        &train,
        &images,
        device,
        init.map(|d| d.join("model.safetensors")).as_deref(),
        |step, s| {
            pb.set_position(step as u64 + 1);
            if step % 10 == 0 {
                pb.set_message(format!(
                    "recon {:.4} perplexity {:.0}",
                    s.recon, s.perplexity
                ));
            }
            if pb.is_hidden() && (step + 1) % 100 == 0 {
                eprintln!(
                    "vq step {}: recon {:.4} perplexity {:.0} restarted {}",
                    step + 1,
                    s.recon,
                    s.perplexity,
                    s.restarted
                );
            }
        },
    )?;
    pb.finish_and_clear();
    ImageTokenizer::save(&config, &trainer.tensors(), &out.join("vq"))?;
    println!(
        "image tokenizer: {} steps x {} images of {} in {:.1}s -> {}",
        train.steps,
        train.batch_size,
        images.len(),
        t0.elapsed().as_secs_f64(),
        out.join("vq").display()
    );
    Ok(())
}

pub fn eval(
    dir: &Path,
    data: &Path,
    limit: Option<usize>,
    json: Option<PathBuf>,
    force: bool,
) -> Result<()> {
    if let Some(path) = &json {
        crate::args::check_output(path, force, "--json")?;
    }
    let vq = ImageTokenizer::load(&dir.join("vq"), &Device::Cpu).with_context(|| {
        format!(
            "--tokenizers {}: give the folder `dynaboot tokenizer train --out` wrote (it holds vq/)",
            dir.display()
        )
    })?;
    let ds = AuroraDataset::load(data)?;
    let mut pairs = Vec::new();
    let mut edits = Vec::new();
    for (i, row) in ds.rows.iter().enumerate().take(limit.unwrap_or(usize::MAX)) {
        let Some(side) = &row.sidecar else {
            bail!(
                "{} row {i} has no scene-state sidecar; evaluate on data from `dynaboot world generate`",
                ds.json.display()
            );
        };
        let input = ds.input_image(i)?;
        pairs.push((input.clone(), side.source_state.clone()));
        if let Some(o) = ds.output_image(i)? {
            edits.push((input, o.clone()));
            pairs.push((o, side.target_state.clone()));
        }
    }
    let rec = Recogniser::new(RenderConfig {
        size: vq.config.image_size as u32,
        samples: 2,
    });
    let t0 = Instant::now();
    let mut report = evaluate_tokenizer(&vq, &rec, &pairs, 32)?;
    if !edits.is_empty() {
        report.locality = Some(token_locality(&vq, &edits, 16)?);
    }
    println!("images                          {}", report.images);
    println!("PSNR of reconstructions         {:.2} dB", report.psnr);
    println!(
        "recogniser on images            {:.2} %",
        100.0 * report.recogniser_on_images
    );
    println!(
        "recogniser on reconstructions   {:.2} %",
        100.0 * report.recogniser_on_reconstructions
    );
    if let Some(l) = &report.locality {
        println!(
            "token ids changed by an edit, by distance (cells) from the pixels it changed ({} pairs):",
            l.pairs
        );
        for (d, (t, c)) in l.tokens.iter().zip(&l.changed).enumerate() {
            let far = if d + 1 == l.tokens.len() { "+" } else { " " };
            println!("  distance {d}{far}  {:>6.2} % of {t} tokens", 100.0 * c);
        }
    }
    println!("({:.1}s)", t0.elapsed().as_secs_f64());
    if let Some(path) = json {
        dynaboot::files::write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
