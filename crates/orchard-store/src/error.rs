//! What can go wrong below the domain layer.

use std::path::PathBuf;

/// Everything that can go wrong below the domain layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported backend store URI '{0}': expected sqlite:///path or postgresql://user@host:port/db")]
    UnsupportedUri(String),
    #[error("could not prepare the database directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Logging to a run that is not active (deleted).
    #[error("run {run_id} is {lifecycle_stage}")]
    InactiveRun {
        run_id: String,
        lifecycle_stage: String,
    },
    /// A param was logged before with another value; MLflow forbids changing it.
    #[error("param '{key}' already has value '{old}' (attempted '{new}')")]
    ParamConflict {
        run_id: String,
        key: String,
        old: String,
        new: String,
    },
    /// A query the domain layer should have rejected (e.g. a comparator a field does not support).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored value this version cannot read (damaged, or written by something else).
    #[error("corrupt data in the store: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether retrying later may succeed (the database is busy or unreachable), as opposed to a bad request.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Db(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            )
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
