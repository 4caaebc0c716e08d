//! The world's language: paraphrase templates that turn a structured [`Action`] into text, and
//! the parser that maps text in that language back to the structured action.
//!
//! Every action kind has at least six templates with different verbs and referring
//! expressions. The parser is built from the same templates (each becomes an anchored regular
//! expression), so rendering and parsing can never drift apart.

use super::action::{Action, Relation, Side};
use super::scene::{Color, Object, Place, Scene, Shape, Size, Slot};
use regex::{Captures, Regex};
use std::sync::LazyLock;

/// Text that is not in the world's language.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse action text {text:?}: {reason}")]
pub struct ParseError {
    pub(crate) text: String,
    pub(crate) reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    MoveTo,
    Add,
    Remove,
    Push,
    PutInto,
    TakeOut,
    UpsideDown,
    Upright,
    Open,
    Close,
    Cover,
    Relate,
    Recolor,
    Resize,
    Erase,
}

/// Placeholders: {o} subject, {a} second object, {slot}, {side}, {rel}, {c} colour,
/// {new} a new object, {cmp}/{sz}/{scale}/{grow} size words.
const TEMPLATES: &[(Kind, &[&str])] = &[
    (
        Kind::MoveTo,
        &[
            "move {o} to the {slot}",
            "slide {o} over to the {slot} of the table",
            "relocate {o} to the {slot} spot",
            "carry {o} to the {slot}",
            "put {o} at the {slot} position",
            "shift {o} to the {slot} of the table",
            "take {o} and place it at the {slot}",
        ],
    ),
    (
        Kind::Add,
        &[
            "add {new} at the {slot}",
            "place {new} in the {slot} of the table",
            "put {new} on the {slot} spot",
            "insert {new} at the {slot}",
            "make {new} appear at the {slot}",
            "introduce {new} to the {slot} of the table",
        ],
    ),
    (
        Kind::Remove,
        &[
            "remove {o}",
            "take {o} off the table",
            "get rid of {o}",
            "take away {o}",
            "clear {o} from the table",
            "pick up {o} and take it away",
        ],
    ),
    (
        Kind::Push,
        &[
            "push {o} to the {side}",
            "nudge {o} one step to the {side}",
            "shove {o} to the {side}",
            "slide {o} a bit to the {side}",
            "push {o} {side}",
            "move {o} one place to the {side}",
        ],
    ),
    (
        Kind::PutInto,
        &[
            "put {o} into {a}",
            "place {o} inside {a}",
            "drop {o} in {a}",
            "move {o} into {a}",
            "stash {o} in {a}",
            "lower {o} into {a}",
        ],
    ),
    (
        Kind::TakeOut,
        &[
            "take {o} out of {a}",
            "remove {o} from {a}",
            "pull {o} out of {a}",
            "lift {o} out of {a}",
            "get {o} out of {a}",
            "fish {o} out of {a}",
        ],
    ),
    (
        Kind::UpsideDown,
        &[
            "turn {o} upside down",
            "flip {o} over",
            "invert {o}",
            "turn {o} over",
            "put {o} upside down",
            "flip {o} upside down",
        ],
    ),
    (
        Kind::Upright,
        &[
            "turn {o} right side up",
            "set {o} upright",
            "flip {o} back upright",
            "put {o} the right way up",
            "stand {o} upright again",
            "turn {o} back the right way",
        ],
    ),
    (
        Kind::Open,
        &[
            "open {o}",
            "lift the lid of {o}",
            "take the lid off {o}",
            "flip open {o}",
            "open up {o}",
            "raise the lid of {o}",
        ],
    ),
    (
        Kind::Close,
        &[
            "close {o}",
            "shut {o}",
            "put the lid back on {o}",
            "close the lid of {o}",
            "snap {o} shut",
            "lower the lid of {o}",
        ],
    ),
    (
        Kind::Cover,
        &[
            "cover {o} with {a}",
            "hide {o} under {a}",
            "put {a} upside down over {o}",
            "place {a} over {o}",
            "use {a} to cover {o}",
            "conceal {o} beneath {a}",
        ],
    ),
    (
        Kind::Relate,
        &[
            "put {o} {rel} {a}",
            "move {o} {rel} {a}",
            "place {o} {rel} {a}",
            "set {o} down {rel} {a}",
            "position {o} {rel} {a}",
            "arrange it so that {o} is {rel} {a}",
        ],
    ),
    (
        Kind::Recolor,
        &[
            "paint {o} {c}",
            "make {o} {c}",
            "recolor {o} to {c}",
            "change the color of {o} to {c}",
            "turn {o} {c}",
            "dye {o} {c}",
        ],
    ),
    (
        Kind::Resize,
        &[
            "make {o} {cmp}",
            "resize {o} to {sz}",
            "scale {o} {scale}",
            "{grow} {o}",
            "turn {o} into a {sz} one",
            "change {o} to a {sz} size",
        ],
    ),
    (
        Kind::Erase,
        &[
            "erase {o}",
            "delete {o} from the image",
            "make {o} disappear",
            "edit out {o}",
            "remove {o} from the picture",
            "let {o} vanish",
        ],
    ),
];

fn kind_of(action: &Action) -> Kind {
    use Action::*;
    match action {
        MoveTo { .. } => Kind::MoveTo,
        Add { .. } => Kind::Add,
        Remove { .. } => Kind::Remove,
        Push { .. } => Kind::Push,
        PutInto { .. } => Kind::PutInto,
        TakeOut { .. } => Kind::TakeOut,
        TurnUpsideDown { .. } => Kind::UpsideDown,
        TurnUpright { .. } => Kind::Upright,
        Open { .. } => Kind::Open,
        Close { .. } => Kind::Close,
        Cover { .. } => Kind::Cover,
        Relate { .. } => Kind::Relate,
        Recolor { .. } => Kind::Recolor,
        Resize { .. } => Kind::Resize,
        Erase { .. } => Kind::Erase,
    }
}

fn templates(kind: Kind) -> &'static [&'static str] {
    TEMPLATES
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, t)| *t)
        .expect("every kind has templates")
}

/// How many paraphrases exist for this action.
pub(crate) fn template_count(action: &Action) -> usize {
    templates(kind_of(action)).len()
}

fn shape_words(shape: Shape) -> [&'static str; 2] {
    match shape {
        Shape::Cube => ["cube", "block"],
        Shape::Sphere => ["sphere", "ball"],
        Shape::Cylinder => ["cylinder", "can"],
        Shape::Cone => ["cone", "cone"],
        Shape::Bowl => ["bowl", "dish"],
        Shape::Box => ["box", "chest"],
    }
}

fn size_word(size: Size, k: usize) -> &'static str {
    match (size, k % 2) {
        (Size::Small, 0) => "small",
        (Size::Small, _) => "little",
        (Size::Large, 0) => "large",
        (Size::Large, _) => "big",
    }
}

/// A referring expression for `obj`; `style` picks one of seven forms.
fn refer(obj: &Object, style: usize) -> String {
    let c = obj.color.name();
    let [shape, syn] = shape_words(obj.shape);
    match style % 7 {
        0 | 6 => format!("the {c} {shape}"),
        1 => format!("the {c} {syn}"),
        2 => format!("the {shape} that is {c}"),
        3 => format!("the {c} one"),
        4 => format!("the {c} object"),
        _ => format!("the {} {c} {shape}", size_word(obj.size, style / 7)),
    }
}

fn slot_phrase(slot: Slot, k: usize) -> String {
    let row = match (slot.row, k % 2) {
        (0, 0) => "back",
        (0, _) => "rear",
        (1, _) => "middle",
        _ => "front",
    };
    let col = ["left", "center", "right"][slot.col as usize];
    format!("{row} {col}")
}

fn relation_phrase(rel: Relation, k: usize) -> &'static str {
    let options: &[&str] = match rel {
        Relation::LeftOf => &["to the left of", "left of"],
        Relation::RightOf => &["to the right of", "right of"],
        Relation::InFrontOf => &["in front of"],
        Relation::Behind => &["behind", "in back of"],
        Relation::OnTopOf => &["on top of", "onto"],
    };
    options[k % options.len()]
}

/// Renders `action` in the world's language with paraphrase `k` (any number; it wraps).
///
/// `scene` is the scene the action applies to: referring expressions mention shapes and
/// sizes it knows. Returns `None` when the action mentions an object the scene lacks.
pub fn describe(action: &Action, scene: &Scene, k: usize) -> Option<String> {
    use Action::*;
    let kind = kind_of(action);
    let tpls = templates(kind);
    let template = tpls[k % tpls.len()];
    let obj = |c: Color| scene.get(c);
    let mut out = template.to_string();
    let subject = match *action {
        Add { .. } => None,
        _ => Some(obj(action.subject())?),
    };
    if let Some(s) = subject {
        out = out.replace("{o}", &refer(s, k));
    }
    let second = match *action {
        PutInto { container: a, .. }
        | TakeOut { container: a, .. }
        | Cover { cover: a, .. }
        | Relate { anchor: a, .. } => Some(obj(a)?),
        _ => None,
    };
    if let Some(a) = second {
        out = out.replace("{a}", &refer(a, k + 3));
    }
    match *action {
        MoveTo { slot, .. } => out = out.replace("{slot}", &slot_phrase(slot, k)),
        Add {
            shape,
            color,
            size,
            slot,
        } => {
            let size = size_word(size, k);
            let shape = shape_words(shape)[k % 2];
            out = out
                .replace("{new}", &format!("a {size} {} {shape}", color.name()))
                .replace("{slot}", &slot_phrase(slot, k));
        }
        Push { side, .. } => {
            out = out.replace("{side}", if side == Side::Left { "left" } else { "right" })
        }
        Relate { relation, .. } => {
            out = out.replace("{rel}", relation_phrase(relation, k / tpls.len()))
        }
        Recolor { color, .. } => out = out.replace("{c}", color.name()),
        Resize { size, .. } => {
            let large = size == Size::Large;
            out = out
                .replace("{cmp}", if large { "bigger" } else { "smaller" })
                .replace("{sz}", size_word(size, k / tpls.len()))
                .replace("{scale}", if large { "up" } else { "down" })
                .replace("{grow}", if large { "grow" } else { "shrink" });
        }
        _ => {}
    }
    Some(out)
}

/// Every paraphrase of `action` in `scene`, including the variants of relation and size words.
pub(crate) fn paraphrases(action: &Action, scene: &Scene) -> Vec<String> {
    let n = template_count(action);
    let mut out: Vec<String> = (0..n * 2 * 7)
        .filter_map(|k| describe(action, scene, k))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Describes what a camera sees of `scene` in the world's language, for scene captions (image
/// -> text) and drawings (text -> image); `k` picks among the size, shape and row synonyms.
///
/// Objects on the table come in slot order (back to front, left to right), each with what
/// stands on it or lies in it: "a large red cube at the back left with a small blue ball on
/// top, a little open green box at the front right with a small pink can inside". What hides
/// under an upside-down bowl is not mentioned: the camera cannot see it.
pub fn describe_scene(scene: &Scene, k: usize) -> String {
    let parts = scene_parts(scene, k);
    if parts.is_empty() {
        "an empty table".to_string()
    } else {
        parts.join(", ")
    }
}

/// Describes what changed from `before` to `after` in the scene language, naming no action:
/// the objects on the table that `after` shows differently (each with what stands on it or
/// lies in it), "now a large red cube at the front left, ..."; where nothing new shows, what
/// no longer does, "no longer a small blue ball ..."; "no visible change" when the camera
/// sees none. The foundation's change captions (two images -> text) are written in it.
pub fn describe_change(before: &Scene, after: &Scene, k: usize) -> String {
    let (was, is) = (scene_parts(before, k), scene_parts(after, k));
    let new: Vec<&str> = is
        .iter()
        .filter(|p| !was.contains(p))
        .map(String::as_str)
        .collect();
    let gone: Vec<&str> = was
        .iter()
        .filter(|p| !is.contains(p))
        .map(String::as_str)
        .collect();
    match (new.is_empty(), gone.is_empty()) {
        (false, _) => format!("now {}", new.join(", ")),
        (true, false) => format!("no longer {}", gone.join(", ")),
        (true, true) => "no visible change".to_string(),
    }
}

/// What the camera sees of `scene`, one phrase per object on the table in slot order (back to
/// front, left to right), each with what stands on it or lies in it.
fn scene_parts(scene: &Scene, k: usize) -> Vec<String> {
    let noun = |o: &Object| {
        let state = match (o.shape, o.upside_down, o.lid_open) {
            (Shape::Box, _, true) => "open ",
            (_, true, _) => "upside down ",
            _ => "",
        };
        format!(
            "a {} {state}{} {}",
            size_word(o.size, k),
            o.color.name(),
            shape_words(o.shape)[k % 2]
        )
    };
    let mut on_table: Vec<(Slot, &Object)> = scene
        .objects
        .iter()
        .filter_map(|o| match o.place {
            Place::Table(s) => Some((s, o)),
            _ => None,
        })
        .collect();
    on_table.sort_by_key(|(s, _)| *s);
    on_table
        .into_iter()
        .map(|(slot, o)| {
            let mut part = format!("{} at the {}", noun(o), slot_phrase(slot, k));
            for d in scene.dependents(o.color) {
                match d.place {
                    Place::OnTop(_) => part += &format!(" with {} on top", noun(d)),
                    Place::Inside(_) => part += &format!(" with {} inside", noun(d)),
                    _ => {}
                }
            }
            part
        })
        .collect()
}

/// The world's language corpus: every paraphrase of three random valid actions per family in
/// each of `scenes` random scenes. The text tokenizer is trained on it.
pub fn corpus(seed: u64, scenes: usize) -> Vec<String> {
    use super::action::Family;
    use rand::seq::IndexedRandom;
    let mut rng = super::generate::rng(seed);
    let mut out = Vec::new();
    for _ in 0..scenes {
        let scene = super::generate::random_scene(&mut rng, 2..=5);
        for fam in Family::ALL {
            let valid = Action::valid_in(&scene, fam);
            for action in valid.choose_multiple(&mut rng, 3) {
                out.extend(paraphrases(action, &scene));
            }
        }
    }
    out
}

fn alternation<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    let mut w: Vec<&str> = words.into_iter().collect();
    w.sort_by_key(|s| std::cmp::Reverse(s.len()));
    w.dedup();
    format!("(?:{})", w.join("|"))
}

static COLORS: LazyLock<String> =
    LazyLock::new(|| alternation(Color::ALL.iter().map(|c| c.name())));
static SHAPES: LazyLock<String> =
    LazyLock::new(|| alternation(Shape::ALL.iter().flat_map(|s| shape_words(*s))));

fn ref_pattern(name: &str) -> String {
    let (c, s) = (&*COLORS, &*SHAPES);
    format!(
        "(?P<{name}>the (?:(?:small|little|large|big) )?{c} (?:{s}|one|object)|the {s} that is {c})"
    )
}

static PARSERS: LazyLock<Vec<(Kind, Regex)>> = LazyLock::new(|| {
    let c = &*COLORS;
    let s = &*SHAPES;
    let mut out = Vec::new();
    for (kind, tpls) in TEMPLATES {
        for t in *tpls {
            let mut re = regex::escape(t);
            for (ph, pat) in [
                ("{o}", ref_pattern("o")),
                ("{a}", ref_pattern("a")),
                ("{slot}", "(?P<slot>(?:back|rear|middle|front) (?:left|center|right))".into()),
                ("{side}", "(?P<side>left|right)".into()),
                ("{rel}", "(?P<rel>to the left of|left of|to the right of|right of|in front of|behind|in back of|on top of|onto)".into()),
                ("{c}", format!("(?P<c>{c})")),
                ("{new}", format!("(?P<new>an? (?:small|little|large|big) {c} {s})")),
                ("{cmp}", "(?P<cmp>bigger|larger|smaller)".into()),
                ("{sz}", "(?P<sz>small|little|large|big)".into()),
                ("{scale}", "(?P<scale>up|down)".into()),
                ("{grow}", "(?P<grow>grow|shrink)".into()),
            ] {
                re = re.replace(&regex::escape(ph), &pat);
            }
            let re = Regex::new(&format!("^{re}$")).expect("templates compile to valid regexes");
            out.push((*kind, re));
        }
    }
    out
});

fn word_color(text: &str) -> Option<Color> {
    text.split(' ')
        .find_map(|w| Color::ALL.into_iter().find(|c| c.name() == w))
}

fn word_shape(text: &str) -> Option<Shape> {
    text.split(' ').find_map(|w| {
        Shape::ALL
            .into_iter()
            .find(|s| shape_words(*s).contains(&w))
    })
}

fn word_size(text: &str) -> Option<Size> {
    text.split(' ').find_map(|w| match w {
        "small" | "little" | "smaller" | "down" | "shrink" => Some(Size::Small),
        "large" | "big" | "bigger" | "larger" | "up" | "grow" => Some(Size::Large),
        _ => None,
    })
}

/// Lower-cases, trims, drops trailing punctuation and squeezes whitespace.
pub(crate) fn normalise(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    words
        .join(" ")
        .trim_end_matches(['.', '!', '?', ',', ';'])
        .trim()
        .to_string()
}

/// Parses text in the world's language back into a structured action.
pub fn parse(text: &str) -> Result<Action, ParseError> {
    let norm = normalise(text);
    let fail = |reason: &str| ParseError {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    for (kind, re) in PARSERS.iter() {
        if let Some(caps) = re.captures(&norm) {
            return build(*kind, &caps).ok_or_else(|| fail("a placeholder did not resolve"));
        }
    }
    Err(fail(
        "no paraphrase template of the world's language matches it",
    ))
}

fn build(kind: Kind, caps: &Captures) -> Option<Action> {
    let get = |n: &str| caps.name(n).map(|m| m.as_str());
    let object = get("o").and_then(word_color);
    let second = get("a").and_then(word_color);
    let slot = get("slot").map(|s| {
        let mut w = s.split(' ');
        let row = match w.next().unwrap_or("") {
            "back" | "rear" => 0,
            "middle" => 1,
            _ => 2,
        };
        let col = match w.next().unwrap_or("") {
            "left" => 0,
            "center" => 1,
            _ => 2,
        };
        Slot::new(row, col)
    });
    let size = ["cmp", "sz", "scale", "grow"]
        .iter()
        .find_map(|n| get(n))
        .and_then(word_size);
    Some(match kind {
        Kind::MoveTo => Action::MoveTo {
            object: object?,
            slot: slot?,
        },
        Kind::Add => {
            let new = get("new")?;
            Action::Add {
                shape: word_shape(new)?,
                color: word_color(new)?,
                size: word_size(new)?,
                slot: slot?,
            }
        }
        Kind::Remove => Action::Remove { object: object? },
        Kind::Push => Action::Push {
            object: object?,
            side: if get("side")? == "left" {
                Side::Left
            } else {
                Side::Right
            },
        },
        Kind::PutInto => Action::PutInto {
            object: object?,
            container: second?,
        },
        Kind::TakeOut => Action::TakeOut {
            object: object?,
            container: second?,
        },
        Kind::UpsideDown => Action::TurnUpsideDown { object: object? },
        Kind::Upright => Action::TurnUpright { object: object? },
        Kind::Open => Action::Open { object: object? },
        Kind::Close => Action::Close { object: object? },
        Kind::Cover => Action::Cover {
            object: object?,
            cover: second?,
        },
        Kind::Relate => {
            let rel = get("rel")?;
            let relation = match rel {
                r if r.contains("left") => Relation::LeftOf,
                r if r.contains("right") => Relation::RightOf,
                "in front of" => Relation::InFrontOf,
                "behind" | "in back of" => Relation::Behind,
                _ => Relation::OnTopOf,
            };
            Action::Relate {
                object: object?,
                relation,
                anchor: second?,
            }
        }
        Kind::Recolor => Action::Recolor {
            object: object?,
            color: get("c").and_then(word_color)?,
        },
        Kind::Resize => Action::Resize {
            object: object?,
            size: size?,
        },
        Kind::Erase => Action::Erase { object: object? },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::action::Family;
    use crate::world::generate::random_scene;
    use rand::SeedableRng;

    #[test]
    fn every_template_of_every_valid_action_parses_back() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        let mut checked = 0;
        for _ in 0..40 {
            let scene = random_scene(&mut rng, 2..=5);
            for fam in Family::ALL {
                for action in Action::valid_in(&scene, fam) {
                    let texts = paraphrases(&action, &scene);
                    assert!(
                        texts.len() >= 6,
                        "{action:?} has only {} paraphrases",
                        texts.len()
                    );
                    for text in texts {
                        let back = parse(&text).unwrap_or_else(|e| panic!("{e}"));
                        assert_eq!(back, action, "{text:?}");
                        checked += 1;
                    }
                    seen.insert(kind_of(&action) as u8);
                }
            }
        }
        assert_eq!(
            seen.len(),
            TEMPLATES.len(),
            "every action kind was exercised"
        );
        assert!(checked > 10_000);
    }

    #[test]
    fn parser_tolerates_case_and_punctuation_and_rejects_other_text() {
        let a = parse("  Put the RED ball   into the blue Bowl. ").unwrap();
        assert_eq!(
            a,
            Action::PutInto {
                object: Color::Red,
                container: Color::Blue
            }
        );
        assert!(parse("make me a sandwich").is_err());
        assert!(parse("").is_err());
        assert!(parse("paint the red cube red and blue").is_err());
    }

    #[test]
    fn scene_descriptions_name_every_visible_object_once_in_slot_order() {
        use crate::world::scene::Place;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for k in 0..40 {
            let scene = random_scene(&mut rng, 1..=5);
            let text = describe_scene(&scene, k);
            for o in &scene.objects {
                let named = text.matches(&format!(" {} ", o.color.name())).count();
                let hidden = matches!(o.place, Place::Under(_));
                assert_eq!(named, usize::from(!hidden), "{:?} in {text:?}", o);
            }
            // Table objects appear back to front, left to right.
            let slots: Vec<Slot> = Slot::all().filter(|s| scene.at(*s).is_some()).collect();
            let at: Vec<usize> = slots
                .iter()
                .map(|s| text.find(&slot_phrase(*s, k)).expect("every slot is named"))
                .collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "{text:?}");
        }
        let mut scene = Scene::default();
        assert_eq!(describe_scene(&scene, 0), "an empty table");
        scene.objects.push(Object::new(
            Shape::Box,
            Color::Green,
            Size::Large,
            Place::Table(Slot::new(2, 0)),
        ));
        scene.objects[0].lid_open = true;
        scene.objects.push(Object::new(
            Shape::Sphere,
            Color::Red,
            Size::Small,
            Place::Inside(Color::Green),
        ));
        assert_eq!(
            describe_scene(&scene, 1),
            "a big open green chest at the front left with a little red ball inside"
        );
    }

    #[test]
    fn change_descriptions_name_what_the_action_moved_or_recoloured_and_only_that() {
        let mut seen_kinds = [0usize; 3];
        for t in crate::world::generate::triplets(11, 400) {
            let text = describe_change(&t.source, &t.target, 0);
            let kind = ["now ", "no longer ", "no visible change"]
                .iter()
                .position(|p| text.starts_with(p))
                .unwrap_or_else(|| panic!("{text:?}"));
            seen_kinds[kind] += 1;
            // Every phrase it names is in the scene it speaks of and not in the other one.
            let (said, other) = match kind {
                0 => (&t.target, &t.source),
                1 => (&t.source, &t.target),
                _ => {
                    assert_eq!(describe_scene(&t.source, 0), describe_scene(&t.target, 0));
                    continue;
                }
            };
            for part in text
                .split_once(' ')
                .unwrap()
                .1
                .trim_start_matches("longer ")
                .split(", a ")
            {
                let part = part.trim_start_matches("a ");
                assert!(
                    describe_scene(said, 0).contains(part),
                    "{part:?} in {text:?}"
                );
            }
            assert_ne!(describe_scene(said, 0), describe_scene(other, 0));
        }
        assert!(
            seen_kinds[0] > 300,
            "most actions show something new: {seen_kinds:?}"
        );
        let mut before = Scene::default();
        before.objects.push(Object::new(
            Shape::Cube,
            Color::Red,
            Size::Large,
            Place::Table(Slot::new(0, 0)),
        ));
        let mut after = before.clone();
        after.objects[0].place = Place::Table(Slot::new(2, 2));
        assert_eq!(
            describe_change(&before, &after, 0),
            format!(
                "now a large red cube at the {}",
                slot_phrase(Slot::new(2, 2), 0)
            )
        );
        assert_eq!(describe_change(&before, &before, 0), "no visible change");
        assert_eq!(
            describe_change(&before, &Scene::default(), 0),
            format!(
                "no longer a large red cube at the {}",
                slot_phrase(Slot::new(0, 0), 0)
            )
        );
    }
}
