//! Pipeline runs: `orchard repro` here or queued, recorded in the metadata store, linked to a tracking server.
//!
//! - [`repro`]: the pipeline runs of one `orchard repro` (one, or a sweep's), run here or queued;
//! - [`record`]: `orchard repro` run here, each stage run recorded as it settles (state, times, exit code,
//!   output, tracking run);
//! - [`queue`]: pipeline runs queued in the store and `orchard worker`s that lease their stage runs (with a
//!   heartbeat, so a dead worker's stage is taken over by another);
//! - [`schedule`]: cron schedules that `orchard server` turns into queued pipeline runs;
//! - [`tracking`]: a tracking run per pipeline run and per stage on a tracking server (`orchard-client`);
//! - [`history`]: the recorded runs read back (`orchard pipeline runs|logs`), and [`show`] what those print;
//! - `cli` (feature `cli`): the flags of the commands, turned into this crate's requests.
//!
//! The pipeline crate knows nothing of the store and the store nothing of pipelines: this crate joins them.
//! It is synchronous like the pipeline executor (stages run on threads) and reaches the async store through a
//! tokio runtime handle.

#[cfg(feature = "cli")]
pub mod cli;
pub mod history;
pub mod queue;
pub mod record;
pub mod repro;
pub mod schedule;
pub mod show;
pub mod tracking;

use std::path::Path;

use orchard_pipeline::{Outcome, Project};
use orchard_store::pipelines::{self as st, NewStageRun};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    #[error(transparent)]
    Store(#[from] orchard_store::StoreError),
    #[error(transparent)]
    Pipeline(#[from] orchard_pipeline::PipelineError),
    #[error(transparent)]
    Config(#[from] orchard_config::ConfigError),
    #[error(transparent)]
    Data(#[from] orchard_data::DataError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = OrchestratorError> = std::result::Result<T, E>;

/// How a pipeline run was asked for, kept with the run so that a worker repeats it faithfully.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub no_run_cache: bool,
    #[serde(default)]
    pub single_item: bool,
    /// The Hydra config folder and primary config composed into params.yaml (relative to the project).
    #[serde(default = "default_config_dir")]
    pub config_dir: String,
    #[serde(default = "default_config_name")]
    pub config_name: String,
    /// The tracking server the stages' runs go to (with the pipeline run's tracking run as their parent).
    #[serde(default)]
    pub tracking_uri: Option<String>,
    #[serde(default)]
    pub experiment_id: Option<String>,
}

fn default_config_dir() -> String {
    "conf".into()
}

fn default_config_name() -> String {
    "config".into()
}

impl RunOptions {
    pub fn new() -> RunOptions {
        RunOptions { config_dir: default_config_dir(), config_name: default_config_name(), ..RunOptions::default() }
    }
}

/// The stage runs of a plan: the planned stages in order, each with the planned stages it waits for.
pub fn plan_stages(project: &Project, targets: &[String], single_item: bool) -> Result<Vec<NewStageRun>> {
    let order = project.plan(targets, single_item)?;
    let up = project.upstream()?;
    let names = |is: &[usize]| -> Vec<String> {
        is.iter().filter(|j| order.contains(j)).map(|&j| project.pipeline.stages[j].name.clone()).collect()
    };
    Ok(order.iter().map(|&i| NewStageRun { stage: project.pipeline.stages[i].name.clone(), upstream: names(&up[i]) }).collect())
}

/// The stage run status an outcome is recorded as.
pub fn status_of(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Unchanged => st::UNCHANGED,
        Outcome::Ran { .. } => st::SUCCEEDED,
        Outcome::Restored => st::RESTORED,
        Outcome::Due(_) => st::PENDING,
        Outcome::Failed(_) => st::FAILED,
        Outcome::Blocked(_) => st::BLOCKED,
    }
}

/// Composes `conf/` with the overrides into `params.yaml`, rewritten only when its content changes (so an
/// unchanged config leaves stages up to date). Nothing happens without a `conf/<name>.yaml`; overrides without
/// one are an error. Returns whether the file was (re)written.
pub fn write_params(root: &Path, dir: &Path, name: &str, overrides: &[String]) -> Result<bool> {
    let Some(text) = compose_params(root, dir, name, overrides)? else {
        return Ok(false);
    };
    let path = root.join("params.yaml");
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok(false);
    }
    orchard_data::fsutil::write_atomic(&path, text.as_bytes())?;
    Ok(true)
}

/// The `params.yaml` text the config and overrides compose to (None without a config).
pub fn compose_params(root: &Path, dir: &Path, name: &str, overrides: &[String]) -> Result<Option<String>> {
    let dir = if dir.is_absolute() { dir.to_path_buf() } else { root.join(dir) };
    if !dir.join(format!("{name}.yaml")).is_file() {
        if !overrides.is_empty() {
            return Err(OrchestratorError::Invalid(format!(
                "overrides given ({}) but there is no {}/{name}.yaml to compose them with",
                overrides.join(" "),
                dir.display()
            )));
        }
        return Ok(None);
    }
    let cfg = orchard_config::Config::compose(&dir, name, overrides)?;
    Ok(Some(orchard_yaml::to_yaml(&cfg.resolved()?)))
}

/// A new run id: 32 hex digits, like MLflow's.
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
