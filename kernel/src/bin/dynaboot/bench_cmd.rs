//! `dynaboot bench`: speed of the `small` preset with random weights (hidden 256, intermediate
//! 688, 6 layers, 8 heads, 64 image tokens per image: the configuration of the PyTorch
//! reference in `bench/torch_reference.py`). Training tokens/s, generation with and without the
//! KV cache at several context lengths, best-of-8 verification latency, peak memory.

use anyhow::{Context, Result};
use candle_core::Device;
use candle_core::Tensor;
use clap::Args;
use dynaboot::model::{
    DynamicsModel, KvCache, Model, ModelConfig, ModelMeta, Pass, Role, Sampling, Verifier, Vocab,
    WorldLayout, WorldModel,
};
use dynaboot::tokenize::{ImageTokenizer, TextTokenizer};
use dynaboot::train::{Data, Example, Overrides, Preset, RunSpec, Start};
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// Print one json object instead of a table.
    #[arg(long)]
    json: bool,
    /// Folder with `vq/` and `tokenizer.json` (their sizes set the vocabulary; default: the
    /// shipped models' folder).
    #[arg(long)]
    tokenizers: Option<PathBuf>,
    /// Timed training steps (batch 16 x 160 tokens each); the median step is reported.
    #[arg(long, default_value_t = 3, value_parser = crate::args::steps)]
    train_steps: usize,
    /// Timed repetitions of best-of-8 and of generation.
    #[arg(long, default_value_t = 3, value_parser = crate::args::count)]
    repeats: usize,
    /// Also run `bench/torch_reference.py` with this Python (torch and transformers
    /// installed) in the same run, and report dynaboot / PyTorch ratios.
    #[arg(long)]
    torch: Option<PathBuf>,
    /// Instead: the browser demo's best-of-8 with the shipped models in `--tokenizers`, time to
    /// the first candidate and to all 8, on the CPU and on the wgpu adapter.
    #[arg(long)]
    demo: bool,
    /// Where the model runs: cpu, cuda or cuda:N (needs `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Runs the PyTorch reference script on `device` (cpu or cuda); its json report.
fn torch_reference(python: &std::path::Path, device: &str) -> Result<serde_json::Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/torch_reference.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg("--json")
        .args(["--device", device])
        .output()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "the PyTorch reference failed (pip install torch transformers?):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(line).context("reading the PyTorch reference's json")
}

/// Sequence length and batch of the training measurement (as in the PyTorch reference).
const TRAIN_BATCH: usize = 16;
const TRAIN_LEN: usize = 160;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Median of `repeats` timings of `f`, in ms.
fn time_ms(repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut t = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let t0 = Instant::now();
        f()?;
        t.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

pub fn run(a: BenchArgs) -> Result<()> {
    let tokenizers = match &a.tokenizers {
        Some(t) => t.clone(),
        None => dynaboot::shipped::shipped_models()?,
    };
    if a.demo {
        return super::bench_demo::run(&tokenizers, a.repeats, a.json);
    }
    let device = super::device(&a.device)?;
    let vq = ImageTokenizer::load(&tokenizers.join("vq"), &device)
        .context("the benchmark uses the shipped tokenizers for its vocabulary")?;
    let text = TextTokenizer::load(&tokenizers.join("tokenizer.json"))?;
    let config = small_config(&text, &vq)?;
    let examples = random_examples(&config, vq.config.codebook_size as u32, 64);
    let mut report = serde_json::json!({
        "preset": "small",
        "device": a.device,
        "parameters": config.backbone.parameter_count(),
        "vocab_size": config.backbone.vocab_size,
        "threads": candle_core::utils::get_num_threads(),
        "train_batch": TRAIN_BATCH,
        "train_seq_len": TRAIN_LEN,
    });
    let model = time_training(&a, &device, &config, &examples, (vq, text), &mut report)?;
    time_inference(&a, &device, &model, &examples, &mut report)?;
    report["peak_rss_mb"] = peak_rss_mb().into();
    if let Some(python) = &a.torch {
        compare_with_torch(python, &a.device, &mut report)?;
    }
    if a.json {
        println!("{report}");
    } else {
        print_report(&report, config.dynaboot.image_tokens);
    }
    Ok(())
}

/// The `small` preset over the tokenizers' vocabulary, trained for both roles.
fn small_config(text: &TextTokenizer, vq: &ImageTokenizer) -> Result<ModelConfig> {
    let vocab = Vocab::new(text, vq.config.codebook_size)?;
    let image_tokens = vq.config.tokens_per_image();
    Ok(ModelConfig {
        backbone: Preset::Small.backbone(vocab.size(), image_tokens),
        dynaboot: ModelMeta {
            roles: vec![Role::World, Role::Dynamics],
            vocab,
            image_tokens,
            vq_path: "vq".into(),
            vq_fingerprint: String::new(),
            world_layout: WorldLayout::ActionFirst,
        },
    })
}

/// `n` examples of random codes (of a codebook of `codebook` codes) and words whose
/// world-model sequences are exactly `TRAIN_LEN` tokens: 6 fixed + 2 images + the action.
fn random_examples(config: &ModelConfig, codebook: u32, n: usize) -> Vec<Example> {
    let (image_tokens, vocab) = (config.dynaboot.image_tokens, &config.dynaboot.vocab);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let codes = |rng: &mut rand_chacha::ChaCha8Rng| -> Vec<u32> {
        (0..image_tokens)
            .map(|_| rng.random_range(0..codebook))
            .collect()
    };
    let action_len = TRAIN_LEN - 6 - 2 * image_tokens;
    (0..n)
        .map(|_| Example {
            source: codes(&mut rng),
            target: codes(&mut rng),
            action: (0..action_len)
                .map(|_| rng.random_range(7..vocab.text_size))
                .collect(),
            recognition_weights: vec![1.0; image_tokens],
            family: "bench".into(),
            descriptions: Vec::new(),
            change: Vec::new(),
        })
        .collect()
}

/// Training steps (the median of `a.train_steps`), and the forward and backward passes of a
/// batch of the same shape measured apart; the rest of a step is the optimizer update. The
/// trained random weights come back as a model for both roles.
fn time_training(
    a: &BenchArgs,
    device: &Device,
    config: &ModelConfig,
    examples: &[Example],
    (vq, text): (ImageTokenizer, TextTokenizer),
    report: &mut serde_json::Value,
) -> Result<Arc<Model>> {
    let mut train = config.clone();
    train.dynaboot.roles = vec![Role::World];
    let mut spec = RunSpec::new(
        vec![Role::World],
        Start::Config(train),
        Data::Examples(examples.to_vec()),
    );
    spec.preset = Preset::Small;
    spec.overrides = Overrides {
        batch_size: Some(TRAIN_BATCH),
        steps: Some(a.train_steps + 1),
        warmup: Some(1),
        lr: Some(1e-4),
        ..Overrides::default()
    };
    let mut trainer = spec.open(device)?.trainer;
    let mut tokens = trainer.step()?.tokens;
    // The median step: robust to the other work of a shared machine.
    let train_step_ms = time_ms(a.train_steps, || {
        tokens = trainer.step()?.tokens;
        Ok(())
    })?;
    let forward_ms = time_ms(a.repeats, || {
        trainer.loss_on_first(TRAIN_BATCH)?.to_scalar::<f32>()?;
        Ok(())
    })?;
    let forward_backward_ms = time_ms(a.repeats, || {
        let grads = trainer.loss_on_first(TRAIN_BATCH)?.backward()?;
        device.synchronize()?;
        drop(grads);
        Ok(())
    })?;
    report["train_tokens_per_s"] = (tokens as f64 / (train_step_ms / 1e3)).into();
    report["train_step_ms"] = train_step_ms.into();
    report["train_forward_ms"] = forward_ms.into();
    report["train_backward_ms"] = (forward_backward_ms - forward_ms).into();
    // The same random weights serve both roles here: speed does not depend on training.
    let mut model = trainer.snapshot(vq, text)?;
    model.config.dynaboot.roles = vec![Role::World, Role::Dynamics];
    Ok(Arc::new(model))
}

/// Generation of 8 candidates, the decode step with and without the cache at several context
/// lengths, the dynamics model scoring 8 candidates, and best-of-8 (codes only, and from an
/// image to an image).
fn time_inference(
    a: &BenchArgs,
    device: &Device,
    model: &Arc<Model>,
    examples: &[Example],
    report: &mut serde_json::Value,
) -> Result<()> {
    let image_tokens = model.config.dynaboot.image_tokens;
    let world = WorldModel::new(model.clone())?;
    let dynamics = DynamicsModel::new(model.clone())?;
    let verifier = Verifier::new(&world, &dynamics)?;
    let ex = &examples[0];
    let action = &ex.action[..12];
    let sampling = Sampling::default();

    // Generation of one image (64 tokens) for 8 candidates, KV-cached.
    let gen_ms = time_ms(a.repeats, || {
        world.sample_codes(&ex.source, action, 8, &sampling)?;
        Ok(())
    })?;
    report["generate_tokens_per_s"] = ((8 * image_tokens) as f64 / (gen_ms / 1e3)).into();
    report["generate_8x64_ms"] = gen_ms.into();
    report["decode"] = time_decode_steps(a.repeats, device, model)?.into();

    // The verifier's half: the dynamics model scores 8 candidates in one batch.
    let candidates: Vec<Vec<u32>> = examples[..8].iter().map(|e| e.target.clone()).collect();
    report["score_8_ms"] = time_ms(a.repeats, || {
        dynamics.score_codes(&ex.source, &candidates, action)?;
        Ok(())
    })?
    .into();

    // Best-of-8: 8 world-model samples of a 64-token image + 8 dynamics scorings.
    report["best_of_8_tokens_ms"] = time_ms(a.repeats, || {
        verifier.rank_codes(&ex.source, action, 8, &sampling)?;
        Ok(())
    })?
    .into();
    let source = model
        .decode_images(std::slice::from_ref(&ex.source))?
        .remove(0);
    let action_text = "push the red cube to the left";
    report["best_of_8_ms"] = time_ms(a.repeats, || {
        verifier.best_of_n(&source, action_text, 8, &sampling)?;
        Ok(())
    })?
    .into();
    Ok(())
}

/// Decode-step cost at several context lengths, with and without the cache (batch 8).
fn time_decode_steps(
    repeats: usize,
    device: &Device,
    model: &Model,
) -> Result<Vec<serde_json::Value>> {
    let b = &model.backbone;
    let mut decode = Vec::new();
    for context in [16usize, 64, 128, 176] {
        let prompt: Vec<u32> = (0..context as u32).map(|i| 7 + i % 300).collect();
        let ids = Tensor::new(prompt.as_slice(), device)?
            .unsqueeze(0)?
            .repeat((8, 1))?;
        let steps = 8;
        let mut cache = KvCache::new(&b.config);
        b.forward_last(&ids, Some(&mut cache))?;
        let next = Tensor::new(&[[9u32]; 8], device)?;
        let t0 = Instant::now();
        for _ in 0..steps {
            b.forward_last(&next, Some(&mut cache))?;
        }
        device.synchronize()?;
        let cached = t0.elapsed().as_secs_f64() * 1e3 / steps as f64;
        let uncached = time_ms(repeats, || {
            b.hidden(&ids, None, Pass::Infer)?;
            device.synchronize()?;
            Ok(())
        })?;
        decode.push(serde_json::json!({
            "context": context,
            "cached_ms_per_step": cached,
            "uncached_ms_per_step": uncached,
            "cached_tokens_per_s": 8.0 / (cached / 1e3),
            "uncached_tokens_per_s": 8.0 / (uncached / 1e3),
        }));
    }
    Ok(decode)
}

/// The PyTorch reference's numbers in the same run, and dynaboot's speed-ups over them.
fn compare_with_torch(
    python: &std::path::Path,
    device: &str,
    report: &mut serde_json::Value,
) -> Result<()> {
    let torch = torch_reference(python, device)?;
    let ratio = |key: &str, theirs_key: &str, higher_is_better: bool| {
        let ours = report[key].as_f64().unwrap_or(f64::NAN);
        let theirs = torch[theirs_key].as_f64().unwrap_or(f64::NAN);
        if higher_is_better {
            ours / theirs
        } else {
            theirs / ours
        }
    };
    report["speedup_vs_torch"] = serde_json::json!({
        "train_tokens_per_s": ratio("train_tokens_per_s", "train_tokens_per_s", true),
        "generate_8x64": ratio("generate_8x64_ms", "generate_8x64_ms", false),
        "best_of_8_tokens": ratio("best_of_8_tokens_ms", "best_of_8_tokens_ms", false),
    });
    report["torch"] = torch;
    Ok(())
}

/// The report as a table.
fn print_report(report: &serde_json::Value, image_tokens: usize) {
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "small preset on {}: {} parameters, vocabulary {}, {} threads",
        report["device"].as_str().unwrap_or_default(),
        report["parameters"],
        report["vocab_size"],
        report["threads"]
    );
    println!(
        "training        {:>9.0} tokens/s  ({:.0} ms per step of {TRAIN_BATCH} x {TRAIN_LEN})",
        f(&report["train_tokens_per_s"]),
        f(&report["train_step_ms"])
    );
    println!(
        "  measured apart: forward {:.1} ms, backward {:.1} ms",
        f(&report["train_forward_ms"]),
        f(&report["train_backward_ms"])
    );
    println!(
        "generation      {:>9.0} tokens/s  (8 candidates x {image_tokens} image tokens in {:.0} ms)",
        f(&report["generate_tokens_per_s"]),
        f(&report["generate_8x64_ms"])
    );
    println!("decode step, batch 8      cached      uncached");
    for d in report["decode"].as_array().into_iter().flatten() {
        println!(
            "  context {:>4}     {:>8.2} ms   {:>8.2} ms",
            d["context"],
            d["cached_ms_per_step"].as_f64().unwrap_or(0.0),
            d["uncached_ms_per_step"].as_f64().unwrap_or(0.0)
        );
    }
    println!(
        "best-of-8       {:>9.0} ms  ({:.0} ms without image encode/decode)",
        f(&report["best_of_8_ms"]),
        f(&report["best_of_8_tokens_ms"])
    );
    println!(
        "scoring 8       {:>9.0} ms  (the dynamics model's half of best-of-8)",
        f(&report["score_8_ms"])
    );
    println!(
        "peak RSS        {:>9.0} MB",
        report["peak_rss_mb"].as_f64().unwrap_or(0.0)
    );
    if let Some(t) = report.get("torch") {
        let r = &report["speedup_vs_torch"];
        println!(
            "PyTorch eager (same config, same run): {}",
            t["implementation"]
        );
        println!(
            "  training   {:>9.0} tokens/s        dynaboot is {:.2}x",
            f(&t["train_tokens_per_s"]),
            f(&r["train_tokens_per_s"])
        );
        println!(
            "  generation {:>9.0} ms (8 x 64)     dynaboot is {:.2}x",
            f(&t["generate_8x64_ms"]),
            f(&r["generate_8x64"])
        );
        println!(
            "  best-of-8  {:>9.0} ms              dynaboot is {:.2}x",
            f(&t["best_of_8_tokens_ms"]),
            f(&r["best_of_8_tokens"])
        );
    }
}
