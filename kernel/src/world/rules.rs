//! The world's physical rules: what each action does to a scene, and when it is refused.
//!
//! [`Action::apply`] either returns the next scene or refuses with a reason naming the objects
//! involved; the next scene is checked for consistency, so an invalid scene is never rendered.
//! Every rule about the subject of an action (the object it acts on) is a method of
//! [`Subject`], one per kind of action.

use super::action::{Action, ActionError, Relation, Side};
use super::scene::{Color, Object, Place, Scene, Shape, Size, Slot};

type Result<T> = std::result::Result<T, ActionError>;

fn refuse<T>(reason: impl Into<String>) -> Result<T> {
    Err(ActionError(reason.into()))
}

/// The scene if it is physically consistent, else the refusal naming why.
fn checked(scene: Scene) -> Result<Scene> {
    scene.validate().map_err(|e| ActionError(e.0))?;
    Ok(scene)
}

impl Action {
    /// The scene after the action, or the reason it cannot happen.
    pub fn apply(&self, scene: &Scene) -> Result<Scene> {
        use Action::*;
        if let Add {
            shape,
            color,
            size,
            slot,
        } = *self
        {
            return add(scene, shape, color, size, slot);
        }
        let s = Subject::find(scene, self.subject())?;
        let next = match *self {
            Add { .. } => unreachable!("handled above"),
            MoveTo { slot, .. } => s.move_to(slot),
            Remove { .. } | Erase { .. } => s.remove(),
            Push { side, .. } => s.push(side),
            PutInto { container, .. } => s.put_into(container),
            TakeOut { container, .. } => s.take_out(container),
            TurnUpsideDown { .. } => s.turn_upside_down(),
            TurnUpright { .. } => s.turn_upright(),
            Open { .. } => s.set_lid(true),
            Close { .. } => s.set_lid(false),
            Cover { cover, .. } => s.cover_with(cover),
            Relate {
                relation, anchor, ..
            } => s.relate(relation, anchor),
            Recolor { color, .. } => s.recolor(color),
            Resize { size, .. } => s.resize(size),
        }?;
        checked(next)
    }
}

/// A new object on a free slot, in a colour the scene does not have yet.
fn add(scene: &Scene, shape: Shape, color: Color, size: Size, slot: Slot) -> Result<Scene> {
    if scene.get(color).is_some() {
        return refuse(format!("there is already a {} object", color.name()));
    }
    if scene.at(slot).is_some() {
        return refuse(format!("the {slot} of the table is taken"));
    }
    let mut next = scene.clone();
    next.objects
        .push(Object::new(shape, color, size, Place::Table(slot)));
    checked(next)
}

/// The object an action acts on, visible in `scene`.
struct Subject<'a> {
    scene: &'a Scene,
    color: Color,
    obj: Object,
    /// Whether something rests on it, in it or under it.
    holds_something: bool,
}

impl<'a> Subject<'a> {
    /// The object of colour `color`, refused if the scene has none or it is hidden.
    fn find(scene: &'a Scene, color: Color) -> Result<Self> {
        let Some(obj) = scene.get(color).copied() else {
            return refuse(format!("there is no {} object", color.name()));
        };
        if matches!(obj.place, Place::Under(_)) {
            return refuse(format!("{} is hidden under a bowl", obj.describe()));
        }
        Ok(Subject {
            scene,
            color,
            obj,
            holds_something: scene.dependents(color).next().is_some(),
        })
    }

    /// Another visible object the action involves (a container, a bowl, an anchor).
    fn other(&self, c: Color) -> Result<Object> {
        if c == self.color {
            return refuse("an object cannot act on itself");
        }
        match self.scene.get(c) {
            Some(o) if !matches!(o.place, Place::Under(_)) => Ok(*o),
            _ => refuse(format!("there is no visible {} object", c.name())),
        }
    }

    /// Whether the subject can go to `slot`.
    fn free(&self, slot: Slot) -> Result<()> {
        match self.scene.at(slot) {
            None => Ok(()),
            Some(o) if o.color == self.color => {
                refuse(format!("{} is already there", self.obj.describe()))
            }
            Some(o) => refuse(format!("{} is in the way", o.describe())),
        }
    }

    /// The scene with the subject changed by `change`.
    fn with(&self, change: impl FnOnce(&mut Object)) -> Scene {
        let mut next = self.scene.clone();
        change(
            next.get_mut(self.color)
                .expect("the subject is in the scene it was found in"),
        );
        next
    }

    fn move_to(&self, slot: Slot) -> Result<Scene> {
        self.free(slot)?;
        if self.obj.shape == Shape::Bowl && self.obj.upside_down && self.holds_something {
            return refuse(format!("{} covers something", self.obj.describe()));
        }
        Ok(self.with(|o| o.place = Place::Table(slot)))
    }

    fn remove(&self) -> Result<Scene> {
        if self.holds_something {
            return refuse(format!("something rests on or in {}", self.obj.describe()));
        }
        let mut next = self.scene.clone();
        next.objects.retain(|o| o.color != self.color);
        Ok(next)
    }

    fn push(&self, side: Side) -> Result<Scene> {
        let Place::Table(slot) = self.obj.place else {
            return refuse(format!(
                "{} is not standing on the table",
                self.obj.describe()
            ));
        };
        let dcol = if side == Side::Left { -1 } else { 1 };
        let Some(to) = slot.offset(0, dcol) else {
            return refuse(format!("{} is already at the edge", self.obj.describe()));
        };
        self.free(to)?;
        Ok(self.with(|o| o.place = Place::Table(to)))
    }

    fn put_into(&self, container: Color) -> Result<Scene> {
        let c = self.other(container)?;
        if !c.is_open_container() {
            return refuse(format!("{} is not an open container", c.describe()));
        }
        if self.holds_something {
            return refuse(format!("something rests on {}", self.obj.describe()));
        }
        if self.obj.place == Place::Inside(container) {
            return refuse(format!(
                "{} is already inside {}",
                self.obj.describe(),
                c.describe()
            ));
        }
        Ok(self.with(|o| o.place = Place::Inside(container)))
    }

    /// Out of `container` onto the first free slot near it (in front first), else anywhere.
    fn take_out(&self, container: Color) -> Result<Scene> {
        let c = self.other(container)?;
        if self.obj.place != Place::Inside(container) {
            return refuse(format!(
                "{} is not inside {}",
                self.obj.describe(),
                c.describe()
            ));
        }
        let Some(base) = self.scene.slot_of(container) else {
            return refuse(format!("{} is not on the table", c.describe()));
        };
        let prefer = [
            (1, 0),
            (0, 1),
            (0, -1),
            (-1, 0),
            (1, 1),
            (1, -1),
            (-1, 1),
            (-1, -1),
        ];
        let to = prefer
            .iter()
            .filter_map(|&(dr, dc)| base.offset(dr, dc))
            .chain(Slot::all())
            .find(|s| self.scene.at(*s).is_none());
        let Some(to) = to else {
            return refuse("there is no free place on the table");
        };
        Ok(self.with(|o| o.place = Place::Table(to)))
    }

    fn turn_upside_down(&self) -> Result<Scene> {
        let d = self.obj.describe();
        if !self.obj.shape.can_flip() {
            return refuse(format!("turning {d} over changes nothing"));
        }
        if self.obj.upside_down {
            return refuse(format!("{d} is already upside down"));
        }
        if self.holds_something {
            return refuse(format!("{d} holds something"));
        }
        Ok(self.with(|o| o.upside_down = true))
    }

    /// Upright again; a bowl scoops up what it covered.
    fn turn_upright(&self) -> Result<Scene> {
        if !self.obj.upside_down {
            return refuse(format!("{} is not upside down", self.obj.describe()));
        }
        let mut next = self.with(|o| o.upside_down = false);
        for o in next.objects.iter_mut() {
            if o.place == Place::Under(self.color) {
                o.place = Place::Inside(self.color);
            }
        }
        Ok(next)
    }

    /// Open (`open`) or close a box's lid.
    fn set_lid(&self, open: bool) -> Result<Scene> {
        let d = self.obj.describe();
        if self.obj.shape != Shape::Box {
            return refuse(format!("{d} has no lid"));
        }
        if self.obj.lid_open == open {
            let state = if open { "open" } else { "closed" };
            return refuse(format!("{d} is already {state}"));
        }
        if self.holds_something {
            return refuse(format!("something rests on or in {d}"));
        }
        Ok(self.with(|o| o.lid_open = open))
    }

    /// The upright bowl `cover` turned over onto the subject, which ends up under it.
    fn cover_with(&self, cover: Color) -> Result<Scene> {
        let bowl = self.other(cover)?;
        if bowl.shape != Shape::Bowl || bowl.upside_down {
            return refuse(format!("{} is not an upright bowl", bowl.describe()));
        }
        let Place::Table(slot) = self.obj.place else {
            return refuse(format!(
                "{} is not standing on the table",
                self.obj.describe()
            ));
        };
        if self.scene.dependents(cover).next().is_some() || self.holds_something {
            return refuse("both objects must be empty to cover one with the other");
        }
        if !matches!(bowl.place, Place::Table(_)) {
            return refuse(format!("{} is not on the table", bowl.describe()));
        }
        let mut next = self.with(|o| o.place = Place::Under(cover));
        let b = next
            .get_mut(cover)
            .expect("the bowl is in the scene it was found in");
        b.place = Place::Table(slot);
        b.upside_down = true;
        Ok(next)
    }

    fn relate(&self, relation: Relation, anchor: Color) -> Result<Scene> {
        let a = self.other(anchor)?;
        let Place::Table(aslot) = a.place else {
            return refuse(format!("{} is not standing on the table", a.describe()));
        };
        match relation.offset() {
            Some((dr, dc)) => {
                let Some(to) = aslot.offset(dr, dc) else {
                    return refuse(format!("there is no room on that side of {}", a.describe()));
                };
                self.free(to)?;
                Ok(self.with(|o| o.place = Place::Table(to)))
            }
            None => {
                if self.obj.place == Place::OnTop(anchor) {
                    return refuse(format!("{} is already on top", self.obj.describe()));
                }
                if self.holds_something {
                    return refuse(format!("something rests on or in {}", self.obj.describe()));
                }
                Ok(self.with(|o| o.place = Place::OnTop(anchor)))
            }
        }
    }

    /// The subject in colour `to`; what rests on, in or under it follows the new colour.
    fn recolor(&self, to: Color) -> Result<Scene> {
        if to == self.color {
            return refuse(format!("{} is already {}", self.obj.describe(), to.name()));
        }
        if self.scene.get(to).is_some() {
            return refuse(format!("there is already a {} object", to.name()));
        }
        let mut next = self.scene.clone();
        for o in next.objects.iter_mut() {
            if o.color == self.color {
                o.color = to;
            }
            match &mut o.place {
                Place::OnTop(c) | Place::Inside(c) | Place::Under(c) if *c == self.color => *c = to,
                _ => {}
            }
        }
        Ok(next)
    }

    fn resize(&self, size: Size) -> Result<Scene> {
        if self.obj.size == size {
            return refuse(format!(
                "{} is already {}",
                self.obj.describe(),
                size.name()
            ));
        }
        Ok(self.with(|o| o.size = size))
    }
}
