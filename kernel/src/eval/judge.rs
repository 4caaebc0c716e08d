//! The judge: the paper's GPT-4o protocol (editing success and minimal editing, 0-10 each, the
//! sample's score is the minimum) made exact on the embedded world. The recogniser reads the
//! generated image's scene state; the source and target states say what had to change.
//!
//! Both scores count *facts*: an object's presence, shape, size, place, orientation and lid.
//! - editing success: of the facts the action changes (source != target), the share the image
//!   shows in its target value;
//! - minimal editing: of the facts the action keeps (source == target), the share the image
//!   still shows; every object that is in neither state is a kept fact broken.
//!
//! Copying the source shows every changed fact in its source value, so it scores 0.

use crate::world::recognise::Recogniser;
use crate::world::{Color, Object, Scene};
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// One generated image, judged.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// 0-10: how much of the demanded change was made.
    pub(crate) success: f64,
    /// 0-10: how much of everything else was left alone.
    pub(crate) minimal: f64,
    /// min(success, minimal), the paper's per-sample score.
    pub score: f64,
}

/// The facts the judge compares, per colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fact {
    Present,
    Shape,
    Size,
    Place,
    UpsideDown,
    LidOpen,
}

impl Fact {
    const ALL: [Fact; 6] = [
        Fact::Present,
        Fact::Shape,
        Fact::Size,
        Fact::Place,
        Fact::UpsideDown,
        Fact::LidOpen,
    ];

    /// The fact's value for a (visible) object or its absence; absent objects have no
    /// attributes, only `Present = false`.
    fn value(self, obj: Option<&Object>) -> Option<String> {
        let o = match (self, obj) {
            (Fact::Present, o) => return Some(o.is_some().to_string()),
            (_, None) => return None,
            (_, Some(o)) => o,
        };
        Some(match self {
            Fact::Present => unreachable!("handled above"),
            Fact::Shape => format!("{:?}", o.shape),
            Fact::Size => format!("{:?}", o.size),
            Fact::Place => format!("{:?}", o.place),
            Fact::UpsideDown => o.upside_down.to_string(),
            Fact::LidOpen => o.lid_open.to_string(),
        })
    }
}

fn visible(scene: &Scene, color: Color) -> Option<&Object> {
    scene.visible().find(|o| o.color == color)
}

/// Judges a recognised state against the source and target states (no pixels involved).
pub(crate) fn judge_states(source: &Scene, target: &Scene, seen: &Scene) -> Judgement {
    let (mut changed, mut changed_ok, mut kept, mut kept_ok) = (0usize, 0usize, 0usize, 0usize);
    for color in Color::ALL {
        let (s, t, g) = (
            visible(source, color),
            visible(target, color),
            visible(seen, color),
        );
        if s.is_none() && t.is_none() {
            // Neither state has it: seeing it breaks one kept fact (it was not there).
            kept += 1;
            kept_ok += usize::from(g.is_none());
            continue;
        }
        for fact in Fact::ALL {
            let (sv, tv) = (fact.value(s), fact.value(t));
            if tv.is_none() && sv.is_none() {
                continue;
            }
            let ok = fact.value(g) == tv;
            if sv == tv {
                kept += 1;
                kept_ok += usize::from(ok);
            } else if tv.is_some() {
                changed += 1;
                changed_ok += usize::from(ok);
            }
        }
    }
    let share = |ok: usize, n: usize| {
        if n == 0 {
            10.0
        } else {
            10.0 * ok as f64 / n as f64
        }
    };
    let (success, minimal) = (share(changed_ok, changed), share(kept_ok, kept));
    Judgement {
        success,
        minimal,
        score: success.min(minimal),
    }
}

/// The judge over images: recognises the generated image, then `judge_states`. An image the
/// recogniser cannot read scores 0 on both counts.
pub struct Judge {
    recogniser: Recogniser,
}

impl Judge {
    /// A judge that reads images with `recogniser`.
    pub fn new(recogniser: Recogniser) -> Self {
        Judge { recogniser }
    }

    /// How well `generated` shows `target` as the change from `source` (the scenes before and
    /// after the action).
    pub fn judge(&self, source: &Scene, target: &Scene, generated: &RgbImage) -> Judgement {
        match self.recogniser.recognise(generated) {
            Ok(seen) => judge_states(source, target, &seen),
            Err(_) => Judgement {
                success: 0.0,
                minimal: 0.0,
                score: 0.0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::generate::{random_triplet, rng};
    use crate::world::render::render_scene;
    use crate::world::{Action, Family, Place, RenderConfig, Shape, Size, Slot};

    fn obj(shape: Shape, color: Color, row: u8, col: u8) -> Object {
        Object::new(shape, color, Size::Small, Place::Table(Slot::new(row, col)))
    }

    fn scene(objects: &[Object]) -> Scene {
        Scene {
            objects: objects.to_vec(),
        }
    }

    #[test]
    fn true_target_scores_ten_and_copy_scores_zero() {
        let src = scene(&[
            obj(Shape::Cube, Color::Red, 0, 0),
            obj(Shape::Sphere, Color::Blue, 1, 1),
        ]);
        let tgt = Action::MoveTo {
            object: Color::Red,
            slot: Slot::new(2, 2),
        }
        .apply(&src)
        .unwrap();
        assert_eq!(judge_states(&src, &tgt, &tgt).score, 10.0);
        let copy = judge_states(&src, &tgt, &src);
        assert_eq!(copy.success, 0.0);
        assert_eq!(copy.minimal, 10.0);
        assert_eq!(copy.score, 0.0);
    }

    #[test]
    fn partial_edits_score_in_between() {
        let src = scene(&[
            obj(Shape::Cube, Color::Red, 0, 0),
            obj(Shape::Sphere, Color::Blue, 1, 1),
            obj(Shape::Cylinder, Color::Green, 2, 0),
        ]);
        let tgt = Action::MoveTo {
            object: Color::Red,
            slot: Slot::new(2, 2),
        }
        .apply(&src)
        .unwrap();
        // The edit is made but an unrelated object moved as well. Kept facts: 4 absent colours,
        // 6 facts each of blue and green, 5 of red (all but its place) = 21; one is broken.
        let mut seen = tgt.clone();
        seen.get_mut(Color::Green).unwrap().place = Place::Table(Slot::new(1, 2));
        let j = judge_states(&src, &tgt, &seen);
        assert_eq!(j.success, 10.0);
        assert!((j.minimal - 10.0 * 20.0 / 21.0).abs() < 1e-9, "{j:?}");
        assert_eq!(j.score, j.minimal);
        // The edit is made, plus a spurious object: one absent colour appears.
        let mut extra = tgt.clone();
        extra.objects.push(obj(Shape::Cone, Color::Yellow, 0, 2));
        let j = judge_states(&src, &tgt, &extra);
        assert!(j.score > 0.0 && j.score < 10.0, "{j:?}");
        // A resize that also moves: half the changed facts are right.
        let tgt2 = scene(&[
            Object {
                size: Size::Large,
                place: Place::Table(Slot::new(2, 2)),
                ..obj(Shape::Cube, Color::Red, 0, 0)
            },
            obj(Shape::Sphere, Color::Blue, 1, 1),
            obj(Shape::Cylinder, Color::Green, 2, 0),
        ]);
        let j = judge_states(&src, &tgt2, &tgt);
        assert_eq!(j.success, 5.0);
        assert_eq!(j.minimal, 10.0);
        assert_eq!(j.score, 5.0);
    }

    #[test]
    fn removal_and_addition_count_presence() {
        let src = scene(&[obj(Shape::Cube, Color::Red, 0, 0)]);
        let tgt = Action::Remove { object: Color::Red }.apply(&src).unwrap();
        assert_eq!(judge_states(&src, &tgt, &tgt).score, 10.0);
        assert_eq!(judge_states(&src, &tgt, &src).score, 0.0);
        let add = Action::Add {
            shape: Shape::Cone,
            color: Color::Blue,
            size: Size::Small,
            slot: Slot::new(1, 1),
        };
        let tgt = add.apply(&src).unwrap();
        assert_eq!(judge_states(&src, &tgt, &src).score, 0.0);
        // Added, but with the wrong shape: 5 of its 6 facts right.
        let mut wrong = tgt.clone();
        wrong.get_mut(Color::Blue).unwrap().shape = Shape::Cube;
        assert_eq!(judge_states(&src, &tgt, &wrong).success, 10.0 * 5.0 / 6.0);
    }

    #[test]
    fn rendered_targets_and_copies_through_the_recogniser() {
        let judge = Judge::new(Recogniser::new(RenderConfig::default()));
        let mut r = rng(5);
        let mut fams = Family::ALL.iter().cycle();
        let (mut target_total, mut copy_total, n) = (0.0, 0.0, 12);
        for _ in 0..n {
            let t = random_triplet(&mut r, *fams.next().unwrap());
            let cfg = RenderConfig::default();
            let (src_img, tgt_img) = (render_scene(&t.source, cfg), render_scene(&t.target, cfg));
            target_total += judge.judge(&t.source, &t.target, &tgt_img).score;
            copy_total += judge.judge(&t.source, &t.target, &src_img).score;
        }
        assert!(target_total / n as f64 > 9.0, "{}", target_total / n as f64);
        assert!(copy_total / n as f64 <= 0.5, "{}", copy_total / n as f64);
    }
}
