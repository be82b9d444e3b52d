//! `orchard`: the one binary. Each command is a thin call into the crates below.

mod config;
mod data;
mod pipeline;
mod pipeline_tracking;
mod remote_model;
mod serve;
mod server;

use clap::{Parser, Subcommand};

/// Orchard: an ML platform in one binary — MLflow-compatible tracking and model registry, model serving,
/// Hydra-style config, DVC-compatible data and pipelines.
#[derive(Parser, Debug)]
#[command(name = "orchard", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the tracking server (MLflow REST API, artifact proxy, model registry and the model gateway
    /// /models/<name>/predict) on one port.
    Server(server::ServerArgs),
    /// Serve one model over HTTP: /predict, MLflow's /invocations, Open Inference Protocol v2, /metrics.
    Serve(serve::ServeArgs),
    /// Compose Hydra-style configuration (config groups, defaults lists, overrides, sweeps).
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Version data with DVC's formats: init, add, status, commit, checkout, push, pull, fetch, gc, remote,
    /// config, ls.
    Data(data::DataArgs),
    /// Reproduce the pipeline of dvc.yaml: run the stages whose command, deps, params or outs changed
    /// (params composed from conf/ with the given overrides), restore from the run cache, update dvc.lock.
    Repro(pipeline::ReproArgs),
    /// Inspect the pipeline: status (what changed since dvc.lock) and dag.
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
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
    init_logging();
    // Pipelines run their stages on threads of their own and talk to a tracking server with blocking calls:
    // no async runtime around them.
    if let Command::Repro(args) = cli.command {
        return exit_code(pipeline::repro_cmd(args));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Config(cmd) => config::run(cmd),
            Command::Data(args) => data::run(args).await,
            Command::Repro(_) => unreachable!("handled before the runtime starts"),
            Command::Pipeline(cmd) => pipeline::run(cmd),
        }
    });
    exit_code(result)
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
