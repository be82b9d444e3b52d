//! `orchard repro`, `orchard pipeline status|dag|runs|logs|schedule` and `orchard worker`: DVC-compatible
//! pipelines (`dvc.yaml`, `dvc.lock`, the run cache), with params composed from a Hydra-style `conf/` folder
//! when there is one, every pipeline and stage run recorded in the metadata store.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use orchard_orchestrator::history;
use orchard_orchestrator::queue::{Worker, WorkerOptions};
use orchard_orchestrator::repro::{self, Request};
use orchard_pipeline::Project;
use orchard_store::pipelines::Schedules;
use orchard_store::Store;

#[derive(Args, Debug)]
pub struct ReproArgs {
    /// Stages to reproduce (with their upstream stages), then Hydra overrides (`train.lr=0.02`): arguments
    /// holding `=` (or starting with `+`/`~`) are overrides. No stage: the whole pipeline.
    args: Vec<String>,
    /// Run the commands of up to N independent stages at once (a stage's outputs are recorded while the
    /// next command runs).
    #[arg(long, short = 'j', default_value_t = 1)]
    jobs: usize,
    /// Run the stages even if nothing changed.
    #[arg(long, short = 'f')]
    force: bool,
    /// Only print what would run.
    #[arg(long)]
    dry: bool,
    /// Only the named stages, not their upstream stages.
    #[arg(long, short = 's')]
    single_item: bool,
    /// Do not restore outputs from the run cache (nor record runs in it).
    #[arg(long)]
    no_run_cache: bool,
    /// The Hydra config folder composed into params.yaml before the stages are checked (used when it
    /// exists).
    #[arg(long, default_value = "conf")]
    config_dir: PathBuf,
    /// Primary config, without `.yaml`.
    #[arg(long, default_value = "config")]
    config_name: String,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
    /// A tracking server (http://…) to record the pipeline in: a run for the pipeline and a child run per
    /// stage, whose commands get MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_ID and MLFLOW_RUN_ID.
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    tracking_uri: Option<String>,
    /// The experiment of those runs.
    #[arg(long, env = "MLFLOW_EXPERIMENT_NAME", default_value = "pipelines")]
    experiment: String,
    /// Sweep: one pipeline run per point of the overrides' sweeps (`train.lr=0.01,0.02 model=a,b`), one
    /// after the other, as Hydra's basic sweeper orders them.
    #[arg(long)]
    multirun: bool,
    /// Queue the pipeline run for `orchard worker`s (which lease its stages from the metadata store) instead
    /// of running it here.
    #[arg(long, conflicts_with = "dry")]
    queue: bool,
    /// The metadata store that records pipeline and stage runs (and holds the queue).
    /// [default: sqlite:///<repository>/.dvc/tmp/orchard.db]
    #[arg(long, env = "ORCHARD_BACKEND_STORE_URI")]
    backend_store_uri: Option<String>,
}

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// The metadata store of the pipeline runs. [default: sqlite:///<repository>/.dvc/tmp/orchard.db]
    #[arg(long, env = "ORCHARD_BACKEND_STORE_URI")]
    backend_store_uri: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// How many runs to list, newest first.
    #[arg(long, short = 'n', default_value_t = 20)]
    max: i64,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The pipeline run (its id or the start of it, as `orchard pipeline runs` shows it); `latest` for the newest.
    run: String,
    /// Only this stage.
    stage: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Machine-readable output (the stage runs with their output).
    #[arg(long)]
    json: bool,
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
    name: String,
    /// Five-field cron (`0 3 * * *`: every day at 03:00 UTC), or six with seconds first.
    #[arg(long)]
    cron: String,
    /// Stages to reproduce, then overrides (as for `orchard repro`).
    args: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args, Debug)]
pub struct ScheduleListArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ScheduleRemoveArgs {
    name: String,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The metadata store to lease stage runs from (every worker of a queue uses the same one).
    /// [default: sqlite:///<repository of the working folder>/.dvc/tmp/orchard.db]
    #[arg(long, env = "ORCHARD_BACKEND_STORE_URI")]
    backend_store_uri: Option<String>,
    /// This worker's name in the store. [default: host:pid:random]
    #[arg(long)]
    id: Option<String>,
    /// Seconds a lease lasts without a heartbeat (heartbeats come three times per lease): how soon another
    /// worker takes over the stage of a worker that died.
    #[arg(long, default_value_t = 30.0)]
    lease_seconds: f64,
    /// Milliseconds between looks at the queue when nothing is ready.
    #[arg(long, default_value_t = 500)]
    poll_ms: u64,
    /// Exit after this many seconds with nothing to do (default: run until interrupted).
    #[arg(long)]
    idle_exit: Option<f64>,
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
    targets: Vec<String>,
    /// Machine-readable output (`dvc status --json`'s shape for status).
    #[arg(long)]
    json: bool,
}

fn is_override(arg: &str) -> bool {
    arg.contains('=') || arg.starts_with('~') || arg.starts_with('+')
}

/// A runtime for the store and tracking calls of the pipeline commands (stages run on threads of their own).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().context("starting the async runtime")
}

fn open_store(rt: &tokio::runtime::Runtime, uri: &str) -> anyhow::Result<Store> {
    rt.block_on(Store::open(uri)).with_context(|| format!("cannot open the metadata store {}", crate::server::redact(uri)))
}

fn repo_root() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    Ok(orchard_data::Repo::find(&cwd)?.root)
}

pub fn repro_cmd(args: ReproArgs) -> anyhow::Result<()> {
    let (overrides, targets): (Vec<String>, Vec<String>) = args.args.iter().cloned().partition(|a| is_override(a));
    let root = repo_root()?;
    let rt = runtime()?;
    let uri = history::store_uri(args.backend_store_uri.clone(), Some(&root))?;
    // The queue needs the store; a run here only records itself there (a dry run not even that), so a store
    // that cannot be opened is a warning for it, not a reason to stop.
    let store = match (args.queue, args.dry) {
        (true, _) => Some(open_store(&rt, &uri)?),
        (false, true) => None,
        (false, false) => open_store(&rt, &uri).inspect_err(|e| eprintln!("WARNING: the pipeline run will not be recorded: {e:#}")).ok(),
    };
    let request = Request {
        root,
        targets,
        overrides,
        multirun: args.multirun,
        jobs: args.jobs,
        dry: args.dry,
        progress_to_stderr: args.json,
        config_dir: args.config_dir,
        config_name: args.config_name,
        force: args.force,
        single_item: args.single_item,
        no_run_cache: args.no_run_cache,
        tracking: args.tracking_uri.map(|uri| (uri, args.experiment)),
        stop: orchard_pipeline::Stop::new(),
    };
    if let Some(store) = store.as_ref().filter(|_| args.queue) {
        let queued = repro::queue(rt.handle(), store, &request, &mut |q| {
            if !args.json {
                println!("Queued pipeline run {} ({} stages){}", q.run_id, q.stages, overrides_note(&q.overrides));
            }
        })?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&queued)?);
        }
        return Ok(());
    }
    watch_interrupts(&rt, request.stop.clone());
    let mut runs = repro::run_here(rt.handle(), store.as_ref(), &request)?;
    if args.json {
        // One pipeline: its stages; a sweep: one entry per job.
        let out = match args.multirun {
            true => serde_json::to_value(&runs.done)?,
            false => serde_json::to_value(runs.done.pop().map(|d| d.stages).unwrap_or_default())?,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for _ in runs.done.iter().filter(|d| d.up_to_date()) {
            println!("Data and pipelines are up to date.");
        }
    }
    match (runs.failures.is_empty(), args.multirun) {
        (true, _) => Ok(()),
        (false, true) => bail!("{} of {} sweep jobs failed: {}", runs.failures.len(), runs.asked, runs.failures.join("; ")),
        (false, false) => bail!("{}", runs.failures.join("; ")),
    }
}

/// Ctrl-C (or SIGTERM) stops the stages' commands and lets the run be recorded as failed; a second one
/// kills the commands (the run is still recorded); a third exits at once.
fn watch_interrupts(rt: &tokio::runtime::Runtime, stop: orchard_pipeline::Stop) {
    rt.spawn(async move {
        crate::server::signalled().await;
        eprintln!("Interrupted: stopping the running stages (interrupt again to kill them)");
        stop.interrupt();
        crate::server::signalled().await;
        eprintln!("Killing the running stages (interrupt again to exit without recording the run)");
        stop.kill_commands();
        crate::server::signalled().await;
        std::process::exit(130);
    });
}

fn overrides_note(job: &[String]) -> String {
    if job.is_empty() {
        String::new()
    } else {
        format!(" with {}", job.join(" "))
    }
}

pub fn run(cmd: PipelineCommand) -> anyhow::Result<()> {
    match cmd {
        PipelineCommand::Runs(args) => runs_cmd(args),
        PipelineCommand::Logs(args) => logs_cmd(args),
        PipelineCommand::Schedule(cmd) => schedule_cmd(cmd),
        PipelineCommand::Status(args) => {
            let status = orchard_pipeline::status::status(&Project::open(&std::env::current_dir()?)?, &args.targets)?;
            for name in &status.frozen {
                eprintln!("WARNING: stage: '{name}' is frozen. Its dependencies are not going to be shown in the status output.");
            }
            match (args.json, status.text.is_empty()) {
                (true, _) => println!("{}", serde_json::Value::Object(status.json)),
                (false, true) => println!("Data and pipelines are up to date."),
                (false, false) => print!("{}", status.text),
            }
            Ok(())
        }
        PipelineCommand::Dag(args) => {
            let project = Project::open(&std::env::current_dir()?)?;
            let up = project.upstream()?;
            let name = |j: usize| project.pipeline.stages[j].name.as_str();
            let mut nodes = Vec::new();
            for i in project.plan(&args.targets, false)? {
                let after: Vec<&str> = up[i].iter().map(|&j| name(j)).collect();
                match (args.json, after.is_empty()) {
                    (true, _) => nodes.push(serde_json::json!({ "stage": name(i), "after": after, "cmd": project.pipeline.stages[i].cmd.lines() })),
                    (false, true) => println!("{}", name(i)),
                    (false, false) => println!("{}  <- {}", name(i), after.join(", ")),
                }
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&nodes)?);
            }
            Ok(())
        }
    }
}

fn store_for(args: &StoreArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<Store> {
    let root = repo_root().ok();
    open_store(rt, &history::store_uri(args.backend_store_uri.clone(), root.as_deref())?)
}

fn when(ms: Option<i64>) -> String {
    ms.map(|ms| {
        let secs = ms.div_euclid(1000);
        let t = secs.rem_euclid(86_400);
        format!("{} {:02}:{:02}:{:02}", orchard_serve::log::civil_date(ms), t / 3600, t % 3600 / 60, t % 60)
    })
    .unwrap_or_else(|| "-".into())
}

fn took(start: Option<i64>, end: Option<i64>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => format!("{:.1}s", (e - s) as f64 / 1000.0),
        (Some(_), None) => "running".into(),
        _ => "-".into(),
    }
}

fn runs_cmd(args: RunsArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    let rows = history::recent(rt.handle(), &store_for(&args.store, &rt)?, args.max)?;
    if args.json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|(r, stages)| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["stages"] = stages
                    .iter()
                    .map(|s| serde_json::json!({ "stage": s.stage, "status": s.status, "attempts": s.attempts,
                        "exit_code": s.exit_code, "start_ms": s.start_ms, "end_ms": s.end_ms, "worker": s.worker,
                        "tracking_run_id": s.tracking_run_id, "error": s.error }))
                    .collect();
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("No pipeline runs recorded yet (`orchard repro` records one).");
        return Ok(());
    }
    println!("{:<10} {:<10} {:<8} {:<20} {:>9}  OVERRIDES", "RUN", "STATUS", "STAGES", "STARTED", "TOOK");
    for (r, stages) in rows {
        let id = &r.run_id[..8.min(r.run_id.len())];
        let count = format!("{}/{}", history::settled_ok(&stages), stages.len());
        let started = when(r.start_ms.or(Some(r.created_ms)));
        let took = took(r.start_ms, r.end_ms);
        println!("{id:<10} {:<10} {count:<8} {started:<20} {took:>9}  {}", r.status, r.overrides.join(" "));
    }
    Ok(())
}

fn logs_cmd(args: LogsArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    let store = store_for(&args.store, &rt)?;
    let (run, stages) = history::find(rt.handle(), &store, &args.run, args.stage.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "run": run, "stages": stages }))?);
        return Ok(());
    }
    println!("pipeline run {}  {}  {}", run.run_id, run.status, overrides_note(&run.overrides).trim());
    for s in stages {
        let code = s.exit_code.map(|c| format!(", exit code {c}")).unwrap_or_default();
        let by = s.worker.as_deref().map(|w| format!(", worker {w}")).unwrap_or_default();
        println!("\n== {} — {}{code}{by}, {}", s.stage, s.status, took(s.start_ms, s.end_ms));
        for (label, text) in [("error: ", s.error.as_deref().unwrap_or("")), ("-- stdout --\n", &s.stdout), ("-- stderr --\n", &s.stderr)] {
            if !text.is_empty() {
                println!("{label}{}", if label.starts_with("--") { text.trim_end() } else { text });
            }
        }
    }
    Ok(())
}

fn schedule_cmd(cmd: ScheduleCommand) -> anyhow::Result<()> {
    let rt = runtime()?;
    match cmd {
        ScheduleCommand::Add(args) => {
            let store = store_for(&args.store, &rt)?;
            let (overrides, targets): (Vec<String>, Vec<String>) = args.args.into_iter().partition(|a| is_override(a));
            let cwd = std::env::current_dir()?;
            let s = orchard_orchestrator::schedule::add(rt.handle(), &store, &args.name, &args.cron, &cwd, &targets, &overrides)?;
            println!("Schedule '{}' ({}) fires next at {} UTC", s.name, s.cron, when(Some(s.next_ms)));
        }
        ScheduleCommand::List(args) => {
            let store = store_for(&args.store, &rt)?;
            let all = rt.block_on(store.list_schedules())?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!("No schedules.");
            } else {
                println!("{:<16} {:<16} {:<20} PROJECT", "NAME", "CRON", "NEXT (UTC)");
                for s in all {
                    println!("{:<16} {:<16} {:<20} {} {}", s.name, s.cron, when(Some(s.next_ms)), s.project, s.targets.iter().chain(&s.overrides).cloned().collect::<Vec<_>>().join(" "));
                }
            }
        }
        ScheduleCommand::Remove(args) => {
            let store = store_for(&args.store, &rt)?;
            rt.block_on(store.delete_schedule(&args.name))?;
            println!("Removed schedule '{}'", args.name);
        }
    }
    Ok(())
}

pub fn worker_cmd(args: WorkerArgs) -> anyhow::Result<()> {
    if !(args.lease_seconds.is_finite() && args.lease_seconds >= 0.3 && args.lease_seconds <= 86_400.0) {
        bail!("--lease-seconds must be between 0.3 and 86400");
    }
    let rt = runtime()?;
    let root = repo_root().ok();
    let uri = history::store_uri(args.backend_store_uri.clone(), root.as_deref())?;
    let store = open_store(&rt, &uri)?;
    let opts = WorkerOptions {
        id: args.id.clone().unwrap_or_else(orchard_orchestrator::queue::default_worker_id),
        lease: Duration::from_secs_f64(args.lease_seconds),
        poll: Duration::from_millis(args.poll_ms.max(1)),
        idle_exit: args.idle_exit.filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64),
        quiet_stdout: false,
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        // Ctrl-C / SIGTERM: finish the stage at hand, then stop.
        let stop = stop.clone();
        rt.spawn(async move {
            crate::server::signalled().await;
            eprintln!("stopping after the current stage");
            stop.store(true, Ordering::Relaxed);
        });
    }
    eprintln!("worker {} leasing stage runs from {}", opts.id, crate::server::redact(&uri));
    let links = orchard_orchestrator::tracking::WorkerLinks { rt: rt.handle().clone() };
    let worker = Worker::new(rt.handle().clone(), store, opts, Box::new(links));
    worker.run(&stop, |done| {
        let note = if done.recorded { "" } else { " (lease lost: not recorded)" };
        eprintln!("{} {}: {}{note}", &done.run_id[..8], done.stage, done.status);
    })?;
    Ok(())
}
