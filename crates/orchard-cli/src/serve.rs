//! `orchard serve -m MODEL_URI`: one model over HTTP — `/predict`, MLflow's `/invocations`, the Open Inference
//! Protocol v2 and `/metrics` — loaded once, predicted in-process (LightGBM, ONNX) or, for other MLflow models,
//! through `mlflow.pyfunc` in Python workers; the start-up line says which.

use std::sync::Arc;

use anyhow::Context;
use orchard_blob::BlobStore;
use orchard_serve::log::{LogSettings, PredictionLog};
use orchard_serve::{Fixed, Serving};
pub use orchard_server::cli::ServeArgs;
use orchard_tracking::artifacts::Artifacts;

use crate::server::{bind, shutdown_signal};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let destination = args.artifacts_destination();
    let blob = BlobStore::open(&destination).with_context(|| format!("cannot open the artifact store {destination}"))?;
    let started = std::time::Instant::now();
    let served = args.model_source().load(&Artifacts::new(blob.clone())).await?;
    // Which path the model takes (native, or mlflow.pyfunc in Python), said before the server listens.
    tracing::info!(model = %served.name, version = %served.version, engine = %served.engine.describe(), "model loaded");
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
