//! Evaluation: measuring tokenizers and models against the world's ground truth.

pub mod tokenizer;

pub use tokenizer::{TokenizerReport, evaluate_tokenizer};
