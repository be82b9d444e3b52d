//! The flags of `orchard repro`, `orchard pipeline …` and `orchard worker` (DVC's names where DVC has the
//! flag: `-f`, `-s`, `--dry`, `-j`), and how they become the requests of this crate. Behind the `cli` feature.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::queue::{default_worker_id, WorkerOptions};
use crate::repro::Request;
use crate::{OrchestratorError, Result};

#[derive(Args, Debug)]
pub struct ReproArgs {
    /// Stages to reproduce (with their upstream stages), then Hydra overrides (`train.lr=0.02`): arguments
    /// holding `=` (or starting with `+`/`~`) are overrides. No stage: the whole pipeline.
    pub args: Vec<String>,
    /// Run the commands of up to N independent stages at once (a stage's outputs are recorded while the
    /// next command runs).
    #[arg(long, short = 'j', default_value_t = 1)]
    pub jobs: usize,
    /// Run the stages even if nothing changed.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// Only print what would run.
    #[arg(long)]
    pub dry: bool,
    /// Only the named stages, not their upstream stages.
    #[arg(long, short = 's')]
    pub single_item: bool,
    /// Do not restore outputs from the run cache (nor record runs in it).
    #[arg(long)]
    pub no_run_cache: bool,
    /// The Hydra config folder composed into params.yaml before the stages are checked (used when it
    /// exists).
    #[arg(long, default_value = "conf")]
    pub config_dir: PathBuf,
    /// Primary config, without `.yaml`.
    #[arg(long, default_value = "config")]
    pub config_name: String,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    /// A tracking server (http://…) to record the pipeline in: a run for the pipeline and a child run per
    /// stage, whose commands get MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_ID and MLFLOW_RUN_ID.
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    pub tracking_uri: Option<String>,
    /// The experiment of those runs.
    #[arg(long, env = "MLFLOW_EXPERIMENT_NAME", default_value = "pipelines")]
    pub experiment: String,
    /// Sweep: one pipeline run per point of the overrides' sweeps (`train.lr=0.01,0.02 model=a,b`), one
    /// after the other, as Hydra's basic sweeper orders them.
    #[arg(long)]
    pub multirun: bool,
    /// Queue the pipeline run for `orchard worker`s (which lease its stages from the metadata store) instead
    /// of running it here.
    #[arg(long, conflicts_with = "dry")]
    pub queue: bool,
    /// The metadata store that records pipeline and stage runs (and holds the queue).
    /// [default: sqlite:///<repository>/.dvc/tmp/orchard.db]
    #[arg(long, env = "ORCHARD_BACKEND_STORE_URI")]
    pub backend_store_uri: Option<String>,
}

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// The metadata store of the pipeline runs. [default: sqlite:///<repository>/.dvc/tmp/orchard.db]
    #[arg(long, env = "ORCHARD_BACKEND_STORE_URI")]
    pub backend_store_uri: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// How many runs to list, newest first.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub max: i64,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The pipeline run (its id or the start of it, as `orchard pipeline runs` shows it); `latest` for the newest.
    pub run: String,
    /// Only this stage.
    pub stage: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Machine-readable output (the stage runs with their output).
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Create (or replace) a schedule: `orchard server` queues a pipeline run whenever the cron expression
    /// falls due (UTC), and `orchard worker`s run it.
    Add(ScheduleAddArgs),
    /// List the schedules and when each fires next.
    List(ScheduleListArgs),
    /// Remove a schedule.
    Remove(ScheduleRemoveArgs),
}

#[derive(Args, Debug)]
pub struct ScheduleAddArgs {
    /// The schedule's name.
    pub name: String,
    /// Five-field cron (`0 3 * * *`: every day at 03:00 UTC), or six with seconds first.
    #[arg(long)]
    pub cron: String,
    /// Stages to reproduce, then overrides (as for `orchard repro`).
    pub args: Vec<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Args, Debug)]
pub struct ScheduleListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ScheduleRemoveArgs {
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The metadata store to lease stage runs from (every worker of a queue uses the same one).
    /// [default: sqlite:///<repository of the working folder>/.dvc/tmp/orchard.db]
    #[arg(long, env = "ORCHARD_BACKEND_STORE_URI")]
    pub backend_store_uri: Option<String>,
    /// This worker's name in the store. [default: host:pid:random]
    #[arg(long)]
    pub id: Option<String>,
    /// Seconds a lease lasts without a heartbeat (heartbeats come three times per lease): how soon another
    /// worker takes over the stage of a worker that died.
    #[arg(long, default_value_t = 30.0)]
    pub lease_seconds: f64,
    /// Milliseconds between looks at the queue when nothing is ready.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
    /// Exit after this many seconds with nothing to do (default: run until interrupted).
    #[arg(long)]
    pub idle_exit: Option<f64>,
}

#[derive(Subcommand, Debug)]
pub enum PipelineCommand {
    /// Which stages changed since dvc.lock, and how (as `dvc status` reports it).
    Status(StatusArgs),
    /// The stages and what each depends on, upstream first.
    Dag(StatusArgs),
    /// The recorded pipeline runs, newest first: status, stages, times, overrides.
    Runs(RunsArgs),
    /// What a pipeline run's stages printed (stdout and stderr), with their status and exit codes.
    Logs(LogsArgs),
    /// Cron schedules run by `orchard server`.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Stages to look at (default: all).
    pub targets: Vec<String>,
    /// Machine-readable output (`dvc status --json`'s shape for status).
    #[arg(long)]
    pub json: bool,
}

/// Splits `orchard repro`'s arguments into stages and Hydra overrides: an argument holding `=` (or starting
/// with `+`/`~`) is an override.
pub fn split_args(args: &[String]) -> (Vec<String>, Vec<String>) {
    let is_override = |a: &String| a.contains('=') || a.starts_with('~') || a.starts_with('+');
    let (overrides, targets) = args.iter().cloned().partition(is_override);
    (targets, overrides)
}

impl ReproArgs {
    /// The request these flags ask for, in the project at `root`.
    pub fn request(&self, root: &Path) -> Request {
        let (targets, overrides) = split_args(&self.args);
        Request {
            root: root.to_path_buf(),
            targets,
            overrides,
            multirun: self.multirun,
            jobs: self.jobs,
            dry: self.dry,
            progress_to_stderr: self.json,
            config_dir: self.config_dir.clone(),
            config_name: self.config_name.clone(),
            force: self.force,
            single_item: self.single_item,
            no_run_cache: self.no_run_cache,
            tracking: self.tracking_uri.clone().map(|uri| (uri, self.experiment.clone())),
            stop: orchard_pipeline::Stop::new(),
        }
    }
}

impl WorkerArgs {
    /// The worker's options, the lease kept within what heartbeats can sustain.
    pub fn options(&self) -> Result<WorkerOptions> {
        if !(self.lease_seconds.is_finite() && self.lease_seconds >= 0.3 && self.lease_seconds <= 86_400.0) {
            return Err(OrchestratorError::Invalid("--lease-seconds must be between 0.3 and 86400".into()));
        }
        Ok(WorkerOptions {
            id: self.id.clone().unwrap_or_else(default_worker_id),
            lease: Duration::from_secs_f64(self.lease_seconds),
            poll: Duration::from_millis(self.poll_ms.max(1)),
            idle_exit: self.idle_exit.filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64),
            quiet_stdout: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Repro {
        #[command(flatten)]
        args: ReproArgs,
    }

    #[test]
    fn stages_and_overrides_are_told_apart() {
        let parsed = Repro::try_parse_from(["repro", "train", "train.lr=0.1", "+extra=1", "~old", "-j", "2"]).unwrap();
        let request = parsed.args.request(Path::new("/p"));
        assert_eq!(request.targets, ["train"]);
        assert_eq!(request.overrides, ["train.lr=0.1", "+extra=1", "~old"]);
        assert_eq!(request.jobs, 2);
        assert_eq!(request.config_dir, PathBuf::from("conf"));
    }

    #[derive(Parser)]
    struct Work {
        #[command(flatten)]
        args: WorkerArgs,
    }

    #[test]
    fn a_lease_too_short_for_heartbeats_is_refused() {
        let parsed = Work::try_parse_from(["worker", "--lease-seconds", "0.1"]).unwrap();
        assert!(parsed.args.options().unwrap_err().to_string().contains("--lease-seconds"));
        let parsed = Work::try_parse_from(["worker", "--id", "w1", "--poll-ms", "0"]).unwrap();
        let options = parsed.args.options().unwrap();
        assert_eq!((options.id.as_str(), options.poll), ("w1", Duration::from_millis(1)));
    }
}
