//! `orchard repro`, `orchard pipeline status|dag|runs|logs|schedule` and `orchard worker`: DVC-compatible
//! pipelines, every pipeline and stage run recorded in the metadata store. The flags and what they ask for
//! live in `orchard_orchestrator::cli`, the wording of the output in `orchard_orchestrator::show`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use orchard_orchestrator::cli::{split_args, PipelineCommand, ReproArgs, ScheduleCommand, StoreArgs, WorkerArgs};
use orchard_orchestrator::queue::Worker;
use orchard_orchestrator::{history, repro, show};
use orchard_pipeline::Project;
use orchard_store::pipelines::Schedules;
use orchard_store::Store;

use crate::server::{redact, signalled};

/// A runtime for the store and tracking calls of the pipeline commands (stages run on threads of their own).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().context("starting the async runtime")
}

fn open_store(rt: &tokio::runtime::Runtime, uri: &str) -> anyhow::Result<Store> {
    rt.block_on(Store::open(uri)).with_context(|| format!("cannot open the metadata store {}", redact(uri)))
}

fn repo_root() -> anyhow::Result<PathBuf> {
    Ok(orchard_data::Repo::find(&std::env::current_dir()?)?.root)
}

fn store_for(args: &StoreArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<Store> {
    open_store(rt, &history::store_uri(args.backend_store_uri.clone(), repo_root().ok().as_deref())?)
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn repro_cmd(args: ReproArgs) -> anyhow::Result<()> {
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
    let request = args.request(&root);
    if let Some(store) = store.as_ref().filter(|_| args.queue) {
        let queued = repro::queue(rt.handle(), store, &request, &mut |q| {
            if !args.json {
                println!("Queued pipeline run {} ({} stages){}", q.run_id, q.stages, show::overrides_note(&q.overrides));
            }
        })?;
        return if args.json { print_json(&queued) } else { Ok(()) };
    }
    watch_interrupts(&rt, request.stop.clone());
    let mut runs = repro::run_here(rt.handle(), store.as_ref(), &request)?;
    match (args.json, args.multirun) {
        // A sweep: one entry per job; one pipeline: its stages.
        (true, true) => print_json(&runs.done)?,
        (true, false) => print_json(&runs.done.pop().map(|d| d.stages).unwrap_or_default())?,
        (false, _) => runs.done.iter().filter(|d| d.up_to_date()).for_each(|_| println!("Data and pipelines are up to date.")),
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
        signalled().await;
        eprintln!("Interrupted: stopping the running stages (interrupt again to kill them)");
        stop.interrupt();
        signalled().await;
        eprintln!("Killing the running stages (interrupt again to exit without recording the run)");
        stop.kill_commands();
        signalled().await;
        std::process::exit(130);
    });
}

pub fn run(cmd: PipelineCommand) -> anyhow::Result<()> {
    let rt = runtime()?;
    match cmd {
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
        }
        PipelineCommand::Dag(args) => {
            let (text, json) = orchard_pipeline::status::dag(&Project::open(&std::env::current_dir()?)?, &args.targets)?;
            if args.json { print_json(&json)? } else { print!("{text}") }
        }
        PipelineCommand::Runs(args) => {
            let rows = history::recent(rt.handle(), &store_for(&args.store, &rt)?, args.max)?;
            if args.json { print_json(&show::runs_json(&rows))? } else { print!("{}", show::runs_text(&rows)) }
        }
        PipelineCommand::Logs(args) => {
            let store = store_for(&args.store, &rt)?;
            let (run, stages) = history::find(rt.handle(), &store, &args.run, args.stage.as_deref())?;
            match args.json {
                true => print_json(&serde_json::json!({ "run": run, "stages": stages }))?,
                false => print!("{}", show::logs_text(&run, &stages)),
            }
        }
        PipelineCommand::Schedule(ScheduleCommand::Add(args)) => {
            let store = store_for(&args.store, &rt)?;
            let (targets, overrides) = split_args(&args.args);
            let cwd = std::env::current_dir()?;
            let s = orchard_orchestrator::schedule::add(rt.handle(), &store, &args.name, &args.cron, &cwd, &targets, &overrides)?;
            println!("Schedule '{}' ({}) fires next at {} UTC", s.name, s.cron, show::when(Some(s.next_ms)));
        }
        PipelineCommand::Schedule(ScheduleCommand::List(args)) => {
            let all = rt.block_on(store_for(&args.store, &rt)?.list_schedules())?;
            if args.json { print_json(&all)? } else { print!("{}", show::schedules_text(&all)) }
        }
        PipelineCommand::Schedule(ScheduleCommand::Remove(args)) => {
            rt.block_on(store_for(&args.store, &rt)?.delete_schedule(&args.name))?;
            println!("Removed schedule '{}'", args.name);
        }
    }
    Ok(())
}

pub fn worker_cmd(args: WorkerArgs) -> anyhow::Result<()> {
    let opts = args.options()?;
    let rt = runtime()?;
    let uri = history::store_uri(args.backend_store_uri.clone(), repo_root().ok().as_deref())?;
    let store = open_store(&rt, &uri)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        // Ctrl-C / SIGTERM: finish the stage at hand, then stop.
        let stop = stop.clone();
        rt.spawn(async move {
            signalled().await;
            eprintln!("stopping after the current stage");
            stop.store(true, Ordering::Relaxed);
        });
    }
    eprintln!("worker {} leasing stage runs from {}", opts.id, redact(&uri));
    let links = orchard_orchestrator::tracking::WorkerLinks { rt: rt.handle().clone() };
    let worker = Worker::new(rt.handle().clone(), store, opts, Box::new(links));
    worker.run(&stop, |done| {
        let note = if done.recorded { "" } else { " (lease lost: not recorded)" };
        eprintln!("{} {}: {}{note}", &done.run_id[..8], done.stage, done.status);
    })?;
    Ok(())
}
