//! `orchard serve -m MODEL_URI`: one model over HTTP — `/predict`, MLflow's `/invocations`, the Open Inference
//! Protocol v2 and `/metrics` — loaded once, predicted in-process.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use orchard_blob::BlobStore;
use orchard_model::Model;
use orchard_serve::log::{LogSettings, PredictionLog};
use orchard_serve::{Fixed, ServedModel, Serving};
use orchard_store::Store;
use orchard_tracking::artifacts::Artifacts;
use orchard_tracking::registry::{parse_models_uri, ModelUri};
use orchard_tracking::Tracking;

use crate::server::{bind, default_artifacts_destination, default_backend, shutdown_signal};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The model: `models:/NAME/VERSION`, `models:/NAME@ALIAS`, `models:/NAME/latest`, `models:/<model id>`,
    /// `runs:/<run id>/PATH`, an artifact URI (`mlflow-artifacts:/…`, `s3://…`, `file://…`), or a local folder
    /// (an MLflow model directory, or one holding a LightGBM `model.txt`) or LightGBM text file.
    #[arg(short = 'm', long = "model-uri", env = "ORCHARD_MODEL_URI")]
    model_uri: String,

    /// Address to listen on.
    #[arg(long, env = "ORCHARD_HOST", default_value = "127.0.0.1")]
    host: String,

    /// Port to listen on; 0 picks a free one (the URL printed at start-up tells which).
    #[arg(short, long, env = "ORCHARD_SERVE_PORT", default_value_t = 8000)]
    port: u16,

    /// Metadata database that resolves models:/ and runs:/ URIs (the one `orchard server` uses).
    /// [default: sqlite:///orchard-data/orchard.db, unless --tracking-uri names a server]
    #[arg(long, env = "ORCHARD_BACKEND_STORE_URI")]
    backend_store_uri: Option<String>,

    /// A tracking server (`http://host:port`, Orchard or MLflow) that resolves models:/ URIs through its REST
    /// API and delivers the files through its artifact proxy, as `mlflow models serve` does.
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    tracking_uri: Option<String>,

    /// Artifact store holding the models' files, and where the prediction log is written.
    /// [default: ./orchard-data/artifacts]
    #[arg(long, env = "ORCHARD_ARTIFACTS_DESTINATION")]
    artifacts_destination: Option<String>,

    /// Name of the answer field of /predict (e.g. `flower`). [default: the feature spec's label, else
    /// `prediction`]
    #[arg(long, env = "ORCHARD_LABEL_FIELD")]
    label_field: Option<String>,

    /// Threads answering requests [default: one per core]. With the clients on the same cores (a load
    /// generator, a co-located app), fewer threads than cores keeps the latency tail short: see BENCHMARKS.md.
    #[arg(long, env = "ORCHARD_SERVE_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,

    /// Largest request body accepted, in bytes; larger requests get HTTP 413.
    #[arg(long, env = "ORCHARD_MAX_REQUEST_BYTES", default_value_t = 16 * 1024 * 1024)]
    max_request_bytes: usize,

    /// Do not record requests in the prediction log (`predictions/` in the artifact store).
    #[arg(long)]
    no_prediction_log: bool,

    /// Where downloaded models are kept. [default: ./orchard-data/model-cache]
    #[arg(long, env = "ORCHARD_MODEL_CACHE_DIR")]
    model_cache_dir: Option<PathBuf>,
}

/// Loads the model behind a URI: a local path directly, anything else through the tracking store and the
/// artifact store.
async fn load(args: &ServeArgs, artifacts: &Artifacts) -> anyhow::Result<ServedModel> {
    let uri = args.model_uri.as_str();
    let local = Path::new(uri.strip_prefix("file://").unwrap_or(uri));
    if !uri.contains(":/") || (uri.starts_with("file://") && local.exists()) {
        let model = Model::load(local).with_context(|| format!("cannot load the model at {}", local.display()))?;
        let name = local
            .file_stem()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty())
            .unwrap_or("model")
            .to_string();
        return Ok(ServedModel { name: name.into(), version: "1".into(), source: uri.to_string(), model });
    }
    let remote = args
        .tracking_uri
        .as_deref()
        .filter(|t| args.backend_store_uri.is_none() && (t.starts_with("http://") || t.starts_with("https://")));
    if let (Some(base), true) = (remote, uri.starts_with("models:")) {
        let client = reqwest::Client::new();
        let (artifact_uri, name, version) = crate::remote_model::resolve(&client, base, uri).await?;
        let cache = args
            .model_cache_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("orchard-data").join("model-cache"));
        let dir = cache.join(format!("serve-{}", uuid::Uuid::new_v4().simple()));
        let fetched = crate::remote_model::download(&client, base, &artifact_uri, &dir).await;
        let model = fetched.and_then(|_| Model::load(&dir).with_context(|| format!("cannot load {uri}")));
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(ServedModel { name: name.into(), version: version.into(), source: uri.to_string(), model: model? });
    }
    if remote.is_some() && uri.starts_with("runs:") {
        anyhow::bail!(
            "runs:/ URIs are resolved through the store: pass --backend-store-uri, or register the model and \
             serve models:/NAME/VERSION"
        );
    }
    let (artifact_uri, name, version) = if uri.starts_with("models:") || uri.starts_with("runs:") {
        let backend = args.backend_store_uri.clone().unwrap_or_else(default_backend);
        let store = Store::open(&backend)
            .await
            .with_context(|| format!("cannot open the backend store to resolve {uri}"))?;
        let tracking = Tracking::new(store, "mlflow-artifacts:/").await?;
        let resolved = tracking
            .resolve_model_uri(uri)
            .await
            .map_err(|e| anyhow::anyhow!("cannot resolve {uri}: {}", e.message))?;
        let name = match (&resolved.name, parse_models_uri(uri)) {
            (Some(n), _) => n.clone(),
            (None, Ok(ModelUri::LoggedModel { model_id })) => model_id,
            _ => "model".to_string(),
        };
        let version = resolved.version.map(|v| v.to_string()).unwrap_or_else(|| "1".into());
        (resolved.artifact_uri, name, version)
    } else {
        (uri.to_string(), "model".to_string(), "1".to_string())
    };
    let cache = args
        .model_cache_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("orchard-data").join("model-cache"));
    let dir = cache.join(format!("serve-{}", uuid::Uuid::new_v4().simple()));
    artifacts
        .download_dir(&artifact_uri, &dir)
        .await
        .map_err(|e| anyhow::anyhow!("cannot download {artifact_uri}: {}", e.message))?;
    let model = Model::load(&dir).with_context(|| format!("cannot load {uri}"));
    // The files are in memory now; the download is not needed any more.
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ServedModel { name: name.into(), version: version.into(), source: uri.to_string(), model: model? })
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let destination = args.artifacts_destination.clone().unwrap_or_else(default_artifacts_destination);
    let blob = BlobStore::open(&destination).with_context(|| format!("cannot open the artifact store {destination}"))?;
    let artifacts = Artifacts::new(blob.clone());
    let started = std::time::Instant::now();
    let served = load(&args, &artifacts).await?;
    let mut serving = Serving::new(Arc::new(Fixed(Arc::new(served))));
    serving.max_body_bytes = args.max_request_bytes;
    serving.label_field = args.label_field.clone();
    let mut writer = None;
    if !args.no_prediction_log {
        let (log, w) = PredictionLog::start(blob, LogSettings::default(), serving.metrics.clone());
        serving.log = Some(log);
        writer = Some(w);
    }
    let (name, version) = serving.catalog.loaded().pop().unwrap_or_default();

    let listener = bind(&args.host, args.port, "Orchard model server").await?;
    tracing::info!(model = %name, version = %version, source = %args.model_uri,
        startup_ms = started.elapsed().as_millis() as u64, "serving");
    let app = orchard_serve::router(serving.clone());
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    // Let the prediction log write what it holds.
    serving.log = None;
    drop(serving);
    if let Some(w) = writer {
        w.finish().await;
    }
    Ok(())
}
