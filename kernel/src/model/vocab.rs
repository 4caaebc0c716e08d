//! The unified vocabulary: text BPE ids (special tokens included) first, then the image
//! codebook at an offset. [`Vocab`] owns that layout; nothing else does arithmetic on ids.
//!
//! Real Chameleon checkpoints lay it out differently: the image codes are tokens of the text
//! tokenizer (`IMGIMG…Z`, one contiguous block of ids, not in codebook order). A `Vocab` with
//! an `image_token_ids` table describes that ([`Vocab::with_image_table`]).

use crate::error::{Error, Result};
use crate::tokenize::TextTokenizer;
use crate::tokenize::text::SPECIAL_TOKENS;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Ids of the special tokens the sequence formats use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Specials {
    pub(crate) pad: u32,
    pub(crate) bos: u32,
    pub(crate) eos: u32,
    pub(crate) boi: u32,
    pub(crate) eoi: u32,
    /// Task marker of the world model.
    pub(crate) wm: u32,
    /// Task marker of the dynamics model.
    pub(crate) dm: u32,
}

/// Where text and image tokens live in the model's vocabulary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "VocabRepr", into = "VocabRepr")]
pub struct Vocab {
    /// Ids `0..text_size` are the text tokenizer's.
    pub text_size: u32,
    /// Ids `text_size..text_size + codebook_size` are image codes `0..codebook_size`, unless
    /// `image_table` says otherwise.
    pub(crate) codebook_size: u32,
    pub(crate) specials: Specials,
    image_table: Option<ImageTable>,
}

/// Image codes living inside the text ids: `ids[code]` is the id of `code`; the ids fill the
/// block `start..start + ids.len()`; `codes[id - start]` inverts it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ImageTable {
    start: u32,
    ids: Vec<u32>,
    codes: Vec<u32>,
}

/// How a [`Vocab`] is written in `config.json`.
#[derive(Serialize, Deserialize)]
struct VocabRepr {
    text_size: u32,
    codebook_size: u32,
    specials: Specials,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image_token_ids: Option<Vec<u32>>,
}

impl From<Vocab> for VocabRepr {
    fn from(v: Vocab) -> Self {
        VocabRepr {
            text_size: v.text_size,
            codebook_size: v.codebook_size,
            specials: v.specials,
            image_token_ids: v.image_table.map(|t| t.ids),
        }
    }
}

impl TryFrom<VocabRepr> for Vocab {
    type Error = String;
    fn try_from(r: VocabRepr) -> std::result::Result<Self, String> {
        let v = Vocab {
            text_size: r.text_size,
            codebook_size: r.codebook_size,
            specials: r.specials,
            image_table: None,
        };
        match r.image_token_ids {
            None => Ok(v),
            Some(ids) => v.table(ids).map_err(|e| e.to_string()),
        }
    }
}

impl Vocab {
    /// The layout for a text tokenizer (which must have the special tokens) and a codebook.
    pub fn new(text: &TextTokenizer, codebook_size: usize) -> Result<Self> {
        let id = |t: &str| {
            text.token_id(t).ok_or_else(|| {
                Error::Tokenizer(format!(
                    "the text tokenizer has no `{t}` token; the model needs {SPECIAL_TOKENS:?} \
                     (train one with `dynaboot tokenizer train`)"
                ))
            })
        };
        Ok(Vocab {
            text_size: text.vocab_size() as u32,
            codebook_size: codebook_size as u32,
            specials: Specials {
                pad: id("<pad>")?,
                bos: id("<bos>")?,
                eos: id("<eos>")?,
                boi: id("<boi>")?,
                eoi: id("<eoi>")?,
                wm: id("<wm>")?,
                dm: id("<dm>")?,
            },
            image_table: None,
        })
    }

    /// The plain layout: `text_size` text ids, then `codebook_size` image codes.
    #[cfg(test)]
    pub(crate) fn at_offset(text_size: u32, codebook_size: u32, specials: Specials) -> Self {
        Vocab {
            text_size,
            codebook_size,
            specials,
            image_table: None,
        }
    }

    /// A layout whose image codes are text tokens: `image_token_ids[code]` is the id of
    /// `code`, and those ids must fill one contiguous block below `text_size`.
    #[cfg(feature = "fs")]
    pub(crate) fn with_image_table(
        text_size: u32,
        specials: Specials,
        image_token_ids: Vec<u32>,
    ) -> Result<Self> {
        Vocab {
            text_size,
            codebook_size: image_token_ids.len() as u32,
            specials,
            image_table: None,
        }
        .table(image_token_ids)
    }

    fn table(mut self, ids: Vec<u32>) -> Result<Self> {
        let bad = |m: String| Error::Invalid(format!("vocabulary: {m}"));
        if ids.len() != self.codebook_size as usize || ids.is_empty() {
            return Err(bad(format!(
                "{} image token ids for a codebook of {}",
                ids.len(),
                self.codebook_size
            )));
        }
        let start = *ids.iter().min().expect("non-empty");
        let mut codes = vec![u32::MAX; ids.len()];
        for (code, &id) in ids.iter().enumerate() {
            let slot = codes
                .get_mut((id - start) as usize)
                .filter(|c| **c == u32::MAX)
                .ok_or_else(|| {
                    bad(format!(
                        "the image token ids are not one contiguous block of distinct ids \
                         (id {id})"
                    ))
                })?;
            *slot = code as u32;
        }
        if start + ids.len() as u32 > self.text_size {
            return Err(bad(format!(
                "image token ids reach {} beyond the {} ids of the vocabulary",
                start + ids.len() as u32,
                self.text_size
            )));
        }
        self.image_table = Some(ImageTable { start, ids, codes });
        Ok(self)
    }

    /// Total number of ids: the model's `vocab_size`.
    pub fn size(&self) -> usize {
        match self.image_table {
            Some(_) => self.text_size as usize,
            None => (self.text_size + self.codebook_size) as usize,
        }
    }

    /// Model ids of image codes.
    pub(crate) fn image_ids(&self, codes: &[u32]) -> Vec<u32> {
        match &self.image_table {
            Some(t) => codes.iter().map(|&c| t.ids[c as usize]).collect(),
            None => codes.iter().map(|c| c + self.text_size).collect(),
        }
    }

    /// Image code of a model id, `None` for a text id.
    pub(crate) fn image_code(&self, id: u32) -> Option<u32> {
        let range = self.image_range();
        range.contains(&id).then(|| match &self.image_table {
            Some(t) => t.codes[(id - t.start) as usize],
            None => id - self.text_size,
        })
    }

    /// The ids that are image tokens.
    pub(crate) fn image_range(&self) -> Range<u32> {
        match &self.image_table {
            Some(t) => t.start..t.start + self.codebook_size,
            None => self.text_size..self.text_size + self.codebook_size,
        }
    }

    /// The ids that are text tokens (special tokens included): everything but the image block.
    pub(crate) fn text_ranges(&self) -> Vec<Range<u32>> {
        match &self.image_table {
            Some(t) => vec![0..t.start, t.start + self.codebook_size..self.text_size],
            None => std::iter::once(0..self.text_size).collect(),
        }
    }

    /// Whether `id` is a text token of this vocabulary.
    pub(crate) fn is_text(&self, id: u32) -> bool {
        self.text_ranges().iter().any(|r| r.contains(&id))
    }

    /// Checks that a text tokenizer is the one this layout was made for.
    pub(crate) fn check_text(&self, text: &TextTokenizer) -> Result<()> {
        if self.image_table.is_some() {
            let s = &self.specials;
            let fits = text.vocab_size() <= self.text_size as usize
                && [s.bos, s.eos, s.boi, s.eoi, s.pad]
                    .iter()
                    .all(|&id| (id as usize) < text.vocab_size());
            return if fits {
                Ok(())
            } else {
                Err(Error::Invalid(format!(
                    "the text tokenizer ({} ids) does not fit the checkpoint's vocabulary ({} ids); \
                     use the tokenizer.json of the base checkpoint",
                    text.vocab_size(),
                    self.text_size
                )))
            };
        }
        let again = Vocab::new(text, self.codebook_size as usize)?;
        if &again != self {
            return Err(Error::Invalid(format!(
                "the text tokenizer ({} ids) does not match the model's vocabulary ({} text ids, \
                 specials {:?}); use the tokenizer.json saved with the checkpoint",
                text.vocab_size(),
                self.text_size,
                self.specials
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::language::corpus;

    #[test]
    fn image_codes_sit_after_the_text_ids() {
        let text = TextTokenizer::train(&corpus(1, 3), 300).unwrap();
        let v = Vocab::new(&text, 16).unwrap();
        assert_eq!(v.size(), text.vocab_size() + 16);
        let ids = v.image_ids(&[0, 15]);
        assert_eq!(ids, vec![v.text_size, v.text_size + 15]);
        assert_eq!(v.image_code(ids[1]), Some(15));
        assert_eq!(v.image_code(v.specials.eoi), None);
        assert_eq!(v.image_code(v.text_size + 16), None);
        assert!(v.is_text(v.specials.dm));
        assert!(v.check_text(&text).is_ok());
        let other = TextTokenizer::train(&corpus(1, 3), 280).unwrap();
        assert!(
            v.check_text(&other)
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
    }

    #[test]
    fn an_image_table_maps_codes_inside_the_text_ids_both_ways() {
        let specials = Specials {
            pad: 2,
            bos: 0,
            eos: 1,
            boi: 9,
            eoi: 10,
            wm: 11,
            dm: 12,
        };
        // Codes 0..5 are the ids 4..9 in a shuffled order, as in Chameleon's vocabulary.
        let v = Vocab::with_image_table(20, specials, vec![7, 4, 8, 5, 6]).unwrap();
        assert_eq!(v.size(), 20);
        assert_eq!(v.image_range(), 4..9);
        assert_eq!(v.image_ids(&[0, 1, 4]), vec![7, 4, 6]);
        for code in 0..5 {
            assert_eq!(v.image_code(v.image_ids(&[code])[0]), Some(code));
        }
        assert_eq!(v.image_code(3), None);
        assert_eq!(v.image_code(9), None);
        assert_eq!(v.text_ranges(), vec![0..4, 9..20]);
        assert!(!v.is_text(5) && v.is_text(3) && v.is_text(19));
        let json = serde_json::to_string(&v).unwrap();
        assert!(json.contains("image_token_ids"), "{json}");
        assert_eq!(serde_json::from_str::<Vocab>(&json).unwrap(), v);
        for bad in [
            vec![4, 5, 7, 8, 9],
            vec![4, 4, 5, 6, 7],
            vec![17, 18, 19, 20, 21],
        ] {
            assert!(Vocab::with_image_table(20, specials, bad).is_err());
        }
        let broken = json.replace("[7,4,8,5,6]", "[7,4,8,5,5]");
        assert!(serde_json::from_str::<Vocab>(&broken).is_err());
    }
}
