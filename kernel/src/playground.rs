//! An interactive session over a world model and a dynamics model, for the browser demo: a
//! scene of the embedded world, action suggestions in the world's language, best-of-N
//! predictions reranked by the dynamics model (handed out one candidate at a time as each is
//! decoded), and explanations of a change. `web/` is a thin wasm-bindgen layer over it and the
//! tests drive it natively, so the page holds no logic of its own. Browser-safe: no files, no
//! threads, no clock.

use crate::error::{Error, Result};
use crate::model::backbone::ready;
use crate::model::{
    DynamicsModel, Explanation, Model, Prediction, Ranked, Role, Sampling, Verifier, WorldModel,
};
use crate::world::generate::{random_scene, rng};
use crate::world::render::render_scene;
use crate::world::{Action, Family, RenderConfig, Scene, describe, parse};
use image::RgbImage;
use serde::Serialize;
use std::sync::Arc;

/// Longest action text accepted, in characters.
pub(crate) const MAX_ACTION_CHARS: usize = 300;
/// Most candidates one prediction may ask for.
pub const MAX_CANDIDATES: usize = 8;

/// What the playground makes of an action text before running the models.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionCheck {
    /// The text as the models will read it (trimmed).
    pub(crate) text: String,
    /// Whether the world's parser understands it (and so whether it is valid in this scene).
    pub(crate) understood: bool,
    /// A note for the user when the models will have to guess.
    pub(crate) note: Option<String>,
}

/// The demo's session: a scene of the embedded world and the two models that act on it.
pub struct Playground {
    world: WorldModel,
    dynamics: DynamicsModel,
    render: RenderConfig,
    scene: Scene,
    source: RgbImage,
}

impl Playground {
    /// A session over two checkpoints that share an image tokenizer, on the scene drawn from
    /// `seed`.
    pub fn new(world: Arc<Model>, dynamics: Arc<Model>, seed: u64) -> Result<Self> {
        crate::model::verifier::check_compatible(&world, &dynamics)?;
        let render = RenderConfig {
            size: world.vq.image_size() as u32,
            ..Default::default()
        };
        let scene = random_scene(&mut rng(seed), 2..=4);
        let source = render_scene(&scene, render);
        Ok(Playground {
            world: WorldModel::new(world)?,
            dynamics: DynamicsModel::new(dynamics)?,
            render,
            scene,
            source,
        })
    }

    /// Draws a new scene from `seed` and renders it.
    pub fn new_scene(&mut self, seed: u64) -> &RgbImage {
        self.scene = random_scene(&mut rng(seed), 2..=4);
        self.source = render_scene(&self.scene, self.render);
        &self.source
    }

    #[cfg(test)]
    pub(crate) fn scene(&self) -> &Scene {
        &self.scene
    }

    /// The current scene's image: the source of every prediction.
    pub fn source(&self) -> &RgbImage {
        &self.source
    }

    /// Actions valid in the current scene, in the world's words: up to `per_family` of each
    /// family, each with a different paraphrase.
    pub fn suggestions(&self, per_family: usize) -> Vec<String> {
        let mut out = Vec::new();
        for family in Family::ALL {
            for (k, action) in Action::valid_in(&self.scene, family)
                .iter()
                .take(per_family)
                .enumerate()
            {
                if let Some(text) = describe(action, &self.scene, k) {
                    out.push(text);
                }
            }
        }
        out
    }

    /// Refuses what the models cannot take (empty, too long for the format) with a message
    /// saying what to do; accepts anything else, with a note when the world's language does
    /// not cover it (the models then guess: free text is allowed).
    pub fn check_action(&self, text: &str) -> Result<ActionCheck> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Invalid(
                "type an action first, e.g. one of the suggestions".into(),
            ));
        }
        let chars = text.chars().count();
        if chars > MAX_ACTION_CHARS {
            return Err(Error::Invalid(format!(
                "the action has {chars} characters; the models read at most \
                 {MAX_ACTION_CHARS}: shorten it"
            )));
        }
        let m = &self.world.model;
        let ids = m.encode_action(text, Role::World)?;
        m.format.check_action(&ids, Role::World).map_err(|_| {
            Error::Invalid(format!(
                "the action is {} tokens long; the models read at most {}: shorten it",
                ids.len(),
                m.format.max_action_tokens(Role::World)
            ))
        })?;
        let (understood, note) = match parse(text) {
            Ok(action) => match action.apply(&self.scene) {
                Ok(_) => (true, None),
                Err(e) => (
                    true,
                    Some(format!(
                        "this action cannot happen in this scene ({e}); the world model will \
                         imagine something anyway"
                    )),
                ),
            },
            Err(_) => (
                false,
                Some(
                    "this is not in the language the models were trained on (English actions \
                     on the objects shown, like the suggestions); they will guess"
                        .into(),
                ),
            ),
        };
        Ok(ActionCheck {
            text: text.to_string(),
            understood,
            note,
        })
    }

    /// Best-of-N on the current scene: `n` world-model samples in one batched pass, scored by
    /// the dynamics model, reranked; `on_prediction` gets each candidate as soon as it is
    /// decoded, best first. The same candidates and order as `dynaboot predict --verify` on
    /// the scene's image with the same seed.
    pub fn predict(
        &self,
        action: &str,
        n: usize,
        sampling: &Sampling,
        on_prediction: impl FnMut(&Prediction),
    ) -> Result<Vec<Prediction>> {
        let (source, ids) = self.prepare(action, n)?;
        let verifier = Verifier::new(&self.world, &self.dynamics)?;
        let ranked = verifier.rank_codes(&source, &ids, n, sampling)?;
        let m = &self.world.model;
        ready(hand_out(
            ranked,
            async |codes| m.decode_images(codes),
            on_prediction,
        ))
    }

    /// [`Playground::predict`] with both models and the decoder on the GPU: the same sampling,
    /// scoring and ranking code, so the same candidates up to float differences.
    #[cfg(feature = "webgpu")]
    pub async fn predict_gpu(
        &self,
        gpu: &crate::gpu::GpuVerifier,
        action: &str,
        n: usize,
        sampling: &Sampling,
        on_prediction: impl FnMut(&Prediction),
    ) -> Result<Vec<Prediction>> {
        let (source, ids) = self.prepare(action, n)?;
        let models = (&*self.world.model, &*self.dynamics.model);
        let ranked = gpu.rank_codes(models, &source, &ids, n, sampling).await?;
        hand_out(ranked, async |codes| gpu.decode(codes).await, on_prediction).await
    }

    /// Checks a request; returns the source image's codes and the action's token ids.
    fn prepare(&self, action: &str, n: usize) -> Result<(Vec<u32>, Vec<u32>)> {
        if !(1..=MAX_CANDIDATES).contains(&n) {
            return Err(Error::Invalid(format!(
                "asked for {n} candidates; choose 1 to {MAX_CANDIDATES}"
            )));
        }
        let checked = self.check_action(action)?;
        let m = &self.world.model;
        let source = m
            .encode_images(std::slice::from_ref(&self.source))?
            .remove(0);
        let ids = m.encode_action(&checked.text, Role::World)?;
        Ok((source, ids))
    }

    /// The action the dynamics model reads from `before` to `after` (greedy), with its
    /// log-likelihood.
    pub fn explain(&self, before: &RgbImage, after: &RgbImage) -> Result<Explanation> {
        let size = self.render.size;
        for (name, img) in [("before", before), ("after", after)] {
            if img.dimensions() != (size, size) {
                let (w, h) = img.dimensions();
                return Err(Error::Invalid(format!(
                    "the {name} image is {w}x{h}; the models read {size}x{size} images"
                )));
            }
        }
        self.dynamics.explain(before, after, &Sampling::greedy())
    }
}

/// Draws ranked candidates one at a time, best first, handing each out as soon as it is drawn.
async fn hand_out(
    ranked: Vec<Ranked>,
    draw: impl AsyncFn(&[Vec<u32>]) -> Result<Vec<RgbImage>>,
    mut on_prediction: impl FnMut(&Prediction),
) -> Result<Vec<Prediction>> {
    let mut out = Vec::with_capacity(ranked.len());
    for (rank, r) in ranked.into_iter().enumerate() {
        let image = draw(std::slice::from_ref(&r.codes)).await?.remove(0);
        out.push(Prediction::new(rank, r, image));
        on_prediction(&out[rank]);
    }
    Ok(out)
}

#[cfg(all(test, feature = "fs"))]
mod tests {
    use super::*;
    use candle_core::Device;

    fn playground() -> Playground {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let load = |name: &str| Arc::new(Model::load(&dir.join(name), &Device::Cpu).unwrap());
        Playground::new(load("world"), load("dynamics"), 3).unwrap()
    }

    #[test]
    fn suggestions_are_valid_actions_of_the_scene_in_the_worlds_words() {
        let mut p = playground();
        for seed in [3, 4, 5] {
            p.new_scene(seed);
            let s = p.suggestions(2);
            assert!(s.len() >= 4, "{s:?}");
            for text in &s {
                let action = parse(text).unwrap();
                assert!(action.apply(p.scene()).is_ok(), "{text}");
                let check = p.check_action(text).unwrap();
                assert!(check.understood && check.note.is_none(), "{check:?}");
            }
        }
    }

    #[test]
    fn bad_actions_get_a_message_and_the_next_request_still_works() {
        let p = playground();
        let empty = p.check_action("   ").unwrap_err().to_string();
        assert!(empty.contains("type an action"), "{empty}");
        let long = p.predict(&"push ".repeat(1000), 2, &Sampling::default(), |_| {});
        assert!(long.unwrap_err().to_string().contains("shorten it"));
        let french = p.check_action("pousse le cube rouge à gauche").unwrap();
        assert!(!french.understood && french.note.unwrap().contains("not in the language"));
        assert!(p.predict("x", 0, &Sampling::default(), |_| {}).is_err());
        assert!(p.predict("x", 9, &Sampling::default(), |_| {}).is_err());
        let ok = p.predict(&p.suggestions(1)[0], 2, &Sampling::default(), |_| {});
        assert_eq!(ok.unwrap().len(), 2);
    }

    #[test]
    fn predictions_arrive_best_first_and_match_the_verifier() {
        let p = playground();
        let action = p.suggestions(1)[0].clone();
        let sampling = Sampling {
            seed: 7,
            ..Default::default()
        };
        let mut seen = Vec::new();
        let got = p
            .predict(&action, 4, &sampling, |c| seen.push((c.rank, c.sample)))
            .unwrap();
        assert_eq!(
            seen,
            got.iter().map(|c| (c.rank, c.sample)).collect::<Vec<_>>()
        );
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        assert!(got.windows(2).all(|w| w[0].score.sum >= w[1].score.sum));
        // What `dynaboot predict --verify` computes for the same image, action and seed.
        let verifier = Verifier::new(&p.world, &p.dynamics).unwrap();
        let reference = verifier
            .best_of_n(p.source(), &action, 4, &sampling)
            .unwrap();
        let ours: Vec<_> = got.iter().map(|c| (c.sample, &c.codes)).collect();
        let theirs: Vec<_> = reference.iter().map(|r| (r.sample, &r.codes)).collect();
        assert!(
            ours == theirs,
            "the playground's candidates differ from the verifier's"
        );
    }

    #[test]
    fn explains_a_change_and_refuses_images_of_the_wrong_size() {
        let p = playground();
        let e = p.explain(p.source(), p.source()).unwrap();
        assert!(!e.text.is_empty() && e.score.sum.is_finite());
        let small = RgbImage::new(32, 32);
        let err = p.explain(&small, p.source()).unwrap_err().to_string();
        assert!(err.contains("32x32") && err.contains("64x64"), "{err}");
    }
}
