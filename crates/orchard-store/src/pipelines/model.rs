//! Pipeline runs, stage runs and schedules as stored, and how their rows read.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use crate::values::{from_columns, get, int, optional_int};
use crate::error::Result;

pub const QUEUED: &str = "QUEUED";
pub const PENDING: &str = "PENDING";
pub const RUNNING: &str = "RUNNING";
pub const SUCCEEDED: &str = "SUCCEEDED";
pub const FAILED: &str = "FAILED";
pub const BLOCKED: &str = "BLOCKED";
pub const RESTORED: &str = "RESTORED";
pub const UNCHANGED: &str = "UNCHANGED";

/// Stage outcomes that let the stages downstream go ahead.
pub(super) const DONE_OK: &str = "('SUCCEEDED', 'RESTORED', 'UNCHANGED')";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineRun {
    pub run_id: String,
    /// The repository root the pipeline runs in.
    pub project: String,
    pub targets: Vec<String>,
    pub overrides: Vec<String>,
    /// The repro options as the domain layer encodes them (JSON).
    pub options: String,
    pub status: String,
    pub tracking_run_id: Option<String>,
    /// The schedule that queued it, if one did.
    pub schedule: Option<String>,
    pub created_ms: i64,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRun {
    pub run_id: String,
    pub stage: String,
    pub position: i64,
    pub status: String,
    pub attempts: i64,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    pub tracking_run_id: Option<String>,
    pub worker: Option<String>,
    pub lease_until_ms: Option<i64>,
}

/// A stage of a new pipeline run: its name and the stages of the same run it waits for.
#[derive(Clone, Debug)]
pub struct NewStageRun {
    pub stage: String,
    pub upstream: Vec<String>,
}

/// What became of a stage run.
#[derive(Clone, Debug, Default)]
pub struct StageResult {
    pub status: String,
    pub attempts: i64,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: i64,
    pub stdout: String,
    pub stderr: String,
    pub tracking_run_id: Option<String>,
}

/// Something that happened to a stage run of a pipeline run executed in this process.
#[derive(Clone, Debug)]
pub enum StageEvent {
    Started { stage: String, at_ms: i64 },
    Settled { stage: String, result: StageResult },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub cron: String,
    pub project: String,
    pub targets: Vec<String>,
    pub overrides: Vec<String>,
    pub enabled: bool,
    /// When it fires next (ms since the epoch).
    pub next_ms: i64,
    pub created_ms: i64,
}

pub(super) const RUN_COLUMNS: &str = "run_id, project, targets, overrides, options, status, tracking_run_id, schedule, \
    created_ms, start_ms, end_ms";
pub(super) const STAGE_COLUMNS: &str = "run_id, stage, position, status, attempts, exit_code, error, start_ms, end_ms, \
    stdout, stderr, tracking_run_id, worker, lease_until_ms";

/// The pipeline run whose id is `$1`.
pub(super) fn run_by_id() -> String {
    format!("SELECT {RUN_COLUMNS} FROM pipeline_runs WHERE run_id = $1")
}

pub(super) fn list_from_json(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

pub(super) fn list_to_json(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

pub(super) fn run_from_row(row: &AnyRow) -> Result<PipelineRun> {
    Ok(from_columns!(row, PipelineRun {
        run_id, project, options, status, tracking_run_id, schedule, created_ms, start_ms, end_ms;
        targets: list_from_json(&get::<String>(row, "targets")?),
        overrides: list_from_json(&get::<String>(row, "overrides")?),
    }))
}

pub(super) fn stage_from_row(row: &AnyRow) -> Result<StageRun> {
    Ok(from_columns!(row, StageRun {
        run_id, stage, status, error, start_ms, end_ms, stdout, stderr, tracking_run_id, worker,
        lease_until_ms;
        position: int(row, "position")?,
        attempts: int(row, "attempts")?,
        exit_code: optional_int(row, "exit_code")?,
    }))
}

pub(super) fn schedule_from_row(row: &AnyRow) -> Result<Schedule> {
    Ok(from_columns!(row, Schedule {
        name, cron, project, next_ms, created_ms;
        targets: list_from_json(&get::<String>(row, "targets")?),
        overrides: list_from_json(&get::<String>(row, "overrides")?),
        enabled: int(row, "enabled")? != 0,
    }))
}
