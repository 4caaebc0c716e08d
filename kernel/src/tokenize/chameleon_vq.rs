//! Chameleon's VQ image tokenizer (Gafni et al.'s Make-A-Scene VQGAN, as Chameleon/Anole ship
//! it): the encoder, `quant_conv` and codebook as HF's `ChameleonVQVAE` stores them
//! (`model.vqmodel.*` in an HF checkpoint), and the decoder in the taming-transformers layout
//! Anole ships (`vqgan.ckpt`, `decoder.*` + `post_quant_conv.*`), read straight from the
//! PyTorch checkpoint with candle's pickle reader.
//!
//! The architecture (levels, blocks per level, where attention sits, channel counts) is read
//! from the weights themselves, so any VQGAN of this family loads: the real 512x512 / 1,024
//! token one and the tiny test fixture alike. Images are `(batch, 3, h, w)` in `[-1, 1]`.

use crate::error::{Error, Result};
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{GroupNorm, VarBuilder};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// HF `ChameleonVQVAEConfig` (the fields dynaboot uses; the rest is read from the weights).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChameleonVqConfig {
    /// Width of a codebook vector.
    pub(crate) embed_dim: usize,
    /// Codebook size (8,192 for Chameleon).
    pub(crate) num_embeddings: usize,
    /// Image side the encoder expects (512 for Chameleon).
    pub(crate) resolution: usize,
    /// One entry per level; the encoder downsamples `len - 1` times.
    pub(crate) channel_multiplier: Vec<usize>,
}

impl ChameleonVqConfig {
    /// Side of the token grid.
    pub(crate) fn grid(&self) -> usize {
        self.resolution >> (self.channel_multiplier.len().saturating_sub(1))
    }

    pub(crate) fn tokens_per_image(&self) -> usize {
        self.grid() * self.grid()
    }
}

const GROUPS: usize = 32;
const NORM_EPS: f64 = 1e-6;

struct Conv {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl Conv {
    fn load(vb: &VarBuilder, name: &str, stride: usize, padding: usize) -> Result<Self> {
        let vb = vb.pp(name);
        let weight = vb.get_unchecked("weight")?;
        let bias = vb
            .contains_tensor("bias")
            .then(|| vb.get_unchecked("bias"))
            .transpose()?;
        Ok(Conv {
            weight,
            bias,
            stride,
            padding,
        })
    }

    fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = x.conv2d(&self.weight, self.padding, self.stride, 1, 1)?;
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
            None => Ok(y),
        }
    }
}

fn group_norm(vb: &VarBuilder, name: &str) -> Result<GroupNorm> {
    let vb = vb.pp(name);
    let weight = vb.get_unchecked("weight")?;
    let bias = vb.get_unchecked("bias")?;
    let channels = weight.dim(0)?;
    Ok(GroupNorm::new(weight, bias, channels, GROUPS, NORM_EPS)?)
}

struct ResnetBlock {
    norm1: GroupNorm,
    conv1: Conv,
    norm2: GroupNorm,
    conv2: Conv,
    shortcut: Option<Conv>,
}

impl ResnetBlock {
    fn load(vb: &VarBuilder) -> Result<Self> {
        let shortcut = if vb.contains_tensor("nin_shortcut.weight") {
            Some(Conv::load(vb, "nin_shortcut", 1, 0)?)
        } else if vb.contains_tensor("conv_shortcut.weight") {
            Some(Conv::load(vb, "conv_shortcut", 1, 1)?)
        } else {
            None
        };
        Ok(ResnetBlock {
            norm1: group_norm(vb, "norm1")?,
            conv1: Conv::load(vb, "conv1", 1, 1)?,
            norm2: group_norm(vb, "norm2")?,
            conv2: Conv::load(vb, "conv2", 1, 1)?,
            shortcut,
        })
    }
}

impl Module for ResnetBlock {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.conv1.forward(&self.norm1.forward(x)?.silu()?)?;
        let h = self.conv2.forward(&self.norm2.forward(&h)?.silu()?)?;
        let residual = match &self.shortcut {
            Some(s) => s.forward(x)?,
            None => x.clone(),
        };
        residual + h
    }
}

/// Single-head self-attention over the pixels of a feature map.
struct AttnBlock {
    norm: GroupNorm,
    q: Conv,
    k: Conv,
    v: Conv,
    proj_out: Conv,
}

impl AttnBlock {
    fn load(vb: &VarBuilder) -> Result<Self> {
        Ok(AttnBlock {
            norm: group_norm(vb, "norm")?,
            q: Conv::load(vb, "q", 1, 0)?,
            k: Conv::load(vb, "k", 1, 0)?,
            v: Conv::load(vb, "v", 1, 0)?,
            proj_out: Conv::load(vb, "proj_out", 1, 0)?,
        })
    }
}

impl Module for AttnBlock {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let n = self.norm.forward(x)?;
        let flat = |t: Tensor| t.reshape((b, c, h * w));
        let q = flat(self.q.forward(&n)?)?.transpose(1, 2)?.contiguous()?;
        let k = flat(self.k.forward(&n)?)?;
        let v = flat(self.v.forward(&n)?)?;
        let attn = (q.matmul(&k)? * (c as f64).powf(-0.5))?;
        let attn = candle_nn::ops::softmax_last_dim(&attn)?;
        let out = v.matmul(&attn.transpose(1, 2)?.contiguous()?)?;
        x + self.proj_out.forward(&out.reshape((b, c, h, w))?)?
    }
}

/// One resolution level: residual blocks, each optionally followed by attention.
struct Level {
    blocks: Vec<(ResnetBlock, Option<AttnBlock>)>,
    /// Downsample (encoder) or upsample (decoder) convolution at the end of the level.
    resample: Option<Conv>,
}

impl Level {
    fn load(vb: &VarBuilder, resample: &str, stride: usize, padding: usize) -> Result<Self> {
        let mut blocks = Vec::new();
        while vb.contains_tensor(&format!("block.{}.conv1.weight", blocks.len())) {
            let j = blocks.len();
            let attn = vb
                .contains_tensor(&format!("attn.{j}.q.weight"))
                .then(|| AttnBlock::load(&vb.pp(format!("attn.{j}"))))
                .transpose()?;
            blocks.push((ResnetBlock::load(&vb.pp(format!("block.{j}")))?, attn));
        }
        let resample = vb
            .contains_tensor(&format!("{resample}.conv.weight"))
            .then(|| Conv::load(&vb.pp(resample), "conv", stride, padding))
            .transpose()?;
        Ok(Level { blocks, resample })
    }

    fn blocks(&self, mut x: Tensor) -> candle_core::Result<Tensor> {
        for (block, attn) in &self.blocks {
            x = block.forward(&x)?;
            if let Some(a) = attn {
                x = a.forward(&x)?;
            }
        }
        Ok(x)
    }
}

/// The middle of both networks: block, attention, block.
struct Mid {
    block_1: ResnetBlock,
    attn_1: Option<AttnBlock>,
    block_2: ResnetBlock,
}

impl Mid {
    fn load(vb: &VarBuilder) -> Result<Self> {
        Ok(Mid {
            block_1: ResnetBlock::load(&vb.pp("block_1"))?,
            attn_1: vb
                .contains_tensor("attn_1.q.weight")
                .then(|| AttnBlock::load(&vb.pp("attn_1")))
                .transpose()?,
            block_2: ResnetBlock::load(&vb.pp("block_2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = self.block_1.forward(x)?;
        if let Some(a) = &self.attn_1 {
            x = a.forward(&x)?;
        }
        self.block_2.forward(&x)
    }
}

/// A convolutional tower: `conv_in`, levels, mid, `norm_out`, swish, `conv_out`.
struct Tower {
    conv_in: Conv,
    levels: Vec<Level>,
    mid: Mid,
    norm_out: GroupNorm,
    conv_out: Conv,
}

impl Tower {
    /// `levels`: `down` (encoder, stride-2 convs after asymmetric padding) or `up` (decoder,
    /// nearest upsampling then a 3x3 conv).
    fn load(vb: &VarBuilder, levels: &str) -> Result<Self> {
        let (resample, stride, padding) = match levels {
            "down" => ("downsample", 2, 0),
            _ => ("upsample", 1, 1),
        };
        let mut ls = Vec::new();
        while vb.contains_tensor(&format!("{levels}.{}.block.0.conv1.weight", ls.len())) {
            let i = ls.len();
            ls.push(Level::load(
                &vb.pp(format!("{levels}.{i}")),
                resample,
                stride,
                padding,
            )?);
        }
        if ls.is_empty() {
            return Err(Error::Invalid(format!(
                "no `{}.{levels}.0.block.0` weights: not a VQGAN {}",
                vb.prefix(),
                if levels == "down" {
                    "encoder"
                } else {
                    "decoder"
                }
            )));
        }
        Ok(Tower {
            conv_in: Conv::load(vb, "conv_in", 1, 1)?,
            levels: ls,
            mid: Mid::load(&vb.pp("mid"))?,
            norm_out: group_norm(vb, "norm_out")?,
            conv_out: Conv::load(vb, "conv_out", 1, 1)?,
        })
    }

    fn encode(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = self.conv_in.forward(x)?;
        for level in &self.levels {
            h = level.blocks(h)?;
            if let Some(down) = &level.resample {
                // No asymmetric padding in conv2d: pad right and bottom by one first.
                h = down.forward(&h.pad_with_zeros(3, 0, 1)?.pad_with_zeros(2, 0, 1)?)?;
            }
        }
        let h = self.mid.forward(&h)?;
        self.conv_out.forward(&self.norm_out.forward(&h)?.silu()?)
    }

    fn decode(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = self.mid.forward(&self.conv_in.forward(z)?)?;
        for level in self.levels.iter().rev() {
            h = level.blocks(h)?;
            if let Some(up) = &level.resample {
                let (_, _, hh, ww) = h.dims4()?;
                h = up.forward(&h.upsample_nearest2d(2 * hh, 2 * ww)?)?;
            }
        }
        self.conv_out.forward(&self.norm_out.forward(&h)?.silu()?)
    }
}

/// Chameleon's image tokenizer: encoder + codebook, and (when given) the decoder.
pub struct ChameleonVq {
    pub(crate) config: ChameleonVqConfig,
    encoder: Tower,
    quant_conv: Conv,
    /// `(num_embeddings, embed_dim)`.
    codebook: Tensor,
    /// `post_quant_conv` and the decoder, from the taming checkpoint.
    decoder: Option<(Conv, Tower)>,
}

impl ChameleonVq {
    /// The encoder and codebook under `prefix` (`model.vqmodel` in an HF checkpoint, the
    /// empty prefix in a taming checkpoint).
    pub fn load_encoder(config: ChameleonVqConfig, vb: &VarBuilder) -> Result<Self> {
        let encoder = Tower::load(&vb.pp("encoder"), "down")?;
        let codebook = vb.get_unchecked("quantize.embedding.weight")?;
        if codebook.dims() != [config.num_embeddings, config.embed_dim] {
            return Err(Error::Invalid(format!(
                "{}quantize.embedding.weight has shape {:?}, but vq_config says \
                 num_embeddings {} x embed_dim {}",
                vb.prefix(),
                codebook.dims(),
                config.num_embeddings,
                config.embed_dim
            )));
        }
        Ok(ChameleonVq {
            encoder,
            quant_conv: Conv::load(vb, "quant_conv", 1, 0)?,
            codebook,
            decoder: None,
            config,
        })
    }

    /// Adds the decoder of a taming-transformers VQGAN checkpoint (`vqgan.ckpt`: a pickled
    /// dict whose `state_dict` holds `decoder.*` and `post_quant_conv.*`). Its codebook must be
    /// the encoder's.
    pub fn with_taming_decoder(mut self, ckpt: &Path, device: &Device) -> Result<Self> {
        let tensors = read_taming_state_dict(ckpt)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let bad = |m: String| Error::Invalid(format!("{}: {m}", ckpt.display()));
        if vb.contains_tensor("quantize.embedding.weight") {
            let theirs = vb.get_unchecked("quantize.embedding.weight")?;
            let ours = self.codebook.to_dtype(DType::F32)?;
            if theirs.dims() != ours.dims()
                || (theirs - ours)?.abs()?.max_all()?.to_scalar::<f32>()? > 1e-3
            {
                return Err(bad(
                    "its codebook is not the checkpoint's: the decoder belongs to another \
                     tokenizer"
                        .into(),
                ));
            }
        }
        let post = Conv::load(&vb, "post_quant_conv", 1, 0)
            .map_err(|e| bad(format!("no post_quant_conv: {e}")))?;
        let decoder = Tower::load(&vb.pp("decoder"), "up").map_err(|e| bad(e.to_string()))?;
        if decoder.conv_out.out_channels() != 3 {
            return Err(bad("the decoder does not output RGB".into()));
        }
        self.decoder = Some((post, decoder));
        Ok(self)
    }

    pub(crate) fn device(&self) -> &Device {
        self.codebook.device()
    }

    /// The codebook's values as little-endian f32 bytes (what a fingerprint is taken of).
    #[cfg(feature = "fs")]
    pub(crate) fn codebook_bytes(&self) -> Result<Vec<u8>> {
        let v = self
            .codebook
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(v.iter().flat_map(|x| x.to_le_bytes()).collect())
    }

    /// Pre-quantisation features `(batch, embed_dim, grid, grid)` of images in `[-1, 1]`.
    pub(crate) fn features(&self, images: &Tensor) -> Result<Tensor> {
        let images = images.to_dtype(self.codebook.dtype())?;
        Ok(self.quant_conv.forward(&self.encoder.encode(&images)?)?)
    }

    /// Codebook indices `(batch, grid * grid)` of pre-quantisation features (nearest code).
    pub(crate) fn nearest(&self, features: &Tensor) -> Result<Tensor> {
        let (b, d, h, w) = features.dims4()?;
        let z = features
            .permute((0, 2, 3, 1))?
            .reshape((b * h * w, d))?
            .to_dtype(DType::F32)?;
        let e = self.codebook.to_dtype(DType::F32)?;
        let dist = (z
            .sqr()?
            .sum_keepdim(1)?
            .broadcast_add(&e.sqr()?.sum(1)?.unsqueeze(0)?)?
            - (z.matmul(&e.t()?)? * 2.0)?)?;
        Ok(dist.argmin(D::Minus1)?.reshape((b, h * w))?)
    }

    /// `(codes, features)` of images `(batch, 3, h, w)` in `[-1, 1]`.
    pub fn encode(&self, images: &Tensor) -> Result<(Tensor, Tensor)> {
        let f = self.features(images)?;
        Ok((self.nearest(&f)?, f))
    }

    /// Images `(batch, 3, h, w)` in `[-1, 1]` (unclamped) of codes `(batch, grid * grid)`.
    pub fn decode(&self, codes: &Tensor) -> Result<Tensor> {
        let (post, decoder) = self.decoder.as_ref().ok_or_else(|| {
            Error::Invalid(
                "this image tokenizer has no decoder: HF checkpoints store only the encoder; \
                 pass the taming VQGAN checkpoint (Anole's tokenizer/vqgan.ckpt) with --vqgan"
                    .into(),
            )
        })?;
        let (b, n) = codes.dims2()?;
        let g = (n as f64).sqrt() as usize;
        if g * g != n {
            return Err(Error::Invalid(format!(
                "{n} codes per image do not form a square grid"
            )));
        }
        let z = self
            .codebook
            .to_dtype(DType::F32)?
            .index_select(&codes.flatten_all()?, 0)?
            .reshape((b, g, g, self.config.embed_dim))?
            .permute((0, 3, 1, 2))?
            .contiguous()?;
        Ok(decoder.decode(&post.forward(&z)?)?)
    }

    /// Chameleon's preprocessing: the shorter side resized to the encoder's resolution and the
    /// centre cropped square (here: crop, then resize), scaled to `[-1, 1]`.
    pub(crate) fn images_to_tensor(&self, images: &[RgbImage]) -> Result<Tensor> {
        let r = self.config.resolution;
        let mut data = Vec::with_capacity(images.len() * 3 * r * r);
        for img in images {
            let img = if img.dimensions() == (r as u32, r as u32) {
                img.clone()
            } else {
                let (w, h) = img.dimensions();
                let side = w.min(h);
                let square =
                    image::imageops::crop_imm(img, (w - side) / 2, (h - side) / 2, side, side)
                        .to_image();
                image::imageops::resize(&square, r as u32, r as u32, image::imageops::Lanczos3)
            };
            for c in 0..3 {
                data.extend(img.pixels().map(|p| p.0[c] as f32 / 127.5 - 1.0));
            }
        }
        Ok(Tensor::from_vec(
            data,
            (images.len(), 3, r, r),
            self.device(),
        )?)
    }
}

/// Images of a `(batch, 3, h, w)` tensor in `[-1, 1]`.
pub(crate) fn tensor_to_images(t: &Tensor) -> Result<Vec<RgbImage>> {
    let (b, _, h, w) = t.dims4()?;
    let t = ((t.to_dtype(DType::F32)?.clamp(-1f32, 1f32)? + 1.0)? * 127.5)?
        .permute((0, 2, 3, 1))?
        .round()?
        .to_dtype(DType::U8)?;
    (0..b)
        .map(|i| {
            let px = t.get(i)?.flatten_all()?.to_vec1::<u8>()?;
            RgbImage::from_raw(w as u32, h as u32, px)
                .ok_or_else(|| Error::Invalid("decoded image has the wrong size".into()))
        })
        .collect()
}

/// The `state_dict` of a PyTorch Lightning / taming checkpoint (or a bare state dict).
pub fn read_taming_state_dict(path: &Path) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(Error::Invalid(format!(
            "{}: no such VQGAN checkpoint",
            path.display()
        )));
    }
    let unreadable = |e: candle_core::Error| {
        Error::Invalid(format!(
            "{}: not a readable PyTorch checkpoint ({}); expected taming's vqgan.ckpt",
            path.display(),
            crate::error::candle_reason(&e)
        ))
    };
    let open = |key| candle_core::pickle::PthTensors::new(path, key);
    let pth = open(Some("state_dict"))
        .or_else(|_| open(None))
        .map_err(unreadable)?;
    // PyTorch stores tensors uncompressed: one larger than the whole file is a damaged header,
    // refused before it is allocated.
    let file_bytes = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len() as usize;
    let mut names: Vec<&String> = pth.tensor_infos().keys().collect();
    names.sort();
    let mut tensors = HashMap::new();
    for name in names {
        let info = &pth.tensor_infos()[name];
        let bytes = info
            .layout
            .shape()
            .elem_count()
            .saturating_mul(info.dtype.size_in_bytes());
        if bytes > file_bytes {
            return Err(Error::Invalid(format!(
                "{}: tensor {name} claims {bytes} bytes, more than the whole file ({file_bytes}); \
                 the checkpoint is damaged: download it again",
                path.display()
            )));
        }
        if let Some(t) = pth.get(name).map_err(unreadable)? {
            tensors.insert(name.clone(), t);
        }
    }
    Ok(tensors)
}
