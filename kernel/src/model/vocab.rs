//! The unified vocabulary: text BPE ids (special tokens included) first, then the image
//! codebook at an offset. [`Vocab`] owns that layout; nothing else does arithmetic on ids.

use crate::error::{Error, Result};
use crate::tokenize::TextTokenizer;
use crate::tokenize::text::SPECIAL_TOKENS;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Ids of the special tokens the sequence formats use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Specials {
    pub pad: u32,
    pub bos: u32,
    pub eos: u32,
    pub boi: u32,
    pub eoi: u32,
    /// Task marker of the world model.
    pub wm: u32,
    /// Task marker of the dynamics model.
    pub dm: u32,
}

/// Where text and image tokens live in the model's vocabulary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocab {
    /// Ids `0..text_size` are the text tokenizer's.
    pub text_size: u32,
    /// Ids `text_size..text_size + codebook_size` are image codes `0..codebook_size`.
    pub codebook_size: u32,
    pub specials: Specials,
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
        })
    }

    /// Total number of ids: the model's `vocab_size`.
    pub fn size(&self) -> usize {
        (self.text_size + self.codebook_size) as usize
    }

    /// Model ids of image codes.
    pub fn image_ids(&self, codes: &[u32]) -> Vec<u32> {
        codes.iter().map(|c| c + self.text_size).collect()
    }

    /// Image code of a model id, `None` for a text id.
    pub fn image_code(&self, id: u32) -> Option<u32> {
        self.image_range()
            .contains(&id)
            .then(|| id - self.text_size)
    }

    /// The ids that are image tokens.
    pub fn image_range(&self) -> Range<u32> {
        self.text_size..self.text_size + self.codebook_size
    }

    /// The ids that are text tokens (special tokens included).
    pub fn text_range(&self) -> Range<u32> {
        0..self.text_size
    }

    /// Checks that a text tokenizer is the one this layout was made for.
    pub fn check_text(&self, text: &TextTokenizer) -> Result<()> {
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
        assert!(v.text_range().contains(&v.specials.dm));
        assert!(v.check_text(&text).is_ok());
        let other = TextTokenizer::train(&corpus(1, 3), 280).unwrap();
        assert!(
            v.check_text(&other)
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
    }
}
