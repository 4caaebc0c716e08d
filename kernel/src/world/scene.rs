//! The state of the embedded tabletop world: objects, their attributes and where they are.
//!
//! A table holds a 3 x 3 grid of slots (rows back/middle/front, columns left/center/right).
//! Colours are unique within a scene, so a colour names an object unambiguously; every
//! action and every referring expression uses it as the object's identity.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Number of slot columns (left, center, right) and rows (back, middle, front).
pub(crate) const COLS: u8 = 3;
pub(crate) const ROWS: u8 = 3;
/// Distance between neighbouring slot centres, world units.
pub(crate) const SLOT_SPACING: f32 = 0.9;

/// An object's form; it decides what the object can do (hold, cover, flip, support).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// A cube; something can stand on it.
    Cube,
    /// A sphere.
    Sphere,
    /// A cylinder; something can stand on it.
    Cylinder,
    /// A cone; it looks different upside down.
    Cone,
    /// An open container; it can be turned upside down (then it covers what is under it).
    Bowl,
    /// A container with a lid that opens and closes.
    Box,
}

impl Shape {
    pub(crate) const ALL: [Shape; 6] = [
        Shape::Cube,
        Shape::Sphere,
        Shape::Cylinder,
        Shape::Cone,
        Shape::Bowl,
        Shape::Box,
    ];
    pub(crate) fn name(self) -> &'static str {
        match self {
            Shape::Cube => "cube",
            Shape::Sphere => "sphere",
            Shape::Cylinder => "cylinder",
            Shape::Cone => "cone",
            Shape::Bowl => "bowl",
            Shape::Box => "box",
        }
    }
    pub(crate) fn is_container(self) -> bool {
        matches!(self, Shape::Bowl | Shape::Box)
    }
    /// Shapes that look different upside down.
    pub(crate) fn can_flip(self) -> bool {
        matches!(self, Shape::Cone | Shape::Bowl)
    }
    /// Height of the shape's top above its base for characteristic radius `r`.
    pub(crate) fn height(self, r: f32) -> f32 {
        match self {
            Shape::Cube => 1.5 * r,
            Shape::Sphere => 2.0 * r,
            Shape::Cylinder | Shape::Cone => 2.2 * r,
            Shape::Bowl => 1.15 * r,
            Shape::Box => 1.6 * r,
        }
    }
    /// Shapes with a flat top something can stand on.
    pub(crate) fn can_support(self) -> bool {
        matches!(self, Shape::Cube | Shape::Cylinder | Shape::Box)
    }
}

/// An object's colour, unique in a scene: actions and captions name objects by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // each variant is the colour it names
pub enum Color {
    Red,
    Yellow,
    Green,
    Cyan,
    Blue,
    Purple,
    Pink,
}

impl Color {
    pub(crate) const ALL: [Color; 7] = [
        Color::Red,
        Color::Yellow,
        Color::Green,
        Color::Cyan,
        Color::Blue,
        Color::Purple,
        Color::Pink,
    ];
    pub(crate) fn name(self) -> &'static str {
        match self {
            Color::Red => "red",
            Color::Yellow => "yellow",
            Color::Green => "green",
            Color::Cyan => "cyan",
            Color::Blue => "blue",
            Color::Purple => "purple",
            Color::Pink => "pink",
        }
    }
    /// Linear RGB albedo. Hues are at least 45 degrees apart so shading and a lossy image
    /// tokenizer cannot turn one colour into another.
    pub(crate) fn albedo(self) -> [f32; 3] {
        match self {
            Color::Red => [0.80, 0.06, 0.05],
            Color::Yellow => [0.85, 0.70, 0.04],
            Color::Green => [0.08, 0.62, 0.10],
            Color::Cyan => [0.05, 0.62, 0.70],
            Color::Blue => [0.08, 0.16, 0.85],
            Color::Purple => [0.45, 0.08, 0.80],
            Color::Pink => [0.85, 0.10, 0.55],
        }
    }
    /// Hue in degrees of the rendered colour, used by the recogniser.
    pub(crate) fn hue(self) -> f32 {
        let [r, g, b] = self.albedo().map(f32::sqrt);
        super::recognise::hue_of(r, g, b)
    }
}

/// An object's size (its radius, see `Size::radius`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    /// The smaller size.
    Small,
    /// The larger size.
    Large,
}

impl Size {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Large => "large",
        }
    }
    /// Characteristic radius in world units (slots are [`SLOT_SPACING`] apart).
    pub(crate) fn radius(self) -> f32 {
        match self {
            Size::Small => 0.22,
            Size::Large => 0.34,
        }
    }
}

/// A cell of the table grid. Row 0 is the back, column 0 the left (as the camera sees it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Slot {
    pub(crate) row: u8,
    pub(crate) col: u8,
}

impl Slot {
    pub(crate) fn new(row: u8, col: u8) -> Self {
        Slot { row, col }
    }
    pub(crate) fn all() -> impl Iterator<Item = Slot> {
        (0..ROWS).flat_map(|row| (0..COLS).map(move |col| Slot { row, col }))
    }
    /// The neighbouring slot `(drow, dcol)` away, if it is on the table.
    pub(crate) fn offset(self, drow: i8, dcol: i8) -> Option<Slot> {
        let row = self.row as i8 + drow;
        let col = self.col as i8 + dcol;
        ((0..ROWS as i8).contains(&row) && (0..COLS as i8).contains(&col))
            .then(|| Slot::new(row as u8, col as u8))
    }
    /// Centre of the slot on the table plane, in world units (x right, z toward the camera).
    pub(crate) fn center(self) -> (f32, f32) {
        (
            SLOT_SPACING * (self.col as f32 - 1.0),
            SLOT_SPACING * (self.row as f32 - 1.0),
        )
    }
}

/// Where an object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// Standing on the table in this slot.
    Table(Slot),
    /// Standing on top of the object with this colour.
    OnTop(Color),
    /// Inside the open container with this colour.
    Inside(Color),
    /// Hidden under the upside-down bowl with this colour.
    Under(Color),
}

/// One object on the table: its shape, colour, size, place and state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Object {
    pub(crate) shape: Shape,
    pub(crate) color: Color,
    pub(crate) size: Size,
    pub(crate) place: Place,
    #[serde(default)]
    pub(crate) upside_down: bool,
    /// Only meaningful for boxes.
    #[serde(default)]
    pub(crate) lid_open: bool,
}

impl Object {
    pub(crate) fn new(shape: Shape, color: Color, size: Size, place: Place) -> Self {
        Object {
            shape,
            color,
            size,
            place,
            upside_down: false,
            lid_open: false,
        }
    }
    /// Whether something else can be put inside it right now.
    pub(crate) fn is_open_container(&self) -> bool {
        match self.shape {
            Shape::Bowl => !self.upside_down,
            Shape::Box => self.lid_open,
            _ => false,
        }
    }
    /// Height of the object's top above its base, in world units.
    pub(crate) fn height(&self) -> f32 {
        self.shape.height(self.size.radius())
    }
    /// "the red cube"
    pub fn describe(&self) -> String {
        format!("the {} {}", self.color.name(), self.shape.name())
    }
}

/// A whole tabletop: at most one object per colour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scene {
    /// The objects on the table, at most one per colour.
    pub objects: Vec<Object>,
}

/// Why a scene is not physically consistent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid scene: {0}")]
pub(crate) struct SceneError(pub String);

impl Scene {
    pub(crate) fn get(&self, color: Color) -> Option<&Object> {
        self.objects.iter().find(|o| o.color == color)
    }
    pub(crate) fn get_mut(&mut self, color: Color) -> Option<&mut Object> {
        self.objects.iter_mut().find(|o| o.color == color)
    }
    /// The object standing directly on the table in `slot`, if any.
    pub(crate) fn at(&self, slot: Slot) -> Option<&Object> {
        self.objects.iter().find(|o| o.place == Place::Table(slot))
    }
    /// Objects whose place refers to `color` (on top, inside or under it).
    pub(crate) fn dependents(&self, color: Color) -> impl Iterator<Item = &Object> {
        self.objects.iter().filter(move |o| {
            matches!(o.place, Place::OnTop(c) | Place::Inside(c) | Place::Under(c) if c == color)
        })
    }
    /// The table slot an object ultimately stands over.
    pub(crate) fn slot_of(&self, color: Color) -> Option<Slot> {
        let mut obj = self.get(color)?;
        for _ in 0..self.objects.len() {
            match obj.place {
                Place::Table(s) => return Some(s),
                Place::OnTop(c) | Place::Inside(c) | Place::Under(c) => obj = self.get(c)?,
            }
        }
        None
    }
    /// Objects a camera can see (everything but what hides under a bowl).
    pub(crate) fn visible(&self) -> impl Iterator<Item = &Object> {
        self.objects
            .iter()
            .filter(|o| !matches!(o.place, Place::Under(_)))
    }

    /// Whether two scenes hold the same objects in the same states, whatever their order (an
    /// object removed and added again comes last in the list).
    pub fn same_state(&self, other: &Scene) -> bool {
        let sorted = |s: &Scene| {
            let mut objects = s.objects.clone();
            objects.sort_by_key(|o| o.color);
            objects
        };
        sorted(self) == sorted(other)
    }

    /// Checks every physical rule of the world; actions keep scenes valid.
    pub(crate) fn validate(&self) -> Result<(), SceneError> {
        let err = |m: String| Err(SceneError(m));
        for (i, o) in self.objects.iter().enumerate() {
            if self.objects[..i].iter().any(|p| p.color == o.color) {
                return err(format!("two objects are {}", o.color.name()));
            }
            if o.upside_down && !o.shape.can_flip() {
                return err(format!("{} cannot be upside down", o.describe()));
            }
            if o.lid_open && o.shape != Shape::Box {
                return err(format!("{} has no lid", o.describe()));
            }
            match o.place {
                Place::Table(s) => {
                    if s.row >= ROWS || s.col >= COLS {
                        return err(format!("{} is off the table", o.describe()));
                    }
                    if self.objects[..i].iter().any(|p| p.place == o.place) {
                        return err(format!(
                            "two objects stand in the same slot as {}",
                            o.describe()
                        ));
                    }
                }
                Place::OnTop(c) | Place::Inside(c) | Place::Under(c) => {
                    let Some(base) = self.get(c) else {
                        return err(format!(
                            "{} refers to a missing {} object",
                            o.describe(),
                            c.name()
                        ));
                    };
                    if !matches!(base.place, Place::Table(_)) {
                        return err(format!(
                            "{} rests on something that is not on the table",
                            o.describe()
                        ));
                    }
                    if self.dependents(c).count() > 1 {
                        return err(format!("{} holds more than one object", base.describe()));
                    }
                    if self.dependents(o.color).next().is_some() {
                        return err(format!(
                            "{} is stacked and also holds something",
                            o.describe()
                        ));
                    }
                    let ok = match o.place {
                        Place::OnTop(_) => {
                            base.shape.can_support()
                                && !(base.shape == Shape::Box && base.lid_open)
                                && !o.shape.is_container()
                        }
                        Place::Inside(_) => {
                            base.is_open_container()
                                && base.size == Size::Large
                                && o.size == Size::Small
                                && !o.shape.is_container()
                        }
                        _ => {
                            base.shape == Shape::Bowl
                                && base.upside_down
                                && base.size == Size::Large
                                && o.size == Size::Small
                                && !o.shape.is_container()
                        }
                    };
                    if !ok {
                        return err(format!(
                            "{} cannot be where it is relative to {}",
                            o.describe(),
                            base.describe()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = ["back", "middle", "front"][self.row as usize];
        let col = ["left", "center", "right"][self.col as usize];
        write!(f, "{row} {col}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_state_ignores_the_order_of_objects_only() {
        let a = Object::new(
            Shape::Cube,
            Color::Red,
            Size::Small,
            Place::Table(Slot::new(0, 0)),
        );
        let b = Object::new(
            Shape::Sphere,
            Color::Blue,
            Size::Large,
            Place::Table(Slot::new(1, 2)),
        );
        let ab = Scene {
            objects: vec![a, b],
        };
        let ba = Scene {
            objects: vec![b, a],
        };
        assert!(ab.same_state(&ba) && ab != ba);
        let mut moved = b;
        moved.place = Place::Table(Slot::new(1, 1));
        assert!(!ab.same_state(&Scene {
            objects: vec![moved, a]
        }));
        assert!(!ab.same_state(&Scene { objects: vec![a] }));
    }

    fn obj(shape: Shape, color: Color, size: Size, place: Place) -> Object {
        Object::new(shape, color, size, place)
    }

    #[test]
    fn validate_catches_duplicates_and_impossible_stacks() {
        let a = obj(
            Shape::Cube,
            Color::Red,
            Size::Large,
            Place::Table(Slot::new(0, 0)),
        );
        let mut s = Scene {
            objects: vec![a, a],
        };
        assert!(s.validate().is_err(), "duplicate colour must be refused");
        s.objects[1] = obj(
            Shape::Sphere,
            Color::Blue,
            Size::Small,
            Place::Inside(Color::Red),
        );
        assert!(s.validate().is_err(), "a cube is not a container");
        s.objects[1].place = Place::OnTop(Color::Red);
        assert!(s.validate().is_ok());
        assert_eq!(s.slot_of(Color::Blue), Some(Slot::new(0, 0)));
        s.objects[0].shape = Shape::Sphere;
        assert!(s.validate().is_err(), "nothing stands on a sphere");
    }

    #[test]
    fn slot_offsets_stay_on_the_table() {
        assert_eq!(Slot::new(0, 0).offset(0, -1), None);
        assert_eq!(Slot::new(1, 1).offset(1, 1), Some(Slot::new(2, 2)));
        assert_eq!(Slot::all().count(), 9);
    }
}
