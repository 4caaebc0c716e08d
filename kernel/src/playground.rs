//! An interactive session over a world model and a dynamics model, for the browser demo: a
//! scene of the embedded world, action suggestions in the world's language, best-of-N
//! predictions reranked by the dynamics model (handed out one candidate at a time as each is
//! decoded), explanations of a change, chains of imagined steps ("continue from here", undo),
//! and planning towards a goal a few actions away, run afterwards in the true world. `web/` is a thin wasm-bindgen layer over it and the
//! tests drive it natively, so the page holds no logic of its own. Browser-safe: no files, no
//! threads, no clock.

use crate::error::{Error, Result};
use crate::imagination::{Imagination, Plan, PlanConfig, PlanNode};
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

/// A frame the session continued from: an imagined candidate, and the true scene it shows
/// when the world could follow (the action parsed and could happen), else `None`.
struct Continued {
    image: RgbImage,
    scene: Option<Scene>,
}

/// A goal a few actions away from the current scene, for planning towards.
#[derive(Clone, Debug)]
pub struct Goal {
    /// The goal's image.
    pub image: RgbImage,
    /// The true actions that lead there, in words.
    pub actions: Vec<String>,
}

/// One action of a plan run in the true world.
#[derive(Clone, Debug)]
pub struct RealStep {
    /// The action in words.
    pub action: String,
    /// The true scene after it, drawn; `None` once the world refused an action.
    pub image: Option<RgbImage>,
    /// Why the world refused it.
    pub refused: Option<String>,
}

/// A plan run in the true world.
#[derive(Clone, Debug)]
pub struct RealRun {
    /// What each action really did.
    pub steps: Vec<RealStep>,
    /// Whether every action happened and the last true frame is the goal's image.
    pub reached: bool,
}

/// The demo's session: a scene of the embedded world and the two models that act on it.
pub struct Playground {
    world: WorldModel,
    dynamics: DynamicsModel,
    render: RenderConfig,
    scene: Scene,
    source: RgbImage,
    /// Imagined frames continued from, oldest first ("continue from here"; undone from the end).
    continued: Vec<Continued>,
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
            continued: Vec::new(),
        })
    }

    /// Draws a new scene from `seed` and renders it (what was continued from is dropped).
    pub fn new_scene(&mut self, seed: u64) -> &RgbImage {
        self.scene = random_scene(&mut rng(seed), 2..=4);
        self.source = render_scene(&self.scene, self.render);
        self.continued.clear();
        &self.source
    }

    /// The true scene the current frame shows, when the world could follow every step
    /// continued from.
    pub(crate) fn scene(&self) -> Option<&Scene> {
        match self.continued.last() {
            Some(c) => c.scene.as_ref(),
            None => Some(&self.scene),
        }
    }

    /// The current frame: the scene's image, or the imagined frame last continued from. The
    /// source of every prediction.
    pub fn source(&self) -> &RgbImage {
        self.continued.last().map_or(&self.source, |c| &c.image)
    }

    /// Continues from an imagined frame (a candidate of `action`): it becomes the source of
    /// the next prediction, a chain of imagined steps. The world follows along where `action`
    /// parses and can happen in the scene it knows.
    pub fn continue_from(&mut self, image: RgbImage, action: &str) -> Result<()> {
        self.check_size("frame", &image)?;
        let scene = self
            .scene()
            .and_then(|s| parse(action.trim()).ok()?.apply(s).ok());
        self.continued.push(Continued { image, scene });
        Ok(())
    }

    /// Steps back one imagined frame; false when at the scene itself.
    pub fn undo(&mut self) -> bool {
        self.continued.pop().is_some()
    }

    /// How many imagined frames the current one is from the scene.
    pub fn depth(&self) -> usize {
        self.continued.len()
    }

    /// A goal `actions` random valid actions away from the current scene (none returning to a
    /// scene seen before), drawn from `seed`.
    pub fn goal(&self, seed: u64, actions: usize) -> Result<Goal> {
        let Some(scene) = self.scene() else {
            return Err(Error::Invalid(
                "the current frame is imagined and the world cannot say what it holds; undo \
                 to a real scene first"
                    .into(),
            ));
        };
        if !(1..=crate::imagination::MAX_DEPTH).contains(&actions) {
            return Err(Error::Invalid(format!(
                "a goal {actions} actions away: choose 1 to {}",
                crate::imagination::MAX_DEPTH
            )));
        }
        let chain = crate::world::generate::chain_from(&mut rng(seed), scene, actions).ok_or_else(
            || Error::Invalid("no goal that far from this scene; draw another scene".into()),
        )?;
        let last = &chain[chain.len() - 1];
        Ok(Goal {
            image: render_scene(&last.target, self.render),
            actions: chain.iter().map(|t| t.text.clone()).collect(),
        })
    }

    /// Plans from the current frame to `goal` with the two models; `on_node` sees each
    /// imagined state as the search reaches it (with its frame drawn).
    pub fn plan(
        &self,
        goal: &RgbImage,
        cfg: &PlanConfig,
        on_node: impl FnMut(&PlanNode, &RgbImage),
    ) -> Result<Plan> {
        self.check_size("goal image", goal)?;
        let imagination = Imagination::new(&self.world, &self.dynamics)?;
        imagination.plan(self.source(), goal, cfg, self.drawn(on_node))
    }

    /// [`Playground::plan`] with both models and the decoder on the GPU: the same search code,
    /// so the same plan up to float differences. The frames `on_node` sees are decoded by
    /// candle (one small image each, while the search goes on).
    #[cfg(feature = "webgpu")]
    pub async fn plan_gpu(
        &self,
        gpu: &crate::gpu::GpuVerifier,
        goal: &RgbImage,
        cfg: &PlanConfig,
        on_node: impl FnMut(&PlanNode, &RgbImage),
    ) -> Result<Plan> {
        self.check_size("goal image", goal)?;
        let m = &self.world.model;
        let mut codes = m.encode_images(&[self.source().clone(), goal.clone()])?;
        let (goal, start) = (codes.pop().expect("two"), codes.pop().expect("two"));
        let models = (&*self.world.model, &*self.dynamics.model);
        let found = gpu
            .plan_codes(models, (&start, &goal), cfg, self.drawn(on_node))
            .await?;
        let images = gpu.decode(&found.path_codes()).await?;
        Ok(Plan::new(found, images))
    }

    /// `on_node` with each node's frame drawn (a node whose frame cannot be drawn is skipped).
    fn drawn(&self, mut on_node: impl FnMut(&PlanNode, &RgbImage)) -> impl FnMut(&PlanNode) {
        let m = &self.world.model;
        move |node| {
            if let Ok(mut images) = m.decode_images(std::slice::from_ref(&node.codes)) {
                on_node(node, &images.remove(0));
            }
        }
    }

    /// Refuses an image of another size than the models read, naming it.
    fn check_size(&self, name: &str, image: &RgbImage) -> Result<()> {
        let size = self.render.size;
        match image.dimensions() {
            (w, h) if (w, h) != (size, size) => Err(Error::Invalid(format!(
                "the {name} is {w}x{h}; the models read {size}x{size} images"
            ))),
            _ => Ok(()),
        }
    }

    /// Runs a plan's actions (in words) in the true world from the current scene: what really
    /// happens, to show beside what was imagined, and whether it ends on `goal`'s image.
    pub fn run_plan(&self, actions: &[String], goal: &RgbImage) -> Result<RealRun> {
        self.check_size("goal image", goal)?;
        let Some(start) = self.scene() else {
            return Err(Error::Invalid(
                "the current frame is imagined; the world can run a plan only from a real scene"
                    .into(),
            ));
        };
        let mut scene = Some(start.clone());
        let mut out = Vec::with_capacity(actions.len());
        for action in actions {
            let next = scene.as_ref().map(|s| {
                parse(action)
                    .map_err(|e| format!("the world does not read it: {e}"))
                    .and_then(|a| a.apply(s).map_err(|e| format!("it cannot happen: {e}")))
            });
            let (image, refused) = match next {
                Some(Ok(s)) => {
                    let image = render_scene(&s, self.render);
                    scene = Some(s);
                    (Some(image), None)
                }
                Some(Err(e)) => {
                    scene = None;
                    (None, Some(e))
                }
                None => (None, Some("an earlier action was refused".into())),
            };
            out.push(RealStep {
                action: action.clone(),
                image,
                refused,
            });
        }
        let reached = match out.last() {
            Some(step) => step.image.as_ref() == Some(goal),
            None => render_scene(start, self.render) == *goal,
        };
        Ok(RealRun {
            steps: out,
            reached,
        })
    }

    /// Actions valid in the current scene, in the world's words: up to `per_family` of each
    /// family, each with a different paraphrase.
    pub fn suggestions(&self, per_family: usize) -> Vec<String> {
        let mut out = Vec::new();
        let scene = self.scene().unwrap_or(&self.scene);
        for family in Family::ALL {
            for (k, action) in Action::valid_in(scene, family)
                .iter()
                .take(per_family)
                .enumerate()
            {
                if let Some(text) = describe(action, scene, k) {
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
        let (understood, note) = match (parse(text), self.scene()) {
            (Ok(_), None) => (
                true,
                Some(
                    "this frame is imagined, so the world cannot say whether the action can \
                     happen in it; the world model imagines it all the same"
                        .into(),
                ),
            ),
            (Ok(action), Some(scene)) => match action.apply(scene) {
                Ok(_) => (true, None),
                Err(e) => (
                    true,
                    Some(format!(
                        "this action cannot happen in this scene ({e}); the world model will \
                         imagine something anyway"
                    )),
                ),
            },
            (Err(_), _) => (
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
            .encode_images(std::slice::from_ref(self.source()))?
            .remove(0);
        let ids = m.encode_action(&checked.text, Role::World)?;
        Ok((source, ids))
    }

    /// The action the dynamics model reads from `before` to `after` (greedy), with its
    /// log-likelihood.
    pub fn explain(&self, before: &RgbImage, after: &RgbImage) -> Result<Explanation> {
        self.check_size("before image", before)?;
        self.check_size("after image", after)?;
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
                assert!(action.apply(p.scene().unwrap()).is_ok(), "{text}");
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
    fn continuing_from_a_candidate_chains_imagined_steps_and_undo_steps_back() {
        let mut p = playground();
        let start = p.source().clone();
        let start_scene = p.scene().unwrap().clone();
        let action = p.suggestions(1)[0].clone();
        let first = p.predict(&action, 2, &Sampling::default(), |_| {}).unwrap();
        p.continue_from(first[0].image.clone(), &action).unwrap();
        assert_eq!((p.depth(), p.source()), (1, &first[0].image));
        // The world follows a parsed, possible action: suggestions are valid in the new scene.
        let expected = parse(&action).unwrap().apply(&start_scene).unwrap();
        assert!(p.scene().unwrap().same_state(&expected));
        for text in p.suggestions(1) {
            assert!(
                parse(&text).unwrap().apply(p.scene().unwrap()).is_ok(),
                "{text}"
            );
        }
        // The next prediction starts from the imagined frame.
        let next_action = p.suggestions(1)[0].clone();
        let next = p
            .predict(&next_action, 2, &Sampling::default(), |_| {})
            .unwrap();
        let verifier = Verifier::new(&p.world, &p.dynamics).unwrap();
        let reference = verifier
            .best_of_n(&first[0].image, &next_action, 2, &Sampling::default())
            .unwrap();
        assert_eq!(next[0].codes, reference[0].codes);
        // Free text leaves the world behind: no scene, a note, no goal and no plan run.
        p.continue_from(next[0].image.clone(), "make it dance")
            .unwrap();
        assert!(p.scene().is_none());
        let note = p.check_action(&next_action).unwrap().note.unwrap();
        assert!(note.contains("imagined"), "{note}");
        assert!(p.goal(1, 1).unwrap_err().to_string().contains("undo"));
        let small = RgbImage::new(8, 8);
        assert!(
            p.continue_from(small, "x")
                .unwrap_err()
                .to_string()
                .contains("8x8")
        );
        assert_eq!(p.depth(), 2);
        assert!(p.undo() && p.undo() && !p.undo());
        assert_eq!(p.source(), &start);
        assert!(p.scene().unwrap().same_state(&start_scene));
    }

    #[test]
    fn a_goal_is_planned_for_step_by_step_and_the_plan_runs_in_the_true_world() {
        let p = playground();
        let goal = p.goal(5, 1).unwrap();
        assert_eq!(goal.actions.len(), 1);
        assert_ne!(&goal.image, p.source());
        assert!(p.goal(5, 0).is_err() && p.goal(5, 9).is_err());
        let cfg = PlanConfig {
            depth: 1,
            ..Default::default()
        };
        let mut streamed = 0;
        let plan = p
            .plan(&goal.image, &cfg, |node, image| {
                streamed += 1;
                assert_eq!((node.depth, image.dimensions()), (1, (64, 64)));
            })
            .unwrap();
        assert_eq!(streamed, plan.tree.len() - 1);
        assert_eq!(plan.steps.len(), 1);
        let actions: Vec<String> = plan.steps.iter().map(|s| s.action.clone()).collect();
        let real = p.run_plan(&actions, &goal.image).unwrap();
        assert_eq!(real.steps.len(), 1);
        let step = &real.steps[0];
        assert_eq!(step.image.is_some(), step.refused.is_none());
        // This one-action goal is reached: the true world ends on the goal's image.
        assert!(real.reached, "{:?}", plan.steps[0].action);
        assert_eq!(step.image.as_ref(), Some(&goal.image));
        // The true actions reach it too; a refused action says why and the rest follow it.
        assert!(p.run_plan(&goal.actions, &goal.image).unwrap().reached);
        let refused = ["make it dance".to_string(), goal.actions[0].clone()];
        let real = p.run_plan(&refused, &goal.image).unwrap();
        assert!(!real.reached);
        assert!(
            real.steps[0]
                .refused
                .as_ref()
                .unwrap()
                .contains("does not read it")
        );
        assert!(real.steps[1].refused.as_ref().unwrap().contains("earlier"));
        assert!(real.steps.iter().all(|s| s.image.is_none()));
        assert!(p.run_plan(&[], &goal.image).is_ok_and(|r| !r.reached));
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
