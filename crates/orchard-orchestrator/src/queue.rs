//! Queued pipeline runs and the workers that run them.
//!
//! `enqueue` records a pipeline run with its planned stage runs (`PENDING`, each knowing the stages it waits
//! for). A [`Worker`] leases one ready stage run at a time, keeps the lease alive with a heartbeat while the
//! stage runs, and records the result — only if it still holds the lease. A worker that dies (even by
//! `kill -9`) stops renewing; its command dies with it (the pipeline executor sets the parent-death signal),
//! and once the lease has expired another worker takes the stage run over and runs it again from the start.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orchard_pipeline::{Observer, Options, Project};
use orchard_store::pipelines::{self as st, PipelineRun, PipelineRuns, StageQueue, StageRun};
use orchard_store::{now_ms, Store};
use tokio::runtime::Handle;

use crate::{OrchestratorError, Result, RunOptions};

/// Queues a pipeline run of the project (its stage runs as planned now); returns it. `tracking_run_id`: the
/// tracking run its stages' runs become children of (with `options.tracking_uri`).
pub fn enqueue(
    rt: &Handle,
    store: &Store,
    root: &Path,
    targets: &[String],
    overrides: &[String],
    options: &RunOptions,
    schedule: Option<&str>,
    tracking_run_id: Option<String>,
) -> Result<(PipelineRun, usize)> {
    let project = Project::open(root)?;
    let stages = crate::plan_stages(&project, targets, options.single_item)?;
    let run = PipelineRun {
        run_id: crate::new_run_id(),
        project: root.display().to_string(),
        targets: targets.to_vec(),
        overrides: overrides.to_vec(),
        options: serde_json::to_string(options).unwrap_or_default(),
        status: st::QUEUED.into(),
        tracking_run_id,
        schedule: schedule.map(str::to_string),
        created_ms: now_ms(),
        start_ms: None,
        end_ms: None,
    };
    if stages.is_empty() {
        return Err(OrchestratorError::Invalid("nothing to run: the pipeline has no stages".into()));
    }
    rt.block_on(store.create_pipeline_run(&run, &stages))?;
    Ok((run, stages.len()))
}

#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// This worker's name in the store (host:pid:random by default).
    pub id: String,
    /// How long a lease lasts without a heartbeat; heartbeats come three times per lease.
    pub lease: Duration,
    /// How long to wait before looking again when nothing is ready.
    pub poll: Duration,
    /// Stop once nothing has been ready for this long (None: run until stopped).
    pub idle_exit: Option<Duration>,
    /// Progress and command output to stderr.
    pub quiet_stdout: bool,
}

/// What a worker did, for its log.
#[derive(Debug, Clone)]
pub struct Done {
    pub run_id: String,
    pub stage: String,
    pub status: String,
    /// False when the lease was lost meanwhile (another worker took over): the result was not recorded.
    pub recorded: bool,
}

/// What a worker links its stage runs to (tracking runs), given by the binary: this crate knows no
/// tracking server.
pub trait Links {
    /// An observer for the stages of this pipeline run, if it has links.
    fn observer(&self, run: &PipelineRun, options: &RunOptions) -> Option<Box<dyn Observer>>;
    /// The pipeline run has ended (told to the worker that ran its last stage).
    fn ended(&self, _run: &PipelineRun, _options: &RunOptions, _status: &str) {}
}

/// No links.
pub struct Unlinked;

impl Links for Unlinked {
    fn observer(&self, _: &PipelineRun, _: &RunOptions) -> Option<Box<dyn Observer>> {
        None
    }
}

pub struct Worker {
    rt: Handle,
    store: Store,
    opts: WorkerOptions,
    links: Box<dyn Links>,
}

/// Passes calls on, keeping the tracking run id the stage's command was given.
struct Linked<'a> {
    inner: &'a dyn Observer,
    tracking_run_id: std::sync::Mutex<Option<String>>,
}

impl Observer for Linked<'_> {
    fn started(&self, stage: &orchard_pipeline::spec::Stage) -> Vec<(String, String)> {
        let env = self.inner.started(stage);
        *self.tracking_run_id.lock().expect("poisoned") = env.iter().find(|(k, _)| k == "MLFLOW_RUN_ID").map(|(_, v)| v.clone());
        env
    }
    fn finished(&self, stage: &orchard_pipeline::spec::Stage, outcome: &orchard_pipeline::Outcome, metrics: Vec<(String, f64)>) {
        self.inner.finished(stage, outcome, metrics);
    }
    fn settled(&self, report: &orchard_pipeline::StageReport) {
        self.inner.settled(report);
    }
}

impl Worker {
    pub fn new(rt: Handle, store: Store, opts: WorkerOptions, links: Box<dyn Links>) -> Worker {
        Worker { rt, store, opts, links }
    }

    /// Leases and runs stage runs until `stop` is set (checked between stages) or the worker has been idle
    /// for `idle_exit`. `each` hears about every stage run it settles.
    pub fn run(&self, stop: &AtomicBool, mut each: impl FnMut(&Done)) -> Result<()> {
        let mut idle_since = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let now = now_ms();
            let leased = self.rt.block_on(self.store.lease_stage_run(&self.opts.id, now, now + self.opts.lease.as_millis() as i64));
            match leased {
                Ok(Some((run, stage))) => {
                    match self.run_leased(&run, &stage) {
                        Ok(done) => each(&done),
                        // The result could not be recorded: the lease expires and the stage is run again.
                        Err(OrchestratorError::Store(e)) if e.is_transient() => {
                            tracing::warn!(error = %e, stage = %stage.stage, "could not record the stage run; it will be leased again");
                        }
                        Err(e) => return Err(e),
                    }
                    idle_since = std::time::Instant::now();
                }
                Ok(None) => {
                    if self.opts.idle_exit.is_some_and(|d| idle_since.elapsed() >= d) {
                        return Ok(());
                    }
                    // Nothing ready: look again shortly (the queue is the database; polling it is cheap).
                    std::thread::sleep(self.opts.poll);
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "the metadata store is unreachable; retrying");
                    std::thread::sleep(self.opts.poll.max(Duration::from_secs(1)));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Runs one leased stage run with a heartbeat beside it, then records the result.
    fn run_leased(&self, run: &PipelineRun, stage: &StageRun) -> Result<Done> {
        tracing::info!(run = %run.run_id, stage = %stage.stage, "leased");
        let options: RunOptions = serde_json::from_str(&run.options).unwrap_or_else(|_| RunOptions::new());
        let lost = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let stop = orchard_pipeline::Stop::new();
        let heartbeat = {
            let (rt, store, id, lease) = (self.rt.clone(), self.store.clone(), self.opts.id.clone(), self.opts.lease);
            let (run_id, name) = (run.run_id.clone(), stage.stage.clone());
            let (lost, finished, stop) = (lost.clone(), finished.clone(), stop.clone());
            std::thread::spawn(move || {
                let beat = lease / 3;
                let mut last = std::time::Instant::now();
                while !finished.load(Ordering::Relaxed) {
                    // Short naps so the heartbeat ends promptly with the stage.
                    std::thread::sleep(Duration::from_millis(50).min(beat));
                    if last.elapsed() < beat {
                        continue;
                    }
                    last = std::time::Instant::now();
                    match rt.block_on(store.renew_lease(&run_id, &name, &id, now_ms() + lease.as_millis() as i64)) {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(run = %run_id, stage = %name, "lease lost: another worker has taken the stage over; stopping its command");
                            lost.store(true, Ordering::Relaxed);
                            // The worker that took over runs the stage now: this one's command must not go on
                            // beside it (a worker runs one stage at a time, so every command is this stage's).
                            stop.kill_commands();
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                    }
                }
            })
        };
        let observer = self.links.observer(run, &options);
        struct Nobody;
        impl Observer for Nobody {}
        let linked = Linked { inner: observer.as_deref().unwrap_or(&Nobody), tracking_run_id: std::sync::Mutex::new(None) };
        let report = self.execute(run, stage, &options, &linked, stop);
        finished.store(true, Ordering::Relaxed);
        let _ = heartbeat.join();
        let tracking = linked.tracking_run_id.lock().expect("poisoned").take();
        let (result, status) = match report {
            Ok(report) => {
                let r = crate::record::result_of(&report, stage.start_ms, tracking);
                let s = r.status.clone();
                (r, s)
            }
            Err(e) => {
                let r = st::StageResult {
                    status: st::FAILED.into(),
                    error: Some(e.to_string()),
                    start_ms: stage.start_ms,
                    end_ms: now_ms(),
                    ..st::StageResult::default()
                };
                (r, st::FAILED.to_string())
            }
        };
        let after = if lost.load(Ordering::Relaxed) {
            None
        } else {
            self.rt.block_on(self.store.finish_stage_run(&run.run_id, &stage.stage, Some(&self.opts.id), &result))?
        };
        if let Some(end) = after.as_deref().filter(|s| *s == st::SUCCEEDED || *s == st::FAILED) {
            self.links.ended(run, &options, end);
        }
        Ok(Done { run_id: run.run_id.clone(), stage: stage.stage.clone(), status, recorded: after.is_some() })
    }

    fn execute(
        &self,
        run: &PipelineRun,
        stage: &StageRun,
        options: &RunOptions,
        observer: &dyn Observer,
        stop: orchard_pipeline::Stop,
    ) -> Result<orchard_pipeline::StageReport> {
        let root = Path::new(&run.project);
        // The run's params: its overrides composed into params.yaml (the same for every stage of the run).
        crate::write_params(root, Path::new(&options.config_dir), &options.config_name, &run.overrides)?;
        let project = Project::open(root)?;
        let opts = Options {
            targets: vec![stage.stage.clone()],
            jobs: 1,
            force: options.force,
            dry: false,
            single_item: true,
            no_run_cache: options.no_run_cache,
            env: vec![("ORCHARD_WORKER".into(), self.opts.id.clone()), ("ORCHARD_PIPELINE_RUN_ID".into(), run.run_id.clone())],
            progress_to_stderr: self.opts.quiet_stdout,
            die_with_parent: true,
            stop,
        };
        Ok(orchard_pipeline::run_one(&project, &stage.stage, &opts, observer)?)
    }
}

/// `host:pid:xxxx`, unique enough to tell workers apart in the store.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}:{}", std::process::id(), &crate::new_run_id()[..6])
}
