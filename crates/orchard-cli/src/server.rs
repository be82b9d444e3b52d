//! `orchard server`: MLflow's flag names, ORCHARD_* environment variables, clean shutdown.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
pub use orchard_server::launch::{default_artifacts_destination, default_backend, redact};
use orchard_server::launch::{launch, Settings, DEFAULT_DATA_DIR};

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "ORCHARD_HOST", default_value = "127.0.0.1")]
    host: String,

    /// Port to listen on; 0 picks a free one (the URL printed at start-up tells which).
    #[arg(short, long, env = "ORCHARD_PORT", default_value_t = 5000)]
    port: u16,

    /// Metadata database: sqlite:///relative/path.db, sqlite:////absolute/path.db or
    /// postgresql://user@host:port/db. [default: sqlite:///orchard-data/orchard.db]
    #[arg(long, env = "ORCHARD_BACKEND_STORE_URI")]
    backend_store_uri: Option<String>,

    /// Where artifacts are stored: file:///path, a local path, or s3://bucket/prefix (endpoint and credentials
    /// from AWS_ENDPOINT_URL / MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
    /// [default: ./orchard-data/artifacts]
    #[arg(long, env = "ORCHARD_ARTIFACTS_DESTINATION")]
    artifacts_destination: Option<String>,

    /// Proxy artifact uploads and downloads through this server (runs get mlflow-artifacts:/ URIs). On by
    /// default.
    #[arg(long, env = "ORCHARD_SERVE_ARTIFACTS", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    serve_artifacts: bool,

    /// Do not proxy artifacts: clients read and write the artifact store directly.
    #[arg(long, conflicts_with = "serve_artifacts")]
    no_serve_artifacts: bool,

    /// Artifact root recorded in new experiments. [default: mlflow-artifacts:/ when serving artifacts,
    /// otherwise the artifacts destination]
    #[arg(long, env = "ORCHARD_DEFAULT_ARTIFACT_ROOT")]
    default_artifact_root: Option<String>,

    /// The alias whose version the gateway serves at /models/<name>/predict.
    #[arg(long, env = "ORCHARD_GATEWAY_ALIAS", default_value = "champion")]
    gateway_alias: String,

    /// Do not serve registered models (/models/<name>/predict, /models/<name>/invocations, /v2/…).
    #[arg(long)]
    no_gateway: bool,

    /// Do not record gateway requests in the prediction log (`predictions/` in the artifact store).
    #[arg(long)]
    no_prediction_log: bool,

    /// Do not run the pipeline schedules (`orchard pipeline schedule`); another server on the same database
    /// may. Scheduled runs are queued for `orchard worker`s.
    #[arg(long)]
    no_scheduler: bool,

    /// Where the gateway keeps downloaded model versions. [default: ./orchard-data/model-cache]
    #[arg(long, env = "ORCHARD_MODEL_CACHE_DIR")]
    model_cache_dir: Option<PathBuf>,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let settings = Settings {
        backend_store_uri: args.backend_store_uri.unwrap_or_else(default_backend),
        artifacts_destination: args.artifacts_destination.unwrap_or_else(default_artifacts_destination),
        serve_artifacts: args.serve_artifacts && !args.no_serve_artifacts,
        default_artifact_root: args.default_artifact_root,
        gateway: (!args.no_gateway).then_some(args.gateway_alias),
        prediction_log: !args.no_prediction_log,
        scheduler: !args.no_scheduler,
        model_cache_dir: args.model_cache_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR).join("model-cache")),
    };
    let started = std::time::Instant::now();
    let mut server = launch(&settings).await?;
    let listener = bind(&args.host, args.port, "Orchard server").await?;
    tracing::info!(
        backend = %redact(&settings.backend_store_uri),
        artifacts = %settings.artifacts_destination,
        serve_artifacts = settings.serve_artifacts,
        startup_ms = started.elapsed().as_millis() as u64,
        "ready"
    );
    axum::serve(listener, server.take_app()).with_graceful_shutdown(shutdown_signal()).await?;
    server.finish().await;
    tracing::info!("stopped");
    Ok(())
}

/// Binds the listening socket and prints `<what> listening on http://host:port` as the first line on stdout:
/// scripts and tests read it to find a server started with `--port 0`.
pub async fn bind(host: &str, port: u16, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let addr: SocketAddr = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("cannot resolve --host {host}"))?
        .next()
        .with_context(|| format!("--host {host} resolves to no address"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!("{what} listening on http://{}", listener.local_addr()?);
    let _ = std::io::stdout().flush();
    Ok(listener)
}

pub async fn shutdown_signal() {
    signalled().await;
    tracing::info!("shutting down");
}

/// Resolves at Ctrl-C or SIGTERM (each call waits for the next one).
pub async fn signalled() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
