//! The one place errors become HTTP: MLflow's `{"error_code", "message"}` body with MLflow's status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orchard_tracking::{ErrorCode, TrackingError};

#[derive(Debug)]
pub struct ApiError(pub TrackingError);

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError(TrackingError::new(code, message))
    }
}

impl From<TrackingError> for ApiError {
    fn from(e: TrackingError) -> Self {
        ApiError(e)
    }
}

/// MLflow's mapping (`mlflow/exceptions.py`): note RESOURCE_ALREADY_EXISTS is a 400, not a 409.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidParameterValue
        | ErrorCode::BadRequest
        | ErrorCode::ResourceAlreadyExists => StatusCode::BAD_REQUEST,
        ErrorCode::ResourceDoesNotExist | ErrorCode::EndpointNotFound => StatusCode::NOT_FOUND,
        ErrorCode::RequestLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::InvalidState | ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let body = serde_json::json!({ "error_code": code.as_str(), "message": self.0.to_string() });
        let status = status_of(code);
        (status, axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
