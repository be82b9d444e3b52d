//! The artifact proxy (`/api/2.0/mlflow-artifacts/...`): uploads, downloads, listings and deletes under the
//! artifact store, for clients whose runs carry `mlflow-artifacts:/` URIs.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{StreamExt, TryStreamExt};
use orchard_tracking::artifacts::Artifacts;
use orchard_tracking::{ErrorCode, TrackingError};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::request::Req;
use orchard_api::requests::ListArtifactsRequest;
use orchard_api::endpoints::{self as api, Endpoint};
use orchard_api::wire;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(api::ListArtifacts::PATH, get(list))
        .route(
            "/artifacts/{*path}",
            get(download).put(upload).delete(delete),
        )
        // Uploads stream to storage; no size limit applies to them.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

fn store(s: &AppState) -> ApiResult<&Artifacts> {
    s.artifacts.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotImplemented,
            "Artifact serving is disabled: this server was started with --no-serve-artifacts",
        )
    })
}

async fn list(State(s): State<AppState>, Req(r): Req<ListArtifactsRequest>) -> ApiResult<Json<Value>> {
    let files = store(&s)?.list(&r.path).await?;
    if files.is_empty() {
        return Ok(Json(json!({})));
    }
    Ok(Json(
        json!({ "files": wire::List(&files, wire::FileInfoOut) }),
    ))
}

async fn upload(
    State(s): State<AppState>,
    Path(path): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let stream = body
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.to_string()))
        .boxed();
    store(&s)?.upload(&path, stream).await?;
    Ok(Json(json!({})))
}

async fn download(State(s): State<AppState>, Path(path): Path<String>) -> ApiResult<Response> {
    let (size, stream) = store(&s)?.download(&path).await?;
    Ok(attachment(&path, size, stream))
}

/// A file sent as a download, never displayed: an artifact a user logged (HTML, SVG) must not run as a page
/// of this server's origin.
pub(crate) fn attachment(
    path: &str,
    size: u64,
    stream: futures::stream::BoxStream<'static, orchard_blob::Result<bytes::Bytes>>,
) -> Response {
    let name = path.rsplit('/').next().unwrap_or("artifact").replace('"', "");
    let body = Body::from_stream(stream.map_err(|e| std::io::Error::other(e.to_string())));
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (header::CONTENT_LENGTH, size.to_string()),
        (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
    ];
    (headers, body).into_response()
}

async fn delete(State(s): State<AppState>, Path(path): Path<String>) -> ApiResult<Json<Value>> {
    if path.is_empty() {
        return Err(TrackingError::invalid("Invalid path").into());
    }
    store(&s)?.delete(&path).await?;
    Ok(Json(json!({})))
}
