//! What can go wrong reading a model or predicting with it.

/// Every variant names what was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("invalid {format} model: {reason}")]
    Format { format: &'static str, reason: String },
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// The input does not fit the model (a missing, extra or mistyped field).
    #[error("{0}")]
    Input(String),
    #[error("wrong input shape: {0}")]
    Shape(String),
}

impl ModelError {
    pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> ModelError {
        ModelError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }
}
