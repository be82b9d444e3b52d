//! Putting `orchard server` together from its settings: the metadata store, the artifact store, the tracking
//! service, the model gateway with its prediction log, and the pipeline scheduler — and taking it apart
//! again in order, so that the prediction log writes what it holds before the process ends.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use orchard_blob::BlobStore;
use orchard_serve::log::{LogSettings, LogWriter, PredictionLog};
use orchard_store::Store;
use orchard_tracking::artifacts::Artifacts;
use orchard_tracking::Tracking;

use crate::gateway::RegistryCatalog;
use crate::state::AppState;
use orchard_graphql::GraphQl;

/// The folder of the embedded default, relative to the working folder.
pub const DEFAULT_DATA_DIR: &str = "orchard-data";

/// `sqlite:///orchard-data/orchard.db`: the embedded default metadata store.
pub fn default_backend() -> String {
    format!("sqlite:///{}", PathBuf::from(DEFAULT_DATA_DIR).join("orchard.db").display())
}

/// `file://<cwd>/orchard-data/artifacts`: the embedded default artifact store.
pub fn default_artifacts_destination() -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    format!("file://{}", cwd.join(DEFAULT_DATA_DIR).join("artifacts").display())
}

/// What `orchard server`'s flags decide.
#[derive(Debug, Clone)]
pub struct Settings {
    pub backend_store_uri: String,
    pub artifacts_destination: String,
    /// Proxy artifacts (runs get `mlflow-artifacts:/` URIs).
    pub serve_artifacts: bool,
    /// The artifact root of new experiments; by default `mlflow-artifacts:/` when proxying, else the
    /// destination itself.
    pub default_artifact_root: Option<String>,
    /// Serve registered models at `/models/<name>/…`, the version under this alias.
    pub gateway: Option<String>,
    pub prediction_log: bool,
    pub scheduler: bool,
    pub model_cache_dir: PathBuf,
    /// Bounds on one GraphQL query.
    pub graphql_limits: orchard_graphql::Limits,
    /// The Python that serves the gateway's models Orchard does not run natively.
    pub python: orchard_serve::python::PythonSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot open the backend store {uri}")]
    Store { uri: String, source: orchard_store::StoreError },
    #[error("cannot open the artifact store {uri}")]
    Blob { uri: String, source: orchard_blob::BlobError },
    #[error("cannot prepare the tracking store")]
    Tracking(#[source] orchard_tracking::TrackingError),
}

/// A server ready to be served, and what must be stopped after it.
pub struct Launched {
    app: Router,
    store: Store,
    log_writer: Option<LogWriter>,
    scheduler: Option<tokio::task::JoinHandle<()>>,
}

/// Opens the stores and builds the application.
pub async fn launch(settings: &Settings) -> Result<Launched, LaunchError> {
    let backend = &settings.backend_store_uri;
    let destination = &settings.artifacts_destination;
    let store = Store::open(backend)
        .await
        .map_err(|source| LaunchError::Store { uri: redact(backend), source })?;
    let blob = BlobStore::open(destination).map_err(|source| LaunchError::Blob { uri: destination.clone(), source })?;
    let default_root = settings.default_artifact_root.clone().unwrap_or_else(|| {
        if settings.serve_artifacts {
            "mlflow-artifacts:/".to_string()
        } else {
            destination.clone()
        }
    });
    let tracking = Tracking::new(store.clone(), &default_root).await.map_err(LaunchError::Tracking)?;
    let scheduler = settings.scheduler.then(|| tokio::spawn(orchard_orchestrator::schedule::run(store.clone())));
    let mut log_writer = None;
    let gateway = settings.gateway.as_deref().map(|alias| {
        let catalog =
            RegistryCatalog::new(
                tracking.clone(),
                Artifacts::new(blob.clone()),
                alias,
                settings.model_cache_dir.clone(),
                settings.python.clone(),
            );
        let mut serving = orchard_serve::Serving::new(Arc::new(catalog));
        if settings.prediction_log {
            let (log, writer) = PredictionLog::start(blob.clone(), LogSettings::default(), serving.metrics.clone());
            serving.log = Some(log);
            log_writer = Some(writer);
        }
        serving
    });
    let artifacts = settings.serve_artifacts.then(|| Artifacts::new(blob));
    let graphql = GraphQl::new(tracking.clone(), artifacts.clone(), settings.graphql_limits);
    let state = AppState { tracking, artifacts, gateway, graphql };
    Ok(Launched { app: crate::app(state), store, log_writer, scheduler })
}

impl Launched {
    /// The application to serve (taken once).
    pub fn take_app(&mut self) -> Router {
        std::mem::replace(&mut self.app, Router::new())
    }

    /// After the last request: the prediction log writes what it holds, the scheduler stops, the store closes.
    pub async fn finish(self) {
        if let Some(w) = self.log_writer {
            w.finish().await;
        }
        if let Some(s) = self.scheduler {
            s.abort();
        }
        self.store.close().await;
    }
}

/// A database URI with its password hidden, for messages and logs.
pub fn redact(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => uri.to_string(),
    }
}

/// Binds the listening socket and prints `<what> listening on http://host:port` as the first line on stdout:
/// scripts and tests read it to find a server started with `--port 0`.
pub async fn bind(host: &str, port: u16, what: &str) -> std::io::Result<tokio::net::TcpListener> {
    use std::io::{Error, ErrorKind, Write};
    let context = |m: String| move |e: Error| Error::new(e.kind(), format!("{m}: {e}"));
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(context(format!("cannot resolve --host {host}")))?
        .next()
        .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("--host {host} resolves to no address")))?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(context(format!("cannot listen on {addr}")))?;
    println!("{what} listening on http://{}", listener.local_addr()?);
    let _ = std::io::stdout().flush();
    Ok(listener)
}

/// Resolves at the next Ctrl-C or SIGTERM: the end of a server's graceful shutdown, and the interrupts of a
/// pipeline run (each call waits for the next one).
pub async fn signalled() {
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
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
}
