//! Pipelines on DVC's formats: `dvc.yaml` stages ([`spec`]), `dvc.lock` ([`lock`]), the DAG and what changed
//! ([`project`]), the run cache ([`runcache`]) and `repro` ([`repro`]) — so `dvc` and Orchard agree on what is
//! up to date and can take turns on one repository.

mod error;
pub mod lock;
pub mod project;
pub mod repro;
pub mod runcache;
pub mod spec;
pub mod status;

pub use project::{Change, Project};
pub use repro::{repro, repro_observed, run_one, Observer, Options, Outcome, Report, StageReport, Stop};

pub use error::{PipelineError, Result};
