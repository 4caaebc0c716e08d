//! Random scenes, labelled triplets, unlabelled videos and the fixed test split.
//!
//! Everything is a pure function of a seed (ChaCha8, portable across platforms), so the same
//! seed gives the same data on every machine and in the browser.

use super::action::{Action, Family};
use super::language::{describe, template_count};
use super::render::{
    Instance, RenderConfig, View, base_position, instance_of, render_instances, render_scene,
};
use super::scene::{Color, Object, Place, Scene, Shape, Size, Slot};
use image::RgbImage;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::RangeInclusive;

/// Seed of the fixed test split.
pub(crate) const TEST_SEED: u64 = 0x7e57_5eed;
/// Examples per family in the fixed test split (AURORA-Bench has 50 per subset).
pub const TEST_PER_FAMILY: usize = 50;

/// A deterministic random generator for a seed.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A random valid scene with a number of objects in `count`, some of them stacked, inside
/// containers, flipped or opened.
pub fn random_scene(rng: &mut impl Rng, count: RangeInclusive<usize>) -> Scene {
    let n = rng.random_range(count);
    let mut colors = Color::ALL.to_vec();
    colors.shuffle(rng);
    let mut slots: Vec<Slot> = Slot::all().collect();
    slots.shuffle(rng);
    let mut scene = Scene::default();
    for i in 0..n {
        let shape = *Shape::ALL.choose(rng).expect("shapes");
        let size = if shape.is_container() || rng.random_bool(0.5) {
            Size::Large
        } else {
            Size::Small
        };
        let mut obj = Object::new(shape, colors[i], size, Place::Table(slots[i]));
        obj.upside_down = shape == Shape::Cone && rng.random_bool(0.2);
        obj.lid_open = shape == Shape::Box && rng.random_bool(0.5);
        scene.objects.push(obj);
    }
    // A few state changes make stacks, filled containers and covered objects appear.
    for _ in 0..rng.random_range(0..=2) {
        let fam = if rng.random_bool(0.5) {
            Family::Something
        } else {
            Family::Whatsup
        };
        let acts = Action::valid_in(&scene, fam);
        if let Some(a) = acts.choose(rng) {
            scene = a.apply(&scene).expect("valid_in returns valid actions");
        }
    }
    scene
}

/// One labelled example: source scene, action (structured and as text), target scene.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Triplet {
    /// The scene before.
    pub source: Scene,
    /// The action, structured.
    pub action: Action,
    /// The action in words (one of its phrasings).
    pub text: String,
    /// The scene after.
    pub target: Scene,
}

impl Triplet {
    /// The action's family.
    pub fn family(&self) -> Family {
        self.action.family()
    }
}

/// A random triplet of `family`.
pub(crate) fn random_triplet(rng: &mut impl Rng, family: Family) -> Triplet {
    loop {
        let source = random_scene(rng, 2..=5);
        let acts = Action::valid_in(&source, family);
        let Some(&action) = acts.choose(rng) else {
            continue;
        };
        let k = rng.random_range(0..template_count(&action) * 4);
        let text = describe(&action, &source, k).expect("the action's objects are in the scene");
        let target = action.apply(&source).expect("valid");
        return Triplet {
            source,
            action,
            text,
            target,
        };
    }
}

/// A random scene and `steps` random valid actions applied one after another, each leading to
/// a scene not seen before on the chain (no action undoes an earlier one), families drawn
/// uniformly. Step `s` is the triplet from scene `s` to scene `s + 1`.
pub fn random_chain(rng: &mut impl Rng, steps: usize) -> Vec<Triplet> {
    loop {
        let scene = random_scene(rng, 2..=4);
        if let Some(chain) = chain_from(rng, &scene, steps) {
            return chain;
        }
    }
}

/// [`random_chain`] from a given scene; `None` when the chain gets stuck (every valid action
/// would return to a scene seen before).
pub fn chain_from(rng: &mut impl Rng, start: &Scene, steps: usize) -> Option<Vec<Triplet>> {
    let mut scene = start.clone();
    let mut seen = vec![scene.clone()];
    let mut chain = Vec::with_capacity(steps);
    for _ in 0..steps {
        let mut families = Family::ALL;
        families.shuffle(rng);
        let (action, target) = families.iter().find_map(|&family| {
            let fresh: Vec<(Action, Scene)> = Action::valid_in(&scene, family)
                .into_iter()
                .map(|a| (a, a.apply(&scene).expect("valid_in returns valid actions")))
                .filter(|(_, next)| !seen.iter().any(|s| s.same_state(next)))
                .collect();
            fresh.choose(rng).cloned()
        })?;
        let k = rng.random_range(0..template_count(&action) * 4);
        let text = describe(&action, &scene, k).expect("the action's objects are in the scene");
        chain.push(Triplet {
            source: scene.clone(),
            action,
            text,
            target: target.clone(),
        });
        seen.push(target.clone());
        scene = target;
    }
    Some(chain)
}

/// `n` triplets with families in round-robin order.
pub fn triplets(seed: u64, n: usize) -> Vec<Triplet> {
    let mut rng = rng(seed);
    (0..n)
        .map(|i| random_triplet(&mut rng, Family::ALL[i % Family::ALL.len()]))
        .collect()
}

/// The fixed test split: [`TEST_PER_FAMILY`] triplets of each family, family by family.
pub fn test_split() -> Vec<Triplet> {
    let mut rng = rng(TEST_SEED);
    Family::ALL
        .iter()
        .flat_map(|&f| (0..TEST_PER_FAMILY).map(move |_| f))
        .map(|f| random_triplet(&mut rng, f))
        .collect()
}

/// How videos are paced.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoConfig {
    /// Actions performed one after another.
    pub(crate) actions: usize,
    /// Still frames before each action (and at the end).
    pub(crate) hold: usize,
    /// Frames of continuous motion per action.
    pub(crate) motion: usize,
    /// Camera shake (world units) and light flicker (relative), per frame.
    pub(crate) jitter: f32,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            actions: 4,
            hold: 6,
            motion: 10,
            jitter: 0.02,
        }
    }
}

/// One action inside a video: the hidden label, for evaluating annotators only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Last still frame before the motion.
    pub start: usize,
    /// First still frame after the motion.
    pub end: usize,
    pub(crate) action: Action,
    pub(crate) text: String,
    pub(crate) source: Scene,
    pub(crate) target: Scene,
}

/// An unlabelled video and its (separately stored) labels.
pub struct Video {
    /// The frames, in order.
    pub frames: Vec<RgbImage>,
    /// Where each action starts and ends, with its labels (hidden from the models).
    pub segments: Vec<Segment>,
}

/// A random video of several actions with continuous motion and mild jitter.
///
/// Every random draw happens while the frames are planned (the scene and the view of each);
/// the planned frames are then rendered in parallel, so the video is the same on any number
/// of threads.
pub(crate) fn random_video(rng: &mut impl Rng, cfg: VideoConfig, render: RenderConfig) -> Video {
    let mut scene = random_scene(rng, 3..=5);
    let mut plan: Vec<(Vec<Instance>, View)> = Vec::new();
    let mut segments = Vec::new();
    let mut view = View::default();
    let shake = |rng: &mut dyn rand::RngCore, view: &mut View| {
        for c in view.camera.iter_mut() {
            *c = (*c + cfg.jitter * (rng.random::<f32>() - 0.5))
                .clamp(-3.0 * cfg.jitter, 3.0 * cfg.jitter);
        }
        view.light = (view.light + cfg.jitter * (rng.random::<f32>() - 0.5)).clamp(-0.1, 0.1);
    };
    for _ in 0..cfg.actions {
        let fam = *Family::ALL.choose(rng).expect("families");
        let acts = Action::valid_in(&scene, fam);
        let Some(&action) = acts.choose(rng) else {
            continue;
        };
        let target = action.apply(&scene).expect("valid");
        let text = describe(&action, &scene, rng.random_range(0..24)).expect("objects exist");
        for _ in 0..cfg.hold {
            shake(rng, &mut view);
            plan.push((placed(&scene), view));
        }
        let start = plan.len() - 1;
        for m in 1..=cfg.motion {
            shake(rng, &mut view);
            let t = m as f32 / (cfg.motion + 1) as f32;
            plan.push((interpolate(&scene, &target, &action, t), view));
        }
        segments.push(Segment {
            start,
            end: plan.len(),
            action,
            text,
            source: scene,
            target: target.clone(),
        });
        scene = target;
    }
    for _ in 0..cfg.hold {
        shake(rng, &mut view);
        plan.push((placed(&scene), view));
    }
    let frames = plan
        .into_par_iter()
        .map(|(instances, view)| render_instances(&instances, render, view))
        .collect();
    Video { frames, segments }
}

/// `n` random videos named `v0000`, `v0001`, ... from one seeded generator; `progress` gets the
/// number made.
pub fn videos(
    seed: u64,
    n: usize,
    cfg: VideoConfig,
    render: RenderConfig,
) -> impl Iterator<Item = (String, Video)> {
    let mut rng = rng(seed);
    (0..n).map(move |i| (format!("v{i:04}"), random_video(&mut rng, cfg, render)))
}

fn placed(scene: &Scene) -> Vec<Instance> {
    super::render::instances(scene)
        .into_iter()
        .map(|(_, i)| i)
        .collect()
}

fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// The world part way (`t` in 0..1) through `action` from `from` to `to`.
pub(crate) fn interpolate(from: &Scene, to: &Scene, action: &Action, t: f32) -> Vec<Instance> {
    let s = smooth(t.clamp(0.0, 1.0));
    let rename: HashMap<Color, Color> = match *action {
        Action::Recolor { object, color } => [(object, color)].into(),
        _ => HashMap::new(),
    };
    let mut out = Vec::new();
    for a in from.objects.iter() {
        let bcol = rename.get(&a.color).copied().unwrap_or(a.color);
        let pa = base_position(from, a);
        let b = to.get(bcol);
        let pb = b.and_then(|b| base_position(to, b));
        let hidden_a = matches!(a.place, Place::Under(_));
        let hidden_b = b.is_none_or(|b| matches!(b.place, Place::Under(_)));
        match (pa, b, pb) {
            (Some(pa), Some(b), Some(pb)) if !hidden_a => {
                let mut i = instance_of(a, pa);
                let j = instance_of(b, pb);
                let dist = ((pa[0] - pb[0]).powi(2) + (pa[2] - pb[2]).powi(2)).sqrt();
                let lift =
                    (0.35 * dist + 0.6 * (pa[1] - pb[1]).abs()) * (std::f32::consts::PI * s).sin();
                for k in 0..3 {
                    i.pos[k] = pa[k] + (pb[k] - pa[k]) * s;
                    i.albedo[k] = a.color.albedo()[k] + (j.albedo[k] - i.albedo[k]) * s;
                }
                i.pos[1] += lift;
                i.radius += (j.radius - i.radius) * s;
                i.flip += (j.flip - i.flip) * s;
                i.lid += (j.lid - i.lid) * s;
                if hidden_b && s > 0.9 {
                    continue; // covered at the very end
                }
                out.push(i);
            }
            (Some(pa), _, _) if !hidden_a => {
                let mut i = instance_of(a, pa);
                i.scale = 1.0 - s; // vanishes
                if i.scale > 0.02 {
                    out.push(i);
                }
            }
            _ => {}
        }
    }
    for b in to.objects.iter() {
        let from_color = rename
            .iter()
            .find(|(_, v)| **v == b.color)
            .map(|(k, _)| *k)
            .unwrap_or(b.color);
        let was_visible = from
            .get(from_color)
            .is_some_and(|a| !matches!(a.place, Place::Under(_)));
        if was_visible || matches!(b.place, Place::Under(_)) {
            continue;
        }
        if let Some(pb) = base_position(to, b) {
            let mut i = instance_of(b, pb);
            let appears = from.get(from_color).is_none();
            i.scale = if appears {
                s
            } else if s > 0.5 {
                1.0
            } else {
                0.0
            };
            if i.scale > 0.02 {
                out.push(i);
            }
        }
    }
    out
}

/// Renders a triplet's source and target.
pub fn render_triplet(t: &Triplet, render: RenderConfig) -> (RgbImage, RgbImage) {
    (
        render_scene(&t.source, render),
        render_scene(&t.target, render),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_are_valid_continuous_never_return_and_fixed_by_the_seed() {
        for steps in [1, 3, 5] {
            let mut r = rng(steps as u64);
            for _ in 0..20 {
                let chain = random_chain(&mut r, steps);
                assert_eq!(chain.len(), steps);
                let mut seen = vec![chain[0].source.clone()];
                for (i, t) in chain.iter().enumerate() {
                    assert!(t.action.apply(&t.source).unwrap().same_state(&t.target));
                    assert_eq!(
                        crate::world::parse(&t.text).unwrap(),
                        t.action,
                        "{}",
                        t.text
                    );
                    if i > 0 {
                        assert_eq!(chain[i - 1].target, t.source, "the chain is continuous");
                    }
                    assert!(!seen.iter().any(|s| s.same_state(&t.target)), "returned");
                    seen.push(t.target.clone());
                }
            }
        }
        assert_eq!(random_chain(&mut rng(9), 3), random_chain(&mut rng(9), 3));
        assert_ne!(random_chain(&mut rng(9), 3), random_chain(&mut rng(10), 3));
    }

    #[test]
    fn same_seed_same_data() {
        assert_eq!(triplets(5, 12), triplets(5, 12));
        assert_ne!(triplets(5, 12), triplets(6, 12));
        let split = test_split();
        assert_eq!(split.len(), 200);
        for (i, t) in split.iter().enumerate() {
            assert_eq!(t.family(), Family::ALL[i / TEST_PER_FAMILY]);
            assert_eq!(t.action.apply(&t.source).unwrap(), t.target);
            assert_eq!(super::super::language::parse(&t.text).unwrap(), t.action);
        }
    }

    #[test]
    fn scenes_are_valid_and_varied() {
        let mut r = rng(1);
        let scenes: Vec<Scene> = (0..200).map(|_| random_scene(&mut r, 2..=5)).collect();
        for s in &scenes {
            s.validate().unwrap();
            assert!((2..=5).contains(&s.objects.len()));
        }
        let stacked = scenes
            .iter()
            .filter(|s| {
                s.objects
                    .iter()
                    .any(|o| !matches!(o.place, Place::Table(_)))
            })
            .count();
        assert!(
            stacked > 20,
            "only {stacked} scenes have stacked or contained objects"
        );
    }

    #[test]
    fn videos_move_continuously_between_labelled_states() {
        let cfg = VideoConfig {
            actions: 2,
            hold: 2,
            motion: 4,
            jitter: 0.0,
        };
        let render = RenderConfig {
            size: 32,
            samples: 1,
        };
        let v = random_video(&mut rng(3), cfg, render);
        assert_eq!(v.frames.len(), v.segments.len() * 6 + 2);
        for seg in &v.segments {
            assert_eq!(seg.end - seg.start, cfg.motion + 1);
            // Without jitter the still frames are exactly the rendered states.
            assert_eq!(v.frames[seg.start], render_scene(&seg.source, render));
            assert_eq!(v.frames[seg.end], render_scene(&seg.target, render));
        }
    }

    #[test]
    fn videos_are_the_same_on_any_number_of_threads() {
        let render = RenderConfig {
            size: 32,
            samples: 2,
        };
        let make = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| videos(9, 3, VideoConfig::default(), render).collect::<Vec<_>>())
        };
        let one = make(1);
        let four = make(4);
        assert_eq!(one.len(), 3);
        for ((name_a, a), (name_b, b)) in one.iter().zip(&four) {
            assert_eq!(name_a, name_b);
            assert_eq!(
                a.frames, b.frames,
                "{name_a}: frames differ between 1 and 4 threads"
            );
            assert_eq!(a.segments.len(), b.segments.len());
            for (x, y) in a.segments.iter().zip(&b.segments) {
                assert_eq!((x.start, x.end, &x.text), (y.start, y.end, &y.text));
            }
        }
        // Jitter moves the camera, so distinct videos differ: the check is not trivially true.
        assert_ne!(one[0].1.frames, one[1].1.frames);
    }
}
