//! Model serving: the inference protocols over a model that runs in this process ([`orchard_model::Model`]:
//! LightGBM, ONNX) or, for every other MLflow model, through MLflow's own `mlflow.pyfunc` in Python workers
//! ([`python`]); [`Engine::load`] picks the first that can run a model folder.
//!
//! - `POST /predict` — named features (nested objects flatten with `_`), one object or a list;
//! - MLflow's scoring protocol: `POST /invocations`, `GET /ping`, `/health`, `/version`;
//! - Open Inference Protocol v2: `/v2`, `/v2/health/{live,ready}`, `/v2/models/{m}[/versions/{v}]`,
//!   `…/ready`, `POST …/infer`;
//! - `GET /metrics` (Prometheus text).
//!
//! Which model answers is a [`Catalog`]'s business: `orchard serve` has one fixed model, the gateway of
//! `orchard server` resolves a registered model's alias per request ([`gateway_routes`]). Every request is
//! validated against the model's inputs (a bad field is a 400 naming it), timed into the metrics and, when a
//! log is configured, recorded in the prediction log without waiting for it.

pub mod input;
pub mod log;
pub mod metrics;
pub mod python;

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orchard_model::{Model, ModelError, OutputKind, Prediction};
use serde_json::{json, Value as JsonValue};

use crate::input::{InputError, Rows};
use crate::log::{PredictionLog, Record};
use crate::metrics::Metrics;
use crate::python::{Invocation, PyFunc, PythonError, PythonSettings};

/// A model as served: its registry name and version (or a local name), and the loaded model.
#[derive(Debug)]
pub struct ServedModel {
    /// Shared (not copied) into every prediction-log record.
    pub name: Arc<str>,
    pub version: Arc<str>,
    /// Where it came from (`models:/iris@champion`, a path), for messages and metadata.
    pub source: String,
    pub engine: Engine,
}

/// How a served model predicts.
#[derive(Debug)]
pub enum Engine {
    /// In this process: LightGBM and ONNX models, read natively.
    Native(Model),
    /// Through `mlflow.pyfunc` in Python workers, for every other model with a `python_function` flavor.
    Python(PyFunc),
}

/// Why a model folder cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Native(#[from] ModelError),
    #[error("{python} (Orchard cannot run it natively either: {native})")]
    Python { python: PythonError, native: ModelError },
}

impl Engine {
    /// Loads a model folder (or LightGBM/ONNX file): natively when Orchard reads its flavor, otherwise through
    /// `mlflow.pyfunc` when the model has a `python_function` flavor (the folder must then stay in place while
    /// the model is served).
    pub async fn load(path: &std::path::Path, python: &PythonSettings) -> Result<Engine, LoadError> {
        let dir = path.to_path_buf();
        let native = tokio::task::spawn_blocking(move || Model::load(&dir))
            .await
            .unwrap_or_else(|e| Err(ModelError::Unsupported(format!("the loader failed: {e}"))));
        let reason = match native {
            Ok(model) => return Ok(Engine::Native(model)),
            Err(e @ ModelError::Io { .. }) => return Err(e.into()),
            Err(e) => e,
        };
        let has_pyfunc = orchard_model::mlmodel::MlModel::load(path).is_ok_and(|m| m.flavors.contains_key("python_function"));
        if !has_pyfunc {
            return Err(reason.into());
        }
        match PyFunc::start(path, python).await {
            Ok(py) => Ok(Engine::Python(py)),
            Err(python) => Err(LoadError::Python { python, native: reason }),
        }
    }

    /// Which path the model takes, for the start-up message: `native (lightgbm)`, or the Python worker's
    /// interpreter, MLflow version and pyfunc loader.
    pub fn describe(&self) -> String {
        match self {
            Engine::Native(m) => format!("native ({})", m.flavor()),
            Engine::Python(py) => format!(
                "mlflow.pyfunc ({}) in Python {} with mlflow {}",
                py.info.loader_module, py.info.python, py.info.mlflow
            ),
        }
    }

    pub fn is_native(&self) -> bool {
        matches!(self, Engine::Native(_))
    }
}

/// Why a model cannot answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
}

/// Where models come from.
#[async_trait::async_trait]
pub trait Catalog: Send + Sync + std::fmt::Debug + 'static {
    /// The model behind `name` (for `orchard serve`, its one model whatever the name, unless the name differs).
    async fn get(&self, name: &str) -> Result<Arc<ServedModel>, ServeError>;
    /// The model answering routes that name none (`/predict`, `/invocations`).
    async fn default_model(&self) -> Result<Arc<ServedModel>, ServeError>;
    /// (name, version) of each model loaded now, for `/metrics`.
    fn loaded(&self) -> Vec<(String, String)>;
}

/// One fixed model (`orchard serve -m …`).
#[derive(Debug)]
pub struct Fixed(pub Arc<ServedModel>);

#[async_trait::async_trait]
impl Catalog for Fixed {
    async fn get(&self, name: &str) -> Result<Arc<ServedModel>, ServeError> {
        if name == &*self.0.name {
            Ok(self.0.clone())
        } else {
            Err(ServeError::NotFound(format!(
                "model '{name}' is not served here (this server serves '{}')",
                self.0.name
            )))
        }
    }

    async fn default_model(&self) -> Result<Arc<ServedModel>, ServeError> {
        Ok(self.0.clone())
    }

    fn loaded(&self) -> Vec<(String, String)> {
        vec![(self.0.name.to_string(), self.0.version.to_string())]
    }
}

/// Everything a serving handler needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Serving {
    pub catalog: Arc<dyn Catalog>,
    pub metrics: Arc<Metrics>,
    pub log: Option<PredictionLog>,
    /// Largest request body accepted; larger ones get a 413.
    pub max_body_bytes: usize,
    /// Overrides the answer field of `/predict` (else the feature spec's label, else `prediction`).
    pub label_field: Option<String>,
}

impl Serving {
    pub fn new(catalog: Arc<dyn Catalog>) -> Serving {
        Serving {
            catalog,
            metrics: Arc::new(Metrics::default()),
            log: None,
            max_body_bytes: 16 * 1024 * 1024,
            label_field: None,
        }
    }
}

/// The routes of a model server (`orchard serve`).
pub fn router(serving: Serving) -> Router {
    Router::new()
        .route("/predict", post(predict_default))
        .route("/invocations", post(invocations_default))
        .route("/ping", get(ping))
        .route("/health", get(ping))
        .route("/version", get(|| async { env!("CARGO_PKG_VERSION") }))
        .route("/metrics", get(metrics))
        .merge(v2_routes())
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(|req: Request| async move {
            error(
                StatusCode::NOT_FOUND,
                "ENDPOINT_NOT_FOUND",
                format!("No endpoint for {} {} on this model server", req.method(), req.uri().path()),
            )
        })
        .with_state(serving)
}

/// `/models/{name}/predict` and `/models/{name}/invocations`, for mounting in another application (the gateway of
/// `orchard server`); `/v2/…` too, answering for every model of the catalog.
pub fn gateway_routes(serving: Serving) -> Router {
    Router::new()
        .route("/models/{name}/predict", post(predict_named))
        .route("/models/{name}/invocations", post(invocations_named))
        .route("/models/metrics", get(metrics))
        .merge(v2_routes())
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(serving)
}

fn v2_routes() -> Router<Serving> {
    Router::new()
        .route("/v2", get(v2_server))
        .route("/v2/health/live", get(v2_live))
        .route("/v2/health/ready", get(v2_live))
        .route("/v2/models/{m}", get(v2_model))
        .route("/v2/models/{m}/ready", get(v2_model_ready))
        .route("/v2/models/{m}/versions/{v}", get(v2_model_version))
        .route("/v2/models/{m}/versions/{v}/ready", get(v2_model_version_ready))
        .route("/v2/models/{m}/infer", post(v2_infer))
        .route("/v2/models/{m}/versions/{v}/infer", post(v2_infer_version))
}

// ------------------------------------------------------------------------------------------------- plumbing

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error_code": code, "message": message.into() }))).into_response()
}

fn v2_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// A known path asked with another method (`GET /predict`): 405 with a body in the route's protocol.
async fn method_not_allowed(req: Request) -> Response {
    let message = format!("Method {} is not allowed for {}", req.method(), req.uri().path());
    match req.uri().path().starts_with("/v2") {
        true => v2_error(StatusCode::METHOD_NOT_ALLOWED, message),
        false => error(StatusCode::METHOD_NOT_ALLOWED, "ENDPOINT_NOT_FOUND", message),
    }
}

/// Reads the body with the size limit: an oversized body is a 413, whatever its Content-Length says. One
/// announced over the limit is refused from the headers before any of it is read, so a client that sent
/// `Expect: 100-continue` gets the 413 instead of `100 Continue` and never uploads it.
async fn read_body(serving: &Serving, headers: &HeaderMap, body: Body) -> Result<Bytes, (StatusCode, String)> {
    let too_big = || (StatusCode::PAYLOAD_TOO_LARGE, format!("the request body is larger than the limit of {} bytes", serving.max_body_bytes));
    let announced = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > serving.max_body_bytes as u64) {
        return Err(too_big());
    }
    axum::body::to_bytes(body, serving.max_body_bytes).await.map_err(|e| {
        let over = std::error::Error::source(&e).is_some_and(|s| s.to_string().contains("length limit"))
            || e.to_string().contains("length limit");
        match over {
            true => too_big(),
            false => (StatusCode::BAD_REQUEST, format!("could not read the request body: {e}")),
        }
    })
}

fn parse_json(bytes: &[u8]) -> Result<JsonValue, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("malformed JSON: {e}"))
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn finish(serving: &Serving, route: &'static str, started: Instant, response: Response) -> Response {
    serving
        .metrics
        .record(route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// What one answered request leaves behind: the prediction count, and a prediction-log record holding the
/// request and response bodies as they were (shared bytes, nothing re-serialized on the request path).
struct Exchange<'a> {
    id: &'a str,
    route: &'static str,
    rows: usize,
    request: Bytes,
    request_is_json: bool,
    response: Bytes,
}

fn log(serving: &Serving, served: &ServedModel, x: Exchange<'_>, started: Instant) {
    serving
        .metrics
        .predictions
        .fetch_add(x.rows as u64, std::sync::atomic::Ordering::Relaxed);
    if let Some(log) = &serving.log {
        // The request body may be a slice of the connection's read buffer: copy the few bytes out so that a
        // queued record does not keep the whole buffer alive.
        let inputs = Bytes::copy_from_slice(&x.request);
        log.send(Record {
            request_id: x.id.to_string(),
            timestamp_ms: now_ms(),
            model: served.name.clone(),
            version: served.version.clone(),
            route: x.route,
            rows: x.rows,
            inputs,
            inputs_are_json: x.request_is_json,
            outputs: x.response,
            latency_us: started.elapsed().as_micros() as u64,
        });
    }
}

/// A JSON response from bytes already serialized (so the same bytes can go to the prediction log).
fn json_bytes(value: &JsonValue) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

fn json_response(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn unavailable(e: ServeError) -> Response {
    match e {
        ServeError::NotFound(m) => error(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST", m),
        ServeError::Unavailable(m) => error(StatusCode::SERVICE_UNAVAILABLE, "TEMPORARILY_UNAVAILABLE", m),
    }
}

fn predict(model: &Model, rows: &Rows) -> Result<Vec<Prediction>, InputError> {
    model.predict_rows(&rows.values).map_err(InputError::from)
}

// ----------------------------------------------------------------------------------------------- /predict

async fn predict_default(State(s): State<Serving>, req: Request) -> Response {
    answer(s, None, Protocol::Predict, req).await
}

async fn predict_named(State(s): State<Serving>, Path(name): Path<String>, req: Request) -> Response {
    answer(s, Some(name), Protocol::Predict, req).await
}

/// The two request shapes a model is asked in.
#[derive(Clone, Copy)]
enum Protocol {
    /// `/predict`: Orchard's plain rows.
    Predict,
    /// `/invocations`: MLflow's scoring protocol (JSON or CSV).
    Invocations,
}

/// Answers a request for the model `name` (the default one when `None`), timed and counted under its route.
async fn answer(s: Serving, name: Option<String>, protocol: Protocol, req: Request) -> Response {
    let started = Instant::now();
    let route = match (protocol, name.is_some()) {
        (Protocol::Predict, false) => "/predict",
        (Protocol::Predict, true) => "/models/predict",
        (Protocol::Invocations, false) => "/invocations",
        (Protocol::Invocations, true) => "/models/invocations",
    };
    let found = match &name {
        Some(name) => s.catalog.get(name).await,
        None => s.catalog.default_model().await,
    };
    let r = match (found, protocol) {
        (Ok(served), Protocol::Predict) => predict_with(&s, &served, req, started).await,
        (Ok(served), Protocol::Invocations) => invocations_with(&s, &served, req, started).await,
        (Err(e), _) => unavailable(e),
    };
    finish(&s, route, started, r)
}

/// One prediction as `/predict` answers it: the label field, then the class probabilities by label.
fn predict_json(model: &Model, label: &str, p: &Prediction) -> serde_json::Map<String, JsonValue> {
    let mut out = serde_json::Map::new();
    match (model.output_kind(), &p.class) {
        (OutputKind::Classes(_), Some(class)) => {
            out.insert(label.to_string(), JsonValue::String(class.clone()));
            let probs: serde_json::Map<String, JsonValue> = model
                .class_labels()
                .into_iter()
                .zip(&p.values)
                .map(|(l, v)| (l, json!(v)))
                .collect();
            out.insert("probabilities".into(), JsonValue::Object(probs));
        }
        _ => {
            let value = if p.values.len() == 1 { json!(p.values[0]) } else { json!(p.values) };
            out.insert(label.to_string(), value);
        }
    }
    out
}

async fn predict_with(s: &Serving, served: &ServedModel, req: Request, started: Instant) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match read_body(s, &parts.headers, body).await {
        Ok(b) => b,
        Err((status, m)) => return error(status, "BAD_REQUEST", m),
    };
    let json = match parse_json(&bytes) {
        Ok(j) => j,
        Err(m) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", m),
    };
    let model = match &served.engine {
        Engine::Native(m) => m,
        Engine::Python(py) => return python_predict(s, served, py, bytes, &json, started).await,
    };
    let (rows, is_list) = match input::predict_body(model, &json) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", e.0),
    };
    let preds = match predict(model, &rows) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", e.0),
    };
    let label = s.label_field.as_deref().unwrap_or_else(|| model.label_field());
    let items: Vec<_> = preds.iter().map(|p| predict_json(model, label, p)).collect();
    predict_answer(s, served, items, is_list, bytes, started)
}

/// `/predict`'s answer: the request id, then the one prediction's fields or `predictions`, a list of them.
fn predict_answer(
    s: &Serving,
    served: &ServedModel,
    items: Vec<serde_json::Map<String, JsonValue>>,
    is_list: bool,
    request: Bytes,
    started: Instant,
) -> Response {
    let id = new_id();
    let rows = items.len();
    let mut out = serde_json::Map::new();
    out.insert("request_id".into(), JsonValue::String(id.clone()));
    if is_list {
        out.insert("predictions".into(), JsonValue::Array(items.into_iter().map(JsonValue::Object).collect()));
    } else if let Some(first) = items.into_iter().next() {
        out.extend(first);
    }
    let body = json_bytes(&JsonValue::Object(out));
    let x = Exchange { id: &id, route: "/predict", rows, request, request_is_json: true, response: body.clone() };
    log(s, served, x, started);
    let mut response = json_response(body);
    if let Ok(v) = id.parse() {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

// ------------------------------------------------------------------------------------------- /invocations

async fn invocations_default(State(s): State<Serving>, req: Request) -> Response {
    answer(s, None, Protocol::Invocations, req).await
}

async fn invocations_named(State(s): State<Serving>, Path(name): Path<String>, req: Request) -> Response {
    answer(s, Some(name), Protocol::Invocations, req).await
}

/// What MLflow's pyfunc answers for the model: class probabilities per row for multiclass (a list per row),
/// the positive class's probability for binary models (LightGBM Booster semantics), the value for regressions.
fn mlflow_predictions(model: &Model, preds: &[Prediction]) -> JsonValue {
    JsonValue::Array(
        preds
            .iter()
            .map(|p| match model.output_kind() {
                OutputKind::Classes(2) => json!(p.values[1]),
                OutputKind::Classes(_) => json!(p.values),
                OutputKind::Values(1) => json!(p.values[0]),
                OutputKind::Values(_) => json!(p.values),
            })
            .collect(),
    )
}

async fn invocations_with(s: &Serving, served: &ServedModel, req: Request, started: Instant) -> Response {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let media = content_type.split(';').next().unwrap_or("").trim().to_string();
    if media != "application/json" && media != "text/csv" {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_REQUEST",
            format!(
                "This predictor only supports the following content types: ['text/csv', 'application/json']. Got '{content_type}'."
            ),
        );
    }
    let bytes = match read_body(s, headers, body).await {
        Ok(b) => b,
        Err((status, m)) => return error(status, "BAD_REQUEST", m),
    };
    let model = match &served.engine {
        Engine::Native(m) => m,
        Engine::Python(py) => return python_invocations(s, served, py, &content_type, bytes, started).await,
    };
    let rows = if media == "text/csv" {
        match std::str::from_utf8(&bytes) {
            Ok(text) => input::invocations_csv(model, text),
            Err(_) => Err(InputError("the CSV body is not UTF-8".into())),
        }
    } else {
        match parse_json(&bytes) {
            Ok(j) => input::invocations_json(model, &j),
            Err(m) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", m),
        }
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", e.0),
    };
    let preds = match predict(model, &rows) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", e.0),
    };
    let body = json_bytes(&json!({ "predictions": mlflow_predictions(model, &preds) }));
    let x = Exchange {
        id: &new_id(),
        route: "/invocations",
        rows: rows.n,
        request: bytes,
        request_is_json: media == "application/json",
        response: body.clone(),
    };
    log(s, served, x, started);
    json_response(body)
}

async fn ping() -> &'static str {
    "\n"
}

async fn metrics(State(s): State<Serving>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(&s.catalog.loaded()),
    )
        .into_response()
}

// ------------------------------------------------------------------------------------------ Open Inference v2

async fn v2_server() -> Json<JsonValue> {
    Json(json!({ "name": "orchard", "version": env!("CARGO_PKG_VERSION"), "extensions": [] }))
}

async fn v2_live() -> Json<JsonValue> {
    Json(json!({ "live": true, "ready": true }))
}

async fn v2_lookup(s: &Serving, name: &str, version: Option<&str>) -> Result<Arc<ServedModel>, Response> {
    let served = s
        .catalog
        .get(name)
        .await
        .map_err(|e| v2_error(StatusCode::NOT_FOUND, e.to_string()))?;
    if let Some(v) = version {
        if v != &*served.version {
            return Err(v2_error(
                StatusCode::NOT_FOUND,
                format!("model '{name}' version '{v}' is not served (serving version '{}')", served.version),
            ));
        }
    }
    Ok(served)
}

fn v2_metadata(served: &ServedModel) -> JsonValue {
    let model = match &served.engine {
        Engine::Native(m) => m,
        Engine::Python(py) => {
            let inputs: Vec<JsonValue> =
                py.info.inputs.iter().map(|i| json!({ "name": i.name, "datatype": i.datatype, "shape": [-1] })).collect();
            return json!({
                "name": served.name,
                "versions": [served.version],
                "platform": format!("mlflow-pyfunc-{}", py.info.loader_module),
                "inputs": inputs,
                "outputs": [{ "name": "predict", "datatype": "BYTES", "shape": [-1] }],
            });
        }
    };
    let inputs: Vec<JsonValue> =
        model.inputs().iter().map(|n| json!({ "name": n, "datatype": "FP64", "shape": [-1] })).collect();
    let mut outputs = vec![];
    match model.output_kind() {
        OutputKind::Classes(k) => {
            outputs.push(json!({ "name": "predict", "datatype": "BYTES", "shape": [-1] }));
            outputs.push(json!({ "name": "probabilities", "datatype": "FP64", "shape": [-1, k] }));
        }
        OutputKind::Values(1) => outputs.push(json!({ "name": "predict", "datatype": "FP64", "shape": [-1] })),
        OutputKind::Values(k) => outputs.push(json!({ "name": "predict", "datatype": "FP64", "shape": [-1, k] })),
    }
    json!({
        "name": served.name,
        "versions": [served.version],
        "platform": format!("orchard-{}", model.flavor()),
        "inputs": inputs,
        "outputs": outputs,
    })
}

async fn v2_model(State(s): State<Serving>, Path(m): Path<String>) -> Response {
    match v2_lookup(&s, &m, None).await {
        Ok(served) => Json(v2_metadata(&served)).into_response(),
        Err(r) => r,
    }
}

async fn v2_model_version(State(s): State<Serving>, Path((m, v)): Path<(String, String)>) -> Response {
    match v2_lookup(&s, &m, Some(&v)).await {
        Ok(served) => Json(v2_metadata(&served)).into_response(),
        Err(r) => r,
    }
}

async fn v2_model_ready(State(s): State<Serving>, Path(m): Path<String>) -> Response {
    match v2_lookup(&s, &m, None).await {
        Ok(served) => Json(json!({ "name": served.name, "ready": true })).into_response(),
        Err(r) => r,
    }
}

async fn v2_model_version_ready(State(s): State<Serving>, Path((m, v)): Path<(String, String)>) -> Response {
    match v2_lookup(&s, &m, Some(&v)).await {
        Ok(served) => Json(json!({ "name": served.name, "ready": true })).into_response(),
        Err(r) => r,
    }
}

async fn v2_infer(State(s): State<Serving>, Path(m): Path<String>, req: Request) -> Response {
    let started = Instant::now();
    let r = v2_infer_with(&s, &m, None, req, started).await;
    finish(&s, "/v2/infer", started, r)
}

async fn v2_infer_version(State(s): State<Serving>, Path((m, v)): Path<(String, String)>, req: Request) -> Response {
    let started = Instant::now();
    let r = v2_infer_with(&s, &m, Some(&v), req, started).await;
    finish(&s, "/v2/infer", started, r)
}

async fn v2_infer_with(s: &Serving, name: &str, version: Option<&str>, req: Request, started: Instant) -> Response {
    let served = match v2_lookup(s, name, version).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let (parts, body) = req.into_parts();
    let bytes = match read_body(s, &parts.headers, body).await {
        Ok(b) => b,
        Err((status, m)) => return v2_error(status, m),
    };
    let json = match parse_json(&bytes) {
        Ok(j) => j,
        Err(m) => return v2_error(StatusCode::BAD_REQUEST, m),
    };
    let tensors = match &served.engine {
        Engine::Native(model) => v2_native(model, &json),
        Engine::Python(py) => v2_python(py, &json).await,
    };
    let (n_rows, mut outputs) = match tensors {
        Ok(t) => t,
        Err(r) => return r,
    };
    // `outputs` in the request picks which tensors come back.
    if let Some(JsonValue::Array(wanted)) = json.get("outputs") {
        let names: Vec<&str> = wanted.iter().filter_map(|o| o.get("name").and_then(JsonValue::as_str)).collect();
        if let Some(unknown) = names.iter().find(|n| !outputs.iter().any(|o| o["name"] == **n)) {
            let known: Vec<&str> = outputs.iter().filter_map(|o| o["name"].as_str()).collect();
            return v2_error(StatusCode::BAD_REQUEST, format!("unknown output '{unknown}' (outputs: {})", known.join(", ")));
        }
        outputs.retain(|o| names.iter().any(|n| o["name"] == *n));
    }
    let id = json.get("id").and_then(JsonValue::as_str).map(str::to_string).unwrap_or_else(new_id);
    let response = json!({
        "model_name": served.name,
        "model_version": served.version,
        "id": id,
        "outputs": outputs,
    });
    let body = json_bytes(&response);
    let x = Exchange { id: &id, route: "/v2/infer", rows: n_rows, request: bytes, request_is_json: true, response: body.clone() };
    log(s, &served, x, started);
    json_response(body)
}

/// The output tensors of a native model for a v2 request, and its row count.
fn v2_native(model: &Model, json: &JsonValue) -> Result<(usize, Vec<JsonValue>), Response> {
    let rows = input::v2_inputs(model, json).map_err(|e| v2_error(StatusCode::BAD_REQUEST, e.0))?;
    let preds = predict(model, &rows).map_err(|e| v2_error(StatusCode::BAD_REQUEST, e.0))?;
    let n = preds.len();
    let mut outputs = Vec::new();
    match model.output_kind() {
        OutputKind::Classes(k) => {
            let labels: Vec<JsonValue> = preds.iter().map(|p| json!(p.class.clone().unwrap_or_default())).collect();
            outputs.push(json!({ "name": "predict", "datatype": "BYTES", "shape": [n], "data": labels }));
            let probs: Vec<f64> = preds.iter().flat_map(|p| p.values.iter().copied()).collect();
            outputs.push(json!({ "name": "probabilities", "datatype": "FP64", "shape": [n, k], "data": probs }));
        }
        OutputKind::Values(k) => {
            let values: Vec<f64> = preds.iter().flat_map(|p| p.values.iter().copied()).collect();
            let shape = if k == 1 { json!([n]) } else { json!([n, k]) };
            outputs.push(json!({ "name": "predict", "datatype": "FP64", "shape": shape, "data": values }));
        }
    }
    Ok((rows.n, outputs))
}

// ------------------------------------------------------------------------------------------ Python models

/// An error of the Python workers themselves (not of the request): the model cannot answer now, or (504) not
/// within the timeout.
fn python_unavailable(e: PythonError) -> Response {
    match e {
        PythonError::Timeout => error(StatusCode::GATEWAY_TIMEOUT, "TEMPORARILY_UNAVAILABLE", e.to_string()),
        e => error(StatusCode::SERVICE_UNAVAILABLE, "TEMPORARILY_UNAVAILABLE", e.to_string()),
    }
}

/// Sends MLflow's scoring code an `/invocations` body; `Err` is the response to send when it is not a 200.
async fn python_call(py: &PyFunc, content_type: &str, body: String) -> Result<Result<Vec<JsonValue>, Response>, Response> {
    let reply = py
        .invoke(Invocation { content_type: content_type.to_string(), body })
        .await
        .map_err(python_unavailable)?;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status != StatusCode::OK {
        return Ok(Err(python_error(status, &reply.body)));
    }
    match serde_json::from_str::<JsonValue>(&reply.body) {
        Ok(JsonValue::Object(mut o)) => match o.remove("predictions") {
            Some(JsonValue::Array(p)) => Ok(Ok(p)),
            Some(one) => Ok(Ok(vec![one])),
            None => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "the model's answer has no predictions")),
        },
        _ => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "the model's answer is not JSON (a NaN or infinity?)")),
    }
}

/// MLflow's error answer as it came (JSON `{"error_code", "message"}`), or its text wrapped into that shape.
fn python_error(status: StatusCode, body: &str) -> Response {
    match serde_json::from_str::<JsonValue>(body) {
        Ok(j @ JsonValue::Object(_)) => (status, Json(j)).into_response(),
        _ => error(status, "BAD_REQUEST", body.trim()),
    }
}

async fn python_invocations(
    s: &Serving,
    served: &ServedModel,
    py: &PyFunc,
    content_type: &str,
    bytes: Bytes,
    started: Instant,
) -> Response {
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "the request body is not UTF-8");
    };
    let reply = match py.invoke(Invocation { content_type: content_type.to_string(), body: text.to_string() }).await {
        Ok(r) => r,
        Err(e) => return python_unavailable(e),
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status != StatusCode::OK {
        // MLflow's answer as it gave it (JSON errors, and its plain-text 415s).
        return (status, [(header::CONTENT_TYPE, reply.mimetype)], reply.body).into_response();
    }
    let body = Bytes::from(reply.body);
    let rows = serde_json::from_slice::<JsonValue>(&body)
        .ok()
        .and_then(|j| j.get("predictions").and_then(JsonValue::as_array).map(Vec::len))
        .unwrap_or(0);
    let is_json = content_type.to_ascii_lowercase().starts_with("application/json");
    let x = Exchange { id: &new_id(), route: "/invocations", rows, request: bytes, request_is_json: is_json, response: body.clone() };
    log(s, served, x, started);
    ([(header::CONTENT_TYPE, reply.mimetype)], body).into_response()
}

/// `/predict` for a Python model: the rows go to the model as a DataFrame of records; each prediction comes
/// back under the label field (a DataFrame's row as its own fields).
async fn python_predict(s: &Serving, served: &ServedModel, py: &PyFunc, bytes: Bytes, json: &JsonValue, started: Instant) -> Response {
    let (records, is_list) = match json {
        JsonValue::Object(_) => (vec![json.clone()], false),
        JsonValue::Array(items) if !items.is_empty() && items.iter().all(JsonValue::is_object) => (items.clone(), true),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
                "the body must be a JSON object (one row of named features) or a non-empty list of them",
            )
        }
    };
    let n = records.len();
    let body = json!({ "dataframe_records": records }).to_string();
    let predictions = match python_call(py, "application/json", body).await {
        Ok(Ok(p)) => p,
        Ok(Err(r)) | Err(r) => return r,
    };
    if predictions.len() != n {
        let m = format!("the model answered {} predictions for {n} rows", predictions.len());
        return error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", m);
    }
    let label = s.label_field.as_deref().unwrap_or("prediction");
    let items = predictions
        .into_iter()
        .map(|p| match p {
            JsonValue::Object(fields) => fields,
            other => std::iter::once((label.to_string(), other)).collect(),
        })
        .collect();
    predict_answer(s, served, items, is_list, bytes, started)
}

/// A v2 request for a Python model: one-dimensional tensors are the columns of a DataFrame (by name); a single
/// two-dimensional tensor is a table whose columns are the signature's inputs in order (or, without named
/// inputs, the model's array input). The predictions come back as the `predict` tensor.
async fn v2_python(py: &PyFunc, json: &JsonValue) -> Result<(usize, Vec<JsonValue>), Response> {
    let bad = |m: String| v2_error(StatusCode::BAD_REQUEST, m);
    let tensors = input::v2_tensors(json).map_err(|e| bad(e.0))?;
    let named: Vec<&str> = py.info.inputs.iter().map(|i| i.name.as_str()).collect();
    let body = match tensors.as_slice() {
        [t] if t.shape.len() == 2 && t.shape[1] != 1 && t.shape[1] == named.len() => {
            json!({ "dataframe_split": { "columns": named, "data": t.rows() } })
        }
        [t] if t.shape.len() == 2 && t.shape[1] != 1 => json!({ "inputs": t.rows() }),
        _ => {
            let columns: Vec<&str> = tensors.iter().map(|t| t.name).collect();
            let n = tensors.first().map_or(0, |t| t.data.len());
            if let Some(t) = tensors.iter().find(|t| t.data.len() != n) {
                return Err(bad(format!("input '{}' has {} values where '{}' has {n}", t.name, t.data.len(), columns[0])));
            }
            let rows: Vec<Vec<&JsonValue>> = (0..n).map(|r| tensors.iter().map(|t| t.data[r]).collect()).collect();
            json!({ "dataframe_split": { "columns": columns, "data": rows } })
        }
    };
    let predictions = match python_call(py, "application/json", body.to_string()).await {
        Ok(Ok(p)) => p,
        Ok(Err(r)) | Err(r) => {
            // MLflow's `{"error_code", "message"}` becomes the protocol's `{"error"}`.
            let status = r.status();
            let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap_or_default();
            let message = serde_json::from_slice::<JsonValue>(&bytes)
                .ok()
                .and_then(|j| j.get("message").and_then(JsonValue::as_str).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(v2_error(status, message));
        }
    };
    Ok((predictions.len(), vec![input::v2_output("predict", &predictions)]))
}
