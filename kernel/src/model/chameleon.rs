//! The backbone: a decoder-only transformer with Chameleon's architecture (Team Chameleon,
//! 2024; HF `ChameleonModel`): RMSNorm, rotary position embeddings, a SwiGLU MLP, grouped-query
//! attention, and Chameleon's per-head layer norm on queries and keys. Config field names and
//! parameter names are HF's ([`super::names`]), so real Chameleon/Anole safetensors map onto
//! the same code. The architecture only: LoRA adapters live in [`super::lora`], the KV cache in
//! [`super::kv_cache`], the interface sampling and scoring run on in [`super::backbone`].
//!
//! Two kinds of pass share one code path. [`Pass::Train`] uses only ops with a backward pass
//! (candle's fused `rms_norm`, `softmax_last_dim` and `rope` have none: gradients would silently
//! stop); [`Pass::Infer`] may carry a [`KvCache`]. On the CPU both use dynaboot's fused ops,
//! which have a backward ([`crate::nn::fused`], [`crate::nn::softmax`]); elsewhere inference
//! takes candle's fused kernels and training the composed ops.

use super::kv_cache::KvCache;
use super::linear::Linear;
use super::names;
use crate::nn::attention::causal_attention;
use crate::nn::decode_attention::decode_attention;
use crate::nn::softmax::causal_softmax;
use crate::nn::{fused, gemv};
use candle_core::{Device, IndexOp, Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// The longest context a checkpoint may declare: its rotary tables are built for every position
/// at load time.
pub(crate) const MAX_POSITIONS: usize = 1 << 17;

/// HF `ChameleonConfig` (the fields the architecture uses; other HF fields are ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChameleonConfig {
    /// Token ids the embedding and the head cover.
    pub vocab_size: usize,
    pub(crate) hidden_size: usize,
    pub(crate) intermediate_size: usize,
    pub(crate) num_hidden_layers: usize,
    pub(crate) num_attention_heads: usize,
    pub(crate) num_key_value_heads: usize,
    #[serde(default = "default_rope_theta")]
    pub(crate) rope_theta: f64,
    #[serde(default = "default_rms_norm_eps")]
    pub(crate) rms_norm_eps: f64,
    pub(crate) max_position_embeddings: usize,
    /// Chameleon-34B's "swin" normalisation: norms after attention and MLP instead of before.
    #[serde(default)]
    pub(crate) swin_norm: bool,
    #[serde(default)]
    pub(crate) attention_bias: bool,
    #[serde(default)]
    pub(crate) mlp_bias: bool,
    #[serde(default)]
    pub(crate) tie_word_embeddings: bool,
    /// Standard deviation of the normal initialisation of fresh weights.
    #[serde(default = "default_initializer_range")]
    pub(crate) initializer_range: f64,
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
pub(crate) const QK_NORM_EPS: f64 = 1e-5;

impl ChameleonConfig {
    /// The shipped models' size: hidden 192, intermediate 512, 4 layers, 6 heads.
    pub(crate) fn demo(vocab_size: usize, max_position_embeddings: usize) -> Self {
        Self::sized(vocab_size, max_position_embeddings, (192, 512, 4, 6, 6))
    }

    /// The benchmark's size: hidden 256, intermediate 688, 6 layers, 8 heads.
    pub(crate) fn small(vocab_size: usize, max_position_embeddings: usize) -> Self {
        Self::sized(vocab_size, max_position_embeddings, (256, 688, 6, 8, 8))
    }

    /// The ablation's many short runs: hidden 64, intermediate 176, 2 layers, 4 heads.
    pub(crate) fn mini(vocab_size: usize, max_position_embeddings: usize) -> Self {
        Self::sized(vocab_size, max_position_embeddings, (64, 176, 2, 4, 4))
    }

    /// A few thousand parameters, for tests: hidden 32, 2 layers, 4 heads over 2 key/value
    /// heads.
    pub(crate) fn tiny(vocab_size: usize, max_position_embeddings: usize) -> Self {
        Self::sized(vocab_size, max_position_embeddings, (32, 64, 2, 4, 2))
    }

    /// `(hidden, intermediate, layers, heads, key/value heads)` with HF's defaults elsewhere.
    fn sized(
        vocab_size: usize,
        max_position_embeddings: usize,
        (hidden_size, intermediate_size, num_hidden_layers, heads, kv): (
            usize,
            usize,
            usize,
            usize,
            usize,
        ),
    ) -> Self {
        ChameleonConfig {
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: kv,
            rope_theta: default_rope_theta(),
            rms_norm_eps: default_rms_norm_eps(),
            max_position_embeddings,
            swin_norm: false,
            attention_bias: false,
            mlp_bias: false,
            tie_word_embeddings: false,
            initializer_range: default_initializer_range(),
        }
    }

    pub(crate) fn head_dim(&self) -> usize {
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

    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
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
        if !(1..=MAX_POSITIONS).contains(&self.max_position_embeddings) {
            return Err(format!(
                "max_position_embeddings {} is outside 1..={MAX_POSITIONS}: set it to the context \
                 the weights were trained with (4096 for Chameleon and Anole, 192 for dynaboot's \
                 shipped models)",
                self.max_position_embeddings
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(format!(
                "rope_theta {} must be a positive number (10000 for Chameleon, Anole and \
                 dynaboot's models)",
                self.rope_theta
            ));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0 && self.rms_norm_eps < 1.0) {
            return Err(format!(
                "rms_norm_eps {} must be a small positive number (1e-5 in the shipped models)",
                self.rms_norm_eps
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

/// Chameleon's query/key norm: layer norm over each head's vector (no affine), then a
/// per-head affine with `weight`/`bias` of shape `(heads, head_dim)`.
struct HeadNorm {
    weight: Tensor,
    bias: Tensor,
}

impl HeadNorm {
    fn load(vb: VarBuilder, heads: usize, head_dim: usize) -> Result<Self> {
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
    fn load(vb: VarBuilder, cfg: &ChameleonConfig) -> Result<Self> {
        let (h, hd) = (cfg.hidden_size, cfg.head_dim());
        let kv = cfg.num_key_value_heads * hd;
        let std = cfg.initializer_range;
        let out_std = std / (2.0 * cfg.num_hidden_layers as f64).sqrt();
        let b = cfg.attention_bias;
        let [q, k, v, o, ..] = names::PROJECTIONS.map(|(_, name)| vb.pp(name));
        Ok(Attention {
            q_proj: Linear::load(q, (h, h), b, std)?,
            k_proj: Linear::load(k, (h, kv), b, std)?,
            v_proj: Linear::load(v, (h, kv), b, std)?,
            o_proj: Linear::load(o, (h, h), b, out_std)?,
            q_norm: HeadNorm::load(vb.pp(names::Q_NORM), cfg.num_attention_heads, hd)?,
            k_norm: HeadNorm::load(vb.pp(names::K_NORM), cfg.num_key_value_heads, hd)?,
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
        (cos, sin, offset): (&Tensor, &Tensor, usize),
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
    fn load(vb: VarBuilder, cfg: &ChameleonConfig) -> Result<Self> {
        let (h, i, b) = (cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias);
        let std = cfg.initializer_range;
        let out_std = std / (2.0 * cfg.num_hidden_layers as f64).sqrt();
        let [.., gate, up, down] = names::PROJECTIONS.map(|(_, name)| vb.pp(name));
        Ok(Mlp {
            gate_proj: Linear::load(gate, (h, i), b, std)?,
            up_proj: Linear::load(up, (h, i), b, std)?,
            down_proj: Linear::load(down, (i, h), b, out_std)?,
            gate_up: None,
        })
    }

    /// `x`: `(batch, t, hidden)`.
    fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let x = x.reshape((b * t, h))?;
        let gu = match &self.gate_up {
            Some(fused) => fused.forward(&x, pass)?,
            None => Linear::forward_parts(&[&self.gate_proj, &self.up_proj], &x, pass)?,
        };
        self.down_proj
            .forward(&fused::swiglu(&gu)?, pass)?
            .reshape((b, t, h))
    }
}

struct DecoderLayer {
    self_attn: Attention,
    mlp: Mlp,
    input_layernorm: Tensor,
    post_attention_layernorm: Tensor,
    swin_norm: bool,
    eps: f64,
}

impl DecoderLayer {
    fn load(vb: VarBuilder, cfg: &ChameleonConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let norm = |name: &str| vb.pp(name).get_with_hints(h, "weight", Init::Const(1.0));
        Ok(DecoderLayer {
            self_attn: Attention::load(vb.pp(names::SELF_ATTN), cfg)?,
            mlp: Mlp::load(vb.pp(names::MLP), cfg)?,
            input_layernorm: norm(names::INPUT_LAYERNORM)?,
            post_attention_layernorm: norm(names::POST_ATTENTION_LAYERNORM)?,
            swin_norm: cfg.swin_norm,
            eps: cfg.rms_norm_eps,
        })
    }

    /// `x`: `(batch, t, hidden)` at positions `offset..offset + t` (`rot`: their rotary cos,
    /// sin and `offset`). Pre-norm residual blocks, or Chameleon-34B's swin norm (the norms
    /// after attention and the MLP).
    fn forward(
        &self,
        x: &Tensor,
        rot: (&Tensor, &Tensor, usize),
        cache: Option<(&mut KvCache, usize)>,
        pass: Pass,
    ) -> Result<Tensor> {
        let (ln1, ln2, eps) = (
            &self.input_layernorm,
            &self.post_attention_layernorm,
            self.eps,
        );
        let attn = |x: &Tensor| self.self_attn.forward(x, rot, cache, pass);
        if self.swin_norm {
            let x = (x + rms_norm(&attn(x)?, ln1, eps, pass)?)?;
            let m = rms_norm(&self.mlp.forward(&x, pass)?, ln2, eps, pass)?;
            return x + m;
        }
        let x = (x + attn(&rms_norm(x, ln1, eps, pass)?)?)?;
        let m = self.mlp.forward(&rms_norm(&x, ln2, eps, pass)?, pass)?;
        x + m
    }
}

/// The Chameleon decoder with its language-model head.
pub struct Chameleon {
    /// The shape it was built with.
    pub config: ChameleonConfig,
    pub(super) embed_tokens: Tensor,
    layers: Vec<DecoderLayer>,
    norm: Tensor,
    lm_head: Tensor,
    /// `(max_position_embeddings, head_dim / 2)`.
    cos: Tensor,
    sin: Tensor,
    /// Dropout seed shared by the LoRA adapters.
    pub(super) lora_seed: Arc<AtomicU64>,
    /// The head does not train (a LoRA base): skip its gradient.
    pub(super) frozen_head: bool,
}

impl Chameleon {
    /// Builds the model from a var builder: fresh (seeded) parameters or stored weights, under
    /// HF's names (`names.rs`: `model.embed_tokens.weight`, `model.layers.N...`,
    /// `lm_head.weight`).
    pub fn new(config: ChameleonConfig, vb: VarBuilder) -> Result<Self> {
        config.validate().map_err(candle_core::Error::Msg)?;
        let (h, v) = (config.hidden_size, config.vocab_size);
        let init = Init::Randn {
            mean: 0.0,
            stdev: config.initializer_range,
        };
        let embed_tokens = vb
            .pp(names::EMBED_TOKENS)
            .get_with_hints((v, h), "weight", init)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| DecoderLayer::load(vb.pp(names::layer(i)), &config))
            .collect::<Result<_>>()?;
        let norm = vb
            .pp(names::NORM)
            .get_with_hints(h, "weight", Init::Const(1.0))?;
        let lm_head = if config.tie_word_embeddings {
            embed_tokens.clone()
        } else {
            vb.pp(names::LM_HEAD)
                .get_with_hints((v, h), "weight", init)?
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
    pub(super) fn projections(&mut self) -> Vec<(String, &'static str, &mut Linear)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter_mut().enumerate() {
            let (a, m) = (&mut l.self_attn, &mut l.mlp);
            let linears = [
                &mut a.q_proj,
                &mut a.k_proj,
                &mut a.v_proj,
                &mut a.o_proj,
                &mut m.gate_proj,
                &mut m.up_proj,
                &mut m.down_proj,
            ];
            for (p, lin) in names::PROJECTIONS.into_iter().zip(linears) {
                out.push((names::projection(i, p), p.1, lin));
            }
        }
        out
    }

    /// The weights that are not projections (embeddings, norms, head) under HF names.
    pub(super) fn other_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![
            (
                names::weight(names::EMBED_TOKENS),
                self.embed_tokens.clone(),
            ),
            (names::weight(names::NORM), self.norm.clone()),
        ];
        if !self.config.tie_word_embeddings {
            out.push((names::weight(names::LM_HEAD), self.lm_head.clone()));
        }
        for (i, l) in self.layers.iter().enumerate() {
            let p = names::layer(i);
            let a = &l.self_attn;
            for (n, t) in [
                (names::INPUT_LAYERNORM, &l.input_layernorm),
                (names::POST_ATTENTION_LAYERNORM, &l.post_attention_layernorm),
            ] {
                out.push((names::weight(&format!("{p}.{n}")), t.clone()));
            }
            for (n, hn) in [(names::Q_NORM, &a.q_norm), (names::K_NORM, &a.k_norm)] {
                let module = format!("{p}.{}.{n}", names::SELF_ATTN);
                out.push((names::weight(&module), hn.weight.clone()));
                out.push((names::bias(&module), hn.bias.clone()));
            }
        }
        out
    }

    /// Fuses the q/k/v and gate/up projections into single matmuls: faster inference. The
    /// fused weights are copies, so call this on a model that is no longer being trained.
    /// LoRA adapters are merged into their weights first.
    pub(crate) fn fuse_for_inference(&mut self) -> Result<()> {
        self.merge_lora()?;
        for l in &mut self.layers {
            let a = &mut l.self_attn;
            a.qkv = Some(Linear::fused(&[&a.q_proj, &a.k_proj, &a.v_proj])?);
            let m = &mut l.mlp;
            m.gate_up = Some(Linear::fused(&[&m.gate_proj, &m.up_proj])?);
        }
        Ok(())
    }

    pub(crate) fn device(&self) -> &Device {
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
        for (i, layer) in self.layers.iter().enumerate() {
            let c = cache.as_deref_mut().map(|c| (c, i));
            x = layer.forward(&x, (&cos, &sin, offset), c, pass)?;
        }
        if let Some(c) = cache {
            c.advance(t);
        }
        rms_norm(&x, &self.norm, self.config.rms_norm_eps, pass)
    }

    /// Logits of hidden states `(..., hidden)` -> `(..., vocab_size)`, in f32 whatever the
    /// weights' dtype (bf16 on a GPU), so losses and sampling read them alike.
    pub(crate) fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
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
pub(crate) mod tests;
