//! `orchard repro`: one pipeline run per set of overrides (one, or each point of a sweep), run here or queued
//! for workers. For each run here: params composed into `params.yaml`, the stages run by `orchard-pipeline`,
//! each stage run recorded in the store as it settles, and the tracking runs opened on a server when one is
//! named. The command line only parses arguments and prints what this returns.

use std::path::{Path, PathBuf};

use orchard_pipeline::spec::ParamsFiles;
use orchard_pipeline::{repro_observed, Observer, Options, Outcome, Project};
use orchard_store::Store;
use serde::Serialize;
use tokio::runtime::Handle;

use crate::record::{NewRun, Recorder};
use crate::tracking::{is_server, Tracker};
use crate::{OrchestratorError, Result, RunOptions};

/// What to reproduce and how.
#[derive(Debug, Clone)]
pub struct Request {
    /// The project's root (where `dvc.yaml` is).
    pub root: PathBuf,
    /// Stages to reproduce, with their upstream stages (all when empty).
    pub targets: Vec<String>,
    /// Hydra overrides, each one a sweep when `multirun` is set.
    pub overrides: Vec<String>,
    /// One pipeline run per point of the overrides' sweeps, in Hydra's basic-sweeper order.
    pub multirun: bool,
    /// Commands running at once.
    pub jobs: usize,
    /// Only say what would run: nothing is written, recorded or tracked.
    pub dry: bool,
    /// Progress lines on stderr (stdout carries JSON).
    pub progress_to_stderr: bool,
    /// The caller's handle to stop the runs (Ctrl-C): the running one stops, the later ones do not start.
    pub stop: orchard_pipeline::Stop,
    pub config_dir: PathBuf,
    pub config_name: String,
    pub force: bool,
    pub single_item: bool,
    pub no_run_cache: bool,
    /// A tracking server (`http://…`) and the experiment of the pipeline's runs there.
    pub tracking: Option<(String, String)>,
}

impl Request {
    fn options(&self) -> RunOptions {
        RunOptions {
            force: self.force,
            no_run_cache: self.no_run_cache,
            single_item: self.single_item,
            config_dir: self.config_dir.display().to_string(),
            config_name: self.config_name.clone(),
            tracking_uri: None,
            experiment_id: None,
        }
    }

    fn server(&self) -> Option<(&str, &str)> {
        self.tracking.as_ref().filter(|(uri, _)| is_server(uri)).map(|(u, e)| (u.as_str(), e.as_str()))
    }

    /// The override sets of the runs: the overrides as given, or each point of their sweeps.
    pub fn override_sets(&self) -> Result<Vec<Vec<String>>> {
        if !self.multirun {
            return Ok(vec![self.overrides.clone()]);
        }
        let dir = if self.config_dir.is_absolute() { self.config_dir.clone() } else { self.root.join(&self.config_dir) };
        orchard_config::sweep::expand(&dir, &self.overrides)
            .map_err(|e| OrchestratorError::Invalid(format!("expanding the sweep: {e}")))
    }
}

/// A pipeline run put on the queue.
#[derive(Debug, Clone, Serialize)]
pub struct Queued {
    pub run_id: String,
    pub stages: usize,
    pub overrides: Vec<String>,
}

/// Queues one pipeline run per override set for `orchard worker`s, telling `queued` of each as it is queued
/// (so that runs queued before a later one fails are reported). With a tracking server, each pipeline's
/// tracking run is opened now; the workers' stage runs become its children.
pub fn queue(rt: &Handle, store: &Store, request: &Request, queued: &mut dyn FnMut(&Queued)) -> Result<Vec<Queued>> {
    let mut all = Vec::new();
    for overrides in request.override_sets()? {
        let mut options = request.options();
        let tracker = match request.server() {
            Some((uri, experiment)) => Some(open_tracking(rt, uri, experiment, &request.root)?),
            None => None,
        };
        options.tracking_uri = tracker.as_ref().and(request.server().map(|(u, _)| u.to_string()));
        options.experiment_id = tracker.as_ref().map(|t| t.experiment_id.clone());
        let parent = tracker.as_ref().map(|t| t.parent.clone());
        let (run, stages) =
            crate::queue::enqueue(rt, store, &request.root, &request.targets, &overrides, &options, None, parent)?;
        let q = Queued { run_id: run.run_id, stages, overrides };
        queued(&q);
        all.push(q);
    }
    Ok(all)
}

fn open_tracking(rt: &Handle, uri: &str, experiment: &str, root: &Path) -> Result<Tracker> {
    Tracker::start(rt.clone(), uri, experiment, root)
        .map_err(|e| OrchestratorError::Invalid(format!("opening a tracking run on {uri}: {}", orchard_client::describe(&e))))
}

/// One stage of a finished run, as `orchard repro --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct StageSummary {
    pub stage: String,
    /// `unchanged`, `ran`, `restored`, `due` (dry run), `failed` or `blocked`.
    pub state: &'static str,
    /// The attempts of a stage that ran, the changes of a due one, the error of a failed or blocked one.
    pub detail: serde_json::Value,
    pub seconds: f64,
    pub exit_code: Option<i32>,
}

/// One pipeline run done here.
#[derive(Debug, Clone, Serialize)]
pub struct Done {
    /// Its id in the store ("" when it could not be recorded, or for a dry run).
    pub run_id: String,
    pub overrides: Vec<String>,
    pub stages: Vec<StageSummary>,
}

impl Done {
    /// Nothing ran or changed.
    pub fn up_to_date(&self) -> bool {
        self.stages.iter().all(|s| s.state == "unchanged")
    }
}

/// The pipeline runs done here, and why those that did not reproduce did not.
#[derive(Debug, Clone, Default)]
pub struct Runs {
    pub done: Vec<Done>,
    pub failures: Vec<String>,
    /// How many runs were asked for (the points of a sweep).
    pub asked: usize,
}

/// Runs here, one after the other, the pipeline runs of the request; once the request's `stop` is
/// interrupted, the runs not started are reported as not run. An error before the stages of the only run is
/// returned as the error; in a sweep it fails that job alone.
pub fn run_here(rt: &Handle, store: Option<&Store>, request: &Request) -> Result<Runs> {
    let sets = request.override_sets()?;
    let options = request.options();
    let mut runs = Runs { asked: sets.len(), ..Runs::default() };
    for (n, overrides) in sets.iter().enumerate() {
        if n > 0 && request.stop.interrupted() {
            runs.failures.push(format!("#{n} and the jobs after it: not run (interrupted)"));
            break;
        }
        if request.multirun {
            eprintln!("[multirun] #{n} : {}", overrides.join(" "));
        }
        match run_one(rt, store, request, overrides, &options) {
            Ok((done, failure)) => {
                runs.done.push(done);
                if let Some(why) = failure {
                    runs.failures.push(if request.multirun { format!("#{n} ({}): {why}", overrides.join(" ")) } else { why });
                }
            }
            Err(e) if request.multirun => {
                eprintln!("error: {e}");
                runs.failures.push(format!("#{n} ({})", overrides.join(" ")));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(runs)
}

/// One pipeline run here: params composed, stages run, the run recorded; why it did not reproduce, if so.
fn run_one(
    rt: &Handle,
    store: Option<&Store>,
    request: &Request,
    overrides: &[String],
    options: &RunOptions,
) -> Result<(Done, Option<String>)> {
    let root = &request.root;
    let params = |e: OrchestratorError| OrchestratorError::Invalid(format!("composing params.yaml: {e}"));
    let mut files = ParamsFiles::default();
    if request.dry {
        // Checked against the params.yaml the overrides would give, which is not written.
        if let Some(text) = crate::compose_params(root, &request.config_dir, &request.config_name, overrides).map_err(params)? {
            files = files.with(&root.join("params.yaml"), text);
        }
    } else {
        crate::write_params(root, &request.config_dir, &request.config_name, overrides).map_err(params)?;
    }
    let project = Project::open_with(root, files)?;
    let opts = Options {
        targets: request.targets.clone(),
        jobs: request.jobs,
        force: request.force,
        dry: request.dry,
        single_item: request.single_item,
        no_run_cache: request.no_run_cache,
        env: Vec::new(),
        progress_to_stderr: request.progress_to_stderr,
        die_with_parent: false,
        stop: request.stop.clone(),
    };
    let tracker = match request.server() {
        Some((uri, experiment)) if !request.dry => Some(open_tracking(rt, uri, experiment, root)?),
        _ => None,
    };
    struct Nobody;
    impl Observer for Nobody {}
    let inner: &dyn Observer = match &tracker {
        Some(t) => t,
        None => &Nobody,
    };
    // A dry run changes nothing, so it is not recorded either; a store that refuses the run is a warning.
    let recorder = match store.filter(|_| !request.dry) {
        None => None,
        Some(store) => {
            let run = NewRun {
                project: root,
                targets: &request.targets,
                overrides,
                options,
                tracking_run_id: tracker.as_ref().map(|t| t.parent.clone()),
                stages: crate::plan_stages(&project, &request.targets, request.single_item)?,
            };
            match Recorder::begin(rt.clone(), store.clone(), run, inner) {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("WARNING: the pipeline run will not be recorded: {e}");
                    None
                }
            }
        }
    };
    let report = match &recorder {
        Some(r) => repro_observed(&project, &opts, r)?,
        None => repro_observed(&project, &opts, inner)?,
    };
    if let Some(r) = &recorder {
        r.end(report.failed());
    }
    if let Some(t) = &tracker {
        t.finish(report.failed());
    }
    let run_id = recorder.as_ref().map(|r| r.run_id.clone()).unwrap_or_default();
    let stages = report.stages.iter().map(summary).collect();
    let failure = report.failed().then(|| {
        let failed: Vec<&str> = report
            .stages
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Failed(_) | Outcome::Blocked(_)))
            .map(|s| s.name.as_str())
            .collect();
        format!(
            "not reproduced: {} (run `orchard repro` again to resume; `orchard pipeline logs {}` shows the output)",
            failed.join(", "),
            if run_id.is_empty() { "latest" } else { &run_id[..8] }
        )
    });
    Ok((Done { run_id, overrides: overrides.to_vec(), stages }, failure))
}

fn summary(s: &orchard_pipeline::StageReport) -> StageSummary {
    use serde_json::{json, Value};
    let (state, detail) = match &s.outcome {
        Outcome::Unchanged => ("unchanged", Value::Null),
        Outcome::Ran { attempts } => ("ran", json!({ "attempts": attempts })),
        Outcome::Restored => ("restored", Value::Null),
        Outcome::Due(c) => ("due", Value::Array(c.iter().map(|c| c.to_json()).collect())),
        Outcome::Failed(e) => ("failed", json!(e)),
        Outcome::Blocked(e) => ("blocked", json!(e)),
    };
    StageSummary { stage: s.name.clone(), state, detail, seconds: s.seconds, exit_code: s.exit_code }
}
