//! The metadata store on sqlx: SQLite (default) or PostgreSQL, chosen by URL.
//!
//! Both backends run through sqlx's `Any` driver with one set of SQL statements (the
//! dialects agree on everything used here: `$n` parameters, `RETURNING`, `ON CONFLICT`,
//! window functions); only the schema (`migrations/{sqlite,postgres}`) and the statement that
//! opens a transaction differ.
//!
//! Concurrency: every write transaction first locks the rows it allocates from (the account
//! row for mailbox creation/rename/delete, the mailbox rows — in ascending id order — for
//! message changes). On SQLite `BEGIN IMMEDIATE` takes the database write lock up front; on
//! PostgreSQL an `UPDATE` takes the row lock, so UID/MODSEQ allocation is serialised per
//! mailbox across connections and processes, and UIDs become visible in ascending order.
//!
//! Change notification: each commit that changed a mailbox publishes it on the in-process
//! [`ChangeBus`]; on PostgreSQL a trigger also NOTIFYs the other processes, which a
//! listener started by [`MetadataStore::connect`] republishes on their bus
//! ([`super::notify`]).
//!
//! Quotas (docs/quota.md): writes that change what an account stores lock the account row
//! first (then its mailboxes, then, for a storage check, the tenant row), update the
//! account's usage counters and check them against the limits before committing.

mod quarantine;
mod sql;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Row};

use tokio_util::sync::CancellationToken;

use self::sql::*;
use super::BlobId;
use super::ChangeBus;
use super::notify::{ORIGIN_SETTING, listen};
use super::types::*;

/// Which database is behind the `Any` pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Mail metadata: accounts, mailboxes, messages, flags, MODSEQs and tombstones.
///
/// Cheap to clone (a pool handle). Every method is one transaction; after a commit that
/// changed a mailbox its id is published on [`MetadataStore::bus`].
#[derive(Clone)]
pub struct MetadataStore {
    pool: AnyPool,
    backend: Backend,
    bus: ChangeBus,
    /// Serialises SQLite writers inside this process. SQLite allows one writer at a time;
    /// without the gate, waiting writers sit in SQLite's busy handler, which sleeps in steps
    /// of up to 100 ms and turns contention into long tail latencies.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// Stops the PostgreSQL change listener ([`super::notify::listen`]) on [`Self::close`].
    listener: CancellationToken,
}

/// A write transaction, holding the SQLite writer gate (if any) until it ends.
struct WriteTx {
    tx: Tx,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTx {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }
}

impl WriteTx {
    async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::fmt::Debug for MetadataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// SQLite's wait for a lock held by another connection before failing with `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl MetadataStore {
    /// Opens (creating if needed) and migrates the store at `url`:
    /// `sqlite://PATH` (the file is created if missing; WAL, `synchronous=FULL`, foreign
    /// keys on, 10 s busy timeout) or `postgres://USER:PASS@HOST:PORT/DB`.
    ///
    /// Errors: `Database` when the URL is invalid or the database unreachable, `Migrate` when
    /// the schema cannot be brought up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                format!("unsupported database URL scheme in {url:?} (sqlite:// or postgres://)")
                    .into(),
            )));
        };
        let options = AnyPoolOptions::new().max_connections(10);
        // Names this process in the change notifications it causes (hex: no quoting issue).
        let origin = format!("{:016x}", rand::random::<u64>());
        let pool = match backend {
            Backend::Sqlite => {
                prepare_sqlite_file(url).await?;
                options
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            for pragma in [
                                "PRAGMA busy_timeout = 10000",
                                "PRAGMA synchronous = FULL",
                                "PRAGMA foreign_keys = ON",
                            ] {
                                sqlx::query(pragma).execute(&mut *conn).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => {
                let set_origin = format!("SET {ORIGIN_SETTING} = '{origin}'");
                options
                    .after_connect(move |conn, _| {
                        let set_origin = set_origin.clone();
                        Box::pin(async move {
                            sqlx::query(AssertSqlSafe(set_origin))
                                .execute(&mut *conn)
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
        };
        match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&pool).await?,
        }
        let bus = ChangeBus::new();
        let listener = CancellationToken::new();
        if backend == Backend::Postgres {
            tokio::spawn(listen(
                url.to_owned(),
                origin,
                bus.clone(),
                listener.clone(),
            ));
        }
        Ok(Self {
            pool,
            backend,
            bus,
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
            listener,
        })
    }

    /// The change bus on which committed changes are announced.
    pub fn bus(&self) -> &ChangeBus {
        &self.bus
    }

    /// Stops listening for other processes' changes and closes the pool, waiting for
    /// connections in use to be returned.
    pub async fn close(&self) {
        self.listener.cancel();
        self.pool.close().await;
    }

    /// A write transaction: on SQLite it holds the write lock from the start, so it never
    /// fails on a lock upgrade; waits up to the busy timeout for other writers.
    async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let gate = self.write_gate.clone().lock_owned().await;
                WriteTx {
                    tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _gate: Some(gate),
                }
            }
            Backend::Postgres => WriteTx {
                tx: self.pool.begin().await?,
                _gate: None,
            },
        })
    }

    /// A read-only transaction seeing one consistent snapshot.
    async fn begin_read(&self) -> Result<Tx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        })
    }

    /// Creates or updates an account; idempotent. A new account gets [`DEFAULT_FOLDERS`]
    /// (with their special use); an existing one gets the tenant, hash, active flag, digest,
    /// quota, labels, pipeline reference and aliases of `a` and keeps its mailboxes and
    /// messages. The address and aliases are stored lower-case.
    ///
    /// Errors: `AddressTaken` when the address is another account's alias, or an alias is
    /// another account's address or alias (nothing is written then).
    pub async fn upsert_account(&self, a: &AccountUpsert) -> Result<AccountRecord, StoreError> {
        let address = a.address.to_lowercase();
        let mut aliases: Vec<String> = a
            .aliases
            .iter()
            .map(|x| x.to_lowercase())
            .filter(|x| *x != address)
            .collect();
        aliases.sort();
        aliases.dedup();
        let labels = map_param(&a.labels, false);
        let mut tx = self.begin_write().await?;
        let taken = |address: &str, owner: String, kind| StoreError::AddressTaken {
            address: address.to_owned(),
            account: a.address.to_lowercase(),
            owner,
            kind,
        };
        if let Some(owner) = alias_owner(&mut tx, &address).await?
            && owner != address
        {
            return Err(taken(&address, owner, "an alias"));
        }
        for alias in &aliases {
            if fetch_account(&mut tx, alias).await?.is_some() {
                return Err(taken(alias, alias.clone(), "the address"));
            }
            if let Some(owner) = alias_owner(&mut tx, alias).await?
                && owner != address
            {
                return Err(taken(alias, owner, "an alias"));
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO accounts (tenant, address, password_hash, active, spec_digest,
                 quota_storage, quota_messages, labels, pipeline_ref)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (address) DO NOTHING RETURNING id",
        )
        .bind(&a.tenant)
        .bind(&address)
        .bind(&a.password_hash)
        .bind(i64::from(a.active))
        .bind(&a.spec_digest)
        .bind(limit_param(a.quota_storage))
        .bind(limit_param(a.quota_messages))
        .bind(&labels)
        .bind(&a.pipeline_ref)
        .fetch_optional(&mut **tx)
        .await?;
        let account = match inserted {
            Some(row) => {
                let account = AccountId(row.try_get("id")?);
                for (name, special_use) in DEFAULT_FOLDERS {
                    let uid_validity = next_uid_validity(&mut tx, account).await?;
                    insert_mailbox(&mut tx, account, name, *special_use, uid_validity).await?;
                }
                account
            }
            None => {
                let row = sqlx::query(
                    "UPDATE accounts SET tenant = $2, password_hash = $3, active = $4,
                     spec_digest = $5, quota_storage = $6, quota_messages = $7, labels = $8,
                     pipeline_ref = $9
                     WHERE address = $1 RETURNING id",
                )
                .bind(&address)
                .bind(&a.tenant)
                .bind(&a.password_hash)
                .bind(i64::from(a.active))
                .bind(&a.spec_digest)
                .bind(limit_param(a.quota_storage))
                .bind(limit_param(a.quota_messages))
                .bind(&labels)
                .bind(&a.pipeline_ref)
                .fetch_optional(&mut **tx)
                .await?
                .ok_or(StoreError::NoSuchAccount)?;
                AccountId(row.try_get("id")?)
            }
        };
        sqlx::query("DELETE FROM account_addresses WHERE account_id = $1")
            .bind(account.0)
            .execute(&mut **tx)
            .await?;
        for alias in &aliases {
            sqlx::query("INSERT INTO account_addresses (address, account_id) VALUES ($1, $2)")
                .bind(alias)
                .bind(account.0)
                .execute(&mut **tx)
                .await?;
        }
        let record = fetch_account(&mut tx, &address)
            .await?
            .ok_or(StoreError::NoSuchAccount)?;
        tx.commit().await?;
        Ok(record)
    }

    /// The aliases of an account, lower-case, sorted (empty for an unknown account).
    pub async fn aliases(&self, account: AccountId) -> Result<Vec<String>, StoreError> {
        sqlx::query("SELECT address FROM account_addresses WHERE account_id = $1 ORDER BY address")
            .bind(account.0)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(r.try_get("address")?))
            .collect()
    }

    /// The account a message to `address` is delivered to: the one whose primary address
    /// or alias it is (compared lower-case). LMTP routes `RCPT TO` with this (RFC 2033 §4.2).
    pub async fn account_by_recipient(
        &self,
        address: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let address = address.to_lowercase();
        let mut conn = self.pool.acquire().await?;
        if let Some(account) = fetch_account(&mut conn, &address).await? {
            return Ok(Some(account));
        }
        match alias_owner(&mut conn, &address).await? {
            Some(owner) => fetch_account(&mut conn, &owner).await,
            None => Ok(None),
        }
    }

    /// Retains an account whose Mailbox was deleted with `retention: Retain`: login becomes
    /// impossible (inactive, no password hash, so a login fails like one for an unknown
    /// address) and the digest is cleared, so that the next
    /// [`upsert_account`](Self::upsert_account) of the address applies in full and finds the
    /// folders and messages, which are kept. Idempotent.
    ///
    /// Sessions already logged in are not closed. Errors: `NoSuchAccount`.
    pub async fn retain_account(&self, account: AccountId) -> Result<AccountRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE accounts SET active = 0, password_hash = '', spec_digest = ''
             WHERE id = $1 RETURNING address",
        )
        .bind(account.0)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NoSuchAccount)?;
        let address: String = row.try_get("address")?;
        let record = fetch_account(&mut tx, &address)
            .await?
            .ok_or(StoreError::NoSuchAccount)?;
        tx.commit().await?;
        Ok(record)
    }

    /// Folder names, message count and octets of an account, from one snapshot. An unknown
    /// account has no folders and zero totals.
    pub async fn account_usage(&self, account: AccountId) -> Result<AccountUsage, StoreError> {
        let mut tx = self.begin_read().await?;
        let folders = sqlx::query("SELECT name FROM mailboxes WHERE account_id = $1 ORDER BY name")
            .bind(account.0)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("name"))
            .collect::<Result<Vec<String>, _>>()?;
        let totals = sqlx::query("SELECT used_messages, used_storage FROM accounts WHERE id = $1")
            .bind(account.0)
            .fetch_optional(&mut *tx)
            .await?;
        let usage = AccountUsage {
            folders,
            messages: totals
                .as_ref()
                .map_or(Ok(0), |r| u64_col(r, "used_messages"))?,
            bytes: totals
                .as_ref()
                .map_or(Ok(0), |r| u64_col(r, "used_storage"))?,
        };
        tx.commit().await?;
        Ok(usage)
    }

    /// Usage and limits of `account` and its tenant, from one snapshot (RFC 9208 GETQUOTA,
    /// docs/quota.md). Errors: `NoSuchAccount`.
    pub async fn quota(&self, account: AccountId) -> Result<QuotaReport, StoreError> {
        let mut tx = self.begin_read().await?;
        let row = sqlx::query(
            "SELECT a.tenant, a.used_messages, a.used_storage, a.quota_messages,
                    a.quota_storage, t.quota_storage AS tenant_limit
             FROM accounts a LEFT JOIN tenants t ON t.name = a.tenant WHERE a.id = $1",
        )
        .bind(account.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NoSuchAccount)?;
        let limit = |col| -> Result<Option<u64>, StoreError> {
            let v: Option<i64> = row.try_get(col)?;
            Ok(v.map(|v| u64::try_from(v).unwrap_or(0)))
        };
        let tenant = match limit("tenant_limit")? {
            None => None,
            Some(limit) => {
                let name: String = row.try_get("tenant")?;
                let used = tenant_storage(&mut tx, &name).await?;
                Some(TenantStorage {
                    used: u64::try_from(used).unwrap_or(0),
                    limit,
                })
            }
        };
        let report = QuotaReport {
            messages: u64_col(&row, "used_messages")?,
            storage: u64_col(&row, "used_storage")?,
            messages_limit: limit("quota_messages")?,
            storage_limit: limit("quota_storage")?,
            tenant,
        };
        tx.commit().await?;
        Ok(report)
    }

    /// Sets the storage limit of a whole tenant (Tenant `spec.quota.storage`), octets;
    /// `None` removes it. Takes effect for the next write of any of its accounts, in every
    /// process on this database.
    pub async fn set_tenant_quota(
        &self,
        tenant: &str,
        storage: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO tenants (name, quota_storage) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET quota_storage = excluded.quota_storage",
        )
        .bind(tenant)
        .bind(limit_param(storage))
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Looks an account up by address (ASCII/Unicode case-insensitive: compared lower-case).
    pub async fn account_by_address(
        &self,
        address: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        fetch_account(&mut conn, &address.to_lowercase()).await
    }

    /// Deletes an account with all its mailboxes, messages and subscriptions (blobs are left
    /// to [`BlobStore::collect_orphans`](super::BlobStore::collect_orphans)).
    /// Errors: `NoSuchAccount`.
    pub async fn delete_account(&self, account: AccountId) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let ids = mailbox_names(&mut tx, account).await?;
        let deleted = sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(account.0)
            .execute(&mut **tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NoSuchAccount);
        }
        tx.commit().await?;
        for (id, _) in ids {
            self.bus.publish(id);
        }
        Ok(())
    }

    /// All mailboxes of an account, ordered by name (bytewise).
    pub async fn list_mailboxes(
        &self,
        account: AccountId,
    ) -> Result<Vec<MailboxRecord>, StoreError> {
        let sql =
            format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE account_id = $1 ORDER BY name");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(account.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(mailbox_from_row).collect()
    }

    /// One mailbox by name; `INBOX` is matched case-insensitively (also as the first level
    /// of a hierarchical name), everything else exactly.
    pub async fn mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> Result<Option<MailboxRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        fetch_mailbox(&mut conn, account, &canonical_name(name)).await
    }

    /// Creates a mailbox with a fresh UIDVALIDITY (greater than any the account had before,
    /// so a re-created name never repeats one), UIDNEXT 1 and HIGHESTMODSEQ 1. Superior
    /// hierarchy levels are not created. Errors: `AlreadyExists`, `NoSuchAccount`.
    pub async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<MailboxRecord, StoreError> {
        let name = canonical_name(name);
        let mut tx = self.begin_write().await?;
        let uid_validity = next_uid_validity(&mut tx, account).await?;
        let record = insert_mailbox(&mut tx, account, &name, special_use, uid_validity)
            .await?
            .ok_or(StoreError::AlreadyExists)?;
        tx.commit().await?;
        Ok(record)
    }

    /// Deletes a mailbox with its messages and tombstones (their blobs are left to orphan
    /// collection). Refuses a mailbox that has children, like Dovecot. Deleting `INBOX` must
    /// be refused by the caller (RFC 9051 §6.3.5). Errors: `NoSuchMailbox`, `HasChildren`.
    pub async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<(), StoreError> {
        let name = canonical_name(name);
        let mut tx = self.begin_write().await?;
        lock_account(&mut tx, account).await?;
        let all = mailbox_names(&mut tx, account).await?;
        let (id, _) = all
            .iter()
            .find(|(_, n)| *n == name)
            .ok_or(StoreError::NoSuchMailbox)?;
        if all.iter().any(|(_, n)| is_child(n, &name)) {
            return Err(StoreError::HasChildren);
        }
        let held = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS messages,
                    CAST(COALESCE(SUM(size), 0) AS BIGINT) AS octets
             FROM messages WHERE mailbox_id = $1",
        )
        .bind(id.0)
        .fetch_one(&mut **tx)
        .await?;
        let held = Usage {
            messages: held.try_get("messages")?,
            octets: held.try_get("octets")?,
        };
        charge(&mut tx, account, held.freed()).await?;
        sqlx::query("DELETE FROM mailboxes WHERE id = $1")
            .bind(id.0)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        self.bus.publish(*id);
        Ok(())
    }

    /// Renames a mailbox and all its children (`a` → `b` also renames `a/x` → `b/x`),
    /// keeping UIDs and UIDVALIDITY. Renaming `INBOX` moves its messages (with new UIDs)
    /// into a new mailbox `to` and leaves INBOX empty with its UIDVALIDITY; INBOX's children
    /// are not renamed (RFC 9051 §6.3.6). Subscriptions are left as they are.
    /// Errors: `NoSuchMailbox`, `AlreadyExists` (also when `to` equals `from`).
    pub async fn rename_mailbox(
        &self,
        account: AccountId,
        from: &str,
        to: &str,
    ) -> Result<(), StoreError> {
        let (from, to) = (canonical_name(from), canonical_name(to));
        let mut tx = self.begin_write().await?;
        lock_account(&mut tx, account).await?;
        let all = mailbox_names(&mut tx, account).await?;
        let (src, _) = *all
            .iter()
            .find(|(_, n)| *n == from)
            .ok_or(StoreError::NoSuchMailbox)?;
        if all.iter().any(|(_, n)| *n == to) {
            return Err(StoreError::AlreadyExists);
        }
        let mut touched = vec![src];
        if from == "INBOX" {
            let uid_validity = next_uid_validity(&mut tx, account).await?;
            let dest = insert_mailbox(&mut tx, account, &to, None, uid_validity)
                .await?
                .ok_or(StoreError::AlreadyExists)?;
            let uids = all_uids(&mut tx, src).await?;
            copy_in_tx(&mut tx, src, dest.id, &uids, true).await?;
            touched.push(dest.id);
        } else {
            let renames: Vec<(MailboxId, String)> = all
                .iter()
                .filter(|(_, n)| *n == from || is_child(n, &from))
                .map(|(id, n)| (*id, format!("{to}{}", &n[from.len()..])))
                .collect();
            let staying: HashSet<&str> = all
                .iter()
                .filter(|(id, _)| !renames.iter().any(|(r, _)| r == id))
                .map(|(_, n)| n.as_str())
                .collect();
            if renames.iter().any(|(_, n)| staying.contains(n.as_str())) {
                return Err(StoreError::AlreadyExists);
            }
            // Two passes, so that renaming into the own subtree (a -> a/b) never collides
            // with a name that is itself about to be renamed.
            for (id, _) in &renames {
                set_mailbox_name(&mut tx, *id, &format!("\u{1}rename\u{1}{}", id.0)).await?;
            }
            for (id, name) in &renames {
                set_mailbox_name(&mut tx, *id, name).await?;
            }
            touched = renames.iter().map(|(id, _)| *id).collect();
        }
        tx.commit().await?;
        for id in touched {
            self.bus.publish(id);
        }
        Ok(())
    }

    /// Adds or removes a name from the subscription list (the mailbox need not exist);
    /// idempotent. `INBOX` is canonicalised as in [`MetadataStore::mailbox`].
    pub async fn set_subscribed(
        &self,
        account: AccountId,
        name: &str,
        subscribed: bool,
    ) -> Result<(), StoreError> {
        let sql = if subscribed {
            "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM subscriptions WHERE account_id = $1 AND name = $2"
        };
        let mut tx = self.begin_write().await?;
        sqlx::query(sql)
            .bind(account.0)
            .bind(canonical_name(name))
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Subscribed names, ordered bytewise.
    pub async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT name FROM subscriptions WHERE account_id = $1 ORDER BY name")
                .bind(account.0)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
    }

    /// Inserts a message, allocating its UID (the mailbox's UIDNEXT) and MODSEQ (the
    /// mailbox's HIGHESTMODSEQ + 1) in the same transaction, and counting it against the
    /// account's quota. Flags are normalised ([`normalize_flags`]). The blob must already be
    /// stored. Errors: `NoSuchMailbox`; `OverQuota` (nothing written: the blob is left to
    /// orphan collection).
    pub async fn append(
        &self,
        mailbox: MailboxId,
        msg: &NewMessage,
    ) -> Result<(UidValidity, Uid, ModSeq), StoreError> {
        let flags = normalize_flags(&msg.flags);
        let mut tx = self.begin_write().await?;
        let account = lock_account_of(&mut tx, mailbox).await?;
        let usage = Usage {
            messages: 1,
            octets: i64::from(msg.size),
        };
        charge(&mut tx, account, usage).await?;
        let alloc = allocate(&mut tx, mailbox, 1).await?;
        insert_message(&mut tx, mailbox, alloc.first_uid, alloc.modseq, &flags, msg).await?;
        tx.commit().await?;
        self.bus.publish(mailbox);
        Ok((alloc.uid_validity, alloc.first_uid, alloc.modseq))
    }

    /// The pipeline metadata kept with a message ([`NewMessage::metadata`]): empty when it
    /// has none, `None` when the message does not exist.
    pub async fn message_metadata(
        &self,
        mailbox: MailboxId,
        uid: Uid,
    ) -> Result<Option<BTreeMap<String, String>>, StoreError> {
        let row = sqlx::query("SELECT metadata FROM messages WHERE mailbox_id = $1 AND uid = $2")
            .bind(mailbox.0)
            .bind(i64::from(uid.0))
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        match row.try_get::<Option<String>, _>("metadata")? {
            None => Ok(Some(BTreeMap::new())),
            Some(json) => string_map(&json, "metadata").map(Some),
        }
    }

    /// Adds `entries` to a message's pipeline metadata (a key already there takes the new
    /// value); `false` when the message does not exist (any more). Does not change MODSEQ:
    /// the metadata is not visible over IMAP.
    pub async fn merge_message_metadata(
        &self,
        mailbox: MailboxId,
        uid: Uid,
        entries: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        if entries.is_empty() {
            return Ok(true);
        }
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT metadata FROM messages WHERE mailbox_id = $1 AND uid = $2")
            .bind(mailbox.0)
            .bind(i64::from(uid.0))
            .fetch_optional(&mut **tx)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let mut map = match row.try_get::<Option<String>, _>("metadata")? {
            None => BTreeMap::new(),
            Some(json) => string_map(&json, "metadata")?,
        };
        map.extend(entries.iter().map(|(k, v)| (k.clone(), v.clone())));
        sqlx::query("UPDATE messages SET metadata = $1 WHERE mailbox_id = $2 AND uid = $3")
            .bind(map_param(&map, true))
            .bind(mailbox.0)
            .bind(i64::from(uid.0))
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One message by UID; `None` when the mailbox has no such message (any more).
    pub async fn message(
        &self,
        mailbox: MailboxId,
        uid: Uid,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let sql = format!("SELECT {MESSAGE_COLS} FROM messages WHERE mailbox_id = $1 AND uid = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(mailbox.0)
            .bind(i64::from(uid.0))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    /// All messages of a mailbox, ascending by UID (empty for an unknown mailbox).
    pub async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageRecord>, StoreError> {
        let sql = format!("SELECT {MESSAGE_COLS} FROM messages WHERE mailbox_id = $1 ORDER BY uid");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(mailbox.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(message_from_row).collect()
    }

    /// What changed after `since` (RFC 7162 CONDSTORE/QRESYNC), read from one snapshot:
    /// messages with a greater MODSEQ and tombstones with a greater MODSEQ.
    /// Errors: `NoSuchMailbox`.
    pub async fn changes_since(
        &self,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<Changes, StoreError> {
        let since = modseq_param(since);
        let mut tx = self.begin_read().await?;
        let row = sqlx::query("SELECT highest_modseq FROM mailboxes WHERE id = $1")
            .bind(mailbox.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NoSuchMailbox)?;
        let highest_modseq = ModSeq(u64_col(&row, "highest_modseq")?);
        let sql = format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid"
        );
        let changed = sqlx::query(AssertSqlSafe(sql))
            .bind(mailbox.0)
            .bind(since)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(message_from_row)
            .collect::<Result<_, _>>()?;
        let expunged = sqlx::query(
            "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
        )
        .bind(mailbox.0)
        .bind(since)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok(Uid(u32_col(r, "uid")?)))
        .collect::<Result<_, StoreError>>()?;
        tx.commit().await?;
        Ok(Changes {
            highest_modseq,
            changed,
            expunged,
        })
    }

    /// Changes flags of `uids` (missing UIDs are ignored; flags normalised). Messages whose
    /// flags would not change keep their MODSEQ; if any changes, HIGHESTMODSEQ grows by one
    /// and every changed message gets that MODSEQ. With `unchanged_since`, messages whose
    /// MODSEQ is greater are left alone and reported in `modified` (RFC 7162 §3.1.3).
    /// Errors: `NoSuchMailbox`.
    pub async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreOutcome, StoreError> {
        let wanted = normalize_flags(flags);
        let mut tx = self.begin_write().await?;
        lock_mailboxes(&mut tx, &[mailbox]).await?;
        let mut outcome = StoreOutcome::default();
        let mut changes = Vec::new();
        for m in select_messages(&mut tx, mailbox, uids).await? {
            if unchanged_since.is_some_and(|u| m.modseq > u) {
                outcome.modified.push(m.uid);
                continue;
            }
            let new = apply_flag_op(&m.flags, op, &wanted);
            if !same_flags(&new, &m.flags) {
                changes.push((m, new));
            }
        }
        if !changes.is_empty() {
            let modseq = allocate(&mut tx, mailbox, 0).await?.modseq;
            for (mut m, new) in changes {
                sqlx::query(
                    "UPDATE messages SET flags = $3, seen = $4, deleted = $5, modseq = $6
                     WHERE mailbox_id = $1 AND uid = $2",
                )
                .bind(mailbox.0)
                .bind(i64::from(m.uid.0))
                .bind(new.join(" "))
                .bind(i64::from(has_flag(&new, "\\Seen")))
                .bind(i64::from(has_flag(&new, "\\Deleted")))
                .bind(modseq_param(modseq))
                .execute(&mut **tx)
                .await?;
                m.flags = new;
                m.modseq = modseq;
                outcome.updated.push(m);
            }
        }
        tx.commit().await?;
        if !outcome.updated.is_empty() {
            self.bus.publish(mailbox);
        }
        Ok(outcome)
    }

    /// Removes messages flagged `\Deleted` (only among `only`, if given) and leaves
    /// tombstones with one new MODSEQ; returns their UIDs ascending. Without any such
    /// message nothing changes. Errors: `NoSuchMailbox`.
    pub async fn expunge(
        &self,
        mailbox: MailboxId,
        only: Option<&[Uid]>,
    ) -> Result<Vec<Uid>, StoreError> {
        let mut tx = self.begin_write().await?;
        let account = lock_account_of(&mut tx, mailbox).await?;
        lock_mailboxes(&mut tx, &[mailbox]).await?;
        let uids: Vec<Uid> = match only {
            Some(only) => select_messages(&mut tx, mailbox, only)
                .await?
                .into_iter()
                .filter(|m| has_flag(&m.flags, "\\Deleted"))
                .map(|m| m.uid)
                .collect(),
            None => sqlx::query(
                "SELECT uid FROM messages WHERE mailbox_id = $1 AND deleted = 1 ORDER BY uid",
            )
            .bind(mailbox.0)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| Ok(Uid(u32_col(r, "uid")?)))
            .collect::<Result<_, StoreError>>()?,
        };
        if !uids.is_empty() {
            let modseq = allocate(&mut tx, mailbox, 0).await?.modseq;
            let freed = remove_messages(&mut tx, mailbox, &uids, modseq).await?;
            charge(&mut tx, account, freed.freed()).await?;
        }
        tx.commit().await?;
        if !uids.is_empty() {
            self.bus.publish(mailbox);
        }
        Ok(uids)
    }

    /// Copies messages to `dest` with new consecutive UIDs (in source UID order) and one new
    /// MODSEQ, keeping flags, INTERNALDATE and the cache (RFC 9051 §6.4.7, RFC 4315
    /// COPYUID). Missing UIDs are ignored. Errors: `NoSuchMailbox`; `OverQuota` when the
    /// copies would take the account over quota (nothing copied).
    pub async fn copy(
        &self,
        src: MailboxId,
        dest: MailboxId,
        uids: &[Uid],
    ) -> Result<CopyOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        let outcome = copy_in_tx(&mut tx, src, dest, uids, false).await?;
        tx.commit().await?;
        if !outcome.pairs.is_empty() {
            self.bus.publish(dest);
        }
        Ok(outcome)
    }

    /// Moves messages atomically: copy as in [`MetadataStore::copy`] and expunge the sources
    /// (tombstones in `src`) in one transaction (RFC 6851). A move within one account does
    /// not change its usage. Errors: `NoSuchMailbox`; `OverQuota` for a move into another
    /// account that would take it over quota.
    pub async fn move_messages(
        &self,
        src: MailboxId,
        dest: MailboxId,
        uids: &[Uid],
    ) -> Result<CopyOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        let outcome = copy_in_tx(&mut tx, src, dest, uids, true).await?;
        tx.commit().await?;
        if !outcome.pairs.is_empty() {
            self.bus.publish(src);
            self.bus.publish(dest);
        }
        Ok(outcome)
    }

    /// Cached ENVELOPE/BODY/BODYSTRUCTURE of the given messages, ascending by UID; missing
    /// UIDs are skipped.
    pub async fn cache(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<(Uid, MessageCache)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::with_capacity(uids.len());
        for chunk in sorted_unique(uids).chunks(CHUNK) {
            let sql = format!(
                "SELECT uid, envelope, body, bodystructure FROM messages
                 WHERE mailbox_id = $1 AND uid IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(mailbox.0);
            for uid in chunk {
                q = q.bind(i64::from(uid.0));
            }
            for r in q.fetch_all(&mut *conn).await? {
                let cache = MessageCache {
                    envelope: r.try_get("envelope")?,
                    body: r.try_get("body")?,
                    bodystructure: r.try_get("bodystructure")?,
                };
                out.push((Uid(u32_col(&r, "uid")?), cache));
            }
        }
        out.sort_by_key(|(uid, _)| *uid);
        Ok(out)
    }

    /// STATUS counters: MESSAGES, UNSEEN, DELETED, SIZE and DELETED-STORAGE (octets); all zero for an unknown
    /// mailbox.
    pub async fn counts(&self, mailbox: MailboxId) -> Result<MailboxCounts, StoreError> {
        let r = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS messages,
                    CAST(COALESCE(SUM(1 - seen), 0) AS BIGINT) AS unseen,
                    CAST(COALESCE(SUM(deleted), 0) AS BIGINT) AS deleted,
                    CAST(COALESCE(SUM(size), 0) AS BIGINT) AS size,
                    CAST(COALESCE(SUM(size * deleted), 0) AS BIGINT) AS deleted_storage
             FROM messages WHERE mailbox_id = $1",
        )
        .bind(mailbox.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(MailboxCounts {
            messages: u32_col(&r, "messages")?,
            unseen: u32_col(&r, "unseen")?,
            deleted: u32_col(&r, "deleted")?,
            size: u64_col(&r, "size")?,
            deleted_storage: u64_col(&r, "deleted_storage")?,
        })
    }

    /// Every blob id referenced by some message or quarantined message, for orphan
    /// collection ([`BlobStore::collect_orphans`](super::BlobStore::collect_orphans)). Take
    /// this set *before* listing the blob directory.
    pub async fn referenced_blobs(&self) -> Result<HashSet<BlobId>, StoreError> {
        let rows = sqlx::query("SELECT blob_id FROM messages UNION SELECT blob_id FROM quarantine")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(BlobId(r.try_get("blob_id")?)))
            .collect()
    }
}

/// Copies (and with `expunge_source` moves) `uids` from `src` to `dest` inside `tx`.
async fn copy_in_tx(
    tx: &mut AnyConnection,
    src: MailboxId,
    dest: MailboxId,
    uids: &[Uid],
    expunge_source: bool,
) -> Result<CopyOutcome, StoreError> {
    // Accounts before mailboxes (see `lock_account_of`), in ascending id order; IMAP only
    // copies within one account. A mailbox never changes its account.
    let src_account = account_of(tx, src).await?;
    let dest_account = account_of(tx, dest).await?;
    lock_account(tx, src_account.min(dest_account)).await?;
    if src_account != dest_account {
        lock_account(tx, src_account.max(dest_account)).await?;
    }
    lock_mailboxes(tx, &[src, dest]).await?;
    let messages = select_messages(tx, src, uids).await?;
    let copied = Usage::of(&messages);
    let source: Vec<Uid> = messages.into_iter().map(|m| m.uid).collect();
    let n = u32::try_from(source.len()).map_err(|_| StoreError::Corrupt("too many UIDs".into()))?;
    if n == 0 {
        let uid_validity = fetch_mailbox_by_id(tx, dest).await?.uid_validity;
        return Ok(CopyOutcome {
            uid_validity,
            pairs: Vec::new(),
        });
    }
    // A move within one account changes nothing; otherwise the destination pays.
    if !(expunge_source && src_account == dest_account) {
        charge(tx, dest_account, copied).await?;
    }
    let alloc = allocate(tx, dest, n).await?;
    let mut next = i64::from(alloc.first_uid.0);
    for chunk in source.chunks(CHUNK) {
        // New UIDs follow the source UID order: first + rank within the chunk.
        let sql = format!(
            "INSERT INTO messages (mailbox_id, uid, modseq, flags, seen, deleted, internal_date,
                 tz_offset, size, blob_id, envelope, body, bodystructure, metadata)
             SELECT $1, $2 + ROW_NUMBER() OVER (ORDER BY uid) - 1, $3, flags, seen, deleted,
                 internal_date, tz_offset, size, blob_id, envelope, body, bodystructure, metadata
             FROM messages WHERE mailbox_id = $4 AND uid IN ({})",
            placeholders(5, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(dest.0)
            .bind(next)
            .bind(modseq_param(alloc.modseq))
            .bind(src.0);
        for uid in chunk {
            q = q.bind(i64::from(uid.0));
        }
        q.execute(&mut *tx).await?;
        next += i64::try_from(chunk.len()).map_err(|_| StoreError::Corrupt("chunk".into()))?;
    }
    if expunge_source {
        let modseq = allocate(tx, src, 0).await?.modseq;
        let freed = remove_messages(tx, src, &source, modseq).await?;
        if src_account != dest_account {
            charge(tx, src_account, freed.freed()).await?;
        }
    }
    let pairs = source
        .iter()
        .zip(alloc.first_uid.0..)
        .map(|(s, d)| (*s, Uid(d)))
        .collect();
    Ok(CopyOutcome {
        uid_validity: alloc.uid_validity,
        pairs,
    })
}
