//! The text tokenizer: byte-level BPE from the `tokenizers` crate, trained on the world's
//! language and saved as a standard HF `tokenizer.json`. Any HF `tokenizer.json` loads through
//! the same code. Byte-level pre-tokenisation means any text a visitor types tokenises.

use crate::error::{Error, Result};
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::{Lowercase, NFKC, Sequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

/// Special tokens the models need, in id order (they take ids 0..7 in a trained tokenizer).
pub(crate) const SPECIAL_TOKENS: [&str; 7] =
    ["<pad>", "<bos>", "<eos>", "<boi>", "<eoi>", "<wm>", "<dm>"];

/// The text tokenizer: byte-level BPE (the `tokenizers` crate), its special tokens first.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
}

fn tk_err(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

impl TextTokenizer {
    /// Trains byte-level BPE with `vocab_size` entries (specials and the 256 bytes included).
    pub fn train(corpus: &[String], vocab_size: usize) -> Result<Self> {
        let mut trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(
                SPECIAL_TOKENS
                    .iter()
                    .map(|t| AddedToken::from(*t, true))
                    .collect(),
            )
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut tk = TokenizerBuilder::new()
            .with_model(BPE::default())
            .with_normalizer(Some(Sequence::new(vec![NFKC.into(), Lowercase.into()])))
            .with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(true)))
            .with_post_processor(Some(ByteLevel::default()))
            .with_decoder(Some(ByteLevel::default()))
            .build()
            .map_err(tk_err)?;
        tk.train(&mut trainer, corpus.iter()).map_err(tk_err)?;
        Self::from_json(&tk.to_string(false).map_err(tk_err)?)
    }

    /// Loads any HF `tokenizer.json` from its text. Text is always text: a visitor who types
    /// `<eos>` gets the five characters, never the control token (prompts place control
    /// tokens by id, in `model/format.rs`).
    pub fn from_json(json: &str) -> Result<Self> {
        // The JSON first, numbers included: the tokenizers crate panics on some syntax errors
        // and out-of-range numbers inside `decoder` instead of returning them (found by
        // fuzzing, `fuzz/regressions/tokenizer_json/`).
        serde_json::from_str::<serde_json::Value>(json).map_err(|e| {
            Error::Tokenizer(format!(
                "not valid JSON ({e}); a tokenizer.json is the file `dynaboot tokenizer train` \
                 (or HF tokenizers) writes"
            ))
        })?;
        let mut inner = Tokenizer::from_bytes(json.as_bytes()).map_err(tk_err)?;
        inner.set_encode_special_tokens(true);
        Ok(TextTokenizer { inner })
    }

    #[cfg(feature = "fs")]
    pub(crate) fn to_json(&self) -> Result<String> {
        self.inner.to_string(false).map_err(tk_err)
    }

    /// Reads a `tokenizer.json`.
    #[cfg(feature = "fs")]
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = crate::files::read_input_text(path, crate::files::Input::Json)?;
        Self::from_json(&text).map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))
    }

    /// Writes a `tokenizer.json`, atomically.
    #[cfg(feature = "fs")]
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        crate::files::write_atomic(path, self.to_json()?.as_bytes())
    }

    /// Token ids of `text`, without special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .inner
            .encode(text, false)
            .map_err(tk_err)?
            .get_ids()
            .to_vec())
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(self
            .inner
            .decode(ids, true)
            .map_err(tk_err)?
            .trim()
            .to_string())
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub(crate) fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::language::corpus;

    fn trained() -> TextTokenizer {
        TextTokenizer::train(&corpus(1, 6), 400).unwrap()
    }

    #[test]
    fn round_trips_world_text_and_free_text() {
        let tk = trained();
        assert!(
            tk.vocab_size() <= 400 && tk.vocab_size() > 300,
            "{}",
            tk.vocab_size()
        );
        for (i, s) in SPECIAL_TOKENS.iter().enumerate() {
            assert_eq!(tk.token_id(s), Some(i as u32));
        }
        let text = "put the red ball into the blue bowl";
        let ids = tk.encode(text).unwrap();
        assert!(
            ids.len() < 12,
            "common phrases should merge: {} tokens",
            ids.len()
        );
        assert_eq!(tk.decode(&ids).unwrap(), text);
        for free in ["Zap the Über-Gizmo!!! ¿qué? 日本語 🙂", "", "   "] {
            let ids = tk.encode(free).unwrap();
            assert!(ids.iter().all(|&i| (i as usize) < tk.vocab_size()));
            assert_eq!(tk.decode(&ids).unwrap(), free.to_lowercase().trim());
        }
    }

    #[test]
    fn spellings_of_control_tokens_stay_text() {
        let tk = trained();
        for s in SPECIAL_TOKENS {
            let text = format!("push {s} the red cube");
            let ids = tk.encode(&text).unwrap();
            assert!(
                ids.iter().all(|&i| i as usize >= SPECIAL_TOKENS.len()),
                "{text:?} -> {ids:?}"
            );
            assert_eq!(tk.decode(&ids).unwrap(), text);
        }
    }

    #[test]
    fn json_round_trip_and_foreign_tokenizers_load() {
        let tk = trained();
        let json = tk.to_json().unwrap();
        let again = TextTokenizer::from_json(&json).unwrap();
        assert_eq!(
            again.to_json().unwrap(),
            json,
            "loading changes nothing saved"
        );
        assert_eq!(
            again.encode("open the box").unwrap(),
            tk.encode("open the box").unwrap()
        );
        // A WordLevel tokenizer.json written by another tool loads through the same code.
        let foreign = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
            "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
            "model":{"type":"WordLevel","vocab":{"[UNK]":0,"hello":1,"world":2},"unk_token":"[UNK]"}}"#;
        let f = TextTokenizer::from_json(foreign).unwrap();
        assert_eq!(f.encode("hello there world").unwrap(), vec![1, 0, 2]);
        assert!(TextTokenizer::from_json("{\"model\": 3}").is_err());
    }
}
