//! Links `orchard repro` to a tracking server through MLflow's REST API: one run for the pipeline, a child
//! run per stage that runs (`mlflow.parentRunId`), whose id the stage's command gets as `MLFLOW_RUN_ID` (with
//! `MLFLOW_TRACKING_URI` and `MLFLOW_EXPERIMENT_ID`), so `mlflow` code in the stage logs into it unchanged.
//! The stage's metrics files are logged as metrics of its run; its outcome and attempts as tags.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use orchard_pipeline::spec::Stage;
use orchard_pipeline::{Observer, Outcome};
use serde_json::{json, Value};

pub struct Tracker {
    base: String,
    client: reqwest::blocking::Client,
    pub experiment_id: String,
    pub parent: String,
    runs: Mutex<HashMap<String, String>>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Tracker {
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let mut req = self.client.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().with_context(|| format!("calling {url}"))?;
        let status = resp.status();
        let value: Value = resp.json().unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{url}: {status} {}", value.get("message").and_then(Value::as_str).unwrap_or(""));
        }
        Ok(value)
    }

    /// Opens the pipeline's run in `experiment` (created when missing).
    pub fn start(uri: &str, experiment: &str, root: &Path) -> anyhow::Result<Tracker> {
        let mut t = Tracker {
            base: uri.trim_end_matches('/').to_string(),
            client: reqwest::blocking::Client::new(),
            experiment_id: String::new(),
            parent: String::new(),
            runs: Mutex::new(HashMap::new()),
        };
        let q = format!("experiments/get-by-name?experiment_name={}", url::form_urlencoded::byte_serialize(experiment.as_bytes()).collect::<String>());
        t.experiment_id = match t.call(reqwest::Method::GET, &q, None) {
            Ok(v) => v["experiment"]["experiment_id"].as_str().unwrap_or_default().to_string(),
            Err(_) => t.call(reqwest::Method::POST, "experiments/create", Some(json!({ "name": experiment })))?["experiment_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        };
        let run = t.call(
            reqwest::Method::POST,
            "runs/create",
            Some(json!({
                "experiment_id": t.experiment_id,
                "start_time": now_ms(),
                "run_name": format!("repro {}", root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
                "tags": [{"key": "orchard.pipeline", "value": root.display().to_string()}],
            })),
        )?;
        t.parent = run["run"]["info"]["run_id"].as_str().unwrap_or_default().to_string();
        Ok(t)
    }

    /// A pipeline run's tracking run opened elsewhere (by `orchard repro --queue`): a worker's stages become its
    /// children.
    pub fn attach(uri: &str, experiment_id: &str, parent: &str) -> Tracker {
        Tracker {
            base: uri.trim_end_matches('/').to_string(),
            client: reqwest::blocking::Client::new(),
            experiment_id: experiment_id.to_string(),
            parent: parent.to_string(),
            runs: Mutex::new(HashMap::new()),
        }
    }

    fn end(&self, run_id: &str, failed: bool) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::POST,
            "runs/update",
            Some(json!({ "run_id": run_id, "status": if failed { "FAILED" } else { "FINISHED" }, "end_time": now_ms() })),
        )?;
        Ok(())
    }

    pub fn finish(&self, failed: bool) {
        if let Err(e) = self.end(&self.parent, failed) {
            eprintln!("WARNING: could not close the pipeline's tracking run: {e:#}");
        }
    }

    fn stage_run(&self, stage: &Stage) -> anyhow::Result<String> {
        let run = self.call(
            reqwest::Method::POST,
            "runs/create",
            Some(json!({
                "experiment_id": self.experiment_id,
                "start_time": now_ms(),
                "run_name": stage.name,
                "tags": [
                    {"key": "mlflow.parentRunId", "value": self.parent},
                    {"key": "orchard.stage", "value": stage.name},
                    {"key": "orchard.stage.cmd", "value": stage.cmd.lines().join("\n")},
                ],
            })),
        )?;
        Ok(run["run"]["info"]["run_id"].as_str().unwrap_or_default().to_string())
    }

    fn record(&self, run_id: &str, outcome: &Outcome, metrics: Vec<(String, f64)>) -> anyhow::Result<()> {
        let ts = now_ms();
        let (state, attempts, error) = match outcome {
            Outcome::Ran { attempts } => ("ran", *attempts, None),
            Outcome::Failed(e) => ("failed", 0, Some(e.clone())),
            _ => ("other", 0, None),
        };
        let mut tags = vec![json!({"key": "orchard.stage.state", "value": state})];
        if attempts > 0 {
            tags.push(json!({"key": "orchard.stage.attempts", "value": attempts.to_string()}));
        }
        if let Some(e) = error {
            tags.push(json!({"key": "orchard.stage.error", "value": e}));
        }
        let metrics: Vec<Value> = metrics
            .into_iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(k, v)| json!({"key": k, "value": v, "timestamp": ts, "step": 0}))
            .collect();
        self.call(reqwest::Method::POST, "runs/log-batch", Some(json!({ "run_id": run_id, "metrics": metrics, "tags": tags })))?;
        self.end(run_id, state == "failed")
    }
}

impl Observer for Tracker {
    fn started(&self, stage: &Stage) -> Vec<(String, String)> {
        match self.stage_run(stage) {
            Ok(id) => {
                self.runs.lock().expect("runs lock").insert(stage.name.clone(), id.clone());
                vec![
                    ("MLFLOW_TRACKING_URI".into(), self.base.clone()),
                    ("MLFLOW_EXPERIMENT_ID".into(), self.experiment_id.clone()),
                    ("MLFLOW_RUN_ID".into(), id),
                ]
            }
            Err(e) => {
                eprintln!("WARNING: no tracking run for stage '{}': {e:#}", stage.name);
                Vec::new()
            }
        }
    }

    fn finished(&self, stage: &Stage, outcome: &Outcome, metrics: Vec<(String, f64)>) {
        let id = self.runs.lock().expect("runs lock").get(&stage.name).cloned();
        if let Some(id) = id {
            if let Err(e) = self.record(&id, outcome, metrics) {
                eprintln!("WARNING: could not record stage '{}' in its tracking run: {e:#}", stage.name);
            }
        }
    }
}

/// Tracking links for a worker's stage runs: a child run per stage under the pipeline run's tracking run.
pub struct WorkerLinks;

impl orchard_orchestrator::queue::Links for WorkerLinks {
    fn observer(&self, run: &orchard_store::pipelines::PipelineRun, options: &orchard_orchestrator::RunOptions) -> Option<Box<dyn Observer>> {
        match (&options.tracking_uri, &options.experiment_id, &run.tracking_run_id) {
            (Some(uri), Some(exp), Some(parent)) => Some(Box::new(Tracker::attach(uri, exp, parent))),
            _ => None,
        }
    }

    fn ended(&self, run: &orchard_store::pipelines::PipelineRun, options: &orchard_orchestrator::RunOptions, status: &str) {
        if let (Some(uri), Some(exp), Some(parent)) = (&options.tracking_uri, &options.experiment_id, &run.tracking_run_id) {
            Tracker::attach(uri, exp, parent).finish(status == orchard_store::pipelines::FAILED);
        }
    }
}
