//! Imagination: what the two models do beyond one step. A rollout applies a sequence of
//! actions in imagination, each step verified and read back (`rollout.rs`); the planner
//! searches for the actions that lead from a start image to a goal image, the dynamics model
//! proposing and the world model imagining (`plan.rs`). Both know only the two models and the
//! images; the embedded world scores them in `eval::rollout_eval` and `eval::plan_eval`.

pub(crate) mod plan;
pub(crate) mod rollout;

pub use plan::{MAX_BEAM, MAX_DEPTH, PlanConfig, PlanNode};

use crate::error::{Error, Result};
use crate::model::backbone::ready;
use crate::model::verifier::check_compatible;
use crate::model::{DynamicsModel, Role, Sampling, Score, WorldModel};
use image::RgbImage;
use plan::Search;
use rollout::{StepCodes, rollout_codes};

/// One step of a rollout.
#[derive(Clone, Debug)]
pub struct ImaginedStep {
    /// The action asked for.
    pub action: String,
    /// The imagined image's codes.
    pub codes: Vec<u32>,
    /// The imagined image.
    pub image: RgbImage,
    /// log p(action | previous, imagined) under the dynamics model (the verifier's score).
    pub score: Score,
    /// What the dynamics model reads from the previous imagined image to this one (greedy).
    pub read_back: String,
    /// log p(read-back | previous, imagined).
    pub read_back_score: Score,
}

/// A plan in words with its imagined frames, and the tree searched to find it.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The plan's steps, in order (each a node of `tree`).
    pub steps: Vec<PlanNode>,
    /// What the world model imagines after each step.
    pub images: Vec<RgbImage>,
    /// Whether the last imagined image's tokens all equal the goal's.
    pub reached: bool,
    /// Every state the search imagined, the start first (in the order `on_node` saw them).
    pub tree: Vec<PlanNode>,
    /// The plan's steps as indices into `tree`.
    pub path: Vec<usize>,
}

impl Plan {
    /// A search's plan with its imagined frames (`images`, of [`Search::path_codes`]).
    pub(crate) fn new(found: Search, images: Vec<RgbImage>) -> Plan {
        Plan {
            steps: found.path.iter().map(|&i| found.nodes[i].clone()).collect(),
            images,
            reached: found.reached,
            tree: found.nodes,
            path: found.path,
        }
    }
}

/// Images side by side, left to right, on a common height (a rollout's frames as one picture).
pub fn strip(images: &[RgbImage]) -> RgbImage {
    let width = images.iter().map(|i| i.width()).sum();
    let height = images.iter().map(|i| i.height()).max().unwrap_or(0);
    let mut out = RgbImage::new(width, height);
    let mut x = 0;
    for img in images {
        image::imageops::replace(&mut out, img, i64::from(x), 0);
        x += img.width();
    }
    out
}

/// A world model and a dynamics model imagining together; they must share an image tokenizer.
pub struct Imagination<'a> {
    pub(crate) world: &'a WorldModel,
    pub(crate) dynamics: &'a DynamicsModel,
}

impl<'a> Imagination<'a> {
    /// Pairs the two models.
    pub fn new(world: &'a WorldModel, dynamics: &'a DynamicsModel) -> Result<Self> {
        check_compatible(&world.model, &dynamics.model)?;
        Ok(Imagination { world, dynamics })
    }

    /// Applies `actions` in order from `source` in imagination, each step a best-of-`n` from
    /// the previous imagined image, read back by the dynamics model.
    pub fn rollout(
        &self,
        source: &RgbImage,
        actions: &[String],
        n: usize,
        sampling: &Sampling,
    ) -> Result<Vec<ImaginedStep>> {
        if actions.is_empty() {
            return Err(Error::Invalid("a rollout needs at least one action".into()));
        }
        let w = &self.world.model;
        let source = w.encode_images(std::slice::from_ref(source))?.remove(0);
        let ids = actions
            .iter()
            .map(|a| w.encode_action(a, Role::World))
            .collect::<Result<Vec<_>>>()?;
        let steps = self.rollout_codes(&source, &ids, n, sampling)?;
        let images = w.decode_images(&steps.iter().map(|s| s.codes.clone()).collect::<Vec<_>>())?;
        let text = &self.dynamics.model.text;
        steps
            .into_iter()
            .zip(images)
            .zip(actions)
            .map(|((step, image), action)| {
                Ok(ImaginedStep {
                    action: action.trim().to_string(),
                    read_back: text.decode(&step.read_back.0)?,
                    read_back_score: step.read_back.1,
                    codes: step.codes,
                    image,
                    score: step.score,
                })
            })
            .collect()
    }

    /// [`Imagination::rollout`] on codes and token ids.
    pub(crate) fn rollout_codes(
        &self,
        source: &[u32],
        actions: &[Vec<u32>],
        n: usize,
        sampling: &Sampling,
    ) -> Result<Vec<StepCodes>> {
        let (w, d) = (&self.world.model, &self.dynamics.model);
        ready(rollout_codes(
            (&w.backbone, &w.format),
            (&d.backbone, &d.format),
            source,
            actions,
            n,
            sampling,
        ))
    }

    /// The actions that lead from `start` to `goal`, as the two models see it (see
    /// [`PlanConfig`] and the search in `plan.rs`); `on_node` sees each imagined state as the
    /// search reaches it.
    pub fn plan(
        &self,
        start: &RgbImage,
        goal: &RgbImage,
        cfg: &PlanConfig,
        on_node: impl FnMut(&PlanNode),
    ) -> Result<Plan> {
        let w = &self.world.model;
        let mut codes = w.encode_images(&[start.clone(), goal.clone()])?;
        let goal = codes.pop().expect("two images");
        let start = codes.pop().expect("two images");
        let found = self.plan_codes(&start, &goal, cfg, on_node)?;
        let images = w.decode_images(&found.path_codes())?;
        Ok(Plan::new(found, images))
    }

    /// The search on image codes with the world model imagining.
    pub(crate) fn plan_codes(
        &self,
        start: &[u32],
        goal: &[u32],
        cfg: &PlanConfig,
        on_node: impl FnMut(&PlanNode),
    ) -> Result<Search> {
        let (w, d) = (&self.world.model, &self.dynamics.model);
        ready(plan::imagine_and_search(
            (&w.backbone, &w.format),
            (&d.backbone, &d.format),
            &d.text,
            (start, goal),
            cfg,
            on_node,
        ))
    }
}

#[cfg(all(test, feature = "fs"))]
mod tests {
    use super::*;
    use crate::model::Model;
    use crate::world::RenderConfig;
    use crate::world::generate::{random_chain, rng};
    use crate::world::render::render_scene;
    use candle_core::Device;
    use plan::{Imagined, Step, search};
    use std::sync::Arc;

    fn pair() -> (WorldModel, DynamicsModel) {
        let dir = crate::shipped::shipped_models().unwrap();
        let load = |name: &str| Arc::new(Model::load(&dir.join(name), &Device::Cpu).unwrap());
        (
            WorldModel::new(load("world")).unwrap(),
            DynamicsModel::new(load("dynamics")).unwrap(),
        )
    }

    fn codes(m: &Model, scenes: &[&crate::world::Scene]) -> Vec<Vec<u32>> {
        let render = RenderConfig {
            size: 64,
            ..Default::default()
        };
        let images: Vec<RgbImage> = scenes.iter().map(|s| render_scene(s, render)).collect();
        m.encode_images(&images).unwrap()
    }

    #[test]
    fn each_rollout_step_is_a_best_of_n_from_the_previous_imagined_step() {
        let (world, dynamics) = pair();
        let im = Imagination::new(&world, &dynamics).unwrap();
        let chain = random_chain(&mut rng(5), 2);
        let w = &world.model;
        let source = codes(w, &[&chain[0].source]).remove(0);
        let actions: Vec<Vec<u32>> = chain
            .iter()
            .map(|t| w.encode_action(&t.text, Role::World).unwrap())
            .collect();
        let sampling = Sampling {
            seed: 3,
            ..Default::default()
        };
        let steps = im.rollout_codes(&source, &actions, 2, &sampling).unwrap();
        assert_eq!(steps.len(), 2);
        let v = crate::model::Verifier::new(&world, &dynamics).unwrap();
        let mut previous = source;
        for (s, step) in steps.iter().enumerate() {
            let sampling = rollout::step_sampling(&sampling, s);
            let best = v.rank_codes(&previous, &actions[s], 2, &sampling).unwrap();
            assert_eq!(step.codes, best[0].codes, "step {s}");
            assert_eq!(step.score, best[0].score);
            previous = step.codes.clone();
        }
        assert!(!steps[0].read_back.0.is_empty());
    }

    #[test]
    fn the_search_drops_what_cannot_be_imagined_and_states_seen_before() {
        let (world, dynamics) = pair();
        let d = &dynamics.model;
        let chain = random_chain(&mut rng(6), 1);
        let c = codes(&world.model, &[&chain[0].source, &chain[0].target]);
        let cfg = PlanConfig {
            depth: 2,
            proposals: 3,
            ..Default::default()
        };
        let nothing = async |_: &(), _: &[u32], _: &[u32]| -> Result<Imagined<()>> { Ok(None) };
        fn run(
            d: &Model,
            c: &[Vec<u32>],
            cfg: &PlanConfig,
            imagine: impl AsyncFnMut(&(), &[u32], &[u32]) -> Result<Imagined<()>>,
        ) -> Search {
            let start = ((), c[0].clone());
            ready(search(
                (&d.backbone, &d.format),
                &d.text,
                start,
                &c[1],
                cfg,
                imagine,
                |_| {},
            ))
            .unwrap()
        }
        let found = run(d, &c, &cfg, nothing);
        assert_eq!(
            (found.nodes.len(), found.path.len(), found.reached),
            (1, 0, false)
        );
        // An imagination that changes nothing reaches only the start again, which is dropped.
        let step = |codes: Vec<u32>| Step {
            state: (),
            codes,
            verification: None,
            read_back: None,
        };
        let copy = async |_: &(), codes: &[u32], _: &[u32]| -> Result<Imagined<()>> {
            Ok(Some(step(codes.to_vec())))
        };
        let found = run(d, &c, &cfg, copy);
        assert_eq!((found.nodes.len(), found.path.len()), (1, 0));
        // An imagination that jumps to the goal is judged to reach it in one step.
        let goal = c[1].clone();
        let jump = async |_: &(), _: &[u32], _: &[u32]| -> Result<Imagined<()>> {
            Ok(Some(step(goal.clone())))
        };
        let found = run(d, &c, &cfg, jump);
        assert!(found.reached && found.path.len() == 1, "{:?}", found.path);
        assert_eq!(found.nodes[found.path[0]].agreement, 64);
        assert!(!found.nodes[found.path[0]].action.is_empty());
    }

    #[test]
    fn plans_are_fixed_by_the_seed_and_settings_are_bounded() {
        let (world, dynamics) = pair();
        let im = Imagination::new(&world, &dynamics).unwrap();
        let chain = random_chain(&mut rng(8), 1);
        let c = codes(&world.model, &[&chain[0].source, &chain[0].target]);
        let cfg = PlanConfig {
            depth: 1,
            beam: 1,
            proposals: 2,
            n: 2,
            ..Default::default()
        };
        let mut seen = 0;
        let a = im.plan_codes(&c[0], &c[1], &cfg, |_| seen += 1).unwrap();
        assert_eq!(
            seen,
            a.nodes.len() - 1,
            "every imagined state is handed out"
        );
        let b = im.plan_codes(&c[0], &c[1], &cfg, |_| {}).unwrap();
        assert_eq!(a.nodes, b.nodes);
        assert!(a.nodes.len() <= 1 + cfg.proposals);
        for bad in [
            PlanConfig {
                depth: 0,
                ..cfg.clone()
            },
            PlanConfig {
                depth: MAX_DEPTH + 1,
                ..cfg.clone()
            },
            PlanConfig {
                beam: 0,
                ..cfg.clone()
            },
            PlanConfig {
                proposals: 0,
                ..cfg.clone()
            },
            PlanConfig {
                n: 9,
                ..cfg.clone()
            },
            PlanConfig {
                step_cost: f32::NAN,
                ..cfg.clone()
            },
            PlanConfig {
                proposal_weight: -1.0,
                ..cfg.clone()
            },
        ] {
            let e = im
                .plan_codes(&c[0], &c[1], &bad, |_| {})
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("plan ") || e.contains("plan "), "{e}");
        }
    }

    #[test]
    fn a_strip_puts_frames_side_by_side() {
        let a = RgbImage::from_pixel(4, 4, image::Rgb([255, 0, 0]));
        let b = RgbImage::from_pixel(4, 4, image::Rgb([0, 0, 255]));
        let s = strip(&[a, b]);
        assert_eq!(s.dimensions(), (8, 4));
        assert_eq!((s.get_pixel(3, 3)[0], s.get_pixel(4, 0)[2]), (255, 255));
    }
}
