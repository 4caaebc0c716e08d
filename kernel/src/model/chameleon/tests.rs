//! Tests of the backbone: HF shapes and names, causality, the two passes, the KV cache, CUDA.

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

pub(crate) fn model(cfg: ChameleonConfig) -> (Chameleon, VarMap) {
    let vm = VarMap::new();
    let m = Chameleon::new(cfg, seeded_var_builder(&vm, 7, DType::F32, &Device::Cpu)).unwrap();
    (m, vm)
}

pub(crate) fn ids(v: &[u32]) -> Tensor {
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
fn a_cache_grows_past_its_first_buffers_and_keeps_what_it_held() -> Result<()> {
    use crate::model::kv_cache::INITIAL_POSITIONS;
    let (mut m, _) = model(ChameleonConfig {
        max_position_embeddings: 2 * INITIAL_POSITIONS + 40,
        ..tiny(40)
    });
    m.fuse_for_inference()?;
    let seq: Vec<u32> = (0..2 * INITIAL_POSITIONS as u32 + 30)
        .map(|i| (i * 7 + 3) % 40)
        .collect();
    let full = m.forward(&ids(&seq), None, Pass::Infer)?.squeeze(0)?;
    // A prefill that fits the first buffers, one that does not, then single steps past the
    // second doubling (which stops at the context).
    let mut cache = KvCache::new(&m.config);
    let cuts = [0, INITIAL_POSITIONS - 3, INITIAL_POSITIONS + 20];
    let mut rows = Vec::new();
    for w in cuts.windows(2) {
        rows.push(
            m.forward(&ids(&seq[w[0]..w[1]]), Some(&mut cache), Pass::Infer)?
                .squeeze(0)?,
        );
    }
    for &tok in &seq[cuts[2]..] {
        rows.push(
            m.forward(&ids(&[tok]), Some(&mut cache), Pass::Infer)?
                .squeeze(0)?,
        );
    }
    assert_eq!(cache.len(), seq.len());
    let d = (Tensor::cat(&rows, 0)? - full)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert!(d <= 1e-4, "cached and uncached logits differ by {d}");
    let more = m.forward(&ids(&[1; 11]), Some(&mut cache), Pass::Infer);
    assert!(
        more.unwrap_err()
            .to_string()
            .contains("max_position_embeddings")
    );
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
    let mut rows = vec![f32_model.forward(&x.narrow(1, 0, 6)?, Some(&mut cache), Pass::Infer)?];
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
