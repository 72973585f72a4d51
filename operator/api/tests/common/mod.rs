//! Test harness of the `api_keys` store: a fresh database per test, SQLite (a temp file) or
//! PostgreSQL (a new database on the server of `MCP_TEST_POSTGRES_URL`, see
//! `e2e/services/postgres.sh`, dropped afterwards), and [`both_backends!`] to run a test on
//! both. Without that variable the PostgreSQL variants pass with a notice, unless
//! `MCP_REQUIRE_POSTGRES=1`.

#![allow(dead_code)] // each test crate uses its own part of it

use mcp_api::store::ApiKeyStore;
use sqlx::{Connection, PgConnection};

/// One empty database with a store open on it.
pub struct Db {
    /// The store.
    pub store: ApiKeyStore,
    /// The SQLite file's directory, removed on drop.
    _dir: Option<tempfile::TempDir>,
    /// (server URL, database name) of a PostgreSQL database to drop.
    pg: Option<(String, String)>,
}

fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("URL with a database");
    format!("{base}/{name}")
}

impl Db {
    /// A fresh SQLite or (`postgres`) PostgreSQL database; `None` when PostgreSQL is not
    /// configured and not required.
    pub async fn new(postgres: bool) -> Option<Db> {
        if !postgres {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}", dir.path().join("api.sqlite").display());
            let store = ApiKeyStore::connect(&url).await.expect("open sqlite");
            return Some(Db {
                store,
                _dir: Some(dir),
                pg: None,
            });
        }
        let Ok(server) = std::env::var("MCP_TEST_POSTGRES_URL") else {
            if std::env::var("MCP_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("MCP_REQUIRE_POSTGRES=1 but MCP_TEST_POSTGRES_URL is not set");
            }
            eprintln!("postgres tests skipped: set MCP_TEST_POSTGRES_URL");
            return None;
        };
        let name = format!("api_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&server)
            .await
            .expect("connect postgres");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        admin.close().await.expect("close");
        let store = ApiKeyStore::connect(&with_database(&server, &name))
            .await
            .expect("open postgres");
        Some(Db {
            store,
            _dir: None,
            pg: Some((server, name)),
        })
    }

    /// Closes the store and drops the PostgreSQL database.
    pub async fn finish(self) {
        self.store.close().await;
        if let Some((server, name)) = self.pg {
            let mut admin = PgConnection::connect(&server).await.expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .expect("drop database");
        }
    }
}

/// Runs `async fn $name(db: &Db)` as two tests, `$name::sqlite` and `$name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let db = $crate::common::Db::new(false).await.expect("sqlite");
                super::$name(&db).await;
                db.finish().await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(db) = $crate::common::Db::new(true).await {
                    super::$name(&db).await;
                    db.finish().await;
                }
            }
        }
    )*};
}
