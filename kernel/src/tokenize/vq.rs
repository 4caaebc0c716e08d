//! The image tokenizer: a Chameleon-style VQ-VAE. A conv encoder downsamples 8x (64x64 -> 8x8
//! = 64 tokens), each position is replaced by its nearest codebook vector, and a conv decoder
//! (nearest upsampling + conv, no transposed convs) maps codes back to pixels.
//!
//! The encoder's pre-quantisation features are returned with the ids: the recognition-weighted
//! loss measures how much each position changes between source and target with them.
//!
//! With `local_encoder` every token is a function of its own 8x8 patch alone (1x1 convs,
//! non-overlapping 2x2 downsamplings): an edit changes only the ids of the cells whose pixels it
//! changed, so a world model can keep every other id with certainty. The decoder still sees
//! the whole grid.

use crate::error::{Error, Result};
use crate::nn::Conv2d;
use crate::nn::conv::upsample2x;
use crate::weights::Weights;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Shape of the tokenizer. Saved as `config.json` next to its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VqConfig {
    /// Input images are `image_size` x `image_size` RGB.
    pub image_size: usize,
    /// Conv widths at each resolution, full size first; there are `channels.len()` 2x
    /// downsamplings, so three entries give 8x.
    pub channels: Vec<usize>,
    /// Codes in the codebook (image token ids are `0..codebook_size`).
    pub codebook_size: usize,
    /// Width of a code vector.
    pub code_dim: usize,
    /// Weight of the commitment loss (beta in VQ-VAE).
    pub commitment: f64,
    /// Decay of the exponential moving averages that update the codebook.
    pub ema_decay: f64,
    /// A code whose moving-average usage falls below this is restarted from an encoder output.
    pub dead_code_threshold: f64,
    /// Conv widths of the decoder, full size first, one per `channels` entry; absent: the
    /// decoder mirrors the encoder. A wider decoder can be trained on a frozen encoder and
    /// codebook (`--decoder-only`), which keeps every token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_channels: Option<Vec<usize>>,
    /// Residual blocks after each 2x upsampling of the decoder (two always run at the token
    /// grid).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub decoder_blocks: usize,
    /// Each token sees only its own patch of `2^channels.len()` pixels: the encoder's convs
    /// are 1x1 and its downsamplings non-overlapping 2x2. Absent (every VQ before it): 3x3
    /// convs and overlapping 4x4 downsamplings, whose reach spans several cells.
    #[serde(default, skip_serializing_if = "is_false")]
    pub local_encoder: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for VqConfig {
    fn default() -> Self {
        VqConfig {
            image_size: 64,
            channels: vec![16, 32, 64],
            codebook_size: 512,
            code_dim: 64,
            commitment: 0.25,
            ema_decay: 0.99,
            dead_code_threshold: 0.03,
            decoder_channels: None,
            decoder_blocks: 0,
            local_encoder: false,
        }
    }
}

impl VqConfig {
    /// A few thousand parameters, for tests.
    pub fn tiny(image_size: usize) -> Self {
        VqConfig {
            image_size,
            channels: vec![8, 16, 16],
            codebook_size: 32,
            code_dim: 8,
            ..Default::default()
        }
    }
    /// Side of the token grid.
    pub(crate) fn grid(&self) -> usize {
        self.image_size >> self.channels.len()
    }
    /// Tokens one image becomes (the grid's side squared).
    pub fn tokens_per_image(&self) -> usize {
        self.grid() * self.grid()
    }
    /// The decoder's conv widths, full size first.
    pub fn decoder_widths(&self) -> &[usize] {
        self.decoder_channels.as_deref().unwrap_or(&self.channels)
    }
    /// An error naming the field unless the configuration builds a working tokenizer.
    pub fn validate(&self) -> Result<()> {
        let levels = self.channels.len();
        if levels == 0 || !self.image_size.is_multiple_of(1 << levels) || self.grid() == 0 {
            return Err(Error::Invalid(format!(
                "VQ config: image_size {} must be a positive multiple of 2^{levels} (one halving per `channels` entry)",
                self.image_size
            )));
        }
        if let Some(d) = &self.decoder_channels
            && (d.len() != levels || d.contains(&0))
        {
            return Err(Error::Invalid(format!(
                "VQ config: decoder_channels needs one positive width per `channels` entry ({levels}), got {d:?}"
            )));
        }
        if self.channels.contains(&0) {
            return Err(Error::Invalid(format!(
                "VQ config: channels must be positive, got {:?}",
                self.channels
            )));
        }
        if self.codebook_size < 2 || self.code_dim == 0 {
            return Err(Error::Invalid(
                "VQ config: codebook_size must be >= 2 and code_dim >= 1".into(),
            ));
        }
        Ok(())
    }
}

struct ResBlock {
    a: Conv2d,
    b: Conv2d,
}

impl ResBlock {
    fn new(c: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Self::with_kernel(c, 3, vb)
    }
    /// Two `kernel` x `kernel` convs (odd kernel, same padding).
    fn with_kernel(c: usize, kernel: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(ResBlock {
            a: Conv2d::new(c, c, kernel, 1, kernel / 2, vb.pp("conv1"))?,
            b: Conv2d::new(c, c, kernel, 1, kernel / 2, vb.pp("conv2"))?,
        })
    }
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x + self.b.forward(&self.a.forward(&x.silu()?)?.silu()?)?
    }
}

struct Encoder {
    conv_in: Conv2d,
    down: Vec<Conv2d>,
    mid: [ResBlock; 2],
    quant_conv: Conv2d,
}

struct Decoder {
    post_quant_conv: Conv2d,
    /// Learned embedding of each latent position `(grid, grid, channels)`: convolutions are
    /// translation-equivariant, but how an object looks depends on where it stands (perspective).
    position: Tensor,
    mid: [ResBlock; 2],
    /// Per level, full size first: the conv after the 2x upsampling, then its residual blocks.
    up: Vec<(Conv2d, Vec<ResBlock>)>,
    conv_out: Conv2d,
}

/// The VQ-VAE: encode images to token ids, decode ids to images.
pub struct ImageTokenizer {
    /// Its shape.
    pub config: VqConfig,
    encoder: Encoder,
    decoder: Decoder,
    /// `(codebook_size, code_dim)`.
    codebook: Tensor,
}

impl ImageTokenizer {
    /// Builds the network from a var builder (fresh init from a `VarMap`, or stored weights).
    pub(crate) fn new(config: VqConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let ch = &config.channels;
        let n = ch.len();
        let next = |i: usize| ch[(i + 1).min(n - 1)];
        let e = vb.pp("encoder");
        // (kernel, padding) of the convs at one resolution and of the downsamplings.
        let ((k, pad), (down_k, down_pad)) = if config.local_encoder {
            ((1, 0), (2, 0))
        } else {
            ((3, 1), (4, 1))
        };
        let encoder = Encoder {
            conv_in: Conv2d::new(3, ch[0], k, 1, pad, e.pp("conv_in"))?,
            down: (0..n)
                .map(|i| {
                    Conv2d::new(
                        ch[i],
                        next(i),
                        down_k,
                        2,
                        down_pad,
                        e.pp(format!("down.{i}")),
                    )
                })
                .collect::<candle_core::Result<_>>()?,
            mid: [
                ResBlock::with_kernel(ch[n - 1], k, e.pp("mid.0"))?,
                ResBlock::with_kernel(ch[n - 1], k, e.pp("mid.1"))?,
            ],
            quant_conv: Conv2d::new(ch[n - 1], config.code_dim, 1, 1, 0, vb.pp("quant_conv"))?,
        };
        let d = vb.pp("decoder");
        let dch = config.decoder_widths();
        let dnext = |i: usize| dch[(i + 1).min(n - 1)];
        let up_level = |i: usize| -> candle_core::Result<(Conv2d, Vec<ResBlock>)> {
            let conv = Conv2d::new(dnext(i), dch[i], 3, 1, 1, d.pp(format!("up.{i}")))?;
            let blocks = (0..config.decoder_blocks)
                .map(|j| ResBlock::new(dch[i], d.pp(format!("up_blocks.{i}.{j}"))))
                .collect::<candle_core::Result<_>>()?;
            Ok((conv, blocks))
        };
        let decoder = Decoder {
            post_quant_conv: Conv2d::new(
                config.code_dim,
                dch[n - 1],
                3,
                1,
                1,
                vb.pp("post_quant_conv"),
            )?,
            position: d.get_with_hints(
                (config.grid(), config.grid(), dch[n - 1]),
                "position",
                candle_nn::Init::Const(0.0),
            )?,
            mid: [
                ResBlock::new(dch[n - 1], d.pp("mid.0"))?,
                ResBlock::new(dch[n - 1], d.pp("mid.1"))?,
            ],
            up: (0..n).map(up_level).collect::<candle_core::Result<_>>()?,
            conv_out: Conv2d::new(dch[0], 3, 3, 1, 1, d.pp("conv_out"))?,
        };
        let codebook = vb.get_with_hints(
            (config.codebook_size, config.code_dim),
            "quantize.embedding.weight",
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?;
        Ok(ImageTokenizer {
            config,
            encoder,
            decoder,
            codebook,
        })
    }

    /// Loads weights from safetensors bytes; they must match `config`. `files` names the
    /// config and the weights in errors.
    pub(crate) fn from_safetensors(
        config: VqConfig,
        bytes: Vec<u8>,
        device: &Device,
        files: [&str; 2],
    ) -> Result<Self> {
        let [config_file, weights_file] = files;
        let weights = Weights::read(&bytes, weights_file)?;
        // The losses' weights and the codebook's updates only shape training.
        let inert = ["commitment", "ema_decay", "dead_code_threshold"];
        weights.check_config(&config, config_file, &inert)?;
        weights.build(config_file, device, |vb| Self::new(config, vb))
    }

    /// Loads `config.json` and `model.safetensors` from a folder.
    #[cfg(feature = "fs")]
    pub fn load(dir: &std::path::Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let text = crate::files::read_input_text(&cfg_path, crate::files::Input::Json)?;
        let config: VqConfig = serde_json::from_str(&text).map_err(|e| Error::Malformed {
            file: cfg_path.display().to_string(),
            row: None,
            field: None,
            message: e.to_string(),
        })?;
        let w = dir.join("model.safetensors");
        let bytes = crate::files::read_input(&w, crate::files::Input::Weights)?;
        let files = [cfg_path.display().to_string(), w.display().to_string()];
        Self::from_safetensors(config, bytes, device, files.each_ref().map(|f| f.as_str()))
    }

    /// Saves `config.json` and `model.safetensors` (atomically) into a folder.
    #[cfg(feature = "fs")]
    pub fn save(
        config: &VqConfig,
        tensors: &[(String, Tensor)],
        dir: &std::path::Path,
    ) -> Result<()> {
        crate::files::write_safetensors(
            &dir.join("model.safetensors"),
            tensors,
            Some(crate::weights::metadata(config)),
        )?;
        let json = serde_json::to_string_pretty(config).expect("configs serialise");
        crate::files::write_atomic(&dir.join("config.json"), json.as_bytes())
    }

    pub(crate) fn device(&self) -> &Device {
        self.codebook.device()
    }

    pub(crate) fn codebook(&self) -> &Tensor {
        &self.codebook
    }

    pub(crate) fn set_codebook(&mut self, codebook: Tensor) {
        self.codebook = codebook;
    }

    /// Pre-quantisation features `(batch, grid, grid, code_dim)` of NHWC images in [-1, 1].
    pub(crate) fn features(&self, images: &Tensor) -> Result<Tensor> {
        let e = &self.encoder;
        let mut h = e.conv_in.forward(images)?;
        for down in &e.down {
            h = down.forward(&h.silu()?)?;
        }
        let h = e.mid[1].forward(&e.mid[0].forward(&h)?)?;
        Ok(e.quant_conv.forward(&h.silu()?)?)
    }

    /// Nearest codebook entry of each row of `z` `(n, code_dim)`.
    pub(crate) fn nearest(&self, z: &Tensor) -> Result<Tensor> {
        let cb = &self.codebook;
        let dist = z
            .sqr()?
            .sum_keepdim(1)?
            .broadcast_sub(&(z.matmul(&cb.t()?)? * 2.0)?)?
            .broadcast_add(&cb.sqr()?.sum(1)?.unsqueeze(0)?)?;
        Ok(dist.argmin(1)?)
    }

    /// Token ids `(batch, tokens)` (u32) and pre-quantisation features `(batch, grid, grid, dim)`.
    pub(crate) fn encode(&self, images: &Tensor) -> Result<(Tensor, Tensor)> {
        let z = self.features(images)?;
        let (b, g, _, dim) = z.dims4()?;
        let ids = self
            .nearest(&z.reshape((b * g * g, dim))?)?
            .reshape((b, g * g))?;
        Ok((ids, z))
    }

    /// Codebook vectors of `ids` `(batch, tokens)` as a feature map `(batch, grid, grid, dim)`.
    pub(crate) fn lookup(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let g = self.config.grid();
        if t != g * g {
            return Err(Error::Invalid(format!(
                "decode: got {t} tokens per image, this tokenizer uses {}",
                g * g
            )));
        }
        let max = ids.max_all()?.to_dtype(DType::U32)?.to_scalar::<u32>()? as usize;
        if max >= self.config.codebook_size {
            return Err(Error::Invalid(format!(
                "decode: token id {max} is outside the codebook (size {})",
                self.config.codebook_size
            )));
        }
        Ok(self
            .codebook
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, g, g, self.config.code_dim))?)
    }

    /// Images (NHWC, roughly [-1, 1]) from quantised features.
    pub(crate) fn decode_features(&self, q: &Tensor) -> Result<Tensor> {
        let d = &self.decoder;
        let h = d.post_quant_conv.forward(q)?.broadcast_add(&d.position)?;
        let mut h = d.mid[1].forward(&d.mid[0].forward(&h)?)?;
        for (up, blocks) in d.up.iter().rev() {
            h = up.forward(&upsample2x(&h.silu()?)?)?;
            for block in blocks {
                h = block.forward(&h)?;
            }
        }
        Ok(d.conv_out.forward(&h.silu()?)?)
    }

    /// Images (NHWC, roughly [-1, 1]) from token ids `(batch, tokens)`.
    pub(crate) fn decode(&self, ids: &Tensor) -> Result<Tensor> {
        self.decode_features(&self.lookup(ids)?)
    }

    /// Encodes then decodes: what the tokenizer keeps of an image.
    pub fn reconstruct(&self, images: &[RgbImage]) -> Result<Vec<RgbImage>> {
        let x = images_to_tensor(images, self.config.image_size, self.device())?;
        let (ids, _) = self.encode(&x)?;
        tensor_to_images(&self.decode(&ids)?)
    }
}

/// RGB images to an NHWC f32 tensor in [-1, 1]; every image must be `size` x `size`.
pub(crate) fn images_to_tensor(
    images: &[RgbImage],
    size: usize,
    device: &Device,
) -> Result<Tensor> {
    let mut data = Vec::with_capacity(images.len() * size * size * 3);
    for (i, img) in images.iter().enumerate() {
        if img.dimensions() != (size as u32, size as u32) {
            let (w, h) = img.dimensions();
            return Err(Error::Invalid(format!(
                "image {i} is {w}x{h}; the image tokenizer expects {size}x{size} RGB"
            )));
        }
        data.extend(img.as_raw().iter().map(|&v| v as f32 / 127.5 - 1.0));
    }
    Ok(Tensor::from_vec(
        data,
        (images.len(), size, size, 3),
        device,
    )?)
}

/// An NHWC tensor in [-1, 1] back to RGB images (clamped).
pub(crate) fn tensor_to_images(t: &Tensor) -> Result<Vec<RgbImage>> {
    let (b, h, w, c) = t.dims4()?;
    if c != 3 {
        return Err(Error::Invalid(format!("expected 3 channels, got {c}")));
    }
    let data = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(pixels_to_images(&data, b, h, w))
}

/// `b` NHWC RGB images of `h x w` in [-1, 1] (row-major values) to RGB images (clamped).
pub(crate) fn pixels_to_images(data: &[f32], b: usize, h: usize, w: usize) -> Vec<RgbImage> {
    data.chunks(h * w * 3)
        .take(b)
        .map(|px| {
            let raw = px
                .iter()
                .map(|v| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8)
                .collect();
            RgbImage::from_raw(w as u32, h as u32, raw).expect("buffer has the right length")
        })
        .collect()
}

/// Peak signal-to-noise ratio in dB between two equally sized images.
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64.powi(2) / mse).log10()
    }
}

/// Mean squared error over all elements.
pub(crate) fn mse(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    (a - b)?.sqr()?.mean_all()
}

/// Reconstruction loss of NHWC images in [-1, 1]: L1 on pixels plus L1 on horizontal and
/// vertical differences (plain MSE blurs edges, and edges tell a cube from a sphere), each
/// pixel weighted by `1 + 8 * saturation` of the target so the few coloured pixels of objects
/// count as much as the large grey table they stand on.
pub(crate) fn reconstruction_loss(pred: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
    let unit = ((target.detach() + 1.0)? * 0.5)?;
    let hi = unit.max_keepdim(3)?;
    let lo = unit.min_keepdim(3)?;
    let sat = ((&hi - lo)? / (hi + 1e-3)?)?;
    let w = ((sat * 8.0)? + 1.0)?;
    let norm = w.mean_all()?;
    let weighted_l1 = |a: &Tensor, b: &Tensor, w: &Tensor| -> candle_core::Result<Tensor> {
        (a - b)?
            .abs()?
            .broadcast_mul(w)?
            .mean_all()?
            .broadcast_div(&norm)
    };
    let diff = |t: &Tensor, dim: usize| -> candle_core::Result<Tensor> {
        let n = t.dim(dim)?;
        t.narrow(dim, 1, n - 1)? - t.narrow(dim, 0, n - 1)?
    };
    let crop = |t: &Tensor, dim: usize| -> candle_core::Result<Tensor> {
        t.narrow(dim, 1, t.dim(dim)? - 1)
    };
    let pixels = weighted_l1(pred, target, &w)?;
    let dx = weighted_l1(&diff(pred, 2)?, &diff(target, 2)?, &crop(&w, 2)?)?;
    let dy = weighted_l1(&diff(pred, 1)?, &diff(target, 1)?, &crop(&w, 1)?)?;
    pixels + (dx + dy)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    #[test]
    fn shapes_round_trip() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = VqConfig::tiny(32);
        let vm = VarMap::new();
        let vq = ImageTokenizer::new(cfg.clone(), VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
        let imgs = vec![RgbImage::from_pixel(32, 32, image::Rgb([200, 10, 10])); 3];
        let x = images_to_tensor(&imgs, 32, &dev)?;
        let (ids, feats) = vq.encode(&x)?;
        assert_eq!(ids.dims(), &[3, 16]);
        assert_eq!(feats.dims(), &[3, 4, 4, 8]);
        assert_eq!(vq.decode(&ids)?.dims(), &[3, 32, 32, 3]);
        assert_eq!(vq.reconstruct(&imgs)?.len(), 3);
        assert!(
            images_to_tensor(&[RgbImage::new(8, 8)], 32, &dev)
                .unwrap_err()
                .to_string()
                .contains("8x8")
        );
        let bad = Tensor::new(&[[40u32; 16]], &dev)?;
        assert!(
            vq.decode(&bad)
                .unwrap_err()
                .to_string()
                .contains("outside the codebook")
        );
        Ok(())
    }

    /// With `local_encoder`, changing pixels changes the features of their own cells only;
    /// the default encoder carries the change to the neighbours.
    #[test]
    fn a_local_encoder_keeps_an_edit_in_its_cells() -> Result<()> {
        let dev = Device::Cpu;
        let changed_cells = |local: bool| -> Result<Vec<usize>> {
            let vm = VarMap::new();
            let cfg = VqConfig {
                local_encoder: local,
                ..VqConfig::tiny(32)
            };
            let vq = ImageTokenizer::new(cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
            let a = RgbImage::from_fn(32, 32, |x, y| {
                image::Rgb([(x * 7) as u8, (y * 5) as u8, 90])
            });
            let mut b = a.clone();
            // Pixels (9..11, 17..19) lie in cell (row 2, column 1) of the 4x4 grid of 8x8 cells.
            for y in 17..19 {
                for x in 9..11 {
                    b.put_pixel(x, y, image::Rgb([250, 0, 0]));
                }
            }
            let (_, z) = vq.encode(&images_to_tensor(&[a, b], 32, &dev)?)?;
            let d = (z.get(0)? - z.get(1)?)?.abs()?.sum(2)?.flatten_all()?;
            Ok(d.to_vec1::<f32>()?
                .iter()
                .enumerate()
                .filter(|(_, v)| **v > 0.0)
                .map(|(i, _)| i)
                .collect())
        };
        assert_eq!(changed_cells(true)?, vec![2 * 4 + 1]);
        assert!(changed_cells(false)?.len() > 1);
        Ok(())
    }

    #[test]
    fn nearest_picks_the_closest_code() -> Result<()> {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let mut vq = ImageTokenizer::new(
            VqConfig::tiny(32),
            VarBuilder::from_varmap(&vm, DType::F32, &dev),
        )?;
        let cb = Tensor::randn(0f32, 1.0, (32, 8), &dev)?;
        vq.set_codebook(cb.clone());
        let picks = Tensor::new(&[5u32, 17, 0], &dev)?;
        let z = (cb.index_select(&picks, 0)? + 0.01)?;
        assert_eq!(vq.nearest(&z)?.to_vec1::<u32>()?, vec![5, 17, 0]);
        Ok(())
    }

    #[test]
    fn psnr_of_identical_and_different_images() {
        let a = RgbImage::from_pixel(4, 4, image::Rgb([10, 10, 10]));
        let b = RgbImage::from_pixel(4, 4, image::Rgb([20, 10, 10]));
        assert!(psnr(&a, &a).is_infinite());
        let expect = 10.0 * (255f64.powi(2) / (100.0 / 3.0)).log10();
        assert!((psnr(&a, &b) - expect).abs() < 1e-9);
    }

    #[test]
    fn configs_are_checked() {
        let bad = [
            (
                VqConfig {
                    decoder_channels: Some(vec![8, 16]),
                    ..VqConfig::tiny(32)
                },
                "decoder_channels",
            ),
            (
                VqConfig {
                    channels: vec![8, 0, 16],
                    ..VqConfig::tiny(32)
                },
                "channels",
            ),
            (VqConfig::tiny(36), "image_size"),
        ];
        for (cfg, field) in bad {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
        // A config without the decoder fields (every shipped one so far) reads as a mirrored
        // decoder and writes back without them.
        let json = serde_json::to_string(&VqConfig::default()).unwrap();
        assert!(
            !json.contains("decoder") && !json.contains("local"),
            "{json}"
        );
        let back: VqConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.decoder_widths(), &[16, 32, 64]);
        assert_eq!(back.decoder_blocks, 0);
    }
}
