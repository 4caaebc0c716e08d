//! In-browser tests: `wasm-bindgen-test` in headless Chromium with WebGPU enabled
//! (`web/tests/run.sh`, `web/tests/webdriver.json`). The WebGPU forward pass against candle's in
//! the same browser, and the demo on both backends.
#![cfg(target_arch = "wasm32")]

use dynaboot::candle_core::{DType, Device, Tensor};
use dynaboot::gpu::{Gpu, GpuChameleon};
use dynaboot::model::{Backbone, Chameleon, ModelConfig, Pass, Positions};
use dynaboot_web::{Demo, ImageTokenizerFiles, ModelFiles};
use rand::{Rng, SeedableRng};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const WORLD: (&str, &[u8], &str) = (
    include_str!("../../models/world/config.json"),
    include_bytes!("../../models/world/model.safetensors"),
    include_str!("../../models/world/tokenizer.json"),
);
const DYNAMICS: (&str, &[u8], &str) = (
    include_str!("../../models/dynamics/config.json"),
    include_bytes!("../../models/dynamics/model.safetensors"),
    include_str!("../../models/dynamics/tokenizer.json"),
);
const VQ: (&str, &[u8]) = (
    include_str!("../../models/vq/config.json"),
    include_bytes!("../../models/vq/model.safetensors"),
);

async fn gpu() -> Rc<Gpu> {
    let gpu = Gpu::new().await.expect("a WebGPU device");
    Rc::new(gpu.expect("no WebGPU adapter: run Chromium with --enable-unsafe-webgpu"))
}

#[wasm_bindgen_test]
async fn webgpu_logits_match_candle_on_the_cpu_in_the_browser() {
    let gpu = gpu().await;
    let seed = (js_sys::Math::random() * 1e9) as u64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for (config, weights, _) in [WORLD, DYNAMICS] {
        let config: ModelConfig = serde_json::from_str(config).unwrap();
        let c = config.backbone.clone();
        let vb = dynaboot::candle_nn::VarBuilder::from_buffered_safetensors(
            weights.to_vec(),
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let model = Chameleon::new(c.clone(), vb).unwrap();
        let on_gpu = GpuChameleon::from_safetensors(gpu.clone(), c.clone(), weights).unwrap();
        let (batch, t) = (2, 100);
        let ids: Vec<u32> = (0..batch * t)
            .map(|_| rng.random_range(0..c.vocab_size as u32))
            .collect();
        let want = model
            .forward(
                &Tensor::from_vec(ids.clone(), (batch, t), &Device::Cpu).unwrap(),
                None,
                Pass::Infer,
            )
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut cache = on_gpu.new_cache(batch).unwrap();
        let got = on_gpu
            .forward(&ids, &mut cache, Positions::All)
            .await
            .unwrap();
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let scale = want.iter().map(|v| v.abs()).fold(0f32, f32::max);
        assert!(
            diff / scale <= 1e-4,
            "seed {seed}: relative error {}",
            diff / scale
        );
    }
}

/// Runs a prediction through the wasm API; the candidates' `(rank, sample, score)`.
async fn predict(demo: &Demo, action: &str, n: usize) -> Result<Vec<(usize, usize, f64)>, JsValue> {
    let got = Rc::new(RefCell::new(Vec::new()));
    let sink = got.clone();
    let on_candidate = Closure::<dyn FnMut(String, js_sys::Uint8Array)>::new(
        move |meta: String, png: js_sys::Uint8Array| {
            let m: serde_json::Value = serde_json::from_str(&meta).unwrap();
            assert!(png.length() > 100, "an empty image");
            sink.borrow_mut().push((
                m["rank"].as_u64().unwrap() as usize,
                m["sample"].as_u64().unwrap() as usize,
                m["score"].as_f64().unwrap(),
            ));
        },
    );
    let promise = demo.predict(
        action.to_string(),
        n,
        1.0,
        0,
        on_candidate
            .as_ref()
            .unchecked_ref::<js_sys::Function>()
            .clone(),
    );
    wasm_bindgen_futures::JsFuture::from(promise).await?;
    Ok(got.take())
}

#[wasm_bindgen_test]
async fn the_demo_ranks_alike_on_webgpu_and_on_the_cpu_and_survives_bad_input() {
    let mut ranked = Vec::new();
    for webgpu in [false, true] {
        let files = |(config, weights, tokenizer): (&str, &[u8], &str)| {
            ModelFiles::new(config.into(), weights.to_vec(), tokenizer.into())
        };
        let demo = Demo::create(
            files(WORLD),
            files(DYNAMICS),
            ImageTokenizerFiles::new(VQ.0.into(), VQ.1.to_vec()),
            1,
            webgpu,
        )
        .await
        .unwrap();
        assert_eq!(demo.backend(), if webgpu { "webgpu" } else { "cpu" });
        let action = demo.suggestions().unwrap()[0].clone();
        let bad = predict(&demo, &"push ".repeat(1000), 2).await.unwrap_err();
        let message = js_sys::Error::from(bad).message();
        assert!(String::from(message).contains("shorten it"));
        let got = predict(&demo, &action, 3).await.unwrap();
        assert_eq!(got.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(got.windows(2).all(|w| w[0].2 >= w[1].2), "{got:?}");
        ranked.push(got);
    }
    // Logits agree to ~1e-6, so the samples and their order agree unless a random draw falls
    // that close to a boundary between two tokens.
    let samples = |r: &Vec<(usize, usize, f64)>| r.iter().map(|c| c.1).collect::<Vec<_>>();
    assert_eq!(samples(&ranked[0]), samples(&ranked[1]));
    for (a, b) in ranked[0].iter().zip(&ranked[1]) {
        assert!((a.2 - b.2).abs() < 1e-3, "{} vs {}", a.2, b.2);
    }
}
