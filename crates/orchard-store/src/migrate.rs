//! Versioned schema migrations, embedded in the binary and applied at start-up.
//!
//! Each engine has its own dialect of every migration under `migrations/<engine>/NNNN_name.sql`; the two lists
//! must stay in step (a test checks that). sqlx's migrator records what was applied in `_sqlx_migrations`,
//! refuses to start on a database whose applied migrations were edited afterwards, and on PostgreSQL takes an
//! advisory lock so that several servers starting at once do not race.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

use sqlx::AnyPool;

use crate::backend::Backend;
use crate::error::Result;

/// (version, description, sqlite SQL, postgres SQL)
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "tracking",
        include_str!("../migrations/sqlite/0001_tracking.sql"),
        include_str!("../migrations/postgres/0001_tracking.sql"),
    ),
    (
        2,
        "registry",
        include_str!("../migrations/sqlite/0002_registry.sql"),
        include_str!("../migrations/postgres/0002_registry.sql"),
    ),
    (
        3,
        "pipelines",
        include_str!("../migrations/sqlite/0003_pipelines.sql"),
        include_str!("../migrations/postgres/0003_pipelines.sql"),
    ),
    (
        4,
        "metric tiles",
        include_str!("../migrations/sqlite/0004_metric_tiles.sql"),
        include_str!("../migrations/postgres/0004_metric_tiles.sql"),
    ),
    (
        5,
        "metric tiles pending",
        include_str!("../migrations/sqlite/0005_metric_tiles_pending.sql"),
        include_str!("../migrations/postgres/0005_metric_tiles_pending.sql"),
    ),
];

/// The schema version this binary expects.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

fn migrator(backend: Backend) -> Migrator {
    let migrations: Vec<Migration> = MIGRATIONS
        .iter()
        .map(|(version, description, sqlite, postgres)| {
            let sql = match backend {
                Backend::Sqlite => *sqlite,
                Backend::Postgres => *postgres,
            };
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

pub(crate) async fn run(backend: Backend, writer: &AnyPool) -> Result<()> {
    migrator(backend).run(writer).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two dialects must define the same tables and columns, in the same order.
    #[test]
    fn dialects_define_the_same_columns() {
        fn shape(sql: &str) -> Vec<String> {
            sql.lines()
                .map(str::trim)
                .filter(|l| !l.starts_with("--") && !l.is_empty())
                .map(|l| {
                    l.split_whitespace()
                        .next()
                        .unwrap_or("")
                        .trim_end_matches(';')
                        .to_string()
                })
                .collect()
        }
        for (_, name, sqlite, postgres) in MIGRATIONS {
            assert_eq!(
                shape(sqlite),
                shape(postgres),
                "migration {name} differs between dialects"
            );
        }
    }
}
