//! `orchard serve -m MODEL_URI`: one model over HTTP — `/predict`, MLflow's `/invocations`, the Open Inference
//! Protocol v2 and `/metrics` — loaded once, predicted in-process.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use orchard_blob::BlobStore;
use orchard_serve::log::{LogSettings, PredictionLog};
use orchard_serve::{Fixed, Serving};
use orchard_server::model_source::ModelSource;
use orchard_tracking::artifacts::Artifacts;

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

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let destination = args.artifacts_destination.clone().unwrap_or_else(default_artifacts_destination);
    let blob = BlobStore::open(&destination).with_context(|| format!("cannot open the artifact store {destination}"))?;
    let artifacts = Artifacts::new(blob.clone());
    let started = std::time::Instant::now();
    let source = ModelSource {
        uri: args.model_uri.clone(),
        backend_store_uri: args.backend_store_uri.clone().unwrap_or_else(default_backend),
        backend_named: args.backend_store_uri.is_some(),
        tracking_uri: args.tracking_uri.clone(),
        cache_dir: args.model_cache_dir.clone().unwrap_or_else(|| PathBuf::from("orchard-data").join("model-cache")),
    };
    let served = source.load(&artifacts).await?;
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
