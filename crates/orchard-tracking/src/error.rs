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

/// What went wrong, with the data of each case: the field and value at fault, the entity that is missing,
/// the limit that was passed. The text of each variant is MLflow's own wording (its clients and users match
/// on it), written here once; [`TrackingError::code`] gives MLflow's error code, which the HTTP edge turns
/// into a status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrackingError {
    /// A required field is absent. MLflow's request parser adds a pointer to the API docs (`docs`); its
    /// domain checks do not.
    #[error("Missing value for required parameter '{field}'.{}", if *docs { " See the API docs for more information about request parameters." } else { "" })]
    MissingField { field: String, docs: bool },
    /// A field's value breaks a rule: `value` as MLflow quotes it (JSON), `rule` the explanation as MLflow
    /// words it, with its leading punctuation (`": Names may only contain …"`, `". It must be …"`, or none).
    #[error("Invalid value {value} for parameter '{field}' supplied{rule}")]
    InvalidValue { field: String, value: String, rule: String },
    /// A string longer than MLflow's limit for it (in characters).
    #[error("'{field}' exceeds the maximum length of {limit} characters")]
    TooLong { field: String, limit: usize },
    /// A batch with more entities than MLflow takes in one request.
    #[error("A batch logging request can contain at most {limit} {what}. Got {got} {what}. Please split up {what} across multiple requests and try again.")]
    BatchTooLarge { what: &'static str, limit: usize, got: usize },
    /// Writing to a run or experiment that is deleted.
    #[error("The {kind} {id} must be in the 'active' state. Current state is {stage}.")]
    NotActive { kind: &'static str, id: String, stage: String },
    /// A param logged again with another value.
    #[error("Changing param values is not allowed. Param with key='{key}' was already logged with value='{old}' for run ID='{run_id}'. Attempted logging new value '{new}'.")]
    ParamChanged { run_id: String, key: String, old: String, new: String },
    /// Any other rule of a request (`INVALID_PARAMETER_VALUE`).
    #[error("{0}")]
    Invalid(String),
    /// Something named in the request does not exist.
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// Creating something whose name is taken; `what` names it as MLflow does (`Registered Model (name=x)`).
    #[error("{what} already exists{detail}")]
    AlreadyExists { what: String, detail: String },
    /// A model version whose source could not be resolved: the cause keeps its own code.
    #[error("Unable to fetch model from model URI source artifact location '{source_uri}'.Error: {cause}")]
    Unresolvable { source_uri: String, cause: Box<TrackingError> },
    /// The other MLflow codes (internal errors, an unavailable database, a state that forbids the request…).
    #[error("{message}")]
    Other { code: ErrorCode, message: String },
}

/// The things a request can name that may not exist, each worded as MLflow words it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotFound {
    #[error("No Experiment with id={0} exists")]
    Experiment(String),
    #[error("Could not find experiment with name '{0}'")]
    ExperimentNamed(String),
    #[error("Run with id={0} not found")]
    Run(String),
    #[error("Registered Model with name={0} not found")]
    RegisteredModel(String),
    #[error("Model Version (name={name}, version={version}) not found")]
    ModelVersion { name: String, version: String },
    #[error("Logged model with ID '{0}' not found.")]
    LoggedModel(String),
    #[error("Artifact '{0}' not found")]
    Artifact(String),
    /// Anything else (a tag, an alias, a stage's latest version), worded at the place that looked.
    #[error("{0}")]
    Other(String),
}

impl TrackingError {
    /// An error of a given MLflow code with a finished message (for the cases no variant describes).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let message = message.into();
        match code {
            ErrorCode::InvalidParameterValue => TrackingError::Invalid(message),
            ErrorCode::ResourceDoesNotExist => TrackingError::NotFound(NotFound::Other(message)),
            code => TrackingError::Other { code, message },
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        TrackingError::Invalid(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        TrackingError::NotFound(NotFound::Other(message.into()))
    }

    pub fn missing(field: impl Into<String>) -> Self {
        TrackingError::MissingField { field: field.into(), docs: false }
    }

    /// `value` is quoted as MLflow quotes it: JSON for a string.
    pub fn invalid_value(field: impl Into<String>, value: impl Into<String>, rule: impl Into<String>) -> Self {
        TrackingError::InvalidValue { field: field.into(), value: value.into(), rule: rule.into() }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        TrackingError::Other { code: ErrorCode::InternalError, message: message.into() }
    }

    /// MLflow's error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            TrackingError::MissingField { .. }
            | TrackingError::InvalidValue { .. }
            | TrackingError::TooLong { .. }
            | TrackingError::BatchTooLarge { .. }
            | TrackingError::NotActive { .. }
            | TrackingError::ParamChanged { .. }
            | TrackingError::Invalid(_) => ErrorCode::InvalidParameterValue,
            TrackingError::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            TrackingError::AlreadyExists { .. } => ErrorCode::ResourceAlreadyExists,
            TrackingError::Unresolvable { cause, .. } => cause.code(),
            TrackingError::Other { code, .. } => *code,
        }
    }

    /// The error of a field nested in a request (`metrics[2]` of a batch): the field is named from the top,
    /// `metrics[2].value`.
    pub fn in_field(self, path: &str) -> Self {
        match self {
            TrackingError::MissingField { field, docs } => {
                TrackingError::MissingField { field: format!("{path}.{field}"), docs }
            }
            TrackingError::InvalidValue { field, value, rule } => {
                TrackingError::InvalidValue { field: format!("{path}.{field}"), value, rule }
            }
            other => other,
        }
    }
}

pub type Result<T, E = TrackingError> = std::result::Result<T, E>;

impl From<StoreError> for TrackingError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => TrackingError::not_found(format!("{what} not found")),
            StoreError::AlreadyExists(what) => TrackingError::AlreadyExists { what, detail: String::new() },
            StoreError::ParamConflict { run_id, key, old, new } => TrackingError::ParamChanged { run_id, key, old, new },
            StoreError::InactiveRun { run_id, lifecycle_stage } => {
                TrackingError::NotActive { kind: "run", id: run_id, stage: lifecycle_stage }
            }
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
            BlobError::NotFound(p) => TrackingError::NotFound(NotFound::Artifact(p)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_carry_their_data_and_speak_mlflow() {
        let e = TrackingError::MissingField { field: "run_id".into(), docs: true };
        assert_eq!(e.code(), ErrorCode::InvalidParameterValue);
        assert_eq!(
            e.to_string(),
            "Missing value for required parameter 'run_id'. See the API docs for more information about request parameters."
        );
        let nested = TrackingError::invalid_value("value", "\"x\"", ": Hint: Value was of type 'str'.").in_field("metrics[2]");
        assert_eq!(nested.to_string(), "Invalid value \"x\" for parameter 'metrics[2].value' supplied: Hint: Value was of type 'str'.");
        let gone: TrackingError = NotFound::ModelVersion { name: "iris".into(), version: "3".into() }.into();
        assert_eq!(gone.code(), ErrorCode::ResourceDoesNotExist);
        assert_eq!(gone.to_string(), "Model Version (name=iris, version=3) not found");
        let wrapped = TrackingError::Unresolvable { source_uri: "models:/m/9".into(), cause: Box::new(gone) };
        assert_eq!(wrapped.code(), ErrorCode::ResourceDoesNotExist, "the cause's code is kept");
        assert!(wrapped.to_string().ends_with(".Error: Model Version (name=iris, version=3) not found"));
        let taken = TrackingError::AlreadyExists { what: "Registered Model (name=iris)".into(), detail: ".".into() };
        assert_eq!((taken.code(), taken.to_string().as_str()), (ErrorCode::ResourceAlreadyExists, "Registered Model (name=iris) already exists."));
        assert_eq!(TrackingError::TooLong { field: "tag".into(), limit: 5 }.in_field("tags[0]").to_string(), "'tag' exceeds the maximum length of 5 characters");
        assert_eq!(TrackingError::new(ErrorCode::InvalidState, "no").code(), ErrorCode::InvalidState);
    }
}
