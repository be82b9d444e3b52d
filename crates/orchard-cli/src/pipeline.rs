//! `orchard repro`, `orchard pipeline status|dag|runs|logs|schedule` and `orchard worker`: DVC-compatible
//! pipelines (`dvc.yaml`, `dvc.lock`, the run cache), with params composed from a Hydra-style `conf/` folder
//! when there is one, every pipeline and stage run recorded in the metadata store.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use orchard_orchestrator::queue::{Worker, WorkerOptions};
use orchard_orchestrator::record::{NewRun, Recorder};
use orchard_orchestrator::RunOptions;
use orchard_pipeline::{repro_observed, Observer, Options, Outcome, Project};
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

/// A runtime for the store calls of the pipeline commands (stages run on threads of their own).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().context("starting the async runtime")
}

/// The store named by `--backend-store-uri`, or the repository's own (`.dvc/tmp/orchard.db`, which DVC's
/// `.dvc/.gitignore` already keeps out of git).
fn store_uri(given: Option<String>, root: Option<&Path>) -> anyhow::Result<String> {
    match (given, root) {
        (Some(uri), _) => Ok(uri),
        (None, Some(root)) => Ok(format!("sqlite:///{}", root.join(".dvc").join("tmp").join("orchard.db").display())),
        (None, None) => bail!("not inside a DVC repository: give --backend-store-uri"),
    }
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
    let uri = store_uri(args.backend_store_uri.clone(), Some(&root))?;
    // The queue needs the store; a run here only records itself there (a dry run not even that), so a store
    // that cannot be opened is a warning for it, not a reason to stop.
    let store = if args.queue {
        Some(open_store(&rt, &uri)?)
    } else if args.dry {
        None
    } else {
        match open_store(&rt, &uri) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("WARNING: the pipeline run will not be recorded: {e:#}");
                None
            }
        }
    };
    let mut options = RunOptions {
        force: args.force,
        no_run_cache: args.no_run_cache,
        single_item: args.single_item,
        config_dir: args.config_dir.display().to_string(),
        config_name: args.config_name.clone(),
        tracking_uri: None,
        experiment_id: None,
    };
    let jobs = if args.multirun {
        let dir = if args.config_dir.is_absolute() { args.config_dir.clone() } else { root.join(&args.config_dir) };
        orchard_config::sweep::expand(&dir, &overrides).context("expanding the sweep")?
    } else {
        vec![overrides]
    };
    if args.queue {
        let mut queued = Vec::new();
        for job in &jobs {
            // With a tracking server, the pipeline's run is opened now; the workers' stage runs become its children.
            let tracker = match args.tracking_uri.as_deref().filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
                Some(uri) => Some(crate::pipeline_tracking::Tracker::start(uri, &args.experiment, &root).with_context(|| format!("opening a tracking run on {uri}"))?),
                None => None,
            };
            options.tracking_uri = tracker.as_ref().and(args.tracking_uri.clone());
            options.experiment_id = tracker.as_ref().map(|t| t.experiment_id.clone());
            let parent = tracker.as_ref().map(|t| t.parent.clone());
            let store = store.as_ref().expect("opened for --queue");
            let (run, n) = orchard_orchestrator::queue::enqueue(rt.handle(), store, &root, &targets, job, &options, None, parent)?;
            if !args.json {
                println!("Queued pipeline run {} ({n} stages){}", run.run_id, overrides_note(job));
            }
            queued.push(serde_json::json!({ "run_id": run.run_id, "stages": n, "overrides": job }));
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&queued)?);
        }
        return Ok(());
    }
    watch_interrupts(&rt);
    let mut failures = Vec::new();
    let mut outputs = Vec::new();
    for (n, job) in jobs.iter().enumerate() {
        if n > 0 && orchard_pipeline::repro::interrupted() {
            failures.push(format!("#{n} and the jobs after it: not run (interrupted)"));
            break;
        }
        if args.multirun {
            eprintln!("[multirun] #{n} : {}", job.join(" "));
        }
        match repro_job(&args, &rt, store.as_ref(), &root, &targets, job, &options) {
            Ok((run_id, json, failed)) => {
                outputs.push(serde_json::json!({ "run_id": run_id, "overrides": job, "stages": json }));
                if let Some(why) = failed {
                    failures.push(if args.multirun { format!("#{n} ({}): {why}", job.join(" ")) } else { why });
                }
            }
            Err(e) if args.multirun => {
                eprintln!("error: {e:#}");
                failures.push(format!("#{n} ({})", job.join(" ")));
            }
            Err(e) => return Err(e),
        }
    }
    if args.json {
        // One pipeline: its stages; a sweep: one entry per job.
        let out = if args.multirun { serde_json::Value::Array(outputs) } else { outputs.pop().map(|o| o["stages"].clone()).unwrap_or_default() };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    if !failures.is_empty() {
        if args.multirun {
            bail!("{} of {} sweep jobs failed: {}", failures.len(), jobs.len(), failures.join("; "));
        }
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

/// Ctrl-C (or SIGTERM) stops the stages' commands and lets the run be recorded as failed; a second one
/// kills the commands (the run is still recorded); a third exits at once.
fn watch_interrupts(rt: &tokio::runtime::Runtime) {
    rt.spawn(async {
        crate::server::signalled().await;
        eprintln!("Interrupted: stopping the running stages (interrupt again to kill them)");
        orchard_pipeline::repro::interrupt();
        crate::server::signalled().await;
        eprintln!("Killing the running stages (interrupt again to exit without recording the run)");
        orchard_pipeline::repro::kill_commands();
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

/// One pipeline run here: params composed, stages run, the run recorded; returns its id, the stages as
/// JSON, and why it failed if it did.
fn repro_job(
    args: &ReproArgs,
    rt: &tokio::runtime::Runtime,
    store: Option<&Store>,
    root: &Path,
    targets: &[String],
    overrides: &[String],
    options: &RunOptions,
) -> anyhow::Result<(String, serde_json::Value, Option<String>)> {
    if args.dry {
        // Checked against the params.yaml the overrides would give, which is not written.
        if let Some(text) = orchard_orchestrator::compose_params(root, &args.config_dir, &args.config_name, overrides).context("composing params.yaml")? {
            orchard_pipeline::spec::set_params_overlay(&root.join("params.yaml"), text);
        }
    } else {
        orchard_orchestrator::write_params(root, &args.config_dir, &args.config_name, overrides).context("composing params.yaml")?;
    }
    let project = Project::open(root)?;
    let opts = Options {
        targets: targets.to_vec(),
        jobs: args.jobs,
        force: args.force,
        dry: args.dry,
        single_item: args.single_item,
        no_run_cache: args.no_run_cache,
        env: Vec::new(),
        progress_to_stderr: args.json,
        die_with_parent: false,
    };
    let tracker = match args.tracking_uri.as_deref().filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
        Some(uri) if !opts.dry => Some(crate::pipeline_tracking::Tracker::start(uri, &args.experiment, root).with_context(|| format!("opening a tracking run on {uri}"))?),
        _ => None,
    };
    struct Nobody;
    impl Observer for Nobody {}
    let inner: &dyn Observer = match &tracker {
        Some(t) => t,
        None => &Nobody,
    };
    // A dry run changes nothing, so it is not recorded either.
    let recorder = match store.filter(|_| !opts.dry) {
        None => None,
        Some(store) => {
        let run = NewRun {
            project: root,
            targets,
            overrides,
            options,
            tracking_run_id: tracker.as_ref().map(|t| t.parent.clone()),
            stages: orchard_orchestrator::plan_stages(&project, targets, args.single_item)?,
        };
        match Recorder::begin(rt.handle().clone(), store.clone(), run, inner) {
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
    let stages_json: Vec<serde_json::Value> = report
            .stages
            .iter()
            .map(|s| {
                let (state, detail) = match &s.outcome {
                    Outcome::Unchanged => ("unchanged", serde_json::Value::Null),
                    Outcome::Ran { attempts } => ("ran", serde_json::json!({ "attempts": attempts })),
                    Outcome::Restored => ("restored", serde_json::Value::Null),
                    Outcome::Due(c) => ("due", serde_json::json!(c.iter().map(|c| c.to_json()).collect::<Vec<_>>())),
                    Outcome::Failed(e) => ("failed", serde_json::json!(e)),
                    Outcome::Blocked(e) => ("blocked", serde_json::json!(e)),
                };
                serde_json::json!({ "stage": s.name, "state": state, "detail": detail, "seconds": s.seconds, "exit_code": s.exit_code })
            })
            .collect();
    if !args.json && report.stages.iter().all(|s| s.outcome == Outcome::Unchanged) {
        println!("Data and pipelines are up to date.");
    }
    if report.failed() {
        let failed: Vec<&str> = report
            .stages
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Failed(_) | Outcome::Blocked(_)))
            .map(|s| s.name.as_str())
            .collect();
        let why = format!(
            "not reproduced: {} (run `orchard repro` again to resume; `orchard pipeline logs {}` shows the output)",
            failed.join(", "),
            if run_id.is_empty() { "latest" } else { &run_id[..8] }
        );
        return Ok((run_id, serde_json::Value::Array(stages_json), Some(why)));
    }
    Ok((run_id, serde_json::Value::Array(stages_json), None))
}

pub fn run(cmd: PipelineCommand) -> anyhow::Result<()> {
    let cwd = std::env::current_dir()?;
    match cmd {
        PipelineCommand::Runs(args) => return runs_cmd(args),
        PipelineCommand::Logs(args) => return logs_cmd(args),
        PipelineCommand::Schedule(cmd) => return schedule_cmd(cmd),
        _ => {}
    }
    let project = Project::open(&cwd)?;
    match cmd {
        PipelineCommand::Runs(_) | PipelineCommand::Logs(_) | PipelineCommand::Schedule(_) => unreachable!("handled above"),
        PipelineCommand::Status(args) => {
            let lock = project.lock()?;
            let order = project.plan(&args.targets, false)?;
            let mut out = serde_json::Map::new();
            let mut text = String::new();
            for i in order {
                let stage = &project.pipeline.stages[i];
                if stage.frozen {
                    eprintln!("WARNING: stage: '{}' is frozen. Its dependencies are not going to be shown in the status output.", stage.name);
                }
                let changes = project.changes(stage, lock.stages.get(&stage.name))?;
                if changes.is_empty() {
                    continue;
                }
                text.push_str(&format!("{}:\n", stage.name));
                for c in &changes {
                    match c.to_json() {
                        serde_json::Value::String(s) => text.push_str(&format!("\t{s}\n")),
                        serde_json::Value::Object(m) => {
                            for (what, items) in m {
                                text.push_str(&format!("\t{what}:\n"));
                                for (path, st) in items.as_object().into_iter().flatten() {
                                    match st {
                                        serde_json::Value::Object(keys) => {
                                            text.push_str(&format!("\t\t{path}:\n"));
                                            for (k, v) in keys {
                                                text.push_str(&format!("\t\t\t{:<20}{k}\n", format!("{}:", v.as_str().unwrap_or(""))));
                                            }
                                        }
                                        v => text.push_str(&format!("\t\t{:<20}{path}\n", format!("{}:", v.as_str().unwrap_or("")))),
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
                out.insert(stage.name.clone(), serde_json::Value::Array(changes.iter().map(|c| c.to_json()).collect()));
            }
            if args.json {
                println!("{}", serde_json::Value::Object(out));
            } else if text.is_empty() {
                println!("Data and pipelines are up to date.");
            } else {
                print!("{text}");
            }
        }
        PipelineCommand::Dag(args) => {
            let up = project.upstream()?;
            let order = project.plan(&args.targets, false)?;
            if args.json {
                let nodes: Vec<serde_json::Value> = order
                    .iter()
                    .map(|&i| {
                        let s = &project.pipeline.stages[i];
                        let deps: Vec<&str> = up[i].iter().map(|&j| project.pipeline.stages[j].name.as_str()).collect();
                        serde_json::json!({ "stage": s.name, "after": deps, "cmd": s.cmd.lines() })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&nodes)?);
            } else {
                for i in order {
                    let s = &project.pipeline.stages[i];
                    let deps: Vec<&str> = up[i].iter().map(|&j| project.pipeline.stages[j].name.as_str()).collect();
                    if deps.is_empty() {
                        println!("{}", s.name);
                    } else {
                        println!("{}  <- {}", s.name, deps.join(", "));
                    }
                }
            }
        }
    }
    Ok(())
}

fn store_for(args: &StoreArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<Store> {
    let root = repo_root().ok();
    open_store(rt, &store_uri(args.backend_store_uri.clone(), root.as_deref())?)
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
    let store = store_for(&args.store, &rt)?;
    let runs = rt.block_on(store.list_pipeline_runs(args.max.max(1), None))?;
    let mut rows = Vec::new();
    for r in &runs {
        let stages = rt.block_on(store.get_pipeline_run(&r.run_id))?.map(|(_, s)| s).unwrap_or_default();
        rows.push((r, stages));
    }
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
        let ok = stages.iter().filter(|s| matches!(s.status.as_str(), "SUCCEEDED" | "RESTORED" | "UNCHANGED")).count();
        println!(
            "{:<10} {:<10} {:<8} {:<20} {:>9}  {}",
            &r.run_id[..8.min(r.run_id.len())],
            r.status,
            format!("{ok}/{}", stages.len()),
            when(r.start_ms.or(Some(r.created_ms))),
            took(r.start_ms, r.end_ms),
            r.overrides.join(" ")
        );
    }
    Ok(())
}

fn logs_cmd(args: LogsArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    let store = store_for(&args.store, &rt)?;
    let prefix = if args.run == "latest" { None } else { Some(args.run.as_str()) };
    let found = rt.block_on(store.list_pipeline_runs(2, prefix))?;
    let run = match (found.len(), prefix) {
        (0, _) => bail!("no pipeline run '{}'", args.run),
        (1, _) | (_, None) => found[0].clone(),
        _ => bail!("'{}' is the start of more than one run id: give more of it", args.run),
    };
    let (run, stages) = rt.block_on(store.get_pipeline_run(&run.run_id))?.context("the run disappeared")?;
    let stages: Vec<_> = stages.into_iter().filter(|s| args.stage.as_deref().is_none_or(|n| n == s.stage)).collect();
    if let (Some(name), true) = (&args.stage, stages.is_empty()) {
        bail!("pipeline run {} has no stage '{name}'", run.run_id);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "run": run, "stages": stages }))?);
        return Ok(());
    }
    println!("pipeline run {}  {}  {}", run.run_id, run.status, overrides_note(&run.overrides).trim());
    for s in stages {
        let code = s.exit_code.map(|c| format!(", exit code {c}")).unwrap_or_default();
        let by = s.worker.as_deref().map(|w| format!(", worker {w}")).unwrap_or_default();
        println!("\n== {} — {}{code}{by}, {}", s.stage, s.status, took(s.start_ms, s.end_ms));
        if let Some(e) = &s.error {
            println!("error: {e}");
        }
        if !s.stdout.is_empty() {
            println!("-- stdout --\n{}", s.stdout.trim_end());
        }
        if !s.stderr.is_empty() {
            println!("-- stderr --\n{}", s.stderr.trim_end());
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
    let uri = store_uri(args.backend_store_uri.clone(), root.as_deref())?;
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
    let worker = Worker::new(rt.handle().clone(), store, opts, Box::new(crate::pipeline_tracking::WorkerLinks));
    worker.run(&stop, |done| {
        let note = if done.recorded { "" } else { " (lease lost: not recorded)" };
        eprintln!("{} {}: {}{note}", &done.run_id[..8], done.stage, done.status);
    })?;
    Ok(())
}
