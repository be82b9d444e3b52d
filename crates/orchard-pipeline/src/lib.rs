//! Pipelines on DVC's formats: `dvc.yaml` stages ([`spec`]), `dvc.lock` ([`lock`]), the DAG and what changed
//! ([`project`]), the run cache ([`runcache`]) and `repro` ([`repro`]) — so `dvc` and Orchard agree on what is
//! up to date and can take turns on one repository.

mod control;
mod error;
pub mod lock;
mod lockfile;
mod outcome;
pub mod project;
pub mod repro;
pub mod runcache;
pub mod spec;
pub mod status;
mod supervise;

pub use project::{Change, Project};
pub use control::{Options, Stop};
pub use outcome::{Outcome, Report, StageReport};
pub use repro::{metrics_of, repro, repro_observed, run_one, Observer};

pub use error::{PipelineError, Result};
