//! The routes MLflow's web UI calls besides the REST API, at MLflow's paths: files of a run, a model version
//! or a logged model (`/get-artifact`, `/model-versions/get-artifact`, `…/logged-models/<id>/artifacts/files`),
//! the UI's upload (`…/upload-artifact`), the whole history of a metric for many runs
//! (`…/metrics/get-history-bulk`), the datasets of experiments (`…/experiments/search-datasets`) and MLflow's
//! GraphQL API (`/graphql`, run by `orchard-graphql`). Each reads its fields, calls one domain function and
//! shapes the answer.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orchard_api::fields::{query_to_fields, Fields};
use orchard_api::wire;
use orchard_tracking::artifacts::{open_under, write_under};
use orchard_tracking::{ErrorCode, TrackingError};
use serde_json::json;

use crate::artifacts::attachment;
use crate::error::{ApiError, ApiResult};
use crate::request::Req;
use crate::state::AppState;

/// MLflow's UI uploads files of at most this size.
const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

/// The routes served at the root (`/get-artifact`, `/model-versions/get-artifact`).
pub fn root_routes() -> Router<AppState> {
    Router::new()
        .route("/get-artifact", get(run_artifact))
        .route("/model-versions/get-artifact", get(model_version_artifact))
        .route("/graphql", get(graphql).post(graphql))
}

/// The routes MLflow serves below `/ajax-api` only (its UI's prefix), with their whole path below it.
pub fn ajax_routes() -> Router<AppState> {
    Router::new()
        .route("/2.0/mlflow/logged-models/{model_id}/artifacts/files", get(logged_model_artifact))
        .route("/2.0/mlflow/upload-artifact", post(upload_artifact))
        .route("/2.0/mlflow/metrics/get-history-bulk", get(metric_history_bulk))
        .route("/2.0/mlflow/experiments/search-datasets", post(search_datasets))
}

/// A query parameter that must be there (MLflow's UI routes read them as `request.args[...]`).
fn required(f: &Fields, name: &str) -> Result<String, TrackingError> {
    f.opt_str(name)?.filter(|v| !v.is_empty()).ok_or_else(|| TrackingError::invalid(format!("Request must specify {name}.")))
}

async fn run_artifact(State(s): State<AppState>, Req(f): Req<Fields>) -> ApiResult<Response> {
    let run_id = match f.opt_str("run_id")?.filter(|r| !r.is_empty()) {
        Some(r) => r,
        None => required(&f, "run_uuid")?,
    };
    let path = required(&f, "path")?;
    let run = s.tracking.get_run(&run_id).await?;
    let (size, stream) = open_under(s.artifacts.as_ref(), &run.info.artifact_uri, &path).await?;
    Ok(attachment(&path, size, stream))
}

async fn model_version_artifact(State(s): State<AppState>, Req(f): Req<Fields>) -> ApiResult<Response> {
    let (name, version, path) = (required(&f, "name")?, required(&f, "version")?, required(&f, "path")?);
    let root = s.tracking.get_model_version_download_uri(&name, &version).await?;
    let (size, stream) = open_under(s.artifacts.as_ref(), &root, &path).await?;
    Ok(attachment(&path, size, stream))
}

async fn logged_model_artifact(
    State(s): State<AppState>,
    Path(model_id): Path<String>,
    Req(f): Req<Fields>,
) -> ApiResult<Response> {
    let Some(path) = f.opt_str("artifact_file_path")?.filter(|p| !p.is_empty()) else {
        let message = "Request must include the \"artifact_file_path\" query parameter.";
        return Err(ApiError::new(ErrorCode::BadRequest, message));
    };
    let model = s.tracking.get_logged_model(&model_id).await?;
    let (size, stream) = open_under(s.artifacts.as_ref(), &model.artifact_uri, &path).await?;
    Ok(attachment(&path, size, stream))
}

/// The UI's upload: the file's bytes as the body, the run and the path in the query string.
async fn upload_artifact(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    let f = query_to_fields(query.as_deref().unwrap_or(""));
    let run_id = required(&f, "run_uuid")?;
    let path = required(&f, "path")?;
    // Refused from the headers when announced, else while reading: either way MLflow's 400, not a bare 413.
    let too_large = || TrackingError::invalid("Artifact size is too large. Max size is 10MB.");
    let announced = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if announced.is_some_and(|n| n > MAX_UPLOAD_BYTES) {
        return Err(too_large().into());
    }
    let body: Bytes = axum::body::to_bytes(body, MAX_UPLOAD_BYTES).await.map_err(|_| too_large())?;
    if body.is_empty() {
        return Err(TrackingError::invalid("Request must specify data.").into());
    }
    let run = s.tracking.get_run(&run_id).await?;
    write_under(s.artifacts.as_ref(), &run.info.artifact_uri, &path, body).await?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")]).into_response())
}

async fn metric_history_bulk(State(s): State<AppState>, Req(f): Req<Fields>) -> ApiResult<Json<serde_json::Value>> {
    let run_ids = f.str_list("run_id")?;
    let key = f.opt_str("metric_key")?;
    let points = s.tracking.get_metric_history_bulk(&run_ids, key.as_deref(), f.opt_i64("max_results")?).await?;
    Ok(Json(json!({ "metrics": wire::List(&points, wire::MetricOut) })))
}

async fn search_datasets(State(s): State<AppState>, Req(f): Req<Fields>) -> ApiResult<Json<serde_json::Value>> {
    let summaries = s.tracking.search_datasets(&f.str_list("experiment_ids")?).await?;
    if summaries.is_empty() {
        return Ok(Json(json!({})));
    }
    Ok(Json(json!({ "dataset_summaries": summaries })))
}

/// `/graphql`: the body's (or, for GET, the query string's) `query`, `variables` and `operationName`. Whatever
/// the query asks, the answer is 200 with GraphQL's `{"data", "errors"}`; only a request without a query is
/// MLflow's 400.
async fn graphql(State(s): State<AppState>, Req(f): Req<Fields>) -> ApiResult<Response> {
    let variables = match f.0.get("variables") {
        // A query string (and some clients) send the variables as JSON text.
        Some(serde_json::Value::String(text)) => Some(serde_json::from_str(text).map_err(|e| {
            TrackingError::invalid(format!("Invalid value for parameter 'variables': not a JSON object ({e})"))
        })?),
        other => other.cloned(),
    };
    let query = orchard_graphql::GraphQlQuery {
        query: required(&f, "query").map_err(|_| TrackingError::missing("query"))?,
        variables,
        operation_name: f.opt_str("operationName")?,
    };
    let answer = s.graphql.execute(query).await;
    Ok(([(header::CONTENT_TYPE, "application/json")], answer).into_response())
}
