//! The library's error type. Every message names the file or field at fault and, where there
//! is one, the fix.

use std::path::PathBuf;

/// The library's result: [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
/// Every way the library can fail; each message names the file or value and what to do.
pub enum Error {
    /// A dataset file that does not follow the AURORA layout.
    #[error("{file}{}{}: {message}", row.map(|r| format!(", row {r}")).unwrap_or_default(), field.as_ref().map(|f| format!(", field `{f}`")).unwrap_or_default())]
    Malformed {
        /// The file (or folder) read.
        file: String,
        /// The 0-based row of a json array, where one row is at fault.
        row: Option<usize>,
        /// The field at fault, where one is.
        field: Option<String>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A file that could not be read or written. The OS error is part of the message, not a
    /// separate cause, so that `{:#}` chains print it once.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// An image that cannot be decoded or does not have the size a model needs.
    #[error("image {}: {message}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A value that does not fit what a component expects (shapes, sizes, configs).
    #[error("{0}")]
    Invalid(String),
    /// Something asked for by name or id that does not exist (a study's item or rater).
    #[error("{0}")]
    NotFound(String),
    /// The WebGPU path (adapter, device, readback).
    #[error("GPU: {0}")]
    Gpu(String),
    /// A text tokenizer that cannot be read or built.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A study's SQLite file: not a study, made by a newer version, or a failed statement.
    #[error("study {}: {message}", path.display())]
    Study {
        /// The study file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A tensor operation or a safetensors file that candle refused.
    #[error("{}", candle_reason(.0))]
    Candle(#[from] candle_core::Error),
    /// An action the embedded world refuses in a scene.
    #[error(transparent)]
    Action(#[from] crate::world::ActionError),
    /// Words the embedded world's parser cannot read as an action.
    #[error(transparent)]
    Parse(#[from] crate::world::ParseError),
    /// An image the embedded world's recogniser cannot read back into a scene.
    #[error(transparent)]
    Recognise(#[from] crate::world::recognise::RecogniseError),
}

/// A candle error's message, without the backtrace candle appends to it when `RUST_BACKTRACE`
/// is set (a user's message names the file and the fix, not our call stack).
pub(crate) fn candle_reason(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => candle_reason(inner),
        candle_core::Error::Context { inner, context } => {
            format!("{context}: {}", candle_reason(inner))
        }
        candle_core::Error::WithPath { inner, path } => {
            format!("{}: {}", path.display(), candle_reason(inner))
        }
        other => other.to_string(),
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candle_errors_read_without_the_backtrace_candle_attaches() {
        let inner = candle_core::Error::Msg("shape mismatch for lm_head.weight".into());
        let traced = candle_core::Error::WithBacktrace {
            inner: Box::new(inner),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert!(traced.to_string().contains('\n'), "candle prints the trace");
        let in_context = traced.context("loading w/");
        assert_eq!(
            Error::from(in_context).to_string(),
            "loading w/: shape mismatch for lm_head.weight"
        );
    }
}
