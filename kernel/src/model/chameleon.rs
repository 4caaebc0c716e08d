//! The backbone: a decoder-only transformer with Chameleon's architecture (Team Chameleon,
//! 2024; HF `ChameleonModel`): RMSNorm, rotary position embeddings, a SwiGLU MLP, grouped-query
//! attention, and Chameleon's per-head layer norm on queries and keys. Config field names and
//! parameter names are HF's (`model.layers.N.self_attn.q_proj.weight`, ...), so real
//! Chameleon/Anole safetensors map onto the same code.
//!
//! Two kinds of pass share one code path. [`Pass::Train`] uses only ops with a backward pass
//! (candle's fused `rms_norm`, `softmax_last_dim` and `rope` have none: gradients would silently
//! stop); [`Pass::Infer`] may carry a [`KvCache`]. On the CPU both use dynaboot's fused ops,
//! which have a backward ([`crate::nn::fused`], [`crate::nn::softmax`]); elsewhere inference
//! takes candle's fused kernels and training the composed ops.

use super::lora::{LoraConfig, peft_name};
use crate::nn::attention::causal_attention;
use crate::nn::decode_attention::decode_attention;
use crate::nn::softmax::causal_softmax;
use crate::nn::{fused, gemv};
use candle_core::{Device, IndexOp, Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// HF `ChameleonConfig` (the fields the architecture uses; other HF fields are ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChameleonConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f64,
    pub max_position_embeddings: usize,
    /// Chameleon-34B's "swin" normalisation: norms after attention and MLP instead of before.
    #[serde(default)]
    pub swin_norm: bool,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Standard deviation of the normal initialisation of fresh weights.
    #[serde(default = "default_initializer_range")]
    pub initializer_range: f64,
}

fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_rms_norm_eps() -> f64 {
    1e-5
}
fn default_initializer_range() -> f64 {
    0.02
}

/// Epsilon of Chameleon's query/key layer norm (PyTorch's `nn.LayerNorm` default).
const QK_NORM_EPS: f64 = 1e-5;

impl ChameleonConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Number of parameters (embeddings and head included).
    pub fn parameter_count(&self) -> usize {
        let (h, i, hd) = (self.hidden_size, self.intermediate_size, self.head_dim());
        let kv = self.num_key_value_heads * hd;
        let attn = h * h * 2 + h * kv * 2 + 2 * (h + kv);
        let mlp = 3 * h * i;
        let layer = attn + mlp + 2 * h;
        let head = if self.tie_word_embeddings {
            0
        } else {
            self.vocab_size * h
        };
        self.vocab_size * h + self.num_hidden_layers * layer + h + head
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        let nh = self.num_attention_heads;
        if nh == 0 || !self.hidden_size.is_multiple_of(nh) {
            return Err(format!(
                "hidden_size {} must be a multiple of num_attention_heads {nh}",
                self.hidden_size
            ));
        }
        if self.num_key_value_heads == 0 || !nh.is_multiple_of(self.num_key_value_heads) {
            return Err(format!(
                "num_attention_heads {nh} must be a multiple of num_key_value_heads {}",
                self.num_key_value_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(format!(
                "the head dimension {} must be even for rotary embeddings",
                self.head_dim()
            ));
        }
        if self.vocab_size == 0 || self.num_hidden_layers == 0 || self.intermediate_size == 0 {
            return Err(
                "vocab_size, num_hidden_layers and intermediate_size must be positive".into(),
            );
        }
        Ok(())
    }
}

/// Which ops a forward pass uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Differentiable ops only, for training.
    Train,
    /// Fused kernels without a backward pass, for scoring and generation.
    Infer,
}

fn on_cpu(x: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu)
}

fn rms_norm(x: &Tensor, w: &Tensor, eps: f64, pass: Pass) -> Result<Tensor> {
    match pass {
        Pass::Infer if !on_cpu(x) => candle_nn::ops::rms_norm(x, w, eps as f32),
        _ => fused::rms_norm(x, w, eps),
    }
}

fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, pass: Pass) -> Result<Tensor> {
    match pass {
        Pass::Infer if !on_cpu(x) => candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin),
        _ => fused::rope(x, cos, sin),
    }
}

/// A linear layer stored as HF does (`weight` is `(out, in)`), applied to `(rows, in)`,
/// optionally with a LoRA adapter ([`super::lora`]).
#[derive(Clone)]
struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    lora: Option<Adapter>,
    /// The weight does not train (a LoRA base): skip its gradient.
    frozen: bool,
}

/// A LoRA dropout seed that turns dropout off (for held-out evaluation in training passes).
pub const NO_DROPOUT: u64 = u64::MAX;

/// The trainable low-rank update of a frozen [`Linear`].
#[derive(Clone)]
struct Adapter {
    /// `(r, in)`.
    a: Tensor,
    /// `(out, r)`.
    b: Tensor,
    scale: f64,
    dropout: f64,
    /// Which adapter this is: its dropout stream.
    index: u64,
    /// The dropout seed of the current micro-batch, shared by every adapter of a model.
    seed: Arc<AtomicU64>,
}

impl Adapter {
    /// `scale · dropout(x)·Aᵀ·Bᵀ`; dropout only in training, with a mask drawn from
    /// `(seed, index)` so that runs repeat exactly.
    fn delta(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let seed = self.seed.load(Ordering::Relaxed);
        let x = if pass == Pass::Train && self.dropout > 0.0 && seed != NO_DROPOUT {
            let keep = dropout_mask(x, self.dropout, seed, self.index)?;
            (x * keep)?
        } else {
            x.clone()
        };
        // Scaling the `(rows, r)` intermediate, not the `(rows, out)` result.
        (x.matmul(&self.a.t()?)? * self.scale)?.matmul(&self.b.t()?)
    }
}

/// Inverted-dropout mask (`0` or `1 / (1 - p)`) shaped like `x`. On the CPU it comes from
/// ChaCha8 at stream `(seed, index)`; on an accelerator from the device's generator seeded
/// with the same pair (drawing billions of numbers on the host would stall a GPU run).
fn dropout_mask(x: &Tensor, p: f64, seed: u64, index: u64) -> Result<Tensor> {
    use rand::{Rng, SeedableRng};
    let keep = 1.0 / (1.0 - p);
    match x.device() {
        Device::Cpu => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(index);
            // Whole u32 words compared with p·2³² (a f64 per element costs twice as much).
            let mut words = vec![0u32; x.elem_count()];
            rng.fill(&mut words[..]);
            let threshold = (p * 4_294_967_296.0) as u64;
            let v: Vec<f32> = words
                .iter()
                .map(|&w| {
                    if (w as u64) < threshold {
                        0.0
                    } else {
                        keep as f32
                    }
                })
                .collect();
            Tensor::from_vec(v, x.shape(), x.device())?.to_dtype(x.dtype())
        }
        dev => {
            dev.set_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index)?;
            let u = Tensor::rand(0f32, 1f32, x.shape(), dev)?;
            (u.ge(p)?.to_dtype(candle_core::DType::F32)? * keep)?.to_dtype(x.dtype())
        }
    }
}

impl Linear {
    fn new(i: usize, o: usize, bias: bool, std: f64, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(
            (o, i),
            "weight",
            Init::Randn {
                mean: 0.0,
                stdev: std,
            },
        )?;
        let bias = if bias {
            Some(vb.get_with_hints(o, "bias", Init::Const(0.0))?)
        } else {
            None
        };
        Ok(Linear {
            weight,
            bias,
            lora: None,
            frozen: false,
        })
    }

    /// Several linears that read the same input, as one matmul (`cat` of weights along `out`).
    /// Adapters are not carried over: see [`Linear::forward_parts`].
    fn fused(parts: &[&Linear]) -> Result<Linear> {
        let weight = Tensor::cat(&parts.iter().map(|l| &l.weight).collect::<Vec<_>>(), 0)?;
        let bias = if parts.iter().all(|l| l.bias.is_some()) {
            let b: Vec<_> = parts.iter().filter_map(|l| l.bias.as_ref()).collect();
            Some(Tensor::cat(&b, 0)?)
        } else {
            None
        };
        Ok(Linear {
            weight,
            bias,
            lora: None,
            frozen: parts.iter().all(|l| l.frozen),
        })
    }

    /// The outputs of several linears side by side: one matmul for the frozen weights, plus
    /// each part's adapter update in its own columns.
    fn forward_parts(parts: &[&Linear], x: &Tensor, pass: Pass) -> Result<Tensor> {
        let y = Linear::fused(parts)?.forward(x, pass)?;
        if parts.iter().all(|p| p.lora.is_none()) {
            return Ok(y);
        }
        let mut cols = Vec::with_capacity(parts.len());
        let mut at = 0;
        for p in parts {
            let n = p.weight.dim(0)?;
            let piece = y.narrow(1, at, n)?;
            cols.push(match &p.lora {
                Some(a) => (piece + a.delta(x, pass)?)?,
                None => piece,
            });
            at += n;
        }
        Tensor::cat(&cols, 1)
    }

    /// `x`: `(rows, in)`. Inference on a few rows (a decode step) streams the weight rows
    /// instead of packing them for a general matmul.
    fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let small = match pass {
            Pass::Infer => gemv::small_matmul_t(x, &self.weight)?,
            Pass::Train => None,
        };
        let y = match small {
            Some(y) => y,
            None if self.frozen && pass == Pass::Train => {
                crate::nn::frozen::frozen_matmul_t(x, &self.weight)?
            }
            None => x.matmul(&self.weight.t()?)?,
        };
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        match &self.lora {
            Some(a) => y + a.delta(x, pass)?,
            None => Ok(y),
        }
    }

    /// Folds the adapter into the weight: `W + scale·B·A`.
    fn merge(&mut self) -> Result<()> {
        if let Some(a) = self.lora.take() {
            let ba = (a.b.matmul(&a.a)? * a.scale)?.to_dtype(self.weight.dtype())?;
            self.weight = (&self.weight + ba)?;
        }
        Ok(())
    }
}

/// Chameleon's query/key norm: layer norm over each head's vector (no affine), then a
/// per-head affine with `weight`/`bias` of shape `(heads, head_dim)`.
struct HeadNorm {
    weight: Tensor,
    bias: Tensor,
}

impl HeadNorm {
    fn new(heads: usize, head_dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(HeadNorm {
            weight: vb.get_with_hints((heads, head_dim), "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints((heads, head_dim), "bias", Init::Const(0.0))?,
        })
    }

    /// `x`: `(rows, heads, head_dim)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        fused::head_norm(x, &self.weight, &self.bias, QK_NORM_EPS)
    }
}

/// Keys and values of the positions seen so far, per layer, in preallocated buffers so that a
/// decode step costs the same at any length.
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    pub fn new(config: &ChameleonConfig) -> Self {
        KvCache {
            layers: vec![None; config.num_hidden_layers],
            len: 0,
            capacity: config.max_position_embeddings,
        }
    }

    /// Positions cached so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Repeats a batch-1 cache `n` times along the batch: one prefill serves `n` samples.
    pub fn repeat_batch(&mut self, n: usize) -> Result<()> {
        for (k, v) in self.layers.iter_mut().flatten() {
            if k.dim(0)? != 1 {
                candle_core::bail!("repeat_batch needs a cache of batch 1, got {}", k.dim(0)?);
            }
            *k = k.repeat((n, 1, 1, 1))?;
            *v = v.repeat((n, 1, 1, 1))?;
        }
        Ok(())
    }

    /// Appends `(batch, kv_heads, t, head_dim)` keys and values of layer `i`; returns all of them.
    fn append(&mut self, i: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        if self.len + t > self.capacity {
            candle_core::bail!(
                "sequence of {} tokens exceeds max_position_embeddings {}",
                self.len + t,
                self.capacity
            );
        }
        if self.layers[i].is_none() {
            let (b, h, _, d) = k.dims4()?;
            let buf = || Tensor::zeros((b, h, self.capacity, d), k.dtype(), k.device());
            self.layers[i] = Some((buf()?, buf()?));
        }
        let (kb, vb) = self.layers[i].as_ref().expect("allocated above");
        kb.slice_set(&k.contiguous()?, 2, self.len)?;
        vb.slice_set(&v.contiguous()?, 2, self.len)?;
        let n = self.len + t;
        Ok((kb.narrow(2, 0, n)?, vb.narrow(2, 0, n)?))
    }
}

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    q_norm: HeadNorm,
    k_norm: HeadNorm,
    /// `q_proj`, `k_proj` and `v_proj` as one matmul; a snapshot, built for inference only
    /// (training updates the separate parameters in place).
    qkv: Option<Linear>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

fn repeat_kv(x: Tensor, n_rep: usize) -> Result<Tensor> {
    if n_rep == 1 {
        return Ok(x);
    }
    let (b, h, t, d) = x.dims4()?;
    Tensor::cat(&vec![&x; n_rep], 2)?.reshape((b, h * n_rep, t, d))
}

impl Attention {
    fn new(cfg: &ChameleonConfig, vb: VarBuilder) -> Result<Self> {
        let (h, hd) = (cfg.hidden_size, cfg.head_dim());
        let kv = cfg.num_key_value_heads * hd;
        let std = cfg.initializer_range;
        let out_std = std / (2.0 * cfg.num_hidden_layers as f64).sqrt();
        let b = cfg.attention_bias;
        Ok(Attention {
            q_proj: Linear::new(h, h, b, std, vb.pp("q_proj"))?,
            k_proj: Linear::new(h, kv, b, std, vb.pp("k_proj"))?,
            v_proj: Linear::new(h, kv, b, std, vb.pp("v_proj"))?,
            o_proj: Linear::new(h, h, b, out_std, vb.pp("o_proj"))?,
            q_norm: HeadNorm::new(cfg.num_attention_heads, hd, vb.pp("q_norm"))?,
            k_norm: HeadNorm::new(cfg.num_key_value_heads, hd, vb.pp("k_norm"))?,
            qkv: None,
            heads: cfg.num_attention_heads,
            kv_heads: cfg.num_key_value_heads,
            head_dim: hd,
        })
    }

    /// `x`: `(batch, t, hidden)` at positions `offset..offset + t`; `cos`/`sin`:
    /// `(t, head_dim / 2)` for those positions.
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        offset: usize,
        cache: Option<(&mut KvCache, usize)>,
        pass: Pass,
    ) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let (nh, nkv, hd) = (self.heads, self.kv_heads, self.head_dim);
        let rows = x.reshape((b * t, h))?;
        let (q, k, v) = match (&self.qkv, pass) {
            // Three products in training: slicing one fused product would cost a full-size
            // zero-padded gradient per slice backward.
            (None, Pass::Train) => (
                self.q_proj.forward(&rows, pass)?,
                self.k_proj.forward(&rows, pass)?,
                self.v_proj.forward(&rows, pass)?,
            ),
            (fused, _) => {
                let qkv = match fused {
                    Some(fused) => fused.forward(&rows, pass)?,
                    None => Linear::forward_parts(
                        &[&self.q_proj, &self.k_proj, &self.v_proj],
                        &rows,
                        pass,
                    )?,
                };
                (
                    qkv.narrow(1, 0, nh * hd)?,
                    qkv.narrow(1, nh * hd, nkv * hd)?,
                    qkv.narrow(1, (nh + nkv) * hd, nkv * hd)?,
                )
            }
        };
        let q = q.reshape((b * t, nh, hd))?;
        let k = k.reshape((b * t, nkv, hd))?;
        let q = self.q_norm.forward(&q)?;
        let k = self.k_norm.forward(&k)?;
        let q = q.reshape((b, t, nh, hd))?.transpose(1, 2)?;
        let k = k.reshape((b, t, nkv, hd))?.transpose(1, 2)?;
        let v = v.reshape((b, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
        let q = rope(&q, cos, sin, pass)?;
        let k = rope(&k, cos, sin, pass)?;
        let scale = 1.0 / (hd as f64).sqrt();
        if pass == Pass::Train && cache.is_none() {
            let attn = causal_attention(&q, &k, &v, scale)?.reshape((b * t, h))?;
            return self.o_proj.forward(&attn, pass)?.reshape((b, t, h));
        }
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, &k, &v)?,
            None => (k, v),
        };
        let fast = match pass {
            Pass::Infer => decode_attention(&q, &k, &v, scale)?,
            Pass::Train => None,
        };
        let attn = match fast {
            Some(attn) => attn,
            None => {
                let k = repeat_kv(k, nh / nkv)?;
                let v = repeat_kv(v, nh / nkv)?;
                let scores = q.contiguous()?.matmul(&k.t()?)?;
                causal_softmax(&scores, scale, offset)?.matmul(&v)?
            }
        };
        let attn = attn.transpose(1, 2)?.reshape((b * t, h))?;
        self.o_proj.forward(&attn, pass)?.reshape((b, t, h))
    }
}

struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
    /// `gate_proj` and `up_proj` as one matmul, for inference (see [`Attention::qkv`]).
    gate_up: Option<Linear>,
}

impl Mlp {
    fn new(cfg: &ChameleonConfig, vb: VarBuilder) -> Result<Self> {
        let (h, i, b) = (cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias);
        let std = cfg.initializer_range;
        let out_std = std / (2.0 * cfg.num_hidden_layers as f64).sqrt();
        Ok(Mlp {
            gate_proj: Linear::new(h, i, b, std, vb.pp("gate_proj"))?,
            up_proj: Linear::new(h, i, b, std, vb.pp("up_proj"))?,
            down_proj: Linear::new(i, h, b, out_std, vb.pp("down_proj"))?,
            gate_up: None,
        })
    }

    /// `x`: `(rows, hidden)`.
    fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let gu = match &self.gate_up {
            Some(fused) => fused.forward(x, pass)?,
            None => Linear::forward_parts(&[&self.gate_proj, &self.up_proj], x, pass)?,
        };
        self.down_proj.forward(&fused::swiglu(&gu)?, pass)
    }
}

struct DecoderLayer {
    self_attn: Attention,
    mlp: Mlp,
    input_layernorm: Tensor,
    post_attention_layernorm: Tensor,
}

impl DecoderLayer {
    fn new(cfg: &ChameleonConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(DecoderLayer {
            self_attn: Attention::new(cfg, vb.pp("self_attn"))?,
            mlp: Mlp::new(cfg, vb.pp("mlp"))?,
            input_layernorm: vb.get_with_hints(h, "input_layernorm.weight", Init::Const(1.0))?,
            post_attention_layernorm: vb.get_with_hints(
                h,
                "post_attention_layernorm.weight",
                Init::Const(1.0),
            )?,
        })
    }
}

/// The Chameleon decoder with its language-model head.
pub struct Chameleon {
    pub config: ChameleonConfig,
    embed_tokens: Tensor,
    layers: Vec<DecoderLayer>,
    norm: Tensor,
    lm_head: Tensor,
    /// `(max_position_embeddings, head_dim / 2)`.
    cos: Tensor,
    sin: Tensor,
    /// Dropout seed shared by the LoRA adapters.
    lora_seed: Arc<AtomicU64>,
    /// The head does not train (a LoRA base): skip its gradient.
    frozen_head: bool,
}

impl Chameleon {
    /// Builds the model from a var builder: fresh (seeded) parameters or stored weights, under
    /// HF's names (`model.embed_tokens.weight`, `model.layers.N...`, `lm_head.weight`).
    pub fn new(config: ChameleonConfig, vb: VarBuilder) -> Result<Self> {
        config.validate().map_err(candle_core::Error::Msg)?;
        let m = vb.pp("model");
        let (h, v) = (config.hidden_size, config.vocab_size);
        let init = Init::Randn {
            mean: 0.0,
            stdev: config.initializer_range,
        };
        let embed_tokens = m.get_with_hints((v, h), "embed_tokens.weight", init)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| DecoderLayer::new(&config, m.pp(format!("layers.{i}"))))
            .collect::<Result<_>>()?;
        let norm = m.get_with_hints(h, "norm.weight", Init::Const(1.0))?;
        let lm_head = if config.tie_word_embeddings {
            embed_tokens.clone()
        } else {
            vb.get_with_hints((v, h), "lm_head.weight", init)?
        };
        let (cos, sin) = rotary_tables(&config, vb.device())?;
        let (cos, sin) = (
            cos.to_dtype(embed_tokens.dtype())?,
            sin.to_dtype(embed_tokens.dtype())?,
        );
        Ok(Chameleon {
            config,
            embed_tokens,
            layers,
            norm,
            lm_head,
            cos,
            sin,
            lora_seed: Arc::new(AtomicU64::new(0)),
            frozen_head: false,
        })
    }

    /// Every projection with its HF module path (`model.layers.N.self_attn.q_proj`, ...)
    /// and short name (`q_proj`).
    fn projections(&mut self) -> Vec<(String, &'static str, &mut Linear)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter_mut().enumerate() {
            let a = &mut l.self_attn;
            for (name, lin) in [
                ("q_proj", &mut a.q_proj),
                ("k_proj", &mut a.k_proj),
                ("v_proj", &mut a.v_proj),
                ("o_proj", &mut a.o_proj),
            ] {
                out.push((format!("model.layers.{i}.self_attn.{name}"), name, lin));
            }
            let m = &mut l.mlp;
            for (name, lin) in [
                ("gate_proj", &mut m.gate_proj),
                ("up_proj", &mut m.up_proj),
                ("down_proj", &mut m.down_proj),
            ] {
                out.push((format!("model.layers.{i}.mlp.{name}"), name, lin));
            }
        }
        out
    }

    /// Gives the projections `config` targets a LoRA adapter whose `A` and `B` come from `vb`
    /// under PEFT's names (`base_model.model.<module>.lora_A.weight`): fresh ones from a
    /// seeded var map (`A` like `nn.Linear`'s init, `B` zero), or a saved adapter.
    pub fn add_lora(&mut self, config: &LoraConfig, vb: VarBuilder) -> Result<()> {
        config
            .validate()
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let seed = self.lora_seed.clone();
        let dtype = self.embed_tokens.dtype();
        self.frozen_head = true;
        for (index, (module, name, lin)) in self.projections().into_iter().enumerate() {
            // With adapters the base trains no more: no gradient for any of its weights.
            lin.frozen = true;
            if !config.targets(name) {
                continue;
            }
            let (out, inp) = lin.weight.dims2()?;
            let bound = 1.0 / (inp as f64).sqrt();
            let vb = vb.pp(format!("base_model.model.{module}"));
            let a = vb.get_with_hints(
                (config.r, inp),
                "lora_A.weight",
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?;
            let b = vb.get_with_hints((out, config.r), "lora_B.weight", Init::Const(0.0))?;
            lin.lora = Some(Adapter {
                a: a.to_dtype(dtype)?,
                b: b.to_dtype(dtype)?,
                scale: config.scale(),
                dropout: config.lora_dropout,
                index: index as u64,
                seed: seed.clone(),
            });
        }
        Ok(())
    }

    /// The adapters' matrices under PEFT's names (what `adapter_model.safetensors` holds).
    pub fn lora_tensors(&mut self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (module, _, lin) in self.projections() {
            if let Some(a) = &lin.lora {
                out.push((peft_name(&module, "lora_A"), a.a.clone()));
                out.push((peft_name(&module, "lora_B"), a.b.clone()));
            }
        }
        out
    }

    /// Folds every adapter into its weight (`W + α/r·B·A`): the plain model that computes
    /// the same function.
    pub fn merge_lora(&mut self) -> Result<()> {
        for (_, _, lin) in self.projections() {
            lin.merge()?;
        }
        Ok(())
    }

    /// The frozen weights under HF names, adapters merged in (what a merged checkpoint's
    /// `model.safetensors` holds).
    pub fn merged_tensors(&mut self) -> Result<Vec<(String, Tensor)>> {
        let mut out = vec![
            (
                "model.embed_tokens.weight".to_string(),
                self.embed_tokens.clone(),
            ),
            ("model.norm.weight".to_string(), self.norm.clone()),
        ];
        if !self.config.tie_word_embeddings {
            out.push(("lm_head.weight".to_string(), self.lm_head.clone()));
        }
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            let a = &l.self_attn;
            out.push((
                format!("{p}.input_layernorm.weight"),
                l.input_layernorm.clone(),
            ));
            out.push((
                format!("{p}.post_attention_layernorm.weight"),
                l.post_attention_layernorm.clone(),
            ));
            for (n, hn) in [("q_norm", &a.q_norm), ("k_norm", &a.k_norm)] {
                out.push((format!("{p}.self_attn.{n}.weight"), hn.weight.clone()));
                out.push((format!("{p}.self_attn.{n}.bias"), hn.bias.clone()));
            }
        }
        for (module, _, lin) in self.projections() {
            let mut lin = lin.clone();
            lin.merge()?;
            out.push((format!("{module}.weight"), lin.weight));
            if let Some(b) = lin.bias {
                out.push((format!("{module}.bias"), b));
            }
        }
        Ok(out)
    }

    /// Seeds the adapters' dropout for the next training forward pass (the trainer sets it
    /// from the run's seed, step and micro-batch, so resumed runs repeat exactly).
    pub fn set_lora_seed(&self, seed: u64) {
        self.lora_seed.store(seed, Ordering::Relaxed);
    }

    /// Fuses the q/k/v and gate/up projections into single matmuls: faster inference. The
    /// fused weights are copies, so call this on a model that is no longer being trained.
    /// LoRA adapters are merged into their weights first.
    pub fn fuse_for_inference(&mut self) -> Result<()> {
        self.merge_lora()?;
        for l in &mut self.layers {
            let a = &mut l.self_attn;
            a.qkv = Some(Linear::fused(&[&a.q_proj, &a.k_proj, &a.v_proj])?);
            let m = &mut l.mlp;
            m.gate_up = Some(Linear::fused(&[&m.gate_proj, &m.up_proj])?);
        }
        Ok(())
    }

    pub fn device(&self) -> &Device {
        self.embed_tokens.device()
    }

    /// Final hidden states `(batch, t, hidden)` (after the last norm) of token ids
    /// `(batch, t)`. With a cache, the ids continue the cached positions.
    pub fn hidden(
        &self,
        ids: &Tensor,
        mut cache: Option<&mut KvCache>,
        pass: Pass,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let offset = cache.as_ref().map_or(0, |c| c.len());
        if offset + t > self.config.max_position_embeddings {
            candle_core::bail!(
                "sequence of {} tokens exceeds max_position_embeddings {}",
                offset + t,
                self.config.max_position_embeddings
            );
        }
        let h = self.config.hidden_size;
        let mut x = self
            .embed_tokens
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, h))?;
        let cos = self.cos.narrow(0, offset, t)?;
        let sin = self.sin.narrow(0, offset, t)?;
        let eps = self.config.rms_norm_eps;
        for (i, layer) in self.layers.iter().enumerate() {
            let c = cache.as_deref_mut().map(|c| (c, i));
            let attn = |x: &Tensor, c| layer.self_attn.forward(x, &cos, &sin, offset, c, pass);
            let mlp = |x: &Tensor| {
                layer
                    .mlp
                    .forward(&x.reshape((b * t, h))?, pass)?
                    .reshape((b, t, h))
            };
            x = if self.config.swin_norm {
                let a = rms_norm(&attn(&x, c)?, &layer.input_layernorm, eps, pass)?;
                let x = (x + a)?;
                let m = rms_norm(&mlp(&x)?, &layer.post_attention_layernorm, eps, pass)?;
                (x + m)?
            } else {
                let a = attn(&rms_norm(&x, &layer.input_layernorm, eps, pass)?, c)?;
                let x = (x + a)?;
                let m = mlp(&rms_norm(&x, &layer.post_attention_layernorm, eps, pass)?)?;
                (x + m)?
            };
        }
        if let Some(c) = cache {
            c.len += t;
        }
        rms_norm(&x, &self.norm, eps, pass)
    }

    /// Logits of hidden states `(..., hidden)` -> `(..., vocab_size)`, in f32 whatever the
    /// weights' dtype (bf16 on a GPU), so losses and sampling read them alike.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let dims = hidden.dims().to_vec();
        let h = *dims.last().expect("hidden states have a last dim");
        let rows = hidden.reshape(((), h))?;
        let mut out = dims;
        *out.last_mut().expect("non-empty") = self.config.vocab_size;
        let logits = if self.frozen_head {
            crate::nn::frozen::frozen_matmul_t(&rows, &self.lm_head)?
        } else {
            rows.matmul(&self.lm_head.t()?)?
        };
        logits.reshape(out)?.to_dtype(candle_core::DType::F32)
    }

    /// Logits `(batch, t, vocab)` of every position.
    pub fn forward(&self, ids: &Tensor, cache: Option<&mut KvCache>, pass: Pass) -> Result<Tensor> {
        self.logits(&self.hidden(ids, cache, pass)?)
    }

    /// Logits `(batch, vocab)` of the last position only (what generation needs).
    pub fn forward_last(&self, ids: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let h = self.hidden(ids, cache, Pass::Infer)?;
        let t = h.dim(1)?;
        let last = h.i((.., t - 1))?.contiguous()?;
        match gemv::small_matmul_t(&last, &self.lm_head)? {
            Some(logits) => logits.to_dtype(candle_core::DType::F32),
            None => self.logits(&last),
        }
    }
}

/// cos and sin of the rotary angles, each `(max_position_embeddings, head_dim / 2)` row-major
/// (computed in f64, then rounded; the WebGPU path uploads the same values).
pub(crate) fn rotary_angles(cfg: &ChameleonConfig) -> (Vec<f32>, Vec<f32>) {
    let half = cfg.head_dim() / 2;
    let inv: Vec<f64> = (0..half)
        .map(|i| 1.0 / cfg.rope_theta.powf(2.0 * i as f64 / cfg.head_dim() as f64))
        .collect();
    let n = cfg.max_position_embeddings;
    let (mut cos, mut sin) = (Vec::with_capacity(n * half), Vec::with_capacity(n * half));
    for p in 0..n {
        for f in &inv {
            let a = p as f64 * f;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    (cos, sin)
}

fn rotary_tables(cfg: &ChameleonConfig, device: &Device) -> Result<(Tensor, Tensor)> {
    let (n, half) = (cfg.max_position_embeddings, cfg.head_dim() / 2);
    let (cos, sin) = rotary_angles(cfg);
    Ok((
        Tensor::from_vec(cos, (n, half), device)?,
        Tensor::from_vec(sin, (n, half), device)?,
    ))
}

impl Module for Chameleon {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        Chameleon::forward(self, ids, None, Pass::Infer)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::nn::seeded_var_builder;
    use candle_core::DType;
    use candle_nn::VarMap;

    pub(crate) fn tiny(vocab: usize) -> ChameleonConfig {
        ChameleonConfig {
            vocab_size: vocab,
            hidden_size: 32,
            intermediate_size: 48,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-5,
            max_position_embeddings: 64,
            swin_norm: false,
            attention_bias: false,
            mlp_bias: false,
            tie_word_embeddings: false,
            initializer_range: 0.2,
        }
    }

    fn model(cfg: ChameleonConfig) -> (Chameleon, VarMap) {
        let vm = VarMap::new();
        let m = Chameleon::new(cfg, seeded_var_builder(&vm, 7, DType::F32, &Device::Cpu)).unwrap();
        (m, vm)
    }

    fn ids(v: &[u32]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap().unsqueeze(0).unwrap()
    }

    #[test]
    fn shapes_and_parameter_names_follow_hf() -> Result<()> {
        let cfg = tiny(50);
        let (m, vm) = model(cfg.clone());
        let logits = m.forward(
            &Tensor::zeros((3, 5), DType::U32, &Device::Cpu)?,
            None,
            Pass::Infer,
        )?;
        assert_eq!(logits.dims(), &[3, 5, 50]);
        let names = vm.data().lock().unwrap();
        for n in [
            "model.embed_tokens.weight",
            "model.layers.1.self_attn.q_proj.weight",
            "model.layers.0.self_attn.k_norm.bias",
            "model.layers.0.mlp.gate_proj.weight",
            "model.layers.1.post_attention_layernorm.weight",
            "model.norm.weight",
            "lm_head.weight",
        ] {
            assert!(names.contains_key(n), "missing {n}");
        }
        let count: usize = names.values().map(|v| v.elem_count()).sum();
        assert_eq!(count, cfg.parameter_count());
        Ok(())
    }

    #[test]
    fn future_tokens_do_not_change_earlier_logits() -> Result<()> {
        for swin_norm in [false, true] {
            let (m, _) = model(ChameleonConfig {
                swin_norm,
                ..tiny(40)
            });
            for pass in [Pass::Train, Pass::Infer] {
                let a = m.forward(&ids(&[1, 5, 9, 3, 7, 2]), None, pass)?;
                let b = m.forward(&ids(&[1, 5, 9, 30, 11, 0]), None, pass)?;
                let early = |x: &Tensor| x.narrow(1, 0, 3).unwrap().flatten_all().unwrap();
                let d = (early(&a) - early(&b))?
                    .abs()?
                    .max_all()?
                    .to_scalar::<f32>()?;
                assert_eq!(d, 0.0, "{pass:?} swin={swin_norm}");
                let late = (a.narrow(1, 3, 3)? - b.narrow(1, 3, 3)?)?
                    .abs()?
                    .max_all()?;
                assert!(
                    late.to_scalar::<f32>()? > 1e-4,
                    "later logits must depend on them"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn train_and_infer_passes_agree() -> Result<()> {
        let (m, _) = model(tiny(40));
        let x = ids(&[1, 2, 3, 4, 5, 6, 7]);
        let a = m.forward(&x, None, Pass::Train)?;
        let b = m.forward(&x, None, Pass::Infer)?;
        let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-4, "{d}");
        Ok(())
    }

    #[test]
    fn kv_cached_logits_equal_uncached_logits() -> Result<()> {
        let (mut m, _) = model(tiny(40));
        m.fuse_for_inference()?;
        let seq = [1u32, 8, 3, 22, 5, 17, 9, 4];
        let full = m.forward(&ids(&seq), None, Pass::Infer)?.squeeze(0)?;
        let mut cache = KvCache::new(&m.config);
        let prefill = m
            .forward(&ids(&seq[..5]), Some(&mut cache), Pass::Infer)?
            .squeeze(0)?;
        let mut rows = vec![prefill];
        for &tok in &seq[5..] {
            rows.push(
                m.forward(&ids(&[tok]), Some(&mut cache), Pass::Infer)?
                    .squeeze(0)?,
            );
        }
        let cached = Tensor::cat(&rows, 0)?;
        assert_eq!(cache.len(), seq.len());
        let d = (cached - full)?.abs()?.max_all()?.to_scalar::<f32>()?;
        // Not bit-equal: the matmuls see other shapes and sum in another order (1.4e-6 seen).
        assert!(d <= 1e-5, "cached and uncached logits differ by {d}");
        Ok(())
    }

    #[test]
    fn kv_cached_generation_equals_uncached_generation() -> Result<()> {
        let (mut m, _) = model(tiny(40));
        m.fuse_for_inference()?;
        let argmax = |t: &Tensor| -> Result<u32> { t.flatten_all()?.argmax(0)?.to_scalar::<u32>() };
        let mut plain = vec![1u32, 8, 3];
        for _ in 0..20 {
            let next = argmax(&m.forward_last(&ids(&plain), None)?)?;
            plain.push(next);
        }
        let mut cache = KvCache::new(&m.config);
        let mut cached = vec![1u32, 8, 3];
        let mut next = argmax(&m.forward_last(&ids(&cached), Some(&mut cache))?)?;
        for _ in 0..20 {
            cached.push(next);
            next = argmax(&m.forward_last(&ids(&[next]), Some(&mut cache))?)?;
        }
        assert_eq!(plain, cached);
        assert!(
            plain[3..]
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 1
        );
        Ok(())
    }

    #[test]
    fn a_cache_repeated_over_the_batch_continues_each_row() -> Result<()> {
        let (m, _) = model(tiny(40));
        let mut cache = KvCache::new(&m.config);
        m.forward(&ids(&[1, 2, 3]), Some(&mut cache), Pass::Infer)?;
        cache.repeat_batch(2)?;
        let next = Tensor::new(&[[4u32], [9]], &Device::Cpu)?;
        let out = m.forward(&next, Some(&mut cache), Pass::Infer)?;
        let want = m.forward(
            &Tensor::new(&[[1u32, 2, 3, 4], [1, 2, 3, 9]], &Device::Cpu)?,
            None,
            Pass::Infer,
        )?;
        let d = (out.squeeze(1)? - want.i((.., 3))?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(d <= 1e-5, "{d}");
        Ok(())
    }

    /// The backbone on a real GPU (`--features cuda`, `just test-cuda`): f32 logits match the
    /// CPU's in both passes, bf16 (what a GPU loads base models in) tracks them, and the KV
    /// cache gives the uncached logits there too.
    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_logits_match_the_cpu_in_f32_and_bf16() -> Result<()> {
        let gpu = Device::new_cuda(0)?;
        let cfg = tiny(40);
        let (cpu, _) = model(cfg.clone());
        let on_gpu = |dtype| {
            let mut m = Chameleon::new(
                cfg.clone(),
                seeded_var_builder(&VarMap::new(), 7, dtype, &gpu),
            )?;
            m.fuse_for_inference()?;
            Ok::<_, candle_core::Error>(m)
        };
        let seq = [1u32, 8, 3, 22, 5, 17, 9, 4, 30, 2];
        let want = cpu.forward(&ids(&seq), None, Pass::Infer)?;
        let max = want.abs()?.max_all()?.to_scalar::<f32>()?;
        let error = |got: Tensor| -> Result<f32> {
            let got = got.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
            Ok((got - &want)?.abs()?.max_all()?.to_scalar::<f32>()? / max)
        };
        let x = ids(&seq).to_device(&gpu)?;
        let f32_model = Chameleon::new(
            cfg.clone(),
            seeded_var_builder(&VarMap::new(), 7, DType::F32, &gpu),
        )?;
        let train = error(f32_model.forward(&x, None, Pass::Train)?)?;
        assert!(train < 1e-4, "f32 training pass on CUDA: {train}");
        let f32_model = on_gpu(DType::F32)?;
        let infer = error(f32_model.forward(&x, None, Pass::Infer)?)?;
        assert!(infer < 1e-4, "f32 inference pass on CUDA: {infer}");
        let bf16 = error(on_gpu(DType::BF16)?.forward(&x, None, Pass::Infer)?)?;
        assert!(bf16 < 5e-2, "bf16 on CUDA: {bf16}");
        let mut cache = KvCache::new(&cfg);
        let mut rows =
            vec![f32_model.forward(&x.narrow(1, 0, 6)?, Some(&mut cache), Pass::Infer)?];
        for i in 6..seq.len() {
            rows.push(f32_model.forward(&x.narrow(1, i, 1)?, Some(&mut cache), Pass::Infer)?);
        }
        let cached = error(Tensor::cat(&rows, 1)?)?;
        assert!(cached < 1e-4, "KV-cached logits on CUDA: {cached}");
        Ok(())
    }

    #[test]
    fn too_long_sequences_are_an_error() {
        let (m, _) = model(tiny(40));
        let long = Tensor::zeros((1, 65), DType::U32, &Device::Cpu).unwrap();
        let e = m.forward(&long, None, Pass::Infer).unwrap_err().to_string();
        assert!(e.contains("max_position_embeddings"), "{e}");
    }

    fn lora(r: usize, dropout: f64) -> LoraConfig {
        LoraConfig {
            r,
            lora_alpha: 2.0 * r as f64,
            lora_dropout: dropout,
            ..LoraConfig::default()
        }
    }

    #[test]
    fn a_fresh_adapter_changes_nothing_and_a_trained_one_merges_exactly() -> Result<()> {
        let (base, _) = model(tiny(40));
        let x = ids(&[1, 5, 9, 3, 7, 2]);
        let want = base.forward(&x, None, Pass::Infer)?;
        let (mut m, _) = model(tiny(40));
        let adapters = VarMap::new();
        m.add_lora(
            &lora(4, 0.0),
            seeded_var_builder(&adapters, 3, DType::F32, &Device::Cpu),
        )?;
        let d = (m.forward(&x, None, Pass::Infer)? - &want)?
            .abs()?
            .max_all()?;
        assert_eq!(d.to_scalar::<f32>()?, 0.0, "B starts at zero");
        // 2 layers x 7 projections x (A, B).
        assert_eq!(adapters.all_vars().len(), 28);
        assert_eq!(m.lora_tensors().len(), 28);
        for (name, var) in adapters.data().lock().unwrap().iter() {
            if name.ends_with("lora_B.weight") {
                var.set(&Tensor::randn(0f32, 0.3, var.shape(), &Device::Cpu)?)?;
            }
        }
        let adapted = m.forward(&x, None, Pass::Infer)?;
        let moved = (&adapted - &want)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(
            moved > 1e-3,
            "a trained adapter changes the logits ({moved})"
        );
        let merged_weights = m.merged_tensors()?;
        m.merge_lora()?;
        assert!(m.lora_tensors().is_empty());
        let merged = m.forward(&x, None, Pass::Infer)?;
        let d = (&merged - &adapted)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "merged and adapted logits differ by {d}");
        // The merged tensors build the same model from scratch.
        let vb = VarBuilder::from_tensors(
            merged_weights.into_iter().collect(),
            DType::F32,
            &Device::Cpu,
        );
        let rebuilt = Chameleon::new(tiny(40), vb)?.forward(&x, None, Pass::Infer)?;
        let d = (rebuilt - &adapted)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "{d}");
        Ok(())
    }

    #[test]
    fn gradients_reach_every_adapter_and_dropout_repeats_with_its_seed() -> Result<()> {
        // Frozen base: built from plain tensors, not variables.
        let (base, vm) = model(tiny(40));
        drop(base);
        let frozen: std::collections::HashMap<_, _> = vm
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect();
        let mut m = Chameleon::new(
            tiny(40),
            VarBuilder::from_tensors(frozen, DType::F32, &Device::Cpu),
        )?;
        let adapters = VarMap::new();
        m.add_lora(
            &lora(2, 0.3),
            seeded_var_builder(&adapters, 5, DType::F32, &Device::Cpu),
        )?;
        // B = 0 would stop A's gradient: give B a value first, as after one step.
        for (name, var) in adapters.data().lock().unwrap().iter() {
            if name.ends_with("lora_B.weight") {
                var.set(&Tensor::randn(0f32, 0.1, var.shape(), &Device::Cpu)?)?;
            }
        }
        let x = ids(&[1, 5, 9, 3, 7, 2, 11, 4]);
        let loss = |seed| -> Result<Tensor> {
            m.set_lora_seed(seed);
            m.forward(&x, None, Pass::Train)?.sqr()?.mean_all()
        };
        let l = loss(7)?;
        let grads = l.backward()?;
        for (name, var) in adapters.data().lock().unwrap().iter() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            let norm = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
            assert!(norm > 0.0, "zero gradient for {name}");
        }
        let same = (loss(7)? - &l)?.abs()?.to_scalar::<f32>()?;
        let other = (loss(8)? - &l)?.abs()?.to_scalar::<f32>()?;
        assert_eq!(same, 0.0, "the same seed draws the same dropout masks");
        assert!(other > 0.0, "another seed draws other masks");
        let infer = m.forward(&x, None, Pass::Infer)?;
        assert_eq!(
            (infer - m.forward(&x, None, Pass::Infer)?)?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?,
            0.0,
            "no dropout at inference"
        );
        Ok(())
    }
}
