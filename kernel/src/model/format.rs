//! The sequence formats of the two roles, the only place that knows them:
//!
//! - world model, [`WorldLayout::ActionFirst`] (what fresh models train on):
//!   `<bos> <wm> action <boi> source <eoi> <boi> target <eoi>`; [`WorldLayout::SourceFirst`]
//!   (checkpoints from before it): `<bos> <wm> <boi> source <eoi> action <boi> target <eoi>`.
//!   With the action first, target cell `j` sits a fixed `image_tokens + 2` positions after
//!   source cell `j` whatever the action's length, so copying from the source is one relative
//!   offset for attention to learn (measured: `../shared/MODELS.md`, `models/README.md`).
//! - dynamics model: `<bos> <dm> <boi> source <eoi> <boi> target <eoi> action <eos>`
//! - foundation material: scene caption `<bos> <boi> image <eoi> description <eos>`, scene
//!   drawing `<bos> description <boi> image <eoi>`, and transition (a frame pair without its
//!   action) `<bos> <boi> before <eoi> <boi> after <eoi>`, whose cell `j` sits as far after
//!   `before`'s as in the world model's action-first layout.
//!
//! The completion (what the loss covers, as in the paper) is the target image tokens for the
//! world model and the action tokens with `<eos>` for the dynamics model; the description with
//! `<eos>` of a caption and the image tokens of a drawing or of a transition's second frame.

use super::vocab::Vocab;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which model a sequence trains or queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// (source, action) -> target.
    World,
    /// (source, target) -> action.
    Dynamics,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::World => "world",
            Role::Dynamics => "dynamics",
        }
    }
}

/// Where the world model's prompt puts the action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorldLayout {
    /// `<bos> <wm> <boi> source <eoi> action <boi> target <eoi>`: checkpoints without the
    /// field (the default when reading them).
    #[default]
    SourceFirst,
    /// `<bos> <wm> action <boi> source <eoi> <boi> target <eoi>`: fresh models.
    ActionFirst,
}

/// A training sequence: ids and, per id, the weight of predicting it (0 outside the completion).
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    pub(crate) ids: Vec<u32>,
    pub(crate) weights: Vec<f32>,
}

impl Sequence {
    /// Positions whose token the loss covers.
    pub(crate) fn completion(&self) -> impl Iterator<Item = usize> + '_ {
        self.weights
            .iter()
            .enumerate()
            .filter(|(_, w)| **w > 0.0)
            .map(|(i, _)| i)
    }
}

/// Builds the sequences of both roles for a vocabulary and image size.
#[derive(Clone, Debug, PartialEq)]
pub struct Format {
    pub(crate) vocab: Vocab,
    /// Image tokens per image.
    pub(crate) image_tokens: usize,
    /// Longest sequence the model takes (its `max_position_embeddings`).
    pub(crate) max_len: usize,
    pub(crate) world_layout: WorldLayout,
}

impl Format {
    /// Longest action a fresh model's context holds, in text tokens (of the dynamics model,
    /// whose sequence has one fixed token more).
    pub(crate) const ACTION_ROOM: usize = 64 - Self::DYNAMICS_OVERHEAD;

    /// The context (`max_position_embeddings`) a fresh model needs for images of
    /// `image_tokens` tokens: two images and an action of up to [`Format::ACTION_ROOM`]
    /// tokens.
    pub(crate) fn context_for(image_tokens: usize) -> usize {
        2 * image_tokens + Self::ACTION_ROOM + Self::DYNAMICS_OVERHEAD
    }

    /// The shortest context in which a model of `image_tokens` per image can work at all:
    /// two images, the fixed tokens of either role and a one-token action.
    pub(crate) fn min_context(image_tokens: usize) -> usize {
        2 * image_tokens + Self::DYNAMICS_OVERHEAD.max(Self::WORLD_OVERHEAD) + 1
    }

    /// Fixed tokens of a world-model sequence besides the images and the action.
    const WORLD_OVERHEAD: usize = 6;
    /// Fixed tokens of a dynamics-model sequence besides the images and the action.
    const DYNAMICS_OVERHEAD: usize = 7;

    fn image(&self, codes: &[u32], what: &str) -> Result<Vec<u32>> {
        if codes.len() != self.image_tokens {
            return Err(Error::Invalid(format!(
                "{what} image has {} tokens; the model uses {} per image",
                codes.len(),
                self.image_tokens
            )));
        }
        if let Some(c) = codes.iter().find(|&&c| c >= self.vocab.codebook_size) {
            return Err(Error::Invalid(format!(
                "{what} image code {c} is outside the codebook (size {})",
                self.vocab.codebook_size
            )));
        }
        Ok(self.vocab.image_ids(codes))
    }

    /// Longest action (in text tokens) that fits a sequence of `role`.
    pub(crate) fn max_action_tokens(&self, role: Role) -> usize {
        let fixed = match role {
            Role::World => Self::WORLD_OVERHEAD,
            Role::Dynamics => Self::DYNAMICS_OVERHEAD,
        };
        self.max_len.saturating_sub(2 * self.image_tokens + fixed)
    }

    /// Checks an action's token ids: not empty, text ids only, short enough for the context.
    pub(crate) fn check_action(&self, action: &[u32], role: Role) -> Result<()> {
        if action.is_empty() {
            return Err(Error::Invalid(
                "the action is empty; describe the change in words, e.g. \"push the red cube to the left\"".into(),
            ));
        }
        let max = self.max_action_tokens(role);
        if action.len() > max {
            return Err(Error::Invalid(format!(
                "the action is {} tokens long; this model's context ({} positions) leaves room for {max}; shorten it",
                action.len(),
                self.max_len
            )));
        }
        if let Some(id) = action.iter().find(|&&i| !self.vocab.is_text(i)) {
            return Err(Error::Invalid(format!(
                "action token {id} is not a text id"
            )));
        }
        Ok(())
    }

    /// What the world model continues: the prompt up to the target's `<boi>` (see
    /// [`WorldLayout`]).
    pub(crate) fn world_prompt(&self, source: &[u32], action: &[u32]) -> Result<Vec<u32>> {
        self.check_action(action, Role::World)?;
        let s = self.vocab.specials;
        let source = self.image(source, "source")?;
        let mut ids = vec![s.bos, s.wm];
        match self.world_layout {
            WorldLayout::SourceFirst => {
                ids.push(s.boi);
                ids.extend(source);
                ids.push(s.eoi);
                ids.extend_from_slice(action);
            }
            WorldLayout::ActionFirst => {
                ids.extend_from_slice(action);
                ids.push(s.boi);
                ids.extend(source);
                ids.push(s.eoi);
            }
        }
        ids.push(s.boi);
        Ok(ids)
    }

    /// A world-model training sequence; `image_weights` (one per target token, default 1)
    /// weight the target tokens' loss.
    pub(crate) fn world_sequence(
        &self,
        source: &[u32],
        action: &[u32],
        target: &[u32],
        image_weights: Option<&[f32]>,
    ) -> Result<Sequence> {
        let mut ids = self.world_prompt(source, action)?;
        let mut weights = vec![0.0; ids.len()];
        ids.extend(self.image(target, "target")?);
        match image_weights {
            Some(w) if w.len() == self.image_tokens => weights.extend_from_slice(w),
            Some(w) => {
                return Err(Error::Invalid(format!(
                    "{} image-token weights for {} target tokens",
                    w.len(),
                    self.image_tokens
                )));
            }
            None => weights.extend(std::iter::repeat_n(1.0, self.image_tokens)),
        }
        ids.push(self.vocab.specials.eoi);
        weights.push(0.0);
        Ok(Sequence { ids, weights })
    }

    /// `<bos> <dm> <boi> source <eoi> <boi> target <eoi>`: what the dynamics model continues.
    pub(crate) fn dynamics_prompt(&self, source: &[u32], target: &[u32]) -> Result<Vec<u32>> {
        let s = self.vocab.specials;
        let mut ids = vec![s.bos, s.dm, s.boi];
        ids.extend(self.image(source, "source")?);
        ids.extend([s.eoi, s.boi]);
        ids.extend(self.image(target, "target")?);
        ids.push(s.eoi);
        Ok(ids)
    }

    /// A dynamics-model sequence: the prompt, then the action and `<eos>` as the completion.
    pub(crate) fn dynamics_sequence(
        &self,
        source: &[u32],
        target: &[u32],
        action: &[u32],
    ) -> Result<Sequence> {
        self.check_action(action, Role::Dynamics)?;
        let ids = self.dynamics_prompt(source, target)?;
        Ok(self.text_completion(ids, action))
    }
}

impl Format {
    fn check_description(&self, text: &[u32]) -> Result<()> {
        self.check_text(text, "scene description", 1)
    }

    /// A completion of text beside `images` images (each between `<boi>` and `<eoi>`, with
    /// `<bos>` and `<eos>`): 1 to what the context leaves, text ids only.
    fn check_text(&self, text: &[u32], what: &str, images: usize) -> Result<()> {
        let max = self
            .max_len
            .saturating_sub(images * (self.image_tokens + 2) + 2);
        if text.is_empty() || text.len() > max {
            return Err(Error::Invalid(format!(
                "a {what} of {} tokens; this model's context ({} positions) takes 1 to {max} \
                 beside {images} image(s): pick a preset with a longer context or a text \
                 tokenizer with a larger vocabulary",
                text.len(),
                self.max_len
            )));
        }
        if let Some(id) = text.iter().find(|&&i| !self.vocab.is_text(i)) {
            return Err(Error::Invalid(format!(
                "{what} token {id} is not a text id"
            )));
        }
        Ok(())
    }

    /// `prompt` followed by `text` and `<eos>`, the completion.
    fn text_completion(&self, mut ids: Vec<u32>, text: &[u32]) -> Sequence {
        let mut weights = vec![0.0; ids.len()];
        ids.extend_from_slice(text);
        ids.push(self.vocab.specials.eos);
        weights.extend(std::iter::repeat_n(1.0, text.len() + 1));
        Sequence { ids, weights }
    }

    /// `<bos> <boi> image <eoi> description <eos>`: describing a scene; the completion is the
    /// description and `<eos>`.
    pub(crate) fn caption_sequence(&self, image: &[u32], description: &[u32]) -> Result<Sequence> {
        self.check_description(description)?;
        let s = self.vocab.specials;
        let mut ids = vec![s.bos, s.boi];
        ids.extend(self.image(image, "captioned")?);
        ids.push(s.eoi);
        Ok(self.text_completion(ids, description))
    }

    /// `<bos> <boi> before <eoi> <boi> after <eoi> change <eos>`: describing what changed
    /// between two frames, naming no action; the completion is the description and `<eos>`.
    pub(crate) fn change_sequence(
        &self,
        before: &[u32],
        after: &[u32],
        change: &[u32],
    ) -> Result<Sequence> {
        self.check_text(change, "change description", 2)?;
        let s = self.vocab.specials;
        let mut ids = vec![s.bos, s.boi];
        ids.extend(self.image(before, "first frame")?);
        ids.extend([s.eoi, s.boi]);
        ids.extend(self.image(after, "second frame")?);
        ids.push(s.eoi);
        Ok(self.text_completion(ids, change))
    }

    /// `<bos> <boi> before <eoi> <boi> after <eoi>`: the next frame of an unlabelled pair; the
    /// completion is `after`'s tokens.
    pub(crate) fn transition_sequence(&self, before: &[u32], after: &[u32]) -> Result<Sequence> {
        let s = self.vocab.specials;
        let mut ids = vec![s.bos, s.boi];
        ids.extend(self.image(before, "first frame")?);
        ids.extend([s.eoi, s.boi]);
        let mut weights = vec![0.0; ids.len()];
        ids.extend(self.image(after, "second frame")?);
        weights.extend(std::iter::repeat_n(1.0, self.image_tokens));
        ids.push(s.eoi);
        weights.push(0.0);
        Ok(Sequence { ids, weights })
    }

    /// `<bos> description <boi> image <eoi>`: drawing a described scene; the completion is the
    /// image tokens.
    pub(crate) fn drawing_sequence(&self, description: &[u32], image: &[u32]) -> Result<Sequence> {
        self.check_description(description)?;
        let s = self.vocab.specials;
        let mut ids = vec![s.bos];
        ids.extend_from_slice(description);
        ids.push(s.boi);
        let mut weights = vec![0.0; ids.len()];
        ids.extend(self.image(image, "drawn")?);
        weights.extend(std::iter::repeat_n(1.0, self.image_tokens));
        ids.push(s.eoi);
        weights.push(0.0);
        Ok(Sequence { ids, weights })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::vocab::Specials;

    /// A small format (4 image tokens, 8 codes) for tests.
    pub(crate) fn format() -> Format {
        Format {
            vocab: Vocab::at_offset(
                20,
                8,
                Specials {
                    pad: 0,
                    bos: 1,
                    eos: 2,
                    boi: 3,
                    eoi: 4,
                    wm: 5,
                    dm: 6,
                },
            ),
            image_tokens: 4,
            max_len: 24,
            world_layout: WorldLayout::SourceFirst,
        }
    }

    #[test]
    fn world_sequence_layout_and_completion() {
        let f = format();
        let seq = f
            .world_sequence(
                &[0, 1, 2, 3],
                &[10, 11],
                &[7, 6, 5, 4],
                Some(&[0.5, 1.0, 2.0, 0.5]),
            )
            .unwrap();
        assert_eq!(
            seq.ids,
            vec![1, 5, 3, 20, 21, 22, 23, 4, 10, 11, 3, 27, 26, 25, 24, 4]
        );
        assert_eq!(seq.completion().collect::<Vec<_>>(), vec![11, 12, 13, 14]);
        assert_eq!(&seq.weights[11..15], &[0.5, 1.0, 2.0, 0.5]);
        assert_eq!(seq.weights.iter().filter(|w| **w > 0.0).count(), 4);
    }

    #[test]
    fn action_first_puts_target_cells_a_fixed_distance_after_source_cells() {
        let f = Format {
            world_layout: WorldLayout::ActionFirst,
            ..format()
        };
        for action in [&[10u32][..], &[10, 11, 12]] {
            let seq = f
                .world_sequence(&[0, 1, 2, 3], action, &[7, 6, 5, 4], None)
                .unwrap();
            let n = action.len();
            let mut want = vec![1, 5];
            want.extend(action);
            want.extend([3, 20, 21, 22, 23, 4, 3, 27, 26, 25, 24, 4]);
            assert_eq!(seq.ids, want);
            let first_source = 2 + n + 1;
            let first_target = seq.completion().next().unwrap();
            assert_eq!(first_target - first_source, f.image_tokens + 2);
            assert_eq!(seq.completion().count(), 4);
            // The prompt is the sequence up to the first target token.
            let prompt = f.world_prompt(&[0, 1, 2, 3], action).unwrap();
            assert_eq!(prompt, seq.ids[..first_target]);
        }
    }

    #[test]
    fn dynamics_sequence_layout_and_completion() {
        let f = format();
        let seq = f
            .dynamics_sequence(&[0, 1, 2, 3], &[4, 5, 6, 7], &[12, 13, 14])
            .unwrap();
        assert_eq!(seq.ids[..3], [1, 6, 3]);
        assert_eq!(seq.ids[7..9], [4, 3]);
        assert_eq!(seq.ids[13..], [4, 12, 13, 14, 2]);
        // The completion is exactly the action tokens and <eos>.
        assert_eq!(seq.completion().collect::<Vec<_>>(), vec![14, 15, 16, 17]);
        assert_eq!(f.dynamics_prompt(&[0; 4], &[0; 4]).unwrap().len(), 14);
    }

    #[test]
    fn bad_actions_and_images_are_refused_with_a_reason() {
        let f = format();
        let empty = f.world_prompt(&[0; 4], &[]).unwrap_err().to_string();
        assert!(empty.contains("empty"), "{empty}");
        // 24 positions - 8 image tokens - 6 fixed = 10 action tokens at most.
        assert_eq!(f.max_action_tokens(Role::World), 10);
        assert!(f.world_prompt(&[0; 4], &[9; 10]).is_ok());
        let long = f.world_prompt(&[0; 4], &[9; 11]).unwrap_err().to_string();
        assert!(
            long.contains("11 tokens") && long.contains("room for 10"),
            "{long}"
        );
        assert!(f.dynamics_sequence(&[0; 4], &[0; 4], &[9; 10]).is_err());
        let img = f.world_prompt(&[0; 3], &[9]).unwrap_err().to_string();
        assert!(img.contains("3 tokens"), "{img}");
        let code = f
            .dynamics_prompt(&[0; 4], &[0, 0, 0, 8])
            .unwrap_err()
            .to_string();
        assert!(code.contains("outside the codebook"), "{code}");
        assert!(f.world_prompt(&[0; 4], &[25]).is_err());
    }

    #[test]
    fn scene_sequences_layout_and_completion() {
        let f = format();
        let cap = f.caption_sequence(&[0, 1, 2, 3], &[12, 13]).unwrap();
        assert_eq!(cap.ids, vec![1, 3, 20, 21, 22, 23, 4, 12, 13, 2]);
        assert_eq!(cap.completion().collect::<Vec<_>>(), vec![7, 8, 9]);
        let draw = f.drawing_sequence(&[12, 13], &[0, 1, 2, 3]).unwrap();
        assert_eq!(draw.ids, vec![1, 12, 13, 3, 20, 21, 22, 23, 4]);
        assert_eq!(draw.completion().collect::<Vec<_>>(), vec![4, 5, 6, 7]);
        // 24 positions - 4 image tokens - 4 fixed = 16 description tokens at most.
        assert!(f.caption_sequence(&[0; 4], &[9; 16]).is_ok());
        let long = f
            .drawing_sequence(&[9; 17], &[0; 4])
            .unwrap_err()
            .to_string();
        assert!(
            long.contains("17 tokens") && long.contains("1 to 16"),
            "{long}"
        );
        assert!(f.caption_sequence(&[0; 4], &[]).is_err());
        let pair = f.transition_sequence(&[0, 1, 2, 3], &[4, 5, 6, 7]).unwrap();
        assert_eq!(
            pair.ids,
            vec![1, 3, 20, 21, 22, 23, 4, 3, 24, 25, 26, 27, 4]
        );
        assert_eq!(pair.completion().collect::<Vec<_>>(), vec![8, 9, 10, 11]);
        // As in the world model's action-first layout, cell j of the second frame sits
        // image_tokens + 2 positions after cell j of the first.
        assert_eq!(8 - 2, f.image_tokens + 2);
        assert!(f.caption_sequence(&[0; 4], &[25]).is_err());
        let change = f
            .change_sequence(&[0, 1, 2, 3], &[4, 5, 6, 7], &[12, 13])
            .unwrap();
        assert_eq!(
            change.ids,
            vec![1, 3, 20, 21, 22, 23, 4, 3, 24, 25, 26, 27, 4, 12, 13, 2]
        );
        assert_eq!(change.completion().collect::<Vec<_>>(), vec![13, 14, 15]);
        // 24 positions - 2 x 4 image tokens - 6 fixed = 10 description tokens at most.
        assert!(f.change_sequence(&[0; 4], &[0; 4], &[9; 10]).is_ok());
        let long = f
            .change_sequence(&[0; 4], &[0; 4], &[9; 11])
            .unwrap_err()
            .to_string();
        assert!(
            long.contains("11 tokens") && long.contains("1 to 10"),
            "{long}"
        );
        assert!(f.change_sequence(&[0; 4], &[0; 4], &[]).is_err());
        assert!(f.change_sequence(&[0; 4], &[0; 4], &[25]).is_err());
    }
}
