//! Actions: the typed, structured form of everything that can happen on the table.
//!
//! Actions are grouped in families named after the AURORA-Bench subsets they imitate, so
//! results read the same way as the paper's tables. What an action does to a scene is the
//! world's rules (`rules.rs`, [`Action::apply`]).

use super::scene::{Color, Scene, Shape, Size, Slot};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The AURORA-Bench subset an action belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Move an object to a place, add or remove objects (Kubric).
    Kubric,
    /// Everyday manipulations: push, put into, take out, flip, open/close, cover.
    Something,
    /// Change the spatial relation between two objects (WhatsUp).
    Whatsup,
    /// Attribute edits: recolour, resize, erase (MagicBrush).
    Magicbrush,
}

impl Family {
    /// The four families, in the order reports list them.
    pub const ALL: [Family; 4] = [
        Family::Kubric,
        Family::Something,
        Family::Whatsup,
        Family::Magicbrush,
    ];
    /// The family's name, as AURORA json files write it in their `task` field.
    pub fn name(self) -> &'static str {
        match self {
            Family::Kubric => "kubric",
            Family::Something => "something",
            Family::Whatsup => "whatsup",
            Family::Magicbrush => "magicbrush",
        }
    }
}

/// Which way a push goes, as the camera sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Towards the left edge of the table.
    Left,
    /// Towards the right edge of the table.
    Right,
}

/// Where an object ends up relative to an anchor object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// In the slot left of the anchor.
    LeftOf,
    /// In the slot right of the anchor.
    RightOf,
    /// In the slot in front of the anchor (towards the camera).
    InFrontOf,
    /// In the slot behind the anchor.
    Behind,
    /// Standing on the anchor.
    OnTopOf,
}

impl Relation {
    pub(crate) const ALL: [Relation; 5] = [
        Relation::LeftOf,
        Relation::RightOf,
        Relation::InFrontOf,
        Relation::Behind,
        Relation::OnTopOf,
    ];
    /// Slot offset (rows, cols) from the anchor for the directional relations.
    pub(super) fn offset(self) -> Option<(i8, i8)> {
        match self {
            Relation::LeftOf => Some((0, -1)),
            Relation::RightOf => Some((0, 1)),
            Relation::InFrontOf => Some((1, 0)),
            Relation::Behind => Some((-1, 0)),
            Relation::OnTopOf => None,
        }
    }
}

/// One structured action. Objects are named by their colour, which is unique in a scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Move an object to a free slot.
    MoveTo {
        /// The object to move.
        object: Color,
        /// Where it goes.
        slot: Slot,
    },
    /// Put a new object on the table.
    Add {
        /// The new object's shape.
        shape: Shape,
        /// Its colour (no object in the scene may have it yet).
        color: Color,
        /// Its size.
        size: Size,
        /// The free slot it stands in.
        slot: Slot,
    },
    /// Take an object (with nothing on or in it) off the table.
    Remove {
        /// The object to remove.
        object: Color,
    },
    /// Push an object standing on the table one slot sideways.
    Push {
        /// The object to push.
        object: Color,
        /// Which way.
        side: Side,
    },
    /// Put an object into an open container.
    PutInto {
        /// The object to put in.
        object: Color,
        /// The open bowl or box.
        container: Color,
    },
    /// Take an object out of a container onto a free slot near it.
    TakeOut {
        /// The object to take out.
        object: Color,
        /// The container holding it.
        container: Color,
    },
    /// Turn a bowl or cone upside down.
    TurnUpsideDown {
        /// The object to turn over.
        object: Color,
    },
    /// Turn an upside-down object upright (a bowl scoops up what it covered).
    TurnUpright {
        /// The object to turn back.
        object: Color,
    },
    /// Open a box's lid.
    Open {
        /// The box.
        object: Color,
    },
    /// Close a box's lid.
    Close {
        /// The box.
        object: Color,
    },
    /// Hide an object under an upright bowl, which is turned over onto it.
    Cover {
        /// The object to hide.
        object: Color,
        /// The bowl that covers it.
        cover: Color,
    },
    /// Place an object in a relation to another (left of, on top of, ...).
    Relate {
        /// The object to place.
        object: Color,
        /// Where it goes relative to the anchor.
        relation: Relation,
        /// The object it is placed by.
        anchor: Color,
    },
    /// Give an object a colour no other object has.
    Recolor {
        /// The object to recolour (named by its current colour).
        object: Color,
        /// Its new colour.
        color: Color,
    },
    /// Make an object small or large.
    Resize {
        /// The object to resize.
        object: Color,
        /// Its new size.
        size: Size,
    },
    /// Erase an object from the picture (the edit-style twin of `Remove`).
    Erase {
        /// The object to erase.
        object: Color,
    },
}

/// Why an action cannot happen in a scene.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("action refused: {0}")]
pub struct ActionError(pub String);

impl Action {
    /// The AURORA-Bench family the action belongs to.
    pub fn family(&self) -> Family {
        use Action::*;
        match self {
            MoveTo { .. } | Add { .. } | Remove { .. } => Family::Kubric,
            Push { .. }
            | PutInto { .. }
            | TakeOut { .. }
            | TurnUpsideDown { .. }
            | TurnUpright { .. }
            | Open { .. }
            | Close { .. }
            | Cover { .. } => Family::Something,
            Relate { .. } => Family::Whatsup,
            Recolor { .. } | Resize { .. } | Erase { .. } => Family::Magicbrush,
        }
    }

    /// The verb class used for stratified sampling ("push", "put_into", ...).
    #[cfg(feature = "fs")]
    pub(crate) fn verb(&self) -> &'static str {
        use Action::*;
        match self {
            MoveTo { .. } => "move",
            Add { .. } => "add",
            Remove { .. } => "remove",
            Push { .. } => "push",
            PutInto { .. } => "put_into",
            TakeOut { .. } => "take_out",
            TurnUpsideDown { .. } => "turn_upside_down",
            TurnUpright { .. } => "turn_upright",
            Open { .. } => "open",
            Close { .. } => "close",
            Cover { .. } => "cover",
            Relate { .. } => "relate",
            Recolor { .. } => "recolor",
            Resize { .. } => "resize",
            Erase { .. } => "erase",
        }
    }

    /// The object the action is about (the new object for `Add`).
    pub(crate) fn subject(&self) -> Color {
        use Action::*;
        match *self {
            MoveTo { object, .. }
            | Remove { object }
            | Push { object, .. }
            | PutInto { object, .. }
            | TakeOut { object, .. }
            | TurnUpsideDown { object }
            | TurnUpright { object }
            | Open { object }
            | Close { object }
            | Cover { object, .. }
            | Relate { object, .. }
            | Recolor { object, .. }
            | Resize { object, .. }
            | Erase { object } => object,
            Add { color, .. } => color,
        }
    }

    /// Every action of `family` that is valid in `scene`, in a fixed order.
    pub fn valid_in(scene: &Scene, family: Family) -> Vec<Action> {
        let mut all = Vec::new();
        let colors = Color::ALL;
        for &object in &colors {
            match family {
                Family::Kubric => {
                    all.extend(Slot::all().map(|slot| Action::MoveTo { object, slot }));
                    all.push(Action::Remove { object });
                    for shape in Shape::ALL {
                        for size in [Size::Small, Size::Large] {
                            all.extend(Slot::all().map(|slot| Action::Add {
                                shape,
                                color: object,
                                size,
                                slot,
                            }));
                        }
                    }
                }
                Family::Something => {
                    all.push(Action::Push {
                        object,
                        side: Side::Left,
                    });
                    all.push(Action::Push {
                        object,
                        side: Side::Right,
                    });
                    all.extend([
                        Action::TurnUpsideDown { object },
                        Action::TurnUpright { object },
                        Action::Open { object },
                        Action::Close { object },
                    ]);
                    for &c in &colors {
                        all.push(Action::PutInto {
                            object,
                            container: c,
                        });
                        all.push(Action::TakeOut {
                            object,
                            container: c,
                        });
                        all.push(Action::Cover { object, cover: c });
                    }
                }
                Family::Whatsup => {
                    for relation in Relation::ALL {
                        all.extend(colors.iter().map(|&anchor| Action::Relate {
                            object,
                            relation,
                            anchor,
                        }));
                    }
                }
                Family::Magicbrush => {
                    all.extend(
                        colors
                            .iter()
                            .map(|&color| Action::Recolor { object, color }),
                    );
                    all.push(Action::Resize {
                        object,
                        size: Size::Small,
                    });
                    all.push(Action::Resize {
                        object,
                        size: Size::Large,
                    });
                    all.push(Action::Erase { object });
                }
            }
        }
        all.retain(|a| a.apply(scene).is_ok());
        all
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            serde_json::to_string(self).map_err(|_| fmt::Error)?
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::scene::{Object, Place};

    fn scene() -> Scene {
        Scene {
            objects: vec![
                Object::new(
                    Shape::Cube,
                    Color::Red,
                    Size::Large,
                    Place::Table(Slot::new(1, 1)),
                ),
                Object::new(
                    Shape::Bowl,
                    Color::Blue,
                    Size::Large,
                    Place::Table(Slot::new(0, 0)),
                ),
                Object::new(
                    Shape::Sphere,
                    Color::Green,
                    Size::Small,
                    Place::Table(Slot::new(2, 2)),
                ),
                Object::new(
                    Shape::Box,
                    Color::Yellow,
                    Size::Large,
                    Place::Table(Slot::new(2, 0)),
                ),
                Object::new(
                    Shape::Cone,
                    Color::Pink,
                    Size::Small,
                    Place::Table(Slot::new(0, 2)),
                ),
            ],
        }
    }

    fn apply(s: &Scene, a: Action) -> Scene {
        a.apply(s).unwrap_or_else(|e| panic!("{a:?}: {e}"))
    }

    #[test]
    fn kubric_moves_adds_and_removes() {
        let s = scene();
        let t = apply(
            &s,
            Action::MoveTo {
                object: Color::Red,
                slot: Slot::new(0, 1),
            },
        );
        assert_eq!(
            t.get(Color::Red).unwrap().place,
            Place::Table(Slot::new(0, 1))
        );
        let t = apply(
            &s,
            Action::Add {
                shape: Shape::Cylinder,
                color: Color::Cyan,
                size: Size::Small,
                slot: Slot::new(1, 0),
            },
        );
        assert_eq!(t.objects.len(), 6);
        let t = apply(
            &s,
            Action::Remove {
                object: Color::Green,
            },
        );
        assert!(t.get(Color::Green).is_none());
        assert_eq!(
            Action::Remove {
                object: Color::Green
            }
            .family(),
            Family::Kubric
        );
    }

    #[test]
    fn something_actions_change_state_as_specified() {
        let s = scene();
        let t = apply(
            &s,
            Action::Push {
                object: Color::Red,
                side: Side::Left,
            },
        );
        assert_eq!(
            t.get(Color::Red).unwrap().place,
            Place::Table(Slot::new(1, 0))
        );
        let t = apply(
            &s,
            Action::PutInto {
                object: Color::Green,
                container: Color::Blue,
            },
        );
        assert_eq!(
            t.get(Color::Green).unwrap().place,
            Place::Inside(Color::Blue)
        );
        let u = apply(
            &t,
            Action::TakeOut {
                object: Color::Green,
                container: Color::Blue,
            },
        );
        assert_eq!(
            u.get(Color::Green).unwrap().place,
            Place::Table(Slot::new(1, 0)),
            "in front of the bowl first"
        );
        let t = apply(
            &s,
            Action::TurnUpsideDown {
                object: Color::Pink,
            },
        );
        assert!(t.get(Color::Pink).unwrap().upside_down);
        let t2 = apply(
            &t,
            Action::TurnUpright {
                object: Color::Pink,
            },
        );
        assert_eq!(t2, s);
        let t = apply(
            &s,
            Action::Open {
                object: Color::Yellow,
            },
        );
        assert!(t.get(Color::Yellow).unwrap().lid_open);
        assert_eq!(
            apply(
                &t,
                Action::Close {
                    object: Color::Yellow
                }
            ),
            s
        );
        let t = apply(
            &s,
            Action::Cover {
                object: Color::Green,
                cover: Color::Blue,
            },
        );
        assert_eq!(
            t.get(Color::Green).unwrap().place,
            Place::Under(Color::Blue)
        );
        let bowl = t.get(Color::Blue).unwrap();
        assert!(bowl.upside_down && bowl.place == Place::Table(Slot::new(2, 2)));
        let t2 = apply(
            &t,
            Action::TurnUpright {
                object: Color::Blue,
            },
        );
        assert_eq!(
            t2.get(Color::Green).unwrap().place,
            Place::Inside(Color::Blue)
        );
    }

    #[test]
    fn whatsup_and_magicbrush() {
        let s = scene();
        let t = apply(
            &s,
            Action::Relate {
                object: Color::Green,
                relation: Relation::Behind,
                anchor: Color::Red,
            },
        );
        assert_eq!(
            t.get(Color::Green).unwrap().place,
            Place::Table(Slot::new(0, 1))
        );
        let t = apply(
            &s,
            Action::Relate {
                object: Color::Green,
                relation: Relation::OnTopOf,
                anchor: Color::Red,
            },
        );
        assert_eq!(t.get(Color::Green).unwrap().place, Place::OnTop(Color::Red));
        let t = apply(
            &t,
            Action::Recolor {
                object: Color::Red,
                color: Color::Purple,
            },
        );
        assert_eq!(
            t.get(Color::Green).unwrap().place,
            Place::OnTop(Color::Purple),
            "references follow a recolour"
        );
        let t = apply(
            &s,
            Action::Resize {
                object: Color::Red,
                size: Size::Small,
            },
        );
        assert_eq!(t.get(Color::Red).unwrap().size, Size::Small);
    }

    #[test]
    fn invalid_actions_are_refused_with_a_reason() {
        let s = scene();
        let cases = [
            Action::PutInto {
                object: Color::Green,
                container: Color::Red,
            },
            Action::PutInto {
                object: Color::Red,
                container: Color::Blue,
            },
            Action::Push {
                object: Color::Green,
                side: Side::Right,
            },
            Action::Open { object: Color::Red },
            Action::TurnUpsideDown { object: Color::Red },
            Action::MoveTo {
                object: Color::Red,
                slot: Slot::new(0, 0),
            },
            Action::Recolor {
                object: Color::Red,
                color: Color::Blue,
            },
            Action::Remove {
                object: Color::Cyan,
            },
            Action::Relate {
                object: Color::Green,
                relation: Relation::OnTopOf,
                anchor: Color::Pink,
            },
            Action::Add {
                shape: Shape::Cube,
                color: Color::Red,
                size: Size::Small,
                slot: Slot::new(1, 0),
            },
            Action::Close {
                object: Color::Yellow,
            },
        ];
        for a in cases {
            let err = a.apply(&s).expect_err(&format!("{a:?} must be refused"));
            assert!(err.0.len() > 8, "reason for {a:?} is too terse: {err}");
        }
    }

    #[test]
    fn every_family_has_valid_actions_and_they_keep_scenes_valid() {
        let s = scene();
        for fam in Family::ALL {
            let acts = Action::valid_in(&s, fam);
            assert!(!acts.is_empty(), "{fam:?}");
            for a in acts {
                assert_eq!(a.family(), fam);
                a.apply(&s).unwrap().validate().unwrap();
            }
        }
    }
}
