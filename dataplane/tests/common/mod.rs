//! The metadata-store test harness shared by `tests/store.rs` and `tests/store_quota.rs`:
//! a fresh database per test, SQLite (a temp file) or PostgreSQL (a new database on the
//! server of `MCP_TEST_POSTGRES_URL`, see `e2e/services/postgres.sh`, dropped afterwards),
//! and [`both_backends!`] to run each test on both. Without that variable the PostgreSQL
//! variants pass with a notice, unless `MCP_REQUIRE_POSTGRES=1`.

#![allow(dead_code)] // each test crate uses its own part of it

use chrono::{DateTime, FixedOffset};
use mcp_dataplane::store::{AccountRecord, AccountUpsert, MailboxRecord, MetadataStore};
use sqlx::{Connection, PgConnection};

/// An empty database: its URL, and what to clean up afterwards.
pub struct Fresh {
    /// `sqlite://…` or `postgres://…/<new database>`.
    pub url: String,
    /// The SQLite file's directory, removed on drop.
    pub dir: Option<tempfile::TempDir>,
    /// (server URL, database name) of a PostgreSQL database to drop.
    pub pg: Option<(String, String)>,
}

impl Fresh {
    /// A temp SQLite file, or (`postgres`) a new database on the test server; `None` when
    /// PostgreSQL is not configured and not required.
    pub async fn new(postgres: bool) -> Option<Fresh> {
        if !postgres {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}", dir.path().join("meta.db").display());
            return Some(Fresh {
                url,
                dir: Some(dir),
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
        let name = format!("t_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&server)
            .await
            .expect("connect postgres server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        admin.close().await.expect("close");
        Some(Fresh {
            url: with_database(&server, &name),
            dir: None,
            pg: Some((server, name)),
        })
    }

    /// Drops the PostgreSQL database (the SQLite directory goes on drop).
    pub async fn finish(self) {
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

/// One test database with a store open on it.
pub struct Db {
    /// URL the store was opened with (for a second pool on the same database).
    pub url: String,
    /// The store.
    pub store: MetadataStore,
    fresh: Fresh,
}

impl Db {
    /// A store on a fresh database ([`Fresh::new`]).
    pub async fn open(postgres: bool) -> Option<Db> {
        let fresh = Fresh::new(postgres).await?;
        let store = MetadataStore::connect(&fresh.url).await.expect("connect");
        Some(Db {
            url: fresh.url.clone(),
            store,
            fresh,
        })
    }

    /// Closes the store and drops the database.
    pub async fn finish(self) {
        self.store.close().await;
        self.fresh.finish().await;
    }
}

/// `server` (…/db?query) with its database replaced by `name`.
pub fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

/// Creates or updates the account `address` of tenant `acme` with the given quota.
pub async fn account_with(
    s: &MetadataStore,
    address: &str,
    storage: Option<u64>,
    messages: Option<u64>,
) -> AccountRecord {
    s.upsert_account(&AccountUpsert {
        tenant: "acme".into(),
        address: address.into(),
        password_hash: "$argon2id$x".into(),
        active: true,
        spec_digest: "d1".into(),
        quota_storage: storage,
        quota_messages: messages,
        ..Default::default()
    })
    .await
    .expect("upsert")
}

/// The account's mailbox `name`, which must exist.
pub async fn mailbox(s: &MetadataStore, a: &AccountRecord, name: &str) -> MailboxRecord {
    s.mailbox(a.id, name)
        .await
        .expect("mailbox")
        .expect("exists")
}

/// A fixed INTERNALDATE.
pub fn date() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2024-01-02T03:04:05+02:00").expect("date")
}

/// Generates `sqlite::NAME` and `postgres::NAME` for every `async fn NAME(&Db)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = $crate::common::Db::open(false).await.expect("sqlite");
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = $crate::common::Db::open(true).await else { return };
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}
