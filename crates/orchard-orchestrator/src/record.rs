//! Records a pipeline run executed in this process (`orchard repro`): the run and its planned stage runs
//! when it starts, each stage run as it starts and settles, the run's end. Recording is bookkeeping: when
//! the store cannot be written the pipeline still runs, with a warning.
//!
//! The stages never wait for the store: events go to a recorder thread that writes what gathered over a
//! few milliseconds in one transaction, while the next stage's command runs. [`Recorder::end`] waits for it to catch up.

use std::collections::HashMap;
use std::sync::{mpsc, Mutex};

use orchard_pipeline::spec::Stage;
use orchard_pipeline::{Observer, Outcome, StageReport};
use orchard_store::pipelines::{self as st, NewStageRun, PipelineRun, PipelineRuns, StageEvent, StageResult};
use orchard_store::{now_ms, Store};
use tokio::runtime::Handle;

use crate::Result;

enum Message {
    Event(StageEvent),
    /// Answered once everything sent before it is written.
    Flush(mpsc::Sender<()>),
}

/// An [`Observer`] that records stage runs and passes every call on to `inner` (tracking links).
pub struct Recorder<'a> {
    rt: Handle,
    store: Store,
    pub run_id: String,
    inner: &'a dyn Observer,
    /// Stage → (start time, tracking run id given to its command).
    started: Mutex<HashMap<String, (i64, Option<String>)>>,
    events: mpsc::Sender<Message>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
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
        let (events, received) = mpsc::channel();
        let writer = {
            let (rt, store, run_id) = (rt.clone(), store.clone(), run_id.clone());
            std::thread::Builder::new()
                .name("orchard-recorder".into())
                .spawn(move || write_events(&rt, &store, &run_id, &received))
                .map_err(|e| crate::OrchestratorError::Invalid(format!("cannot start the recorder: {e}")))?
        };
        Ok(Recorder { rt, store, run_id, inner, started: Mutex::new(HashMap::new()), events, writer: Mutex::new(Some(writer)) })
    }

    /// Waits until every event sent so far is in the store (or failed to get there, with a warning).
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self.events.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Marks the run finished once its stage runs are written (they settle it themselves when the last one
    /// ends; this covers a run whose plan was empty).
    pub fn end(&self, failed: bool) {
        self.flush();
        let status = if failed { st::FAILED } else { st::SUCCEEDED };
        if let Err(e) = self.rt.block_on(self.store.set_pipeline_run_status(&self.run_id, status, now_ms())) {
            tracing::warn!(error = %e, "could not record the end of pipeline run {}", self.run_id);
        }
    }

    fn send(&self, event: StageEvent) {
        // The writer only stops when the recorder is dropped, so a send cannot fail while it is used.
        let _ = self.events.send(Message::Event(event));
    }
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        self.flush();
        // Closing the channel ends the writer.
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.events, closed));
        if let Some(w) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = w.join();
        }
    }
}

/// How long the recorder lets events gather before it writes them: on a pipeline of quick stages, one
/// transaction per batch rather than two per stage, and no wake-up of this thread per event, leave the CPU
/// to the stages' commands.
const GATHER: std::time::Duration = std::time::Duration::from_millis(25);

/// The recorder thread: waits for an event, lets others gather for a moment (not when someone waits for a
/// flush), writes them together.
fn write_events(rt: &Handle, store: &Store, run_id: &str, received: &mpsc::Receiver<Message>) {
    while let Ok(first) = received.recv() {
        if matches!(first, Message::Event(_)) {
            std::thread::sleep(GATHER);
        }
        let mut batch = Vec::new();
        let mut waiting = Vec::new();
        for m in std::iter::once(first).chain(received.try_iter()) {
            match m {
                Message::Event(e) => batch.push(e),
                Message::Flush(done) => waiting.push(done),
            }
        }
        if !batch.is_empty() && rt.block_on(store.record_stage_events(run_id, &batch)).is_err() {
            // One event the store refuses must not take the others with it: each on its own.
            for event in &batch {
                if let Err(e) = rt.block_on(store.record_stage_events(run_id, std::slice::from_ref(event))) {
                    tracing::warn!(error = %e, "could not record a stage run event of pipeline run {run_id}");
                }
            }
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// A settled stage as the store records it.
pub fn result_of(report: &StageReport, start_ms: Option<i64>, tracking_run_id: Option<String>) -> StageResult {
    let (attempts, error) = match &report.outcome {
        Outcome::Ran { attempts } => (i64::from(*attempts), None),
        Outcome::Failed(e) | Outcome::Blocked(e) => (i64::from(report.attempts), Some(e.clone())),
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
        self.send(StageEvent::Started { stage: stage.name.clone(), at_ms: now });
        env
    }

    fn finished(&self, stage: &Stage, outcome: &Outcome, metrics: Vec<(String, f64)>) {
        self.inner.finished(stage, outcome, metrics);
    }

    fn settled(&self, report: &StageReport) {
        self.inner.settled(report);
        let (start, tracking) = self.started.lock().expect("recorder poisoned").remove(&report.name).unwrap_or((now_ms(), None));
        let result = result_of(report, Some(start), tracking);
        self.send(StageEvent::Settled { stage: report.name.clone(), result });
    }
}
