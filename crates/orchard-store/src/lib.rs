//! Orchard's metadata store.
//!
//! One schema, two engines: SQLite (the zero set-up default, WAL mode) and PostgreSQL (for many stateless
//! servers). Callers get typed operations — "log this batch", "search these runs" — and never see SQL.
//! Both engines go through sqlx's `Any` driver so every operation is written once; the few places where
//! the dialects differ are handled in [`Backend`].
//!
//! Migrations are embedded in the binary and versioned (see [`migrate`]); they run when the store opens.

mod experiments;
mod log_writer;
mod logged_models;
mod metrics;
pub mod migrate;
mod model;
pub mod pipelines;
pub mod query;
mod registry;
mod runs;
mod search;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};

pub use model::*;
pub use registry::{ModelVersion, NewModelVersion, RegisteredModel, DELETED_STAGE, PROMPT_TAG};

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

/// Which engine a store runs on. The dialects differ in few places: these are they.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// A correlated sub-query giving `[[key, value], …]` as JSON text for the rows of `table` that belong to
    /// `owner`: one row per run instead of one per param or tag.
    pub(crate) fn json_pairs(self, table: &str, fk: &str, owner: &str) -> String {
        match self {
            Backend::Sqlite => {
                format!("(SELECT json_group_array(json_array(x.key, x.value)) FROM {table} x WHERE x.{fk} = {owner})")
            }
            Backend::Postgres => format!(
                "(SELECT COALESCE(json_agg(json_build_array(x.key, x.value)), '[]')::text FROM {table} x WHERE x.{fk} = {owner})"
            ),
        }
    }

    /// Like [`Backend::json_pairs`] for metric points: `[[key, value, timestamp, step, is_nan], …]`, the value as
    /// text that parses back to the exact same double (17 significant digits; "Inf"/"Infinity" for ±∞).
    pub(crate) fn json_metrics(self, table: &str, fk: &str, owner: &str) -> String {
        match self {
            Backend::Sqlite => format!(
                "(SELECT json_group_array(json_array(x.key, printf('%!.17g', x.value), x.timestamp, x.step, x.is_nan)) \
                 FROM {table} x WHERE x.{fk} = {owner})"
            ),
            Backend::Postgres => format!(
                "(SELECT COALESCE(json_agg(json_build_array(x.key, x.value::text, x.timestamp, x.step, x.is_nan)), '[]')::text \
                 FROM {table} x WHERE x.{fk} = {owner})"
            ),
        }
    }
}

impl Backend {
    /// A JSON text produced by a sub-query, placed inside another JSON value as JSON (not as a string).
    pub(crate) fn embed_json(self, expr: &str) -> String {
        match self {
            Backend::Sqlite => format!("json({expr})"),
            Backend::Postgres => format!("({expr})::json"),
        }
    }

    /// `[[…fields of row 1…], …]` over the rows of the query, in `order`, as one JSON text (`[]` when none).
    pub(crate) fn json_array_agg(self, fields: &str, order: &str) -> String {
        match self {
            Backend::Sqlite => {
                format!("COALESCE(json_group_array(json_array({fields}) ORDER BY {order}), '[]')")
            }
            Backend::Postgres => format!(
                "COALESCE(json_agg(json_build_array({fields}) ORDER BY {order}), '[]')::text"
            ),
        }
    }
}

/// Parses a double written by [`Backend::json_metrics`].
pub(crate) fn parse_stored_double(text: &str) -> f64 {
    match text {
        "Inf" | "Infinity" | "inf" => f64::INFINITY,
        "-Inf" | "-Infinity" | "-inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        t => t.parse().unwrap_or(f64::NAN),
    }
}

/// A handle to the metadata database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// Readers (and, on PostgreSQL, writers too).
    pool: AnyPool,
    /// SQLite allows one writer at a time; a one-connection pool queues writers inside the process instead
    /// of letting them collide on the file lock (which would surface as SQLITE_BUSY under load).
    writer: AnyPool,
    /// The group-committing queue for metrics, params and tags (see [`log_writer`]).
    log_writer: log_writer::LogWriter,
    backend: Backend,
}

/// Where the database lives, parsed from an MLflow-style `--backend-store-uri`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbLocation {
    /// `sqlite:///relative/path.db` or `sqlite:////absolute/path.db` (SQLAlchemy's convention, as MLflow).
    Sqlite(PathBuf),
    /// `sqlite://:memory:` — tests only.
    SqliteMemory,
    Postgres(String),
}

impl FromStr for DbLocation {
    type Err = StoreError;

    fn from_str(uri: &str) -> Result<Self> {
        if let Some(rest) = uri.strip_prefix("sqlite://") {
            if rest == ":memory:" || rest == "/:memory:" {
                return Ok(DbLocation::SqliteMemory);
            }
            // SQLAlchemy: everything after the third slash is the path, so `sqlite:///a.db` is relative and
            // `sqlite:////tmp/a.db` absolute.
            let path = rest.strip_prefix('/').unwrap_or(rest);
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::UnsupportedUri(uri.to_string()));
            }
            return Ok(DbLocation::Sqlite(PathBuf::from(path)));
        }
        for scheme in [
            "postgresql://",
            "postgres://",
            "postgresql+psycopg2://",
            "postgresql+psycopg://",
        ] {
            if let Some(rest) = uri.strip_prefix(scheme) {
                return Ok(DbLocation::Postgres(format!("postgres://{rest}")));
            }
        }
        Err(StoreError::UnsupportedUri(uri.to_string()))
    }
}

impl Store {
    /// Opens (creating if needed) the database behind `uri` and brings its schema up to date.
    pub async fn open(uri: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let location: DbLocation = uri.parse()?;
        let store = match location {
            DbLocation::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                let url = format!("sqlite://{}?mode=rwc", path.display());
                // Readers: SQLite reads are CPU-bound, so a few connections cover this machine's cores.
                let pool = sqlite_pool(&url, 4).await?;
                let writer = sqlite_pool(&url, 1).await?;
                Store::assemble(pool, writer, Backend::Sqlite)
            }
            DbLocation::SqliteMemory => {
                // A shared-cache in-memory database; one connection so every query sees the same data.
                let url = "sqlite::memory:";
                let pool = sqlite_pool(url, 1).await?;
                Store::assemble(pool.clone(), pool, Backend::Sqlite)
            }
            DbLocation::Postgres(url) => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(&url)
                    .await?;
                Store::assemble(pool.clone(), pool, Backend::Postgres)
            }
        };
        migrate::run(&store).await?;
        Ok(store)
    }

    fn assemble(pool: AnyPool, writer: AnyPool, backend: Backend) -> Store {
        let log_writer = log_writer::LogWriter::spawn(writer.clone());
        Store {
            pool,
            writer,
            log_writer,
            backend,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection (and, on SQLite, checkpoints the WAL into the main file).
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    pub(crate) fn log_writer(&self) -> &log_writer::LogWriter {
        &self.log_writer
    }
}

async fn sqlite_pool(url: &str, max: u32) -> Result<AnyPool> {
    let pool = AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(60))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL: readers never block the writer. synchronous=NORMAL: a commit is in the WAL file before
                // it is acknowledged, so it survives the process being killed; only an OS crash or power loss
                // can lose the last transactions (FULL would fsync every commit). mmap: reads come straight
                // from the OS page cache, warm for every connection at once, instead of each connection warming
                // a private 2 MiB cache (`ps` counts the mapped pages once per connection in RSS; PSS is exact).
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 30000; \
                     PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON; PRAGMA mmap_size = 268435456;",
                )
                .await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}

/// Current wall-clock time in milliseconds since the epoch, the unit MLflow uses everywhere.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    Ok(row.try_get(col)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mlflow_style_uris() {
        assert_eq!(
            "sqlite:///orchard-data/orchard.db"
                .parse::<DbLocation>()
                .unwrap(),
            DbLocation::Sqlite("orchard-data/orchard.db".into())
        );
        assert_eq!(
            "sqlite:////tmp/x.db".parse::<DbLocation>().unwrap(),
            DbLocation::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            "postgresql://postgres@127.0.0.1:5432/test"
                .parse::<DbLocation>()
                .unwrap(),
            DbLocation::Postgres("postgres://postgres@127.0.0.1:5432/test".into())
        );
        assert!("mysql://x".parse::<DbLocation>().is_err());
        assert!("sqlite://".parse::<DbLocation>().is_err());
    }
}
