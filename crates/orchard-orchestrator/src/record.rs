//! Records a pipeline run executed in this process (`orchard repro`): the run and its planned stage runs
//! when it starts, each stage run as it starts and settles, the run's end. Recording is bookkeeping: when
//! the store cannot be written the pipeline still runs, with a warning.

use std::collections::HashMap;
use std::sync::Mutex;

use orchard_pipeline::spec::Stage;
use orchard_pipeline::{Observer, Outcome, StageReport};
use orchard_store::pipelines::{self as st, NewStageRun, PipelineRun, StageResult};
use orchard_store::{now_ms, Store};
use tokio::runtime::Handle;

use crate::Result;

/// An [`Observer`] that records stage runs and passes every call on to `inner` (tracking links).
pub struct Recorder<'a> {
    rt: Handle,
    store: Store,
    pub run_id: String,
    inner: &'a dyn Observer,
    /// Stage → (start time, tracking run id given to its command).
    started: Mutex<HashMap<String, (i64, Option<String>)>>,
}

/// A new pipeline run's description.
pub struct NewRun<'a> {
    pub project: &'a std::path::Path,
    pub targets: &'a [String],
    pub overrides: &'a [String],
    pub options: &'a crate::RunOptions,
    pub tracking_run_id: Option<String>,
    pub stages: Vec<NewStageRun>,
}

impl<'a> Recorder<'a> {
    /// Records the run as `RUNNING` with its stage runs `PENDING`.
    pub fn begin(rt: Handle, store: Store, run: NewRun<'_>, inner: &'a dyn Observer) -> Result<Recorder<'a>> {
        let run_id = crate::new_run_id();
        let now = now_ms();
        let record = PipelineRun {
            run_id: run_id.clone(),
            project: run.project.display().to_string(),
            targets: run.targets.to_vec(),
            overrides: run.overrides.to_vec(),
            options: serde_json::to_string(run.options).unwrap_or_default(),
            status: st::RUNNING.into(),
            tracking_run_id: run.tracking_run_id,
            schedule: None,
            created_ms: now,
            start_ms: Some(now),
            end_ms: None,
        };
        rt.block_on(store.create_pipeline_run(&record, &run.stages))?;
        Ok(Recorder { rt, store, run_id, inner, started: Mutex::new(HashMap::new()) })
    }

    /// Marks the run finished (stage runs settle it themselves when the last one ends; this covers a run
    /// whose plan was empty).
    pub fn end(&self, failed: bool) {
        let status = if failed { st::FAILED } else { st::SUCCEEDED };
        if let Err(e) = self.rt.block_on(self.store.set_pipeline_run_status(&self.run_id, status, now_ms())) {
            tracing::warn!(error = %e, "could not record the end of pipeline run {}", self.run_id);
        }
    }
}

/// A settled stage as the store records it.
pub fn result_of(report: &StageReport, start_ms: Option<i64>, tracking_run_id: Option<String>) -> StageResult {
    let (attempts, error) = match &report.outcome {
        Outcome::Ran { attempts } => (i64::from(*attempts), None),
        Outcome::Failed(e) | Outcome::Blocked(e) => (i64::from(report.exit_code.is_some()), Some(e.clone())),
        _ => (0, None),
    };
    StageResult {
        status: crate::status_of(&report.outcome).into(),
        attempts,
        exit_code: report.exit_code.map(i64::from),
        error,
        start_ms,
        end_ms: now_ms(),
        stdout: report.stdout.clone(),
        stderr: report.stderr.clone(),
        tracking_run_id,
    }
}

impl Observer for Recorder<'_> {
    fn started(&self, stage: &Stage) -> Vec<(String, String)> {
        let env = self.inner.started(stage);
        let tracking = env.iter().find(|(k, _)| k == "MLFLOW_RUN_ID").map(|(_, v)| v.clone());
        let now = now_ms();
        self.started.lock().expect("recorder poisoned").insert(stage.name.clone(), (now, tracking));
        if let Err(e) = self.rt.block_on(self.store.stage_run_started(&self.run_id, &stage.name, now)) {
            tracing::warn!(error = %e, "could not record the start of stage '{}'", stage.name);
        }
        env
    }

    fn finished(&self, stage: &Stage, outcome: &Outcome, metrics: Vec<(String, f64)>) {
        self.inner.finished(stage, outcome, metrics);
    }

    fn settled(&self, report: &StageReport) {
        self.inner.settled(report);
        let (start, tracking) = self.started.lock().expect("recorder poisoned").remove(&report.name).unwrap_or((now_ms(), None));
        let result = result_of(report, Some(start), tracking);
        if let Err(e) = self.rt.block_on(self.store.finish_stage_run(&self.run_id, &report.name, None, &result)) {
            tracing::warn!(error = %e, "could not record stage '{}'", report.name);
        }
    }
}
