//! `orchard server`: the tracking server, registry and model gateway on one port, until Ctrl-C or SIGTERM.

use orchard_server::cli::ServerArgs;
pub use orchard_server::launch::{bind, redact, signalled};
use orchard_server::launch::launch;

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let settings = args.settings();
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

pub async fn shutdown_signal() {
    signalled().await;
    tracing::info!("shutting down");
}
