//! The library's error type. Every message names the file or field at fault and, where there
//! is one, the fix.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dataset file that does not follow the AURORA layout.
    #[error("{file}{}{}: {message}", row.map(|r| format!(", row {r}")).unwrap_or_default(), field.as_ref().map(|f| format!(", field `{f}`")).unwrap_or_default())]
    Malformed {
        file: String,
        row: Option<usize>,
        field: Option<String>,
        message: String,
    },
    /// A file that could not be read or written. The OS error is part of the message, not a
    /// separate cause, so that `{:#}` chains print it once.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("image {}: {message}", path.display())]
    Image { path: PathBuf, message: String },
    /// A value that does not fit what a component expects (shapes, sizes, configs).
    #[error("{0}")]
    Invalid(String),
    /// Something asked for by name or id that does not exist (a study's item or rater).
    #[error("{0}")]
    NotFound(String),
    /// The WebGPU path (adapter, device, readback).
    #[error("GPU: {0}")]
    Gpu(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A study's SQLite file: not a study, made by a newer version, or a failed statement.
    #[error("study {}: {message}", path.display())]
    Study { path: PathBuf, message: String },
    #[error("{}", candle_reason(.0))]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Action(#[from] crate::world::ActionError),
    #[error(transparent)]
    Parse(#[from] crate::world::ParseError),
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
