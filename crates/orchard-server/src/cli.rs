//! The flags of `orchard server` (MLflow's names: `--backend-store-uri`, `--artifacts-destination`,
//! `--serve-artifacts`, …, each also read from an `ORCHARD_*` variable) and of `orchard serve`, and the settings
//! they make. Behind the `cli` feature.

use std::path::PathBuf;

use clap::Args;

use crate::launch::{default_artifacts_destination, default_backend, Settings, DEFAULT_DATA_DIR};
use crate::model_source::ModelSource;
use orchard_serve::python::PythonSettings;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "ORCHARD_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on; 0 picks a free one (the URL printed at start-up tells which).
    #[arg(short, long, env = "ORCHARD_PORT", default_value_t = 5000)]
    pub port: u16,

    /// Metadata database: sqlite:///relative/path.db, sqlite:////absolute/path.db or
    /// postgresql://user@host:port/db. [default: sqlite:///orchard-data/orchard.db]
    #[arg(long, env = "ORCHARD_BACKEND_STORE_URI")]
    pub backend_store_uri: Option<String>,

    /// Where artifacts are stored: file:///path, a local path, or s3://bucket/prefix (endpoint and credentials
    /// from AWS_ENDPOINT_URL / MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
    /// [default: ./orchard-data/artifacts]
    #[arg(long, env = "ORCHARD_ARTIFACTS_DESTINATION")]
    pub artifacts_destination: Option<String>,

    /// Proxy artifact uploads and downloads through this server (runs get mlflow-artifacts:/ URIs). On by
    /// default.
    #[arg(long, env = "ORCHARD_SERVE_ARTIFACTS", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub serve_artifacts: bool,

    /// Do not proxy artifacts: clients read and write the artifact store directly.
    #[arg(long, conflicts_with = "serve_artifacts")]
    pub no_serve_artifacts: bool,

    /// Artifact root recorded in new experiments. [default: mlflow-artifacts:/ when serving artifacts,
    /// otherwise the artifacts destination]
    #[arg(long, env = "ORCHARD_DEFAULT_ARTIFACT_ROOT")]
    pub default_artifact_root: Option<String>,

    /// The alias whose version the gateway serves at /models/<name>/predict.
    #[arg(long, env = "ORCHARD_GATEWAY_ALIAS", default_value = "champion")]
    pub gateway_alias: String,

    /// Do not serve registered models (/models/<name>/predict, /models/<name>/invocations, /v2/…).
    #[arg(long)]
    pub no_gateway: bool,

    /// Do not record gateway requests in the prediction log (`predictions/` in the artifact store).
    #[arg(long)]
    pub no_prediction_log: bool,

    /// Do not run the pipeline schedules (`orchard pipeline schedule`); another server on the same database
    /// may. Scheduled runs are queued for `orchard worker`s.
    #[arg(long)]
    pub no_scheduler: bool,

    /// Where the gateway keeps downloaded model versions. [default: ./orchard-data/model-cache]
    #[arg(long, env = "ORCHARD_MODEL_CACHE_DIR")]
    pub model_cache_dir: Option<PathBuf>,

    /// Most fields at the top of one GraphQL query (each is one API call).
    #[arg(long, env = "MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS", default_value_t = 10)]
    pub graphql_max_root_fields: usize,

    /// Most aliased fields in one selection set of a GraphQL query.
    #[arg(long, env = "MLFLOW_SERVER_GRAPHQL_MAX_ALIASES", default_value_t = 10)]
    pub graphql_max_aliases: usize,

    #[command(flatten)]
    pub python: PythonArgs,
}

/// How models Orchard does not run natively (anything but LightGBM Boosters and ONNX) are served: through
/// MLflow's `mlflow.pyfunc` in Python worker processes, as `mlflow models serve --env-manager local` does.
#[derive(Args, Debug, Clone)]
pub struct PythonArgs {
    /// The Python interpreter of the workers; it needs `mlflow` and the model's own requirements installed.
    #[arg(long, env = "ORCHARD_PYTHON", default_value = "python3")]
    pub python: PathBuf,

    /// Python worker processes per model (each holds the model in memory and answers one request at a time).
    #[arg(long, env = "ORCHARD_PYTHON_WORKERS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub python_workers: u16,

    /// Seconds one request may take in a Python worker; a worker that takes longer is stopped and replaced, and
    /// the request answered 504 (MLflow's variable and default).
    #[arg(long, env = "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub python_timeout: u64,
}

impl PythonArgs {
    pub fn settings(&self) -> PythonSettings {
        PythonSettings {
            python: self.python.clone(),
            workers: usize::from(self.python_workers),
            timeout: std::time::Duration::from_secs(self.python_timeout),
        }
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The model: `models:/NAME/VERSION`, `models:/NAME@ALIAS`, `models:/NAME/latest`, `models:/<model id>`,
    /// `runs:/<run id>/PATH`, an artifact URI (`mlflow-artifacts:/…`, `s3://…`, `file://…`), or a local folder
    /// (an MLflow model directory, or one holding a LightGBM `model.txt`) or LightGBM text file.
    #[arg(short = 'm', long = "model-uri", env = "ORCHARD_MODEL_URI")]
    pub model_uri: String,

    /// Address to listen on.
    #[arg(long, env = "ORCHARD_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on; 0 picks a free one (the URL printed at start-up tells which).
    #[arg(short, long, env = "ORCHARD_SERVE_PORT", default_value_t = 8000)]
    pub port: u16,

    /// Metadata database that resolves models:/ and runs:/ URIs (the one `orchard server` uses).
    /// [default: sqlite:///orchard-data/orchard.db, unless --tracking-uri names a server]
    #[arg(long, env = "ORCHARD_BACKEND_STORE_URI")]
    pub backend_store_uri: Option<String>,

    /// A tracking server (`http://host:port`, Orchard or MLflow) that resolves models:/ URIs through its REST
    /// API and delivers the files through its artifact proxy, as `mlflow models serve` does.
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    pub tracking_uri: Option<String>,

    /// Artifact store holding the models' files, and where the prediction log is written.
    /// [default: ./orchard-data/artifacts]
    #[arg(long, env = "ORCHARD_ARTIFACTS_DESTINATION")]
    pub artifacts_destination: Option<String>,

    /// Name of the answer field of /predict (e.g. `flower`). [default: the feature spec's label, else
    /// `prediction`]
    #[arg(long, env = "ORCHARD_LABEL_FIELD")]
    pub label_field: Option<String>,

    /// Threads answering requests [default: one per core]. With the clients on the same cores (a load
    /// generator, a co-located app), fewer threads than cores keeps the latency tail short: see BENCHMARKS.md.
    #[arg(long, env = "ORCHARD_SERVE_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,

    /// Largest request body accepted, in bytes; larger requests get HTTP 413.
    #[arg(long, env = "ORCHARD_MAX_REQUEST_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_request_bytes: usize,

    /// Do not record requests in the prediction log (`predictions/` in the artifact store).
    #[arg(long)]
    pub no_prediction_log: bool,

    /// Where downloaded models are kept. [default: ./orchard-data/model-cache]
    #[arg(long, env = "ORCHARD_MODEL_CACHE_DIR")]
    pub model_cache_dir: Option<PathBuf>,

    #[command(flatten)]
    pub python: PythonArgs,
}

impl ServerArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            backend_store_uri: self.backend_store_uri.clone().unwrap_or_else(default_backend),
            artifacts_destination: self.artifacts_destination.clone().unwrap_or_else(default_artifacts_destination),
            serve_artifacts: self.serve_artifacts && !self.no_serve_artifacts,
            default_artifact_root: self.default_artifact_root.clone(),
            gateway: (!self.no_gateway).then(|| self.gateway_alias.clone()),
            prediction_log: !self.no_prediction_log,
            scheduler: !self.no_scheduler,
            model_cache_dir: model_cache_dir(&self.model_cache_dir),
            python: self.python.settings(),
            graphql_limits: orchard_graphql::Limits {
                max_root_fields: self.graphql_max_root_fields,
                max_aliases: self.graphql_max_aliases,
            },
        }
    }
}

impl ServeArgs {
    /// Where the model comes from: the metadata store named (or the embedded default), or a tracking server.
    pub fn model_source(&self) -> ModelSource {
        ModelSource {
            uri: self.model_uri.clone(),
            backend_store_uri: self.backend_store_uri.clone().unwrap_or_else(default_backend),
            backend_named: self.backend_store_uri.is_some(),
            tracking_uri: self.tracking_uri.clone(),
            cache_dir: model_cache_dir(&self.model_cache_dir),
            python: self.python.settings(),
        }
    }

    pub fn artifacts_destination(&self) -> String {
        self.artifacts_destination.clone().unwrap_or_else(default_artifacts_destination)
    }
}

fn model_cache_dir(given: &Option<PathBuf>) -> PathBuf {
    given.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR).join("model-cache"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Server {
        #[command(flatten)]
        args: ServerArgs,
    }

    #[test]
    fn mlflow_flag_names_make_the_settings() {
        let args = Server::try_parse_from(["server", "--backend-store-uri", "sqlite:///x.db", "--no-serve-artifacts", "--no-gateway"]).unwrap();
        let settings = args.args.settings();
        assert_eq!(settings.backend_store_uri, "sqlite:///x.db");
        assert!(!settings.serve_artifacts && settings.gateway.is_none() && settings.scheduler);
        let args = Server::try_parse_from(["server", "--serve-artifacts", "false", "--gateway-alias", "prod"]).unwrap();
        assert_eq!((args.args.settings().serve_artifacts, args.args.settings().gateway), (false, Some("prod".to_string())));
    }
}
