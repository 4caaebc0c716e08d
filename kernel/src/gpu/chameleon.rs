//! The Chameleon decoder on wgpu: the same architecture and weights as
//! [`crate::model::chameleon::Chameleon`] (pre-norm layers; swin-norm is not implemented here),
//! run with a KV cache, returning the logits of the positions asked for.

use super::kernels::transposed;
use super::{Commands, Gpu};
use crate::error::{Error, Result};
use crate::model::backbone::{Backbone, Positions};
use crate::model::chameleon::{ChameleonConfig, QK_NORM_EPS, rotary_angles};
use crate::model::names;
use candle_core::{DType, Tensor};
use std::rc::Rc;

/// Projection weights are stored transposed, `(in, out)` (see [`transposed`]).
struct Layer {
    input_norm: wgpu::Buffer,
    post_norm: wgpu::Buffer,
    /// `q_proj | k_proj | v_proj` stacked: one matmul.
    qkv: wgpu::Buffer,
    qkv_bias: Option<wgpu::Buffer>,
    o: wgpu::Buffer,
    o_bias: Option<wgpu::Buffer>,
    q_norm: (wgpu::Buffer, wgpu::Buffer),
    k_norm: (wgpu::Buffer, wgpu::Buffer),
    /// `gate_proj | up_proj` stacked.
    gate_up: wgpu::Buffer,
    gate_up_bias: Option<wgpu::Buffer>,
    down: wgpu::Buffer,
    down_bias: Option<wgpu::Buffer>,
}

/// Keys and values of the positions seen so far, per layer, `(batch, kv_heads, capacity,
/// head_dim)`, on the GPU.
pub struct GpuKvCache {
    k: Vec<wgpu::Buffer>,
    v: Vec<wgpu::Buffer>,
    batch: usize,
    len: usize,
}

impl GpuKvCache {
    /// Positions cached so far.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// The Chameleon decoder on wgpu: a [`Backbone`] with its KV cache on the GPU.
pub struct GpuChameleon {
    gpu: Rc<Gpu>,
    pub(crate) config: ChameleonConfig,
    embed: wgpu::Buffer,
    layers: Vec<Layer>,
    norm: wgpu::Buffer,
    lm_head: wgpu::Buffer,
    cos: wgpu::Buffer,
    sin: wgpu::Buffer,
}

impl GpuChameleon {
    /// Uploads the weights `get(name)` returns (HF names, any float dtype).
    pub(crate) fn new(
        gpu: Rc<Gpu>,
        config: ChameleonConfig,
        get: impl Fn(&str) -> Result<Tensor>,
    ) -> Result<Self> {
        config.validate().map_err(Error::Invalid)?;
        if config.swin_norm {
            return Err(Error::Invalid(
                "the WebGPU path does not implement swin_norm (Chameleon-34B); use the candle \
                 model"
                    .into(),
            ));
        }
        let f32s = |name: &str| -> Result<Vec<f32>> {
            Ok(get(name)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        };
        let buf = |name: &str| -> Result<wgpu::Buffer> { Ok(gpu.upload(&f32s(name)?)) };
        // Weights `(out, in)` go up transposed, stacked along `out` (one matmul for several).
        let weights = |params: &[String]| -> Result<wgpu::Buffer> {
            let parts = params.iter().map(|n| get(n)).collect::<Result<Vec<_>>>()?;
            Ok(gpu.upload(&transposed(&Tensor::cat(&parts, 0)?)?))
        };
        let biases = |params: &[String]| -> Result<wgpu::Buffer> {
            let mut all = Vec::new();
            for n in params {
                all.extend(f32s(n)?);
            }
            Ok(gpu.upload(&all))
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let p = names::layer(i);
                // q, k, v, o, gate, up, down.
                let proj = names::PROJECTIONS.map(|pr| names::projection(i, pr));
                let w = |ms: &[String]| ms.iter().map(|m| names::weight(m)).collect::<Vec<_>>();
                let b = |ms: &[String]| ms.iter().map(|m| names::bias(m)).collect::<Vec<_>>();
                let (qkv, o, gu, down) = (&proj[0..3], &proj[3..4], &proj[4..6], &proj[6..7]);
                let norm = |n: &str| {
                    let m = format!("{p}.{}.{n}", names::SELF_ATTN);
                    Ok::<_, Error>((buf(&names::weight(&m))?, buf(&names::bias(&m))?))
                };
                let (attn_bias, mlp_bias) = (config.attention_bias, config.mlp_bias);
                Ok(Layer {
                    input_norm: buf(&names::weight(&format!("{p}.{}", names::INPUT_LAYERNORM)))?,
                    post_norm: buf(&names::weight(&format!(
                        "{p}.{}",
                        names::POST_ATTENTION_LAYERNORM
                    )))?,
                    qkv: weights(&w(qkv))?,
                    qkv_bias: attn_bias.then(|| biases(&b(qkv))).transpose()?,
                    o: weights(&w(o))?,
                    o_bias: attn_bias.then(|| biases(&b(o))).transpose()?,
                    q_norm: norm(names::Q_NORM)?,
                    k_norm: norm(names::K_NORM)?,
                    gate_up: weights(&w(gu))?,
                    gate_up_bias: mlp_bias.then(|| biases(&b(gu))).transpose()?,
                    down: weights(&w(down))?,
                    down_bias: mlp_bias.then(|| biases(&b(down))).transpose()?,
                })
            })
            .collect::<Result<_>>()?;
        let embed = buf(&names::weight(names::EMBED_TOKENS))?;
        let head = match config.tie_word_embeddings {
            true => names::EMBED_TOKENS,
            false => names::LM_HEAD,
        };
        let lm_head = weights(&[names::weight(head)])?;
        let (cos, sin) = rotary_angles(&config);
        Ok(GpuChameleon {
            cos: gpu.upload(&cos),
            sin: gpu.upload(&sin),
            norm: buf(&names::weight(names::NORM))?,
            embed,
            layers,
            lm_head,
            gpu,
            config,
        })
    }

    /// Uploads a model from safetensors bytes (the shipped `model.safetensors`).
    pub fn from_safetensors(gpu: Rc<Gpu>, config: ChameleonConfig, bytes: &[u8]) -> Result<Self> {
        let tensors = candle_core::safetensors::load_buffer(bytes, &candle_core::Device::Cpu)?;
        Self::new(gpu, config, |name| {
            tensors
                .get(name)
                .cloned()
                .ok_or_else(|| Error::Invalid(format!("model.safetensors has no tensor `{name}`")))
        })
    }

    pub(crate) fn gpu(&self) -> &Rc<Gpu> {
        &self.gpu
    }
}

impl Backbone for GpuChameleon {
    type Cache = GpuKvCache;

    /// An empty cache for `batch` sequences.
    fn new_cache(&self, batch: usize) -> Result<GpuKvCache> {
        let c = &self.config;
        let size = batch * c.num_key_value_heads * c.max_position_embeddings * c.head_dim();
        let layers = c.num_hidden_layers;
        Ok(GpuKvCache {
            k: (0..layers).map(|_| self.gpu.zeros(size)).collect(),
            v: (0..layers).map(|_| self.gpu.zeros(size)).collect(),
            batch,
            len: 0,
        })
    }

    /// Repeats a batch-1 cache `n` times: one prefill serves `n` samples.
    fn repeat_cache(&self, cache: GpuKvCache, n: usize) -> Result<GpuKvCache> {
        if cache.batch != 1 {
            return Err(Error::Invalid(format!(
                "repeat_cache needs a cache of batch 1, got {}",
                cache.batch
            )));
        }
        let mut out = self.new_cache(n)?;
        let c = &self.config;
        let one = c.num_key_value_heads * c.max_position_embeddings * c.head_dim();
        let mut batch = Commands::default();
        for (src, dst) in cache.k.iter().zip(&out.k).chain(cache.v.iter().zip(&out.v)) {
            for b in 0..n {
                batch.copy(src, 0, dst, b * one, one);
            }
        }
        self.gpu.submit(batch);
        out.len = cache.len;
        Ok(out)
    }

    /// Logits `(batch, positions, vocab)`, flattened, of token ids `(batch, t)` (row-major)
    /// continuing the cached positions.
    async fn forward(
        &self,
        ids: &[u32],
        cache: &mut GpuKvCache,
        positions: Positions,
    ) -> Result<Vec<f32>> {
        let c = &self.config;
        let b = cache.batch;
        if ids.is_empty() || !ids.len().is_multiple_of(b) {
            return Err(Error::Invalid(format!(
                "{} token ids do not make {b} equal rows",
                ids.len()
            )));
        }
        let t = ids.len() / b;
        let offset = cache.len;
        let cap = c.max_position_embeddings;
        if offset + t > cap {
            return Err(Error::Invalid(format!(
                "sequence of {} tokens exceeds max_position_embeddings {cap}",
                offset + t
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= c.vocab_size) {
            return Err(Error::Invalid(format!(
                "token id {bad} is outside the vocabulary ({})",
                c.vocab_size
            )));
        }
        let span = match positions {
            Positions::Last => t - 1..t,
            Positions::Span(s) if !s.is_empty() && s.end <= t => s,
            Positions::Span(s) => {
                return Err(Error::Invalid(format!(
                    "asked for the logits of positions {s:?} of {t}"
                )));
            }
            Positions::All => 0..t,
        };
        let (h, v, inter) = (c.hidden_size, c.vocab_size, c.intermediate_size);
        let (nh, nkv, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim());
        let width = (nh + 2 * nkv) * hd;
        let rows = b * t;
        let g = &self.gpu;
        let x = g.zeros(rows * h);
        let xn = g.zeros(rows * h);
        let qkv = g.zeros(rows * width);
        let attn = g.zeros(rows * nh * hd);
        let scores = g.zeros(rows * nh * cap);
        let gu = g.zeros(rows * 2 * inter);
        let act = g.zeros(rows * inter);
        let eps = c.rms_norm_eps;
        let mut batch = Commands::default();
        let ids = g.upload_u32(ids);
        g.gather(&mut batch, &ids, &self.embed, &x, rows, h);
        for (l, layer) in self.layers.iter().enumerate() {
            let caches = (&cache.k[l], &cache.v[l]);
            g.rms_norm(&mut batch, &x, &layer.input_norm, &xn, rows, h, eps);
            let qkv_b = layer.qkv_bias.as_ref();
            g.matmul_t(
                &mut batch,
                &xn,
                &layer.qkv,
                qkv_b,
                &qkv,
                (rows, width, h),
                false,
            );
            let (qw, qb) = &layer.q_norm;
            let (kw, kb) = &layer.k_norm;
            let dims = |heads| (rows, heads, hd);
            g.head_norm(&mut batch, &qkv, qw, qb, dims(nh), (width, 0), QK_NORM_EPS);
            g.head_norm(
                &mut batch,
                &qkv,
                kw,
                kb,
                dims(nkv),
                (width, nh * hd),
                QK_NORM_EPS,
            );
            let heads = (nh, nkv, hd);
            let (cos, sin) = (&self.cos, &self.sin);
            g.rope_kv(
                &mut batch,
                &qkv,
                (cos, sin),
                caches,
                (rows, t, offset),
                heads,
                cap,
            );
            g.attention(
                &mut batch,
                &qkv,
                caches,
                &scores,
                &attn,
                (rows, t, offset),
                heads,
                cap,
            );
            let o_b = layer.o_bias.as_ref();
            g.matmul_t(
                &mut batch,
                &attn,
                &layer.o,
                o_b,
                &x,
                (rows, h, nh * hd),
                true,
            );
            g.rms_norm(&mut batch, &x, &layer.post_norm, &xn, rows, h, eps);
            let gu_b = layer.gate_up_bias.as_ref();
            g.matmul_t(
                &mut batch,
                &xn,
                &layer.gate_up,
                gu_b,
                &gu,
                (rows, 2 * inter, h),
                false,
            );
            g.swiglu(&mut batch, &gu, &act, rows, inter);
            let d_b = layer.down_bias.as_ref();
            g.matmul_t(
                &mut batch,
                &act,
                &layer.down,
                d_b,
                &x,
                (rows, h, inter),
                true,
            );
        }
        let picked: Vec<u32> = (0..b)
            .flat_map(|r| span.clone().map(move |p| (r * t + p) as u32))
            .collect();
        let n = picked.len();
        let picked = g.upload_u32(&picked);
        let last = g.zeros(n * h);
        let normed = g.zeros(n * h);
        let logits = g.zeros(n * v);
        g.gather(&mut batch, &picked, &x, &last, n, h);
        g.rms_norm(&mut batch, &last, &self.norm, &normed, n, h, eps);
        g.matmul_t(
            &mut batch,
            &normed,
            &self.lm_head,
            None,
            &logits,
            (n, v, h),
            false,
        );
        let out = g.run(batch, &logits, n * v).await?;
        cache.len += t;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::block_on;
    use super::super::tests::{gpu, relative_error, values};
    use super::*;
    use crate::model::backbone::Backbone;
    use crate::model::chameleon::{Chameleon, Pass};
    use crate::nn::seeded_var_builder;
    use candle_core::Device;
    use candle_nn::VarMap;
    use rand::{Rng, SeedableRng};

    /// The bar: teacher-forced logits within 1e-4 relative error of candle's.
    const TOL: f32 = 1e-4;

    fn random_ids(rng: &mut impl Rng, n: usize, vocab: usize) -> Vec<u32> {
        (0..n).map(|_| rng.random_range(0..vocab as u32)).collect()
    }

    fn candle_logits(model: &Chameleon, ids: &[u32], batch: usize) -> Vec<f32> {
        let ids = Tensor::from_vec(ids.to_vec(), (batch, ids.len() / batch), &Device::Cpu).unwrap();
        values(&model.forward(&ids, None, Pass::Infer).unwrap())
    }

    /// Teacher-forced logits of every position, and the same sequence fed as a prefix and then
    /// one token at a time through the cache, against the candle model.
    fn check(model: &Chameleon, gpu_model: &GpuChameleon, seed: u64) {
        let c = &model.config;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (batch, t) = (3, c.max_position_embeddings.min(150));
        let ids = random_ids(&mut rng, batch * t, c.vocab_size);
        let want = candle_logits(model, &ids, batch);
        let mut cache = gpu_model.new_cache(batch).unwrap();
        let got = block_on(gpu_model.forward(&ids, &mut cache, Positions::All)).unwrap();
        let err = relative_error(&got, &want);
        assert!(err < TOL, "teacher-forced logits: {err}");
        println!("teacher-forced logits, {batch} x {t} random ids: relative error {err:.2e}");
        assert_eq!(cache.len(), t);

        let v = c.vocab_size;
        let prefix = t - 4;
        let row = |r: usize, range: std::ops::Range<usize>| {
            ids[r * t + range.start..r * t + range.end].to_vec()
        };
        let mut cache = gpu_model.new_cache(batch).unwrap();
        let first: Vec<u32> = (0..batch).flat_map(|r| row(r, 0..prefix)).collect();
        let tail =
            block_on(gpu_model.forward(&first, &mut cache, Positions::Span(prefix - 2..prefix)))
                .unwrap();
        let want_tail: Vec<f32> = (0..batch)
            .flat_map(|r| want[(r * t + prefix - 2) * v..(r * t + prefix) * v].to_vec())
            .collect();
        assert!(relative_error(&tail, &want_tail) < TOL, "prefix tail");
        for p in prefix..t {
            let step: Vec<u32> = (0..batch).map(|r| ids[r * t + p]).collect();
            let got = block_on(gpu_model.forward(&step, &mut cache, Positions::Last)).unwrap();
            let want_step: Vec<f32> = (0..batch)
                .flat_map(|r| want[(r * t + p) * v..(r * t + p + 1) * v].to_vec())
                .collect();
            let err = relative_error(&got, &want_step);
            assert!(err < TOL, "cached step at {p}: {err}");
        }
    }

    fn models_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
    }

    #[test]
    fn the_shipped_models_logits_match_candle() {
        let gpu = gpu();
        for (i, name) in ["world", "dynamics"].iter().enumerate() {
            let dir = models_dir().join(name);
            let config: crate::model::ModelConfig =
                serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                    .unwrap();
            let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
            let vb = candle_nn::VarBuilder::from_buffered_safetensors(
                bytes.clone(),
                DType::F32,
                &Device::Cpu,
            )
            .unwrap();
            let model = Chameleon::new(config.backbone.clone(), vb).unwrap();
            let gpu_model =
                GpuChameleon::from_safetensors(gpu.clone(), config.backbone, &bytes).unwrap();
            check(&model, &gpu_model, rand::rng().random::<u64>() ^ i as u64);
        }
    }

    #[test]
    fn grouped_query_attention_biases_and_tied_embeddings_match_candle() {
        let gpu = gpu();
        let config = ChameleonConfig {
            vocab_size: 77,
            hidden_size: 48,
            intermediate_size: 72,
            num_hidden_layers: 2,
            num_attention_heads: 6,
            num_key_value_heads: 2,
            max_position_embeddings: 40,
            attention_bias: true,
            mlp_bias: true,
            tie_word_embeddings: true,
            initializer_range: 0.2,
            ..crate::model::chameleon::tests::tiny(77)
        };
        let varmap = VarMap::new();
        let seed = rand::rng().random::<u64>();
        let vb = seeded_var_builder(&varmap, seed, DType::F32, &Device::Cpu);
        let model = Chameleon::new(config.clone(), vb).unwrap();
        // Norm weights and biases start at constants: make them matter.
        for (name, var) in varmap.data().lock().unwrap().iter() {
            if name.contains("norm") || name.ends_with("bias") {
                let noise = Tensor::randn(0f32, 0.5, var.shape(), &Device::Cpu).unwrap();
                var.set(&(var.as_tensor() + noise).unwrap()).unwrap();
            }
        }
        let data = varmap.data().lock().unwrap();
        let gpu_model = GpuChameleon::new(gpu, config, |name| {
            Ok(data
                .get(name)
                .unwrap_or_else(|| panic!("{name}"))
                .as_tensor()
                .clone())
        })
        .unwrap();
        check(&model, &gpu_model, seed);
    }

    #[test]
    fn a_repeated_cache_continues_each_row_and_bad_ids_are_refused() {
        let gpu = gpu();
        let config = crate::model::chameleon::tests::tiny(50);
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, 3, DType::F32, &Device::Cpu);
        let model = Chameleon::new(config.clone(), vb).unwrap();
        let data = varmap.data().lock().unwrap();
        let gpu_model =
            GpuChameleon::new(gpu, config, |name| Ok(data[name].as_tensor().clone())).unwrap();
        let prompt = [1u32, 7, 9, 4];
        let mut one = gpu_model.new_cache(1).unwrap();
        block_on(gpu_model.forward(&prompt, &mut one, Positions::Last)).unwrap();
        let mut three = gpu_model.repeat_cache(one, 3).unwrap();
        let next = [11u32, 12, 13];
        let got = block_on(gpu_model.forward(&next, &mut three, Positions::Last)).unwrap();
        for (r, &id) in next.iter().enumerate() {
            let mut seq = prompt.to_vec();
            seq.push(id);
            let full = candle_logits(&model, &seq, 1);
            let v = full.len() / seq.len();
            let err = relative_error(&got[r * v..(r + 1) * v], &full[4 * v..]);
            assert!(err < TOL, "row {r}: {err}");
        }
        let err = block_on(gpu_model.forward(
            &[50],
            &mut gpu_model.new_cache(1).unwrap(),
            Positions::Last,
        ));
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("outside the vocabulary")
        );
        let err = block_on(gpu_model.forward(&[1, 2], &mut three, Positions::Last));
        assert!(err.unwrap_err().to_string().contains("equal rows"));
    }
}
