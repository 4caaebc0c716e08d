//! Parity with Hugging Face `transformers` and taming-transformers on a tiny, randomly
//! initialised Chameleon (`tests/fixtures/chameleon-tiny`, made by
//! `tests/fixtures/make_chameleon_fixture.py`): the checkpoint loads through the same loader as
//! a 7B one (sharded safetensors + index, memory-mapped), its logits match HF's, its VQ
//! encoder gives HF's codes exactly, and the decoder matches taming's `Decoder`.

use candle_core::{DType, Device, Tensor};
use dynaboot::model::hf::{HfCheckpoint, ImageVocabulary};
use dynaboot::model::{Chameleon, Pass};
use dynaboot::tokenize::ChameleonVq;
use dynaboot_tests::{chameleon_fixture, max_abs_diff};
use std::collections::HashMap;

fn reference() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        chameleon_fixture().join("reference.safetensors"),
        &Device::Cpu,
    )
    .unwrap()
}

/// max |a - b| / max |b|.
fn relative_error(a: &Tensor, b: &Tensor) -> f32 {
    let b = b.to_dtype(DType::F32).unwrap();
    max_abs_diff(&a.to_dtype(DType::F32).unwrap(), &b) / max_abs_diff(&b, &b.zeros_like().unwrap())
}

fn load() -> (HfCheckpoint, Chameleon) {
    let ckpt = HfCheckpoint::open(&chameleon_fixture()).unwrap();
    assert!(
        ckpt.weight_files.len() > 1,
        "the fixture is sharded on purpose"
    );
    let model = ckpt.load_backbone(DType::F32, &Device::Cpu).unwrap();
    (ckpt, model)
}

#[test]
fn logits_match_transformers() {
    let (_, model) = load();
    let r = reference();
    let mut checked = 0;
    for i in 0.. {
        let Some(ids) = r.get(&format!("ids.{i}")) else {
            break;
        };
        let ids = ids.to_dtype(DType::U32).unwrap().unsqueeze(0).unwrap();
        let want = &r[&format!("logits.{i}")];
        for pass in [Pass::Infer, Pass::Train] {
            let got = model.forward(&ids, None, pass).unwrap().squeeze(0).unwrap();
            assert_eq!(got.dims(), want.dims());
            let e = relative_error(&got, want);
            assert!(e <= 1e-4, "sequence {i}, {pass:?}: relative error {e}");
        }
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn vq_encoder_codes_match_transformers_exactly() {
    let (ckpt, _) = load();
    let vb = ckpt.var_builder(DType::F32, &Device::Cpu).unwrap();
    let vq = ChameleonVq::load_encoder(ckpt.vq_config.clone().unwrap(), &vb.pp("model.vqmodel"))
        .unwrap();
    let r = reference();
    let (codes, features) = vq.encode(&r["vq.pixels"]).unwrap();
    let e = relative_error(&features, &r["vq.pre_quant"]);
    assert!(e <= 1e-4, "pre-quantisation features: relative error {e}");
    let want: Vec<Vec<i64>> = r["vq.codes"].to_vec2().unwrap();
    let got: Vec<Vec<u32>> = codes.to_vec2().unwrap();
    let got: Vec<Vec<i64>> = got
        .iter()
        .map(|r| r.iter().map(|&c| c as i64).collect())
        .collect();
    assert_eq!(got, want);
    assert!(
        want[0]
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 5
    );

    // Codes -> token ids as HF maps them (`convert_img2bpe`).
    let iv: ImageVocabulary = ckpt.image_vocabulary().unwrap();
    let bpe: Vec<Vec<i64>> = r["vq.bpe"].to_vec2().unwrap();
    for (codes, ids) in want.iter().zip(&bpe) {
        for (&c, &id) in codes.iter().zip(ids) {
            assert_eq!(iv.token(c as u32) as i64, id);
            assert_eq!(iv.code(id as u32), Some(c as u32));
        }
    }
}

#[test]
fn taming_decoder_matches_the_reference() {
    let (ckpt, _) = load();
    let vb = ckpt.var_builder(DType::F32, &Device::Cpu).unwrap();
    let vq = ChameleonVq::load_encoder(ckpt.vq_config.clone().unwrap(), &vb.pp("model.vqmodel"))
        .unwrap()
        .with_taming_decoder(&chameleon_fixture().join("vqgan.ckpt"), &Device::Cpu)
        .unwrap();
    let r = reference();
    let codes = r["decoder.codes"].to_dtype(DType::U32).unwrap();
    let got = vq.decode(&codes).unwrap();
    let e = relative_error(&got, &r["decoder.images"]);
    assert!(e <= 1e-4, "decoded images: relative error {e}");
}
