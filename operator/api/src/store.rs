//! The `api_keys` table: SQLite (standalone, `DATA/api.sqlite`) or PostgreSQL (Kubernetes).
//!
//! Its own database and migration set (`operator/api/migrations/{sqlite,postgres}`), never
//! the dataplane's metadata store, whose sqlx migration table it would collide with. Both
//! backends run through sqlx's `Any` driver with one set of statements; times are Unix
//! seconds, booleans 0/1, the key hash lower-case hex.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AnyPool, ConnectOptions, Connection, Row};

use crate::auth::Role;
use crate::auth::key::KeyHash;

/// SQLite's wait for a lock held by another connection before failing with `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const COLS: &str =
    "id, name, prefix, hash, role, tenant, active, created_at, expires_at, last_used_at";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not `sqlite:` or `postgres://`.
    #[error("unsupported API key store URL (sqlite://PATH or postgres://...)")]
    UnsupportedUrl,
    /// The database failed or is unreachable.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A unique column (`name` or `prefix`) already holds the value.
    #[error("{0} is already in use")]
    Conflict(&'static str),
    /// A row holds a value this version cannot read (a role or hash written by hand).
    #[error("api_keys row {id}: {message}")]
    Corrupt {
        /// The row.
        id: i64,
        /// What is wrong.
        message: String,
    },
}

/// One stored key. Holds the hash, never the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Row id, never reused.
    pub id: i64,
    /// Unique name chosen by its creator.
    pub name: String,
    /// The key's lookup prefix (unique, not secret).
    pub prefix: String,
    /// SHA-256 of the whole key.
    pub hash: KeyHash,
    /// What it may do.
    pub role: Role,
    /// Whether it is accepted at all.
    pub active: bool,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Expiry, Unix seconds (not accepted from then on); `None`: never.
    pub expires_at: Option<i64>,
    /// Last successful use, Unix seconds, at most a minute stale.
    pub last_used_at: Option<i64>,
}

impl ApiKeyRecord {
    /// Whether the key may authenticate at `now` (Unix seconds): active and not expired.
    pub fn usable_at(&self, now: i64) -> bool {
        self.active && self.expires_at.is_none_or(|e| now < e)
    }
}

/// A key to insert.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    /// Unique name.
    pub name: String,
    /// Lookup prefix of the key.
    pub prefix: String,
    /// SHA-256 of the key.
    pub hash: KeyHash,
    /// Its role.
    pub role: Role,
    /// Expiry, Unix seconds; `None`: never.
    pub expires_at: Option<i64>,
}

/// Changes to a key; `None` leaves a field alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiKeyPatch {
    /// New name.
    pub name: Option<String>,
    /// New active flag.
    pub active: Option<bool>,
    /// New expiry: `Some(None)` removes it.
    pub expires_at: Option<Option<i64>>,
}

/// The `api_keys` table. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct ApiKeyStore {
    pool: AnyPool,
}

impl std::fmt::Debug for ApiKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyStore(..)")
    }
}

fn role_columns(role: &Role) -> (&'static str, Option<&str>) {
    match role {
        Role::Admin => ("admin", None),
        Role::TenantAdmin(t) => ("tenant-admin", Some(t.as_str())),
        Role::Viewer => ("viewer", None),
    }
}

fn unique(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        let message = db.message();
        return StoreError::Conflict(if message.contains("prefix") {
            "prefix"
        } else {
            "name"
        });
    }
    StoreError::Database(e)
}

fn record(r: &AnyRow) -> Result<ApiKeyRecord, StoreError> {
    let id: i64 = r.try_get("id")?;
    let corrupt = |message: &str| StoreError::Corrupt {
        id,
        message: message.to_owned(),
    };
    let tenant: Option<String> = r.try_get("tenant")?;
    let role = match (r.try_get::<String, _>("role")?.as_str(), tenant) {
        ("admin", None) => Role::Admin,
        ("viewer", None) => Role::Viewer,
        ("tenant-admin", Some(t)) => Role::TenantAdmin(t),
        _ => return Err(corrupt("role and tenant disagree")),
    };
    let hash = KeyHash::from_hex(&r.try_get::<String, _>("hash")?)
        .ok_or_else(|| corrupt("hash is not 64 hex digits"))?;
    Ok(ApiKeyRecord {
        id,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        hash,
        role,
        active: r.try_get::<i64, _>("active")? != 0,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

impl ApiKeyStore {
    /// Opens (creating the SQLite file if missing) and migrates the store at `url`:
    /// `sqlite://PATH` (WAL, 10 s busy timeout) or `postgres://USER:PASS@HOST:PORT/DB`.
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`], [`StoreError::Database`] when unreachable,
    /// [`StoreError::Migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        if !sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(StoreError::UnsupportedUrl);
        }
        let options = AnyPoolOptions::new().max_connections(if sqlite { 4 } else { 8 });
        let pool = if sqlite {
            // WAL is persistent and needs an exclusive lock: set it once, before the pool.
            let conn = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .connect()
                .await?;
            conn.close().await?;
            options
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    })
                })
                .connect(url)
                .await?
        } else {
            options.connect(url).await?
        };
        if sqlite {
            sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        } else {
            sqlx::migrate!("migrations/postgres").run(&pool).await?;
        }
        Ok(Self { pool })
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers (`SELECT 1`), for readiness.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Inserts `key`, active, created at `now` (Unix seconds).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] naming `name` or `prefix` when taken;
    /// [`StoreError::Database`].
    pub async fn insert(&self, key: &NewApiKey, now: i64) -> Result<ApiKeyRecord, StoreError> {
        let (role, tenant) = role_columns(&key.role);
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_keys (name, prefix, hash, role, tenant, active, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7) RETURNING {COLS}"
        )))
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(key.hash.to_hex())
        .bind(role)
        .bind(tenant)
        .bind(now)
        .bind(key.expires_at)
        .fetch_one(&self.pool)
        .await
        .map_err(unique)?;
        record(&row)
    }

    /// Every key, or only those of `tenant` (tenant-admin keys bound to it), by id.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    pub async fn list(&self, tenant: Option<&str>) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = match tenant {
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLS} FROM api_keys ORDER BY id"
                )))
                .fetch_all(&self.pool)
                .await?
            }
            Some(t) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLS} FROM api_keys WHERE tenant = $1 ORDER BY id"
                )))
                .bind(t)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(record).collect()
    }

    /// The key with row id `id`.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    pub async fn get(&self, id: i64) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM api_keys WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// The key whose lookup prefix is `prefix`.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    pub async fn by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM api_keys WHERE prefix = $1"
        )))
        .bind(prefix)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Applies `patch` to key `id`; `None` if there is no such key.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] (`name`), [`StoreError::Database`].
    pub async fn update(
        &self,
        id: i64,
        patch: &ApiKeyPatch,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        // One statement; a column whose flag is 0 keeps its value.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE api_keys SET \
               name = CASE WHEN $2 = 1 THEN $3 ELSE name END, \
               active = CASE WHEN $4 = 1 THEN $5 ELSE active END, \
               expires_at = CASE WHEN $6 = 1 THEN $7 ELSE expires_at END \
             WHERE id = $1 RETURNING {COLS}"
        )))
        .bind(id)
        .bind(i64::from(patch.name.is_some()))
        .bind(patch.name.clone().unwrap_or_default())
        .bind(i64::from(patch.active.is_some()))
        .bind(i64::from(patch.active.unwrap_or(false)))
        .bind(i64::from(patch.expires_at.is_some()))
        .bind(patch.expires_at.flatten())
        .fetch_optional(&self.pool)
        .await
        .map_err(unique)?;
        row.as_ref().map(record).transpose()
    }

    /// Deletes key `id`; whether it existed.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn delete(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_keys WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a use of key `id` at `now` unless one was recorded less than `every` seconds
    /// before: the condition is in the statement, so several processes on one database also
    /// write at most once per interval. Whether it wrote.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn touch(&self, id: i64, now: i64, every: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_keys SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(id)
        .bind(now)
        .bind(now - every)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether some admin key is usable at `now`: active and not expired.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn has_usable_admin(&self, now: i64) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM api_keys WHERE role = 'admin' AND active = 1 \
             AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}

/// The current time in Unix seconds.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
