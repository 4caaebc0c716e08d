//! Training the VQ-VAE: reconstruction + commitment loss with AdamW for the conv weights, and
//! exponential-moving-average codebook updates with dead-code restarts (van den Oord et al.;
//! Razavi et al.). Deterministic for a seed.

use super::vq::{ImageTokenizer, VqConfig, mse, reconstruction_loss};
use crate::error::Result;
use crate::nn::seeded_var_builder;
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How long and how fast to train.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VqTrainConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate, reached after `warmup` steps, then cosine decay to 10 %.
    pub lr: f64,
    /// Steps of linear warm-up.
    pub warmup: usize,
    /// Seed of the initialisation and the batches.
    pub seed: u64,
    /// Train only the decoder of a warm-started VQ: the encoder and the codebook stay fixed,
    /// so every image keeps its token ids and models trained on those ids stay valid.
    #[serde(default)]
    pub decoder_only: bool,
    /// Where dead codes restart.
    #[serde(default)]
    pub restarts: CodeRestarts,
}

/// Where a dead code (moving-average usage below `dead_code_threshold`) restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum CodeRestarts {
    /// At a random encoder output of the batch (van den Oord et al.; Dhariwal et al.).
    #[default]
    Random,
    /// At the encoder outputs the codebook explains worst, largest error first: codes move to
    /// rare patches (a small object inside a container) that a common code (the empty
    /// container) would otherwise absorb.
    Worst,
}

impl Default for VqTrainConfig {
    fn default() -> Self {
        VqTrainConfig {
            steps: 3000,
            batch_size: 16,
            lr: 2e-3,
            warmup: 50,
            seed: 0,
            decoder_only: false,
            restarts: CodeRestarts::Random,
        }
    }
}

impl VqTrainConfig {
    /// Learning rate at `step`: linear warm-up, then cosine decay to 10 % of the peak.
    pub(crate) fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let t = (step - self.warmup) as f64 / (self.steps - self.warmup).max(1) as f64;
        self.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos()))
    }
}

/// Numbers of one training step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VqStats {
    pub(crate) loss: f32,
    /// Mean squared error of the reconstruction, images in [-1, 1] (the loss itself is L1 on
    /// pixels and their differences, see `super::vq::reconstruction_loss`).
    pub recon: f32,
    pub(crate) commit: f32,
    /// exp(entropy) of code usage in the batch: how many codes are effectively in use.
    pub perplexity: f32,
    /// Codes restarted this step.
    pub restarted: usize,
}

fn adamw(vars: Vec<candle_core::Var>, lr: f64) -> Result<AdamW> {
    Ok(AdamW::new(
        vars,
        ParamsAdamW {
            lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?)
}

/// exp(entropy) of code usage counts.
fn perplexity(counts: &[f32]) -> f32 {
    let n: f32 = counts.iter().sum();
    let entropy: f32 = counts
        .iter()
        .filter(|c| **c > 0.0)
        .map(|c| -(c / n) * (c / n).ln())
        .sum();
    entropy.exp()
}

/// Trains an image tokenizer: AdamW for the convolutions, moving averages for the codebook.
pub struct VqTrainer {
    pub(crate) model: ImageTokenizer,
    varmap: VarMap,
    opt: AdamW,
    cluster_size: Vec<f32>,
    embed_sum: Vec<f32>,
    initialised: bool,
    /// Set by [`VqTrainer::freeze_codes`]: only the decoder learns.
    decoder_only: bool,
    pub(crate) restarts: CodeRestarts,
    rng: ChaCha8Rng,
}

/// Whether a weight belongs to the decoder, which draws token ids but does not decide them.
pub(crate) fn is_decoder(name: &str) -> bool {
    name.starts_with("decoder.") || name.starts_with("post_quant_conv.")
}

/// The trainable conv weights whose names pass `keep`, in name order (the optimizer's order).
fn vars_where(varmap: &VarMap, keep: impl Fn(&str) -> bool) -> Vec<candle_core::Var> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut named: Vec<_> = data.iter().filter(|(k, _)| keep(k)).collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    named.into_iter().map(|(_, v)| v.clone()).collect()
}

impl VqTrainer {
    pub(crate) fn new(config: VqConfig, lr: f64, seed: u64, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let model = ImageTokenizer::new(
            config.clone(),
            seeded_var_builder(&varmap, seed, DType::F32, device),
        )?;
        // The codebook follows moving averages, not gradients: keep it out of the optimizer.
        let opt = adamw(vars_where(&varmap, |k| !k.starts_with("quantize.")), lr)?;
        let k = config.codebook_size;
        Ok(VqTrainer {
            model,
            varmap,
            opt,
            cluster_size: vec![0.0; k],
            embed_sum: vec![0.0; k * config.code_dim],
            initialised: false,
            decoder_only: false,
            restarts: CodeRestarts::Random,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed),
        })
    }

    /// From now on only the decoder learns (after [`VqTrainer::warm_start`]): the encoder and
    /// the codebook are frozen, so the token ids of every image stay what they were. A better
    /// decoder then improves reconstructions without invalidating models trained on the ids.
    pub(crate) fn freeze_codes(&mut self) -> Result<()> {
        if !self.initialised {
            return Err(crate::Error::Invalid(
                "only the decoder of a trained image tokenizer can be trained alone: start from \
                 one (`--init`)"
                    .into(),
            ));
        }
        self.opt = adamw(
            vars_where(&self.varmap, is_decoder),
            self.opt.learning_rate(),
        )?;
        self.decoder_only = true;
        Ok(())
    }

    /// Continues from trained weights (a `model.safetensors` written by [`ImageTokenizer::save`]):
    /// the conv weights are loaded and the codebook seeds the moving averages, so training
    /// picks up where that run stopped instead of from scratch. A decoder of another shape
    /// (`decoder_channels`, `decoder_blocks`) starts fresh on the loaded encoder and codebook;
    /// returns how many decoder tensors did.
    #[cfg(feature = "fs")]
    pub(crate) fn warm_start(&mut self, weights: &std::path::Path) -> Result<usize> {
        let stored = candle_core::safetensors::load(weights, &Device::Cpu).map_err(|e| {
            crate::Error::Invalid(format!(
                "{}: cannot continue from these weights, they do not read as safetensors ({e})",
                weights.display()
            ))
        })?;
        let mut fresh = 0;
        let vars = self.varmap.data().lock().expect("varmap lock");
        // In name order, so the tensor an error names is the same on every run.
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        for name in names {
            let var = &vars[name];
            match stored.get(name) {
                Some(t) if t.dims() == var.dims() => var.set(&t.to_device(var.device())?)?,
                _ if is_decoder(name) => fresh += 1,
                found => {
                    return Err(crate::Error::Invalid(format!(
                        "{}: cannot continue from these weights: tensor {name} is {}, this VQ \
                         needs {:?}; they must come from a VQ with the same encoder and codebook",
                        weights.display(),
                        found.map_or("missing".to_string(), |t| format!("{:?}", t.dims())),
                        var.dims()
                    )));
                }
            }
        }
        drop(vars);
        let codebook = self.varmap.data().lock().expect("varmap lock")["quantize.embedding.weight"]
            .as_tensor()
            .copy()?;
        self.embed_sum = codebook.flatten_all()?.to_vec1::<f32>()?;
        self.cluster_size = vec![1.0; self.model.config.codebook_size];
        self.model.set_codebook(codebook);
        self.initialised = true;
        Ok(fresh)
    }

    pub(crate) fn set_lr(&mut self, lr: f64) {
        self.opt.set_learning_rate(lr);
    }

    /// One step on a batch of NHWC images in [-1, 1].
    pub(crate) fn step(&mut self, images: &Tensor) -> Result<VqStats> {
        if self.decoder_only {
            return self.decoder_step(images);
        }
        let cfg = self.model.config.clone();
        let (k, dim) = (cfg.codebook_size, cfg.code_dim);
        let z = self.model.features(images)?;
        let (b, g, _, _) = z.dims4()?;
        let n = b * g * g;
        let z_flat = z.reshape((n, dim))?;
        let zs = z_flat.detach().to_vec2::<f32>()?;
        if !self.initialised {
            // Start the codebook on encoder outputs so no code starts dead.
            let mut cb = Vec::with_capacity(k * dim);
            for _ in 0..k {
                cb.extend_from_slice(&zs[self.rng.random_range(0..n)]);
            }
            self.embed_sum = cb.clone();
            self.cluster_size = vec![1.0; k];
            self.model
                .set_codebook(Tensor::from_vec(cb, (k, dim), images.device())?);
            self.initialised = true;
        }
        let ids = self.model.nearest(&z_flat.detach())?;
        let q_flat = self.model.codebook().index_select(&ids, 0)?;
        let q = q_flat.reshape(z.shape())?;
        let commit = (mse(&z, &q.detach())? * cfg.commitment)?;
        let zq = (&z + (&q - &z)?.detach())?;
        let decoded = self.model.decode_features(&zq)?;
        let loss = (reconstruction_loss(&decoded, images)? + &commit)?;
        let recon = mse(&decoded.detach(), images)?;
        self.opt.backward_step(&loss)?;

        // Moving-average codebook update.
        let ids = ids.to_vec1::<u32>()?;
        let mut counts = vec![0f32; k];
        let mut sums = vec![0f32; k * dim];
        for (row, &id) in zs.iter().zip(&ids) {
            counts[id as usize] += 1.0;
            for (s, v) in sums[id as usize * dim..][..dim].iter_mut().zip(row) {
                *s += v;
            }
        }
        let decay = cfg.ema_decay as f32;
        for (size, count) in self.cluster_size.iter_mut().zip(&counts) {
            *size = decay * *size + (1.0 - decay) * count;
        }
        for (s, v) in self.embed_sum.iter_mut().zip(&sums) {
            *s = decay * *s + (1.0 - decay) * v;
        }
        let dead: Vec<usize> = (0..k)
            .filter(|&c| self.cluster_size[c] < cfg.dead_code_threshold as f32)
            .collect();
        let restart_at: Vec<usize> = match self.restarts {
            CodeRestarts::Random => dead.iter().map(|_| self.rng.random_range(0..n)).collect(),
            CodeRestarts::Worst if dead.is_empty() => Vec::new(),
            CodeRestarts::Worst => {
                let err = (&z_flat.detach() - &q_flat)?
                    .sqr()?
                    .sum(1)?
                    .to_vec1::<f32>()?;
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| err[b].total_cmp(&err[a]));
                (0..dead.len()).map(|j| order[j % n]).collect()
            }
        };
        let total: f32 = self.cluster_size.iter().sum();
        for (&c, &row) in dead.iter().zip(&restart_at) {
            self.embed_sum[c * dim..][..dim].copy_from_slice(&zs[row]);
            self.cluster_size[c] = 1.0;
        }
        let eps = 1e-5;
        let mut cb = vec![0f32; k * dim];
        for c in 0..k {
            let size = (self.cluster_size[c] + eps) / (total + k as f32 * eps) * total;
            for d in 0..dim {
                cb[c * dim + d] = self.embed_sum[c * dim + d] / size;
            }
        }
        self.model
            .set_codebook(Tensor::from_vec(cb, (k, dim), images.device())?);

        Ok(VqStats {
            loss: loss.to_scalar()?,
            recon: recon.to_scalar()?,
            commit: commit.to_scalar()?,
            perplexity: perplexity(&counts),
            restarted: dead.len(),
        })
    }

    /// A step of the decoder alone on the frozen codes of `images`.
    fn decoder_step(&mut self, images: &Tensor) -> Result<VqStats> {
        let (ids, _) = self.model.encode(images)?;
        let decoded = self.model.decode_features(&self.model.lookup(&ids)?)?;
        let loss = reconstruction_loss(&decoded, images)?;
        let recon = mse(&decoded.detach(), images)?;
        self.opt.backward_step(&loss)?;
        let mut counts = vec![0f32; self.model.config.codebook_size];
        let ids = ids.flatten_all()?.to_vec1::<u32>()?;
        for &id in &ids {
            counts[id as usize] += 1.0;
        }
        Ok(VqStats {
            loss: loss.to_scalar()?,
            recon: recon.to_scalar()?,
            commit: 0.0,
            perplexity: perplexity(&counts),
            restarted: 0,
        })
    }

    /// Trains on `images` (random batches) for `train.steps` steps; `on_step` sees every step.
    pub fn fit(
        config: VqConfig,
        train: &VqTrainConfig,
        images: &[image::RgbImage],
        device: &Device,
        warm_start: Option<&std::path::Path>,
        mut on_step: impl FnMut(usize, &VqStats),
    ) -> Result<Self> {
        use super::vq::images_to_tensor;
        if images.is_empty() {
            return Err(crate::Error::Invalid(
                "no images to train the image tokenizer on".into(),
            ));
        }
        let size = config.image_size;
        let mut trainer = VqTrainer::new(config, train.lr, train.seed, device)?;
        if let Some(weights) = warm_start {
            #[cfg(feature = "fs")]
            trainer.warm_start(weights)?;
            #[cfg(not(feature = "fs"))]
            return Err(crate::Error::Invalid(format!(
                "{}: warm starts read files; build with the `fs` feature",
                weights.display()
            )));
        }
        if train.decoder_only {
            trainer.freeze_codes()?;
        }
        trainer.restarts = train.restarts;
        for step in 0..train.steps {
            trainer.set_lr(train.lr_at(step));
            let batch: Vec<image::RgbImage> = (0..train.batch_size)
                .map(|_| images[trainer.rng.random_range(0..images.len())].clone())
                .collect();
            let stats = trainer.step(&images_to_tensor(&batch, size, device)?)?;
            if !stats.loss.is_finite() {
                return Err(crate::Error::Invalid(format!(
                    "image tokenizer loss became {} at step {step}; lower the learning rate",
                    stats.loss
                )));
            }
            on_step(step, &stats);
        }
        Ok(trainer)
    }

    /// Named tensors to save: the trained weights and the codebook.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let data = self.varmap.data().lock().expect("varmap lock");
        let mut out: Vec<(String, Tensor)> = data
            .iter()
            .filter(|(k, _)| !k.starts_with("quantize."))
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        out.push((
            "quantize.embedding.weight".into(),
            self.model.codebook().clone(),
        ));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::vq::images_to_tensor;
    use crate::world::RenderConfig;
    use crate::world::generate::triplets;
    use crate::world::render::render_scene;

    /// Source images of `n` random triplets of seed `seed`, 32x32, as a batch.
    fn sources(seed: u64, n: usize) -> Result<Tensor> {
        let render = RenderConfig {
            size: 32,
            samples: 1,
        };
        let imgs: Vec<_> = triplets(seed, n)
            .iter()
            .map(|t| render_scene(&t.source, render))
            .collect();
        images_to_tensor(&imgs, 32, &Device::Cpu)
    }

    #[test]
    fn training_a_tiny_vq_lowers_the_loss() -> Result<()> {
        let dev = Device::Cpu;
        let x = sources(3, 16)?;
        let mut tr = VqTrainer::new(VqConfig::tiny(32), 3e-3, 1, &dev)?;
        let first = tr.step(&x)?;
        let mut last = first;
        for _ in 0..60 {
            last = tr.step(&x)?;
        }
        assert!(
            last.recon < first.recon * 0.5,
            "recon {} -> {}",
            first.recon,
            last.recon
        );
        assert!(
            last.perplexity > 2.0,
            "codes collapsed: perplexity {}",
            last.perplexity
        );
        Ok(())
    }

    #[test]
    fn training_is_deterministic_for_a_seed() -> Result<()> {
        let dev = Device::Cpu;
        let x = sources(4, 4)?;
        let run = || -> Result<Vec<f32>> {
            let mut tr = VqTrainer::new(VqConfig::tiny(32), 1e-3, 9, &dev)?;
            for _ in 0..3 {
                tr.step(&x)?;
            }
            Ok(tr.model.codebook().flatten_all()?.to_vec1::<f32>()?)
        };
        assert_eq!(run()?, run()?);
        Ok(())
    }

    #[cfg(feature = "fs")]
    #[test]
    fn a_warm_start_continues_from_saved_weights() -> Result<()> {
        let dev = Device::Cpu;
        let x = sources(5, 8)?;
        let mut tr = VqTrainer::new(VqConfig::tiny(32), 3e-3, 2, &dev)?;
        let fresh = tr.step(&x)?;
        for _ in 0..40 {
            tr.step(&x)?;
        }
        let dir = tempfile::tempdir().unwrap();
        ImageTokenizer::save(&tr.model.config, &tr.tensors(), dir.path())?;
        let mut again = VqTrainer::new(VqConfig::tiny(32), 3e-3, 9, &dev)?;
        again.warm_start(&dir.path().join("model.safetensors"))?;
        assert_eq!(
            again.model.codebook().to_vec2::<f32>()?,
            tr.model.codebook().to_vec2::<f32>()?
        );
        let continued = again.step(&x)?;
        assert!(
            continued.recon < fresh.recon * 0.5,
            "a warm start begins where the run stopped: {} vs fresh {}",
            continued.recon,
            fresh.recon
        );
        let other_codebook = VqConfig {
            codebook_size: 16,
            ..VqConfig::tiny(32)
        };
        let mut other = VqTrainer::new(other_codebook, 3e-3, 9, &dev)?;
        assert!(
            other
                .warm_start(&dir.path().join("model.safetensors"))
                .is_err()
        );
        Ok(())
    }

    #[cfg(feature = "fs")]
    #[test]
    fn decoder_only_training_keeps_every_token_id() -> Result<()> {
        let dev = Device::Cpu;
        let x = sources(6, 8)?;
        let mut tr = VqTrainer::new(VqConfig::tiny(32), 3e-3, 3, &dev)?;
        assert!(
            tr.freeze_codes()
                .unwrap_err()
                .to_string()
                .contains("--init"),
            "a fresh VQ has no codes to keep"
        );
        for _ in 0..30 {
            tr.step(&x)?;
        }
        let dir = tempfile::tempdir().unwrap();
        ImageTokenizer::save(&tr.model.config, &tr.tensors(), dir.path())?;
        let train = VqTrainConfig {
            steps: 40,
            batch_size: 8,
            lr: 3e-3,
            warmup: 1,
            seed: 4,
            decoder_only: true,
            restarts: CodeRestarts::Random,
        };
        let imgs = crate::tokenize::vq::tensor_to_images(&x)?;
        let before = ImageTokenizer::load(dir.path(), &dev)?;
        let (ids_before, z_before) = before.encode(&x)?;
        let recon_before = mse(&before.decode(&ids_before)?, &x)?.to_scalar::<f32>()?;
        let after = VqTrainer::fit(
            before.config.clone(),
            &train,
            &imgs,
            &dev,
            Some(&dir.path().join("model.safetensors")),
            |_, _| {},
        )?;
        let (ids_after, z_after) = after.model.encode(&x)?;
        assert_eq!(ids_after.to_vec2::<u32>()?, ids_before.to_vec2::<u32>()?);
        assert_eq!(
            z_after.flatten_all()?.to_vec1::<f32>()?,
            z_before.flatten_all()?.to_vec1::<f32>()?,
            "the encoder must not move"
        );
        let recon_after = mse(&after.model.decode(&ids_after)?, &x)?.to_scalar::<f32>()?;
        assert!(
            recon_after < recon_before * 0.9,
            "the decoder learns: {recon_before} -> {recon_after}"
        );
        Ok(())
    }

    #[test]
    fn a_wider_decoder_learns_to_draw_the_same_codes() -> Result<()> {
        let dev = Device::Cpu;
        let x = sources(6, 8)?;
        let mut tr = VqTrainer::new(VqConfig::tiny(32), 3e-3, 3, &dev)?;
        for _ in 0..30 {
            tr.step(&x)?;
        }
        let dir = tempfile::tempdir().unwrap();
        ImageTokenizer::save(&tr.model.config, &tr.tensors(), dir.path())?;
        let weights = dir.path().join("model.safetensors");
        let (ids, z) = tr.model.encode(&x)?;

        let wider = VqConfig {
            decoder_channels: Some(vec![12, 24, 32]),
            decoder_blocks: 1,
            ..VqConfig::tiny(32)
        };
        let mut fresh = VqTrainer::new(wider.clone(), 3e-3, 5, &dev)?;
        // Every decoder tensor changed shape or is new (post_quant_conv, position, the mid
        // blocks, the up convs and their blocks, conv_out) but conv_out's bias, 3 either way.
        assert_eq!(fresh.warm_start(&weights)?, 2 + 1 + 8 + 3 * 2 + 3 * 4 + 1);
        fresh.freeze_codes()?;
        let recon_fresh = mse(&fresh.model.decode(&ids)?, &x)?.to_scalar::<f32>()?;
        for step in 0..60 {
            fresh.set_lr(if step < 5 { 1e-3 } else { 3e-3 });
            fresh.step(&x)?;
        }
        let (ids_after, z_after) = fresh.model.encode(&x)?;
        assert_eq!(ids_after.to_vec2::<u32>()?, ids.to_vec2::<u32>()?);
        assert_eq!(
            z_after.flatten_all()?.to_vec1::<f32>()?,
            z.flatten_all()?.to_vec1::<f32>()?
        );
        let recon = mse(&fresh.model.decode(&ids)?, &x)?.to_scalar::<f32>()?;
        assert!(recon < recon_fresh * 0.5, "{recon_fresh} -> {recon}");

        // The fingerprint that checkpoints record is the same for both decoders.
        let other = tempfile::tempdir().unwrap();
        ImageTokenizer::save(&wider, &fresh.tensors(), other.path())?;
        assert_eq!(
            crate::model::checkpoint::vq_fingerprint(other.path())?,
            crate::model::checkpoint::vq_fingerprint(dir.path())?
        );
        assert_eq!(ImageTokenizer::load(other.path(), &dev)?.config, wider);

        // Another encoder cannot start from these weights.
        let mut other_encoder = VqTrainer::new(
            VqConfig {
                channels: vec![8, 16, 24],
                ..VqConfig::tiny(32)
            },
            3e-3,
            5,
            &dev,
        )?;
        let e = other_encoder.warm_start(&weights).unwrap_err().to_string();
        assert!(
            e.contains("model.safetensors") && e.contains("encoder."),
            "{e}"
        );
        let truncated = dir.path().join("truncated.safetensors");
        let bytes = std::fs::read(&weights).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let e = fresh.warm_start(&truncated).unwrap_err().to_string();
        assert!(e.contains("truncated.safetensors"), "{e}");
        Ok(())
    }

    #[test]
    fn dead_codes_restart_where_the_codebook_fits_worst() -> Result<()> {
        let dev = Device::Cpu;
        let x = sources(8, 8)?;
        let mut tr = VqTrainer::new(VqConfig::tiny(32), 3e-3, 3, &dev)?;
        for _ in 0..5 {
            tr.step(&x)?;
        }
        // The encoder outputs this step will see, and how badly the codebook fits each.
        let z = tr.model.features(&x)?;
        let z = z.reshape((z.elem_count() / 8, 8))?;
        let q = tr
            .model
            .codebook()
            .index_select(&tr.model.nearest(&z)?, 0)?;
        let err = (&z - &q)?.sqr()?.sum(1)?.to_vec1::<f32>()?;
        let mut order: Vec<usize> = (0..err.len()).collect();
        order.sort_by(|&a, &b| err[b].total_cmp(&err[a]));
        let rows = z.to_vec2::<f32>()?;

        tr.restarts = CodeRestarts::Worst;
        tr.cluster_size[3] = 0.0;
        tr.cluster_size[7] = 0.0;
        let stats = tr.step(&x)?;
        assert_eq!(stats.restarted, 2);
        let cb = tr.model.codebook().to_vec2::<f32>()?;
        for (code, worst) in [(3, order[0]), (7, order[1])] {
            let close = cb[code]
                .iter()
                .zip(&rows[worst])
                .all(|(a, b)| (a - b).abs() <= 1e-3 * (1.0 + b.abs()));
            assert!(
                close,
                "code {code} restarted at {:?}, the worst fit is {:?}",
                cb[code], rows[worst]
            );
        }
        Ok(())
    }
}
