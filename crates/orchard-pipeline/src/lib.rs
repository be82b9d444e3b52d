//! Pipelines on DVC's formats: `dvc.yaml` stages ([`spec`]), `dvc.lock` ([`lock`]), the DAG and what changed
//! ([`project`]), the run cache ([`runcache`]) and `repro` ([`repro`]) — so `dvc` and Orchard agree on what is
//! up to date and can take turns on one repository.

pub mod lock;
pub mod project;
pub mod repro;
pub mod runcache;
pub mod spec;
pub mod status;

pub use project::{Change, Project};
pub use repro::{repro, repro_observed, run_one, Observer, Options, Outcome, Report, StageReport};

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
