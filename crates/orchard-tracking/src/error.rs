//! The tracking domain's error: an MLflow error code and a message. The server maps the code to an HTTP status.

use orchard_blob::BlobError;
use orchard_store::StoreError;

/// MLflow's error codes (the subset Orchard produces), by their wire names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameterValue,
    ResourceDoesNotExist,
    ResourceAlreadyExists,
    InvalidState,
    BadRequest,
    InternalError,
    TemporarilyUnavailable,
    EndpointNotFound,
    NotImplemented,
    RequestLimitExceeded,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            ErrorCode::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            ErrorCode::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            ErrorCode::InvalidState => "INVALID_STATE",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
            ErrorCode::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            ErrorCode::NotImplemented => "NOT_IMPLEMENTED",
            ErrorCode::RequestLimitExceeded => "REQUEST_LIMIT_EXCEEDED",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct TrackingError {
    pub code: ErrorCode,
    pub message: String,
}

impl TrackingError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        TrackingError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceDoesNotExist, message)
    }
}

pub type Result<T, E = TrackingError> = std::result::Result<T, E>;

impl From<StoreError> for TrackingError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => TrackingError::not_found(format!("{what} not found")),
            StoreError::AlreadyExists(what) => TrackingError::new(ErrorCode::ResourceAlreadyExists, format!("{what} already exists")),
            StoreError::ParamConflict { run_id, key, old, new } => TrackingError::invalid(format!(
                "Changing param values is not allowed. Param with key='{key}' was already logged with value='{old}' \
                 for run ID='{run_id}'. Attempted logging new value '{new}'."
            )),
            StoreError::InactiveRun { run_id, lifecycle_stage } => TrackingError::invalid(format!(
                "The run {run_id} must be in the 'active' state. Current state is {lifecycle_stage}."
            )),
            StoreError::InvalidQuery(m) => TrackingError::invalid(m),
            db @ StoreError::Db(_) => {
                // Pool exhaustion or a lost connection is the database being busy, not the request being wrong.
                let code = if db.is_transient() { ErrorCode::TemporarilyUnavailable } else { ErrorCode::InternalError };
                tracing::error!(error = %db, "database error");
                TrackingError::new(code, db.to_string())
            }
            other => {
                tracing::error!(error = %other, "store error");
                TrackingError::new(ErrorCode::InternalError, other.to_string())
            }
        }
    }
}

impl From<BlobError> for TrackingError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::UnsafePath { .. } => TrackingError::invalid("Invalid path"),
            BlobError::NotFound(p) => TrackingError::not_found(format!("Artifact '{p}' not found")),
            BlobError::UnsupportedUri(_) => TrackingError::invalid(e.to_string()),
            other => {
                tracing::error!(error = %other, "artifact storage error");
                TrackingError::new(ErrorCode::InternalError, other.to_string())
            }
        }
    }
}

impl From<crate::filter::SearchError> for TrackingError {
    fn from(e: crate::filter::SearchError) -> Self {
        TrackingError::invalid(e.message)
    }
}
