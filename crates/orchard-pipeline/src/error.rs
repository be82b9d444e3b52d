//! What can go wrong reading or running a pipeline.

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{}: {source}", .path.display())]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Data(#[from] orchard_data::DataError),
}

impl PipelineError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> PipelineError {
        PipelineError::Io { path: path.to_path_buf(), source }
    }
}

pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
