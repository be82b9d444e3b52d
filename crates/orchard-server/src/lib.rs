//! The Orchard server: one axum application on one port.
//!
//! - `/api/2.0/mlflow/*` and `/ajax-api/2.0/mlflow/*`: MLflow's tracking REST API ([`tracking`]);
//! - `/api/2.0/mlflow-artifacts/*`: the artifact proxy ([`artifacts`]);
//! - `/api/3.0/mlflow/server-info`, `/health`, `/version`;
//! - the model gateway ([`gateway`]): `/models/<name>/predict`, `/models/<name>/invocations`, `/v2/…`;
//! - the routes MLflow's web UI calls besides the REST API ([`ui_routes`]): `/get-artifact`, uploads, `/graphql`, …
//! - Orchard's own web UI (`orchard-ui`): `/`, `/experiments/…`, `/runs/…`, `/static/…`.
//!
//! Handlers are thin: parse fields ([`request`]), call `orchard-tracking`, shape JSON (`orchard_api::wire`); every error
//! leaves through [`error::ApiError`] as MLflow's `{"error_code", "message"}`.

pub mod artifacts;
#[cfg(feature = "cli")]
pub mod cli;
pub mod error;
pub mod gateway;
pub mod launch;
pub mod model_source;
pub mod registry;
pub mod request;
mod state;
pub mod tracking;
pub mod ui_routes;

use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use orchard_tracking::ErrorCode;
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
pub use crate::state::AppState;

/// Builds the whole application.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .nest("/2.0/mlflow", tracking::routes().merge(registry::routes()))
        .nest("/2.0/mlflow-artifacts", artifacts::routes())
        .route("/3.0/mlflow/server-info", get(server_info));
    let gateway = state.gateway.clone().map(orchard_serve::gateway_routes);
    let ui = orchard_ui::router(state.tracking.clone(), state.artifacts.clone());
    let mut app = Router::new()
        .nest("/api", api.clone())
        .nest("/ajax-api", api.merge(ui_routes::ajax_routes()))
        .merge(ui_routes::root_routes())
        .route("/health", get(|| async { "OK" }))
        .route("/version", get(|| async { env!("CARGO_PKG_VERSION") }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    if let Some(g) = gateway {
        app = app.merge(g);
    }
    app = app.merge(ui);
    app.layer(axum::middleware::from_fn(refuse_nul_in_path))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(ErrorCode::InternalError, "internal error: the server hit a bug handling this request")
                .into_response()
        }))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
        }).on_response(|res: &Response, latency: Duration, _span: &tracing::Span| {
            tracing::info!(status = res.status().as_u16(), latency_us = latency.as_micros() as u64, "served");
        }))
}

/// A NUL character in a path (`%00`) never reaches a handler: it would reach the store through a path
/// parameter (a logged model's id, a served model's name), and no engine stores it the same way (PostgreSQL
/// refuses it). The answer is in the route's protocol: OIP v2's `{"error"}` under `/v2`, MLflow's elsewhere.
/// A path that is not UTF-8 once decoded (`%FF`) is refused here too, as JSON: the path extractors would
/// answer it in plain text.
async fn refuse_nul_in_path(req: Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path();
    let message = match (path.contains("%00"), decodes_to_utf8(path)) {
        (false, true) => return next.run(req).await,
        (true, _) => "Invalid path: a NUL character (%00) cannot be stored",
        (false, false) => "Invalid path: it is not UTF-8 once percent-decoded",
    };
    if req.uri().path().starts_with("/v2/") {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response();
    }
    ApiError::new(ErrorCode::InvalidParameterValue, message).into_response()
}

/// Whether a percent-encoded path decodes to UTF-8 text.
fn decodes_to_utf8(path: &str) -> bool {
    percent_encoding::percent_decode_str(path).decode_utf8().is_ok()
}

async fn server_info() -> Json<serde_json::Value> {
    Json(json!({ "store_type": "SqlStore", "workspaces_enabled": false }))
}

/// Unknown routes answer ENDPOINT_NOT_FOUND: the MLflow client reads it as "not supported here" and falls back,
/// where RESOURCE_DOES_NOT_EXIST would make it think an object is missing.
async fn not_found(req: Request) -> Response {
    ApiError::new(
        ErrorCode::EndpointNotFound,
        format!(
            "No API endpoint for {} {} on this Orchard server",
            req.method(),
            req.uri().path()
        ),
    )
    .into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    let body = json!({
        "error_code": ErrorCode::EndpointNotFound.as_str(),
        "message": format!("Method {} is not allowed for {}", req.method(), req.uri().path()),
    });
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}
