//! Test databases: a fresh SQLite file, or a fresh database on the PostgreSQL server named by
//! `ORCHARD_TEST_POSTGRES` (default `postgresql://postgres@127.0.0.1:5432/postgres`).
//!
//! When PostgreSQL cannot be reached the PostgreSQL half of a test is skipped with a message — unless
//! `ORCHARD_REQUIRE_POSTGRES=1` (as the project's test command sets), in which case it fails.

use crate::Store;
use sqlx::Connection;

pub fn pg_admin_url() -> String {
    std::env::var("ORCHARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into())
}

/// A store on a fresh database; dropping the guard removes the database.
pub struct TestDb {
    pub store: Store,
    pub uri: String,
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}/orchard.db", dir.path().display());
        let store = Store::open(&uri).await.unwrap();
        TestDb {
            store,
            uri,
            cleanup: None,
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> Option<TestDb> {
        sqlx::any::install_default_drivers();
        let admin = pg_admin_url().replacen("postgresql://", "postgres://", 1);
        let mut conn = match sqlx::AnyConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("ORCHARD_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                    panic!("PostgreSQL is required (ORCHARD_REQUIRE_POSTGRES=1) but {admin} is unreachable: {e}");
                }
                eprintln!("SKIPPING the PostgreSQL half: {admin} is unreachable ({e})");
                return None;
            }
        };
        let name = format!("orchard_t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
        let uri = format!("{base}/{name}");
        let store = Store::open(&uri).await.unwrap();
        Some(TestDb {
            store,
            uri,
            cleanup: Some((admin, name)),
            _dir: None,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.cleanup.take() {
            let store = self.store.clone();
            // Drop runs outside the test's runtime: clean up on a small one of our own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    store.close().await;
                    if let Ok(mut c) = sqlx::AnyConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

/// Defines a test module `$name` with the body run once against SQLite (`sqlite`) and once against PostgreSQL
/// (`postgres`): one test suite for every engine.
#[macro_export]
macro_rules! on_both {
    ($name:ident, |$db:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $db = $crate::testing::TestDb::sqlite().await;
                $body
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($db) = $crate::testing::TestDb::postgres().await else {
                    return;
                };
                $body
            }
        }
    };
}
