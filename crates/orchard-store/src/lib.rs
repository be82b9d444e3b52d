//! Orchard's metadata store.
//!
//! One schema, two engines: SQLite (the zero set-up default, WAL mode) and PostgreSQL (for many stateless
//! servers). Callers get typed operations — "log this batch", "search these runs" — and never see SQL.
//! Both engines go through sqlx's `Any` driver so every operation is written once; the few places where
//! the dialects differ are handled in [`Backend`].
//!
//! Migrations are embedded in the binary and versioned (see [`migrate`]); they run when the store opens.

mod backend;
mod datasets;
mod error;
mod experiments;
mod log_writer;
mod logged_models;
mod metric_tiles;
mod metrics;
pub mod migrate;
mod model;
pub mod pipelines;
pub mod query;
mod registry;
mod runs;
mod search;
mod sql;
mod values;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::HashMap;
use std::hash::Hash;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};

pub use backend::Backend;
pub use error::{Result, StoreError};
pub use model::*;
pub use values::now_ms;

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
        migrate::run(store.backend(), store.writer()).await?;
        Ok(store)
    }

    fn assemble(pool: AnyPool, writer: AnyPool, backend: Backend) -> Store {
        let log_writer = log_writer::LogWriter::spawn(writer.clone(), backend);
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

    /// Every row of a query, each read by `from_row`.
    pub(crate) async fn read_all<T>(&self, sql: &sql::Sql, from_row: fn(&AnyRow) -> Result<T>) -> Result<Vec<T>> {
        sql.query().fetch_all(&self.pool).await?.iter().map(from_row).collect()
    }

    /// Adds to each of `records` its `{key, value}` rows of `table` (tags or params), ordered by key: how a page
    /// of entities gets its tags in one query. `owner` is the table's column that holds `key(record)`.
    pub(crate) async fn attach_key_values<T, K>(
        &self,
        records: &mut [T],
        (table, owner): (&str, &str),
        key: impl Fn(&T) -> K,
        list: impl Fn(&mut T) -> &mut Vec<Tag>,
    ) -> Result<()>
    where
        K: Eq + Hash + Into<sql::Arg> + for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        if records.is_empty() {
            return Ok(());
        }
        let at = positions(records, &key);
        let mut q = sql::Sql::new(&format!("SELECT {owner}, key, value FROM {table} WHERE {owner} IN "));
        q.list(records.iter().map(|r| key(r).into())).push(" ORDER BY key");
        for r in q.query().fetch_all(&self.pool).await? {
            let tag = Tag { key: values::get(&r, "key")?, value: values::get(&r, "value")? };
            list(&mut records[at[&values::get::<K>(&r, owner)?]]).push(tag);
        }
        Ok(())
    }

    /// The records `sql` selects, each read by `from_row`, with their tags (see [`Store::attach_key_values`]).
    pub(crate) async fn read_tagged<T, K>(
        &self,
        sql: &sql::Sql,
        from_row: fn(&AnyRow) -> Result<T>,
        tags: (&str, &str),
        key: impl Fn(&T) -> K,
        list: impl Fn(&mut T) -> &mut Vec<Tag>,
    ) -> Result<Vec<T>>
    where
        K: Eq + Hash + Into<sql::Arg> + for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        let mut records = self.read_all(sql, from_row).await?;
        self.attach_key_values(&mut records, tags, key, list).await?;
        Ok(records)
    }

    /// One write transaction: `body` runs inside it, and it is committed when `body` succeeds (dropped, so
    /// rolled back, when it fails).
    pub(crate) async fn write<T>(&self, body: impl AsyncFnOnce(&mut sql::Tx<'_>) -> Result<T>) -> Result<T> {
        use sqlx::Acquire;
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let out = body(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub(crate) fn log_writer(&self) -> &log_writer::LogWriter {
        &self.log_writer
    }
}

/// Where each record is in `records`, by its key: how rows read for a whole page (tags, aliases, metrics) find
/// the record they belong to.
pub(crate) fn positions<T, K: Eq + Hash>(records: &[T], key: impl Fn(&T) -> K) -> HashMap<K, usize> {
    records.iter().enumerate().map(|(i, r)| (key(r), i)).collect()
}

/// Sets `tag` of the record `owner` in `table` (tags or params, keyed by (`owner_column`, key)): a new row, or
/// the new value of the one there.
pub(crate) async fn upsert_key_value(
    tx: &mut sql::Tx<'_>,
    (table, owner_column): (&str, &str),
    owner: sql::Arg,
    tag: &Tag,
) -> Result<()> {
    let text = format!(
        "INSERT INTO {table} ({owner_column}, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT ({owner_column}, key) DO UPDATE SET value = excluded.value"
    );
    sql::exec(&mut **tx, &text, &[owner, tag.key.as_str().into(), tag.value.as_str().into()]).await?;
    Ok(())
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
