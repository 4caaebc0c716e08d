//! The embedded image tokenizer's decoder ([`crate::tokenize::ImageTokenizer`]) on wgpu: codes
//! -> codebook vectors -> `post_quant_conv` + position map -> two residual blocks -> nearest 2x
//! upsampling + conv (+ `decoder_blocks` residual blocks) per level -> `conv_out`, with the silu, upsampling and residual adds fused
//! into the convolutions. Same weights, same result as the candle decoder.

use super::kernels::Conv;
use super::{Commands, Gpu};
use crate::error::{Error, Result};
use crate::tokenize::VqConfig;
use crate::tokenize::vq::pixels_to_images;
use candle_core::{DType, Tensor};
use image::RgbImage;
use std::rc::Rc;

/// A convolution's weights, `(ky, kx, c_in, c_out)`, and bias.
struct ConvWeights {
    weight: wgpu::Buffer,
    bias: wgpu::Buffer,
    c_in: usize,
    c_out: usize,
    k: usize,
}

pub(crate) struct GpuVqDecoder {
    gpu: Rc<Gpu>,
    pub(crate) config: VqConfig,
    codebook: wgpu::Buffer,
    post_quant_conv: ConvWeights,
    position: wgpu::Buffer,
    mid: [ResBlock; 2],
    /// Per level, full size first: the conv after the upsampling, then its residual blocks.
    up: Vec<(ConvWeights, Vec<ResBlock>)>,
    conv_out: ConvWeights,
}

/// `x + conv2(silu(conv1(silu(x))))`.
type ResBlock = (ConvWeights, ConvWeights);

impl GpuVqDecoder {
    /// Uploads the decoder weights `get(name)` returns (the tokenizer's safetensors names).
    pub(crate) fn new(
        gpu: Rc<Gpu>,
        config: VqConfig,
        get: impl Fn(&str) -> Result<Tensor>,
    ) -> Result<Self> {
        config.validate()?;
        let conv = |name: &str| -> Result<ConvWeights> {
            let w = get(&format!("{name}.weight"))?.to_dtype(DType::F32)?;
            let (c_out, c_in, k, _) = w.dims4()?;
            let w = w.permute((2, 3, 1, 0))?.flatten_all()?.to_vec1::<f32>()?;
            let b = get(&format!("{name}.bias"))?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?;
            Ok(ConvWeights {
                weight: gpu.upload(&w),
                bias: gpu.upload(&b),
                c_in,
                c_out,
                k,
            })
        };
        let flat = |name: &str| -> Result<wgpu::Buffer> {
            let t = get(name)?.to_dtype(DType::F32)?.flatten_all()?;
            Ok(gpu.upload(&t.to_vec1::<f32>()?))
        };
        let block = |name: &str| -> Result<ResBlock> {
            Ok((
                conv(&format!("{name}.conv1"))?,
                conv(&format!("{name}.conv2"))?,
            ))
        };
        let level = |i: usize| -> Result<(ConvWeights, Vec<ResBlock>)> {
            let blocks = (0..config.decoder_blocks)
                .map(|j| block(&format!("decoder.up_blocks.{i}.{j}")))
                .collect::<Result<_>>()?;
            Ok((conv(&format!("decoder.up.{i}"))?, blocks))
        };
        Ok(GpuVqDecoder {
            codebook: flat("quantize.embedding.weight")?,
            post_quant_conv: conv("post_quant_conv")?,
            position: flat("decoder.position")?,
            mid: [block("decoder.mid.0")?, block("decoder.mid.1")?],
            up: (0..config.channels.len())
                .map(level)
                .collect::<Result<_>>()?,
            conv_out: conv("decoder.conv_out")?,
            config,
            gpu,
        })
    }

    /// Uploads the decoder from the tokenizer's safetensors bytes.
    pub(crate) fn from_safetensors(gpu: Rc<Gpu>, config: VqConfig, bytes: &[u8]) -> Result<Self> {
        let tensors = candle_core::safetensors::load_buffer(bytes, &candle_core::Device::Cpu)?;
        Self::new(gpu, config, |name| {
            tensors.get(name).cloned().ok_or_else(|| {
                Error::Invalid(format!("vq/model.safetensors has no tensor `{name}`"))
            })
        })
    }

    /// Images from codes (one `Vec` of `grid²` codes per image).
    pub(crate) async fn decode(&self, codes: &[Vec<u32>]) -> Result<Vec<RgbImage>> {
        let (g, cb) = (self.config.grid(), self.config.codebook_size);
        let b = codes.len();
        let mut flat = Vec::with_capacity(b * g * g);
        for (i, c) in codes.iter().enumerate() {
            if c.len() != g * g {
                return Err(Error::Invalid(format!(
                    "decode: image {i} has {} codes, this tokenizer uses {}",
                    c.len(),
                    g * g
                )));
            }
            if let Some(bad) = c.iter().find(|&&v| v as usize >= cb) {
                return Err(Error::Invalid(format!(
                    "decode: code {bad} is outside the codebook (size {cb})"
                )));
            }
            flat.extend(c);
        }
        let gpu = &self.gpu;
        let mut batch = Commands::default();
        let ids = gpu.upload_u32(&flat);
        let dim = self.config.code_dim;
        let q = gpu.zeros(b * g * g * dim);
        gpu.gather(&mut batch, &ids, &self.codebook, &q, b * g * g, dim);
        let mut size = g;
        let conv = |batch: &mut Commands, x: &wgpu::Buffer, cw: &ConvWeights, size, how: Conv| {
            let y = gpu.zeros(b * size * size * cw.c_out);
            let shape = (cw.c_in, cw.c_out, cw.k, cw.k / 2);
            gpu.conv2d(
                batch,
                x,
                &cw.weight,
                &cw.bias,
                &y,
                (b, size, size),
                shape,
                how,
            );
            y
        };
        let pq = &self.post_quant_conv;
        let at_position = Conv {
            residual: Some((&self.position, g * g * pq.c_out)),
            ..Default::default()
        };
        let block = |batch: &mut Commands, h: wgpu::Buffer, (a, c): &ResBlock, size| {
            let silu = Conv {
                silu: true,
                ..Default::default()
            };
            let inner = conv(batch, &h, a, size, silu);
            let residual = Conv {
                silu: true,
                residual: Some((&h, b * size * size * c.c_out)),
                ..Default::default()
            };
            conv(batch, &inner, c, size, residual)
        };
        let mut h = conv(&mut batch, &q, pq, size, at_position);
        for rb in &self.mid {
            h = block(&mut batch, h, rb, size);
        }
        for (up, blocks) in self.up.iter().rev() {
            size *= 2;
            let how = Conv {
                silu: true,
                upsample: true,
                ..Default::default()
            };
            h = conv(&mut batch, &h, up, size, how);
            for rb in blocks {
                h = block(&mut batch, h, rb, size);
            }
        }
        let silu = Conv {
            silu: true,
            ..Default::default()
        };
        let out = conv(&mut batch, &h, &self.conv_out, size, silu);
        let pixels = gpu.run(batch, &out, b * size * size * 3).await?;
        Ok(pixels_to_images(&pixels, b, size, size))
    }
}

#[cfg(test)]
mod tests {
    use super::super::block_on;
    use super::super::tests::gpu;
    use super::*;
    use crate::tokenize::ImageTokenizer;
    use candle_core::Device;
    use rand::Rng;

    /// Decodes random codes with candle and with the GPU decoder and compares the pixels.
    fn gpu_matches_candle(vq: &ImageTokenizer, bytes: &[u8]) {
        let decoder = GpuVqDecoder::from_safetensors(gpu(), vq.config.clone(), bytes).unwrap();
        let mut rng = rand::rng();
        let n = vq.config.tokens_per_image();
        let codes: Vec<Vec<u32>> = (0..3)
            .map(|_| {
                (0..n)
                    .map(|_| rng.random_range(0..vq.config.codebook_size as u32))
                    .collect()
            })
            .collect();
        let ids = Tensor::new(codes.clone(), &Device::Cpu).unwrap();
        let want = crate::tokenize::vq::tensor_to_images(&vq.decode(&ids).unwrap()).unwrap();
        let got = block_on(decoder.decode(&codes)).unwrap();
        for (g, w) in got.iter().zip(&want) {
            // Rounding to 8 bits may land a value that sits on a boundary one level apart.
            let worst = g
                .as_raw()
                .iter()
                .zip(w.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .max();
            assert!(worst <= Some(1), "pixels differ by {worst:?}");
        }
        let bad = block_on(decoder.decode(&[vec![0; n - 1]])).unwrap_err();
        assert!(bad.to_string().contains("codes"), "{bad}");
        let bad = block_on(decoder.decode(&[vec![9999; n]])).unwrap_err();
        assert!(bad.to_string().contains("outside the codebook"), "{bad}");
    }

    #[test]
    fn the_shipped_decoder_gives_candles_images() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/vq");
        let vq = ImageTokenizer::load(&dir, &Device::Cpu).unwrap();
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        gpu_matches_candle(&vq, &bytes);
    }

    #[test]
    fn a_wider_decoder_with_blocks_gives_candles_images() {
        let config = VqConfig {
            decoder_channels: Some(vec![12, 20, 24]),
            decoder_blocks: 2,
            ..VqConfig::tiny(32)
        };
        let tr = crate::tokenize::vq_train::VqTrainer::new(config, 1e-3, 3, &Device::Cpu).unwrap();
        let tensors = tr.tensors();
        assert!(
            tensors
                .iter()
                .any(|(n, _)| n == "decoder.up_blocks.2.1.conv2.weight")
        );
        let bytes =
            safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None).unwrap();
        gpu_matches_candle(&tr.model, &bytes);
    }
}
