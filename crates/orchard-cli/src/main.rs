//! `orchard`: the one binary. Each command is a thin call into the crates below.

mod config;
mod data;
mod pipeline;
mod serve;
mod server;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Orchard: an ML platform in one binary — MLflow-compatible tracking and model registry, model serving,
/// Hydra-style config, DVC-compatible data and pipelines.
#[derive(Parser, Debug)]
#[command(name = "orchard", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the tracking server (MLflow REST API, artifact proxy, model registry and the model gateway
    /// /models/<name>/predict) on one port.
    Server(orchard_server::cli::ServerArgs),
    /// Serve one model over HTTP: /predict, MLflow's /invocations, Open Inference Protocol v2, /metrics.
    Serve(serve::ServeArgs),
    /// Compose Hydra-style configuration (config groups, defaults lists, overrides, sweeps).
    #[command(subcommand)]
    Config(orchard_config::cli::ConfigCommand),
    /// Version data with DVC's formats: init, add, status, commit, checkout, push, pull, fetch, gc, remote,
    /// config, ls.
    Data(orchard_data::cli::DataArgs),
    /// Reproduce the pipeline of dvc.yaml: run the stages whose command, deps, params or outs changed
    /// (params composed from conf/ with the given overrides), restore from the run cache, update dvc.lock.
    /// Ctrl-C stops the running commands and records the run as failed; `orchard repro` again resumes.
    Repro(orchard_orchestrator::cli::ReproArgs),
    /// Inspect the pipeline and its runs: status (what changed since dvc.lock), dag, runs, logs, and cron
    /// schedules.
    #[command(subcommand)]
    Pipeline(orchard_orchestrator::cli::PipelineCommand),
    /// Run queued pipeline stages: lease them from the metadata store one at a time (with a heartbeat, so
    /// another worker takes over the stage of a worker that dies).
    Worker(orchard_orchestrator::cli::WorkerArgs),
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ORCHARD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // Logs go to stderr (stdout carries the results a script may read), coloured only on a terminal.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve(_) | Command::Server(_)) {
        no_huge_pages();
    }
    init_logging();
    // Pipelines run their stages on threads of their own and talk to a tracking server with blocking calls:
    // no async runtime around them.
    let command = match cli.command {
        Command::Repro(args) => return exit_code(pipeline::repro_cmd(args)),
        Command::Pipeline(cmd) => return exit_code(pipeline::run(cmd)),
        Command::Worker(args) => return exit_code(pipeline::worker_cmd(args)),
        other => other,
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Serve(serve::ServeArgs { threads: Some(n), .. }) = &command {
        builder.worker_threads(usize::from(*n));
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Server(args) => server::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Config(cmd) => config::run(cmd),
            Command::Data(args) => data::run(args).await,
            Command::Repro(_) | Command::Pipeline(_) | Command::Worker(_) => {
                unreachable!("handled before the runtime starts")
            }
        }
    });
    exit_code(result)
}

/// No transparent huge pages for the servers: mimalloc asks for them on its arenas, and with THP in `madvise`
/// mode every touched 4 KiB then costs a 2 MiB page — ~10 MB more resident memory for an idle `orchard serve`.
/// Not for the pipeline commands: the setting is inherited by the stages' commands.
fn no_huge_pages() {
    // SAFETY: a plain prctl on this process; no memory is involved.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
