//! The browser demo's wasm entry points: a thin wasm-bindgen layer over the kernel's
//! [`Playground`] (all logic lives there and is tested natively). The page's Web Worker
//! (`www/worker.js`) fetches the shipped models, builds a [`Demo`] and calls it; images cross
//! the boundary as PNG bytes.

use dynaboot::candle_core::Device;
use dynaboot::image::{ImageFormat, RgbImage};
use dynaboot::model::{Model, Sampling};
use dynaboot::playground::Playground;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

fn js(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn png(img: &RgbImage) -> Result<Vec<u8>, JsError> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).map_err(js)?;
    Ok(out.into_inner())
}

fn from_png(bytes: &[u8], name: &str) -> Result<RgbImage, JsError> {
    dynaboot::image::load_from_memory(bytes)
        .map(|i| i.to_rgb8())
        .map_err(|e| JsError::new(&format!("the {name} image cannot be read: {e}")))
}

/// The demo session: the shipped world and dynamics models on a scene of the embedded world.
#[wasm_bindgen]
pub struct Demo {
    playground: Playground,
}

#[wasm_bindgen]
impl Demo {
    /// Builds both models from the contents of their files (`config.json`,
    /// `model.safetensors`, `tokenizer.json` each) and the shared image tokenizer's.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        world_config: &str,
        world_weights: Vec<u8>,
        world_tokenizer: &str,
        dynamics_config: &str,
        dynamics_weights: Vec<u8>,
        dynamics_tokenizer: &str,
        vq_config: &str,
        vq_weights: Vec<u8>,
        seed: u64,
    ) -> Result<Demo, JsError> {
        let device = Device::Cpu;
        let world = Model::from_files(
            world_config,
            world_weights,
            world_tokenizer,
            vq_config,
            vq_weights.clone(),
            &device,
        )
        .map_err(|e| JsError::new(&format!("world model: {e}")))?;
        let dynamics = Model::from_files(
            dynamics_config,
            dynamics_weights,
            dynamics_tokenizer,
            vq_config,
            vq_weights,
            &device,
        )
        .map_err(|e| JsError::new(&format!("dynamics model: {e}")))?;
        let playground = Playground::new(Arc::new(world), Arc::new(dynamics), seed).map_err(js)?;
        Ok(Demo { playground })
    }

    /// The current scene as PNG bytes.
    pub fn scene_png(&self) -> Result<Vec<u8>, JsError> {
        png(self.playground.source())
    }

    /// Draws a new scene; returns it as PNG bytes.
    pub fn new_scene(&mut self, seed: u64) -> Result<Vec<u8>, JsError> {
        png(self.playground.new_scene(seed))
    }

    /// Actions valid in the scene, in the world's words.
    pub fn suggestions(&self) -> Vec<String> {
        self.playground.suggestions(2)
    }

    /// What the models will make of an action: JSON `{text, understood, note}`, or an error
    /// message to show.
    pub fn check_action(&self, text: &str) -> Result<String, JsError> {
        let c = self.playground.check_action(text).map_err(js)?;
        serde_json::to_string(&c).map_err(js)
    }

    /// Best-of-N: calls `on_candidate(candidate_json, png_bytes)` for each candidate as it is
    /// decoded, best first (`{rank, sample, score, score_per_token}`).
    pub fn predict(
        &self,
        action: &str,
        n: usize,
        temperature: f64,
        seed: u64,
        on_candidate: &js_sys::Function,
    ) -> Result<(), JsError> {
        let sampling = Sampling {
            temperature,
            seed,
            ..Default::default()
        };
        let mut failed = None;
        self.playground
            .predict(action, n, &sampling, |c| {
                if failed.is_some() {
                    return;
                }
                let sent = serde_json::to_string(c)
                    .map_err(js)
                    .and_then(|meta| Ok((meta, png(&c.image)?)))
                    .and_then(|(meta, bytes)| {
                        let bytes = js_sys::Uint8Array::from(bytes.as_slice());
                        on_candidate
                            .call2(&JsValue::NULL, &JsValue::from_str(&meta), &bytes)
                            .map_err(|e| JsError::new(&format!("{e:?}")))
                    });
                if let Err(e) = sent {
                    failed = Some(e);
                }
            })
            .map_err(js)?;
        failed.map_or(Ok(()), Err)
    }

    /// The action the dynamics model reads from `before` to `after` (PNG bytes): JSON
    /// `{text, score, score_per_token}`.
    pub fn explain(&self, before_png: &[u8], after_png: &[u8]) -> Result<String, JsError> {
        let before = from_png(before_png, "before")?;
        let after = from_png(after_png, "after")?;
        let e = self.playground.explain(&before, &after).map_err(js)?;
        Ok(serde_json::json!({
            "text": e.text,
            "score": e.score.sum,
            "score_per_token": e.score.mean,
        })
        .to_string())
    }
}
