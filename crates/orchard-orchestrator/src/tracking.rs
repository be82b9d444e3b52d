//! Links a pipeline run to a tracking server through MLflow's REST API (`orchard-client`): one run for the
//! pipeline, a child run per stage that runs (`mlflow.parentRunId`), whose id the stage's command gets as
//! `MLFLOW_RUN_ID` (with `MLFLOW_TRACKING_URI` and `MLFLOW_EXPERIMENT_ID`), so `mlflow` code in the stage
//! logs into it unchanged. The stage's metrics files are logged as metrics of its run; its outcome and
//! attempts as tags.
//!
//! The pipeline calls an [`Observer`] from its stage threads, so the calls here block on the runtime handle
//! they were given.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use orchard_api::endpoints::{
    CreateExperiment, CreateExperimentRequest, CreateRun, CreateRunRequest, Endpoint, GetExperimentByName,
    GetExperimentByNameRequest, LogBatch, LogBatchRequest, UpdateRun, UpdateRunRequest,
};
use orchard_api::endpoints::MetricIn;
use orchard_api::read::KeyValue;
use orchard_client::{describe, Client, ClientError};
use orchard_pipeline::spec::Stage;
use orchard_pipeline::{Observer, Outcome};
use orchard_store::pipelines::PipelineRun;
use orchard_store::now_ms;
use tokio::runtime::Handle;

use crate::queue::Links;
use crate::RunOptions;

/// Whether a tracking URI names a server this client can talk to (not a local store).
pub fn is_server(uri: &str) -> bool {
    uri.starts_with("http://") || uri.starts_with("https://")
}

/// The tracking runs of one pipeline run: its own, and one per stage that runs.
pub struct Tracker {
    client: Client,
    rt: Handle,
    pub experiment_id: String,
    /// The pipeline's own run, parent of the stages' runs.
    pub parent: String,
    runs: Mutex<HashMap<String, String>>,
}

impl Tracker {
    fn call<E: Endpoint>(&self, request: &E::Request) -> Result<E::Response, ClientError> {
        self.rt.block_on(self.client.call::<E>(request))
    }

    /// Opens the pipeline's run in `experiment` (created when missing).
    pub fn start(rt: Handle, uri: &str, experiment: &str, root: &Path) -> Result<Tracker, ClientError> {
        let mut t = Tracker::attach(rt, uri, "", "");
        let found = t.call::<GetExperimentByName>(&GetExperimentByNameRequest { experiment_name: experiment.to_string() });
        t.experiment_id = match found {
            Ok(r) => r.experiment.experiment_id,
            Err(_) => {
                let request = CreateExperimentRequest { name: experiment.to_string(), artifact_location: None, tags: vec![] };
                t.call::<CreateExperiment>(&request)?.experiment_id
            }
        };
        let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let run = t.call::<CreateRun>(&CreateRunRequest {
            user_id: String::new(),
            experiment_id: t.experiment_id.clone(),
            start_time: Some(now_ms()),
            run_name: Some(format!("repro {name}")),
            tags: vec![KeyValue::new("orchard.pipeline", root.display().to_string())],
        })?;
        t.parent = run.run.info.run_id;
        Ok(t)
    }

    /// A pipeline run's tracking run opened elsewhere (by `orchard repro --queue`): a worker's stages become
    /// its children.
    pub fn attach(rt: Handle, uri: &str, experiment_id: &str, parent: &str) -> Tracker {
        Tracker {
            client: Client::new(uri),
            rt,
            experiment_id: experiment_id.to_string(),
            parent: parent.to_string(),
            runs: Mutex::new(HashMap::new()),
        }
    }

    fn end(&self, run_id: &str, failed: bool) -> Result<(), ClientError> {
        let status = if failed { "FAILED" } else { "FINISHED" };
        let request = UpdateRunRequest {
            run_id: run_id.to_string(),
            status: Some(status.into()),
            end_time: Some(now_ms()),
            run_name: None,
        };
        self.call::<UpdateRun>(&request).map(drop)
    }

    /// Closes the pipeline's run; a failure to reach the server is a warning (the pipeline has run).
    pub fn finish(&self, failed: bool) {
        if let Err(e) = self.end(&self.parent, failed) {
            eprintln!("WARNING: could not close the pipeline's tracking run: {}", describe(&e));
        }
    }

    fn stage_run(&self, stage: &Stage) -> Result<String, ClientError> {
        let run = self.call::<CreateRun>(&CreateRunRequest {
            user_id: String::new(),
            experiment_id: self.experiment_id.clone(),
            start_time: Some(now_ms()),
            run_name: Some(stage.name.clone()),
            tags: vec![
                KeyValue::new("mlflow.parentRunId", &self.parent),
                KeyValue::new("orchard.stage", &stage.name),
                KeyValue::new("orchard.stage.cmd", stage.cmd.lines().join("\n")),
            ],
        })?;
        Ok(run.run.info.run_id)
    }

    fn record(&self, run_id: &str, outcome: &Outcome, metrics: Vec<(String, f64)>) -> Result<(), ClientError> {
        let timestamp = now_ms();
        let (state, attempts, error) = match outcome {
            Outcome::Ran { attempts } => ("ran", *attempts, None),
            Outcome::Failed(e) => ("failed", 0, Some(e.clone())),
            _ => ("other", 0, None),
        };
        let mut tags = vec![KeyValue::new("orchard.stage.state", state)];
        if attempts > 0 {
            tags.push(KeyValue::new("orchard.stage.attempts", attempts.to_string()));
        }
        if let Some(e) = error {
            tags.push(KeyValue::new("orchard.stage.error", e));
        }
        let metrics = metrics
            .into_iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(key, value)| MetricIn { key, value, timestamp, step: Some(0), ..MetricIn::default() })
            .collect();
        self.call::<LogBatch>(&LogBatchRequest { run_id: run_id.to_string(), metrics, params: vec![], tags })?;
        self.end(run_id, state == "failed")
    }
}

impl Observer for Tracker {
    fn started(&self, stage: &Stage) -> Vec<(String, String)> {
        match self.stage_run(stage) {
            Ok(id) => {
                self.runs.lock().expect("runs lock").insert(stage.name.clone(), id.clone());
                vec![
                    ("MLFLOW_TRACKING_URI".into(), self.client.base().to_string()),
                    ("MLFLOW_EXPERIMENT_ID".into(), self.experiment_id.clone()),
                    ("MLFLOW_RUN_ID".into(), id),
                ]
            }
            Err(e) => {
                eprintln!("WARNING: no tracking run for stage '{}': {}", stage.name, describe(&e));
                Vec::new()
            }
        }
    }

    fn finished(&self, stage: &Stage, outcome: &Outcome, metrics: Vec<(String, f64)>) {
        let id = self.runs.lock().expect("runs lock").get(&stage.name).cloned();
        if let Some(id) = id {
            if let Err(e) = self.record(&id, outcome, metrics) {
                eprintln!("WARNING: could not record stage '{}' in its tracking run: {}", stage.name, describe(&e));
            }
        }
    }
}

/// Tracking links for a worker's stage runs: a child run per stage under the pipeline run's tracking run.
pub struct WorkerLinks {
    pub rt: Handle,
}

impl Links for WorkerLinks {
    fn observer(&self, run: &PipelineRun, options: &RunOptions) -> Option<Box<dyn Observer>> {
        match (&options.tracking_uri, &options.experiment_id, &run.tracking_run_id) {
            (Some(uri), Some(exp), Some(parent)) => Some(Box::new(Tracker::attach(self.rt.clone(), uri, exp, parent))),
            _ => None,
        }
    }

    fn ended(&self, run: &PipelineRun, options: &RunOptions, status: &str) {
        if let (Some(uri), Some(exp), Some(parent)) = (&options.tracking_uri, &options.experiment_id, &run.tracking_run_id) {
            Tracker::attach(self.rt.clone(), uri, exp, parent).finish(status == orchard_store::pipelines::FAILED);
        }
    }
}
