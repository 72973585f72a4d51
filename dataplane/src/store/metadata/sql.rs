//! Statements and row mapping shared by both backends (private to the metadata store).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, FixedOffset};
use sqlx::any::AnyRow;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Any, AnyConnection, AssertSqlSafe, ConnectOptions, Connection, Row, Transaction};

use super::super::BlobId;
use super::super::types::*;
use super::SQLITE_BUSY_TIMEOUT;

/// A transaction on the pool.
pub(super) type Tx = Transaction<'static, Any>;

/// Most UIDs bound in one statement (SQLite allows 32766 parameters, PostgreSQL 65535).
pub(super) const CHUNK: usize = 500;

const ACCOUNT_COLS: &str = "id, tenant, address, password_hash, active, spec_digest, \
     quota_storage, quota_messages, labels, pipeline_ref";
pub(super) const MAILBOX_COLS: &str =
    "id, account_id, name, uid_validity, uid_next, highest_modseq, special_use";
pub(super) const MESSAGE_COLS: &str = "uid, modseq, flags, internal_date, tz_offset, size, blob_id";

/// Creates the SQLite file if missing and switches it to WAL (a persistent setting that
/// needs an exclusive lock, so it is done once here rather than per pooled connection).
pub(super) async fn prepare_sqlite_file(url: &str) -> Result<(), StoreError> {
    let conn = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .connect()
        .await?;
    conn.close().await?;
    Ok(())
}

/// `$first, $first+1, ...` (`n` placeholders).
pub(super) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The UIDs ascending without duplicates.
pub(super) fn sorted_unique(uids: &[Uid]) -> Vec<Uid> {
    let mut v = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// A MODSEQ as SQL parameter; values beyond `i64::MAX` (never stored) saturate.
pub(super) fn modseq_param(m: ModSeq) -> i64 {
    i64::try_from(m.0).unwrap_or(i64::MAX)
}

/// `INBOX` in any case (also as the first hierarchy level) becomes `INBOX`.
pub(super) fn canonical_name(name: &str) -> String {
    let (first, rest) = name.split_at(name.find(DELIMITER).unwrap_or(name.len()));
    if first.eq_ignore_ascii_case("INBOX") {
        format!("INBOX{rest}")
    } else {
        name.to_string()
    }
}

/// Whether `name` is below `parent` in the hierarchy.
pub(super) fn is_child(name: &str, parent: &str) -> bool {
    name.strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with(DELIMITER))
}

/// Whether normalised `flags` contain `flag` (ASCII case-insensitive).
pub(super) fn has_flag(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

/// The flags after applying `op` with normalised `wanted` to normalised `current`.
pub(super) fn apply_flag_op(current: &[String], op: FlagOp, wanted: &[String]) -> Vec<String> {
    match op {
        FlagOp::Replace => wanted.to_vec(),
        FlagOp::Add => normalize_flags(&[current, wanted].concat()),
        FlagOp::Remove => current
            .iter()
            .filter(|f| !has_flag(wanted, f))
            .cloned()
            .collect(),
    }
}

/// Whether two normalised flag lists are the same set.
pub(super) fn same_flags(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|f| has_flag(b, f))
}

pub(super) fn u32_col(r: &AnyRow, col: &str) -> Result<u32, StoreError> {
    let v: i64 = r.try_get(col)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} = {v}")))
}

pub(super) fn u64_col(r: &AnyRow, col: &str) -> Result<u64, StoreError> {
    let v: i64 = r.try_get(col)?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} = {v}")))
}

fn account_from_row(r: &AnyRow) -> Result<AccountRecord, StoreError> {
    Ok(AccountRecord {
        id: AccountId(r.try_get("id")?),
        tenant: r.try_get("tenant")?,
        address: r.try_get("address")?,
        password_hash: r.try_get("password_hash")?,
        active: r.try_get::<i64, _>("active")? != 0,
        spec_digest: r.try_get("spec_digest")?,
        quota_storage: opt_u64_col(r, "quota_storage")?,
        quota_messages: opt_u64_col(r, "quota_messages")?,
        labels: string_map(r.try_get::<String, _>("labels")?.as_str(), "labels")?,
        pipeline_ref: r.try_get("pipeline_ref")?,
    })
}

/// A JSON object of strings as stored in `col`. Errors: `Corrupt`.
pub(super) fn string_map(json: &str, col: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

/// A string map as stored: a JSON object, or NULL when empty (`nullable`) or `{}`.
pub(super) fn map_param(map: &BTreeMap<String, String>, nullable: bool) -> Option<String> {
    if map.is_empty() && nullable {
        return None;
    }
    // A map of strings always serialises; the fallback is never taken.
    Some(serde_json::to_string(map).unwrap_or_else(|_| "{}".to_owned()))
}

/// Inserts `msg` as `uid` with `modseq` into `mailbox` (whose row lock the caller holds,
/// having allocated both). Flags must be normalised.
pub(super) async fn insert_message(
    conn: &mut AnyConnection,
    mailbox: MailboxId,
    uid: Uid,
    modseq: ModSeq,
    flags: &[String],
    msg: &NewMessage,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, seen, deleted, internal_date,
             tz_offset, size, blob_id, envelope, body, bodystructure, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(mailbox.0)
    .bind(i64::from(uid.0))
    .bind(modseq_param(modseq))
    .bind(flags.join(" "))
    .bind(i64::from(has_flag(flags, "\\Seen")))
    .bind(i64::from(has_flag(flags, "\\Deleted")))
    .bind(msg.internal_date.timestamp())
    .bind(i64::from(msg.internal_date.offset().local_minus_utc() / 60))
    .bind(i64::from(msg.size))
    .bind(&msg.blob.0)
    .bind(&msg.cache.envelope)
    .bind(&msg.cache.body)
    .bind(&msg.cache.bodystructure)
    .bind(map_param(&msg.metadata, true))
    .execute(conn)
    .await?;
    Ok(())
}

/// An INTERNALDATE from unix seconds and minutes east of UTC. Errors: `Corrupt`.
pub(super) fn date_from_cols(secs: i64, tz: i64) -> Result<DateTime<FixedOffset>, StoreError> {
    let offset = i32::try_from(tz)
        .ok()
        .and_then(|m| m.checked_mul(60))
        .and_then(FixedOffset::east_opt)
        .ok_or_else(|| StoreError::Corrupt(format!("tz_offset = {tz}")))?;
    Ok(DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| StoreError::Corrupt(format!("internal_date = {secs}")))?
        .with_timezone(&offset))
}

fn opt_u64_col(r: &AnyRow, col: &str) -> Result<Option<u64>, StoreError> {
    let v: Option<i64> = r.try_get(col)?;
    v.map(|v| u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} = {v}"))))
        .transpose()
}

/// A limit as SQL parameter. Limits come from quantities checked to fit in `i64`; larger
/// values (never produced) saturate, which still means "practically no limit".
pub(super) fn limit_param(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

pub(super) fn mailbox_from_row(r: &AnyRow) -> Result<MailboxRecord, StoreError> {
    let special_use = match r.try_get::<Option<String>, _>("special_use")? {
        None => None,
        Some(s) => Some(
            SpecialUse::from_imap(&s)
                .ok_or_else(|| StoreError::Corrupt(format!("special_use = {s}")))?,
        ),
    };
    Ok(MailboxRecord {
        id: MailboxId(r.try_get("id")?),
        account: AccountId(r.try_get("account_id")?),
        name: r.try_get("name")?,
        uid_validity: UidValidity(u32_col(r, "uid_validity")?),
        uid_next: Uid(u32_col(r, "uid_next")?),
        highest_modseq: ModSeq(u64_col(r, "highest_modseq")?),
        special_use,
    })
}

pub(super) fn message_from_row(r: &AnyRow) -> Result<MessageRecord, StoreError> {
    let internal_date = date_from_cols(r.try_get("internal_date")?, r.try_get("tz_offset")?)?;
    let flags: String = r.try_get("flags")?;
    Ok(MessageRecord {
        uid: Uid(u32_col(r, "uid")?),
        modseq: ModSeq(u64_col(r, "modseq")?),
        flags: flags.split_whitespace().map(str::to_string).collect(),
        internal_date,
        size: u32_col(r, "size")?,
        blob: BlobId(r.try_get("blob_id")?),
    })
}

pub(super) async fn fetch_account(
    conn: &mut AnyConnection,
    address: &str,
) -> Result<Option<AccountRecord>, StoreError> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE address = $1");
    sqlx::query(AssertSqlSafe(sql))
        .bind(address)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(account_from_row)
        .transpose()
}

/// The primary address of the account whose alias `address` (lower-case) is.
pub(super) async fn alias_owner(
    conn: &mut AnyConnection,
    address: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query(
        "SELECT a.address FROM account_addresses x JOIN accounts a ON a.id = x.account_id
         WHERE x.address = $1",
    )
    .bind(address)
    .fetch_optional(conn)
    .await?
    .map(|r| Ok(r.try_get("address")?))
    .transpose()
}

/// Takes the account row lock (serialises hierarchy changes per account on PostgreSQL).
/// Errors: `NoSuchAccount`.
pub(super) async fn lock_account(
    conn: &mut AnyConnection,
    account: AccountId,
) -> Result<(), StoreError> {
    let done =
        sqlx::query("UPDATE accounts SET last_uid_validity = last_uid_validity WHERE id = $1")
            .bind(account.0)
            .execute(conn)
            .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NoSuchAccount);
    }
    Ok(())
}

/// A fresh UIDVALIDITY for `account`: the current time in seconds, or one more than the last
/// one handed out if that is not smaller. Locks the account row. Errors: `NoSuchAccount`.
pub(super) async fn next_uid_validity(
    conn: &mut AnyConnection,
    account: AccountId,
) -> Result<UidValidity, StoreError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| i64::try_from(d.as_secs()).unwrap_or(1));
    let row = sqlx::query(
        "UPDATE accounts SET last_uid_validity =
             CASE WHEN last_uid_validity + 1 > $2 THEN last_uid_validity + 1 ELSE $2 END
         WHERE id = $1 RETURNING last_uid_validity",
    )
    .bind(account.0)
    .bind(now)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NoSuchAccount)?;
    Ok(UidValidity(u32_col(&row, "last_uid_validity")?))
}

/// Inserts a mailbox; `None` when the name is taken.
pub(super) async fn insert_mailbox(
    conn: &mut AnyConnection,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
    uid_validity: UidValidity,
) -> Result<Option<MailboxRecord>, StoreError> {
    let sql = format!(
        "INSERT INTO mailboxes (account_id, name, uid_validity, uid_next, highest_modseq, special_use)
         VALUES ($1, $2, $3, 1, 1, $4) ON CONFLICT (account_id, name) DO NOTHING
         RETURNING {MAILBOX_COLS}"
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(account.0)
        .bind(name)
        .bind(i64::from(uid_validity.0))
        .bind(special_use.map(SpecialUse::as_imap))
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(mailbox_from_row)
        .transpose()
}

pub(super) async fn fetch_mailbox(
    conn: &mut AnyConnection,
    account: AccountId,
    name: &str,
) -> Result<Option<MailboxRecord>, StoreError> {
    let sql = format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE account_id = $1 AND name = $2");
    sqlx::query(AssertSqlSafe(sql))
        .bind(account.0)
        .bind(name)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(mailbox_from_row)
        .transpose()
}

/// Errors: `NoSuchMailbox`.
pub(super) async fn fetch_mailbox_by_id(
    conn: &mut AnyConnection,
    id: MailboxId,
) -> Result<MailboxRecord, StoreError> {
    let sql = format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE id = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id.0)
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NoSuchMailbox)?;
    mailbox_from_row(&row)
}

/// (id, name) of every mailbox of the account.
pub(super) async fn mailbox_names(
    conn: &mut AnyConnection,
    account: AccountId,
) -> Result<Vec<(MailboxId, String)>, StoreError> {
    sqlx::query("SELECT id, name FROM mailboxes WHERE account_id = $1")
        .bind(account.0)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| Ok((MailboxId(r.try_get("id")?), r.try_get("name")?)))
        .collect()
}

pub(super) async fn set_mailbox_name(
    conn: &mut AnyConnection,
    id: MailboxId,
    name: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE mailboxes SET name = $2 WHERE id = $1")
        .bind(id.0)
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes the row locks of the mailboxes in ascending id order (no deadlock between
/// transactions touching the same pair). Errors: `NoSuchMailbox`.
pub(super) async fn lock_mailboxes(
    conn: &mut AnyConnection,
    ids: &[MailboxId],
) -> Result<(), StoreError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let done = sqlx::query("UPDATE mailboxes SET uid_next = uid_next WHERE id = $1")
            .bind(id.0)
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoSuchMailbox);
        }
    }
    Ok(())
}

/// What [`allocate`] reserved.
pub(super) struct Alloc {
    pub uid_validity: UidValidity,
    /// First of the reserved UIDs (the old UIDNEXT).
    pub first_uid: Uid,
    /// The mailbox's new HIGHESTMODSEQ.
    pub modseq: ModSeq,
}

/// Raises HIGHESTMODSEQ by one and reserves `n` UIDs (none for a pure change), under the
/// mailbox row lock. Errors: `NoSuchMailbox`; `Corrupt` when UIDs would exceed 2³²−1.
pub(super) async fn allocate(
    conn: &mut AnyConnection,
    mailbox: MailboxId,
    n: u32,
) -> Result<Alloc, StoreError> {
    let row = sqlx::query(
        "UPDATE mailboxes SET uid_next = uid_next + $2, highest_modseq = highest_modseq + 1
         WHERE id = $1 RETURNING uid_validity, uid_next, highest_modseq",
    )
    .bind(mailbox.0)
    .bind(i64::from(n))
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NoSuchMailbox)?;
    let next = u32_col(&row, "uid_next")?;
    Ok(Alloc {
        uid_validity: UidValidity(u32_col(&row, "uid_validity")?),
        first_uid: Uid(next - n),
        modseq: ModSeq(u64_col(&row, "highest_modseq")?),
    })
}

/// The messages among `uids` that exist, ascending by UID.
pub(super) async fn select_messages(
    conn: &mut AnyConnection,
    mailbox: MailboxId,
    uids: &[Uid],
) -> Result<Vec<MessageRecord>, StoreError> {
    let mut out = Vec::with_capacity(uids.len());
    for chunk in sorted_unique(uids).chunks(CHUNK) {
        let sql = format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE mailbox_id = $1 AND uid IN ({})",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(mailbox.0);
        for uid in chunk {
            q = q.bind(i64::from(uid.0));
        }
        for row in q.fetch_all(&mut *conn).await? {
            out.push(message_from_row(&row)?);
        }
    }
    out.sort_by_key(|m| m.uid);
    Ok(out)
}

/// Every UID of the mailbox, ascending.
pub(super) async fn all_uids(
    conn: &mut AnyConnection,
    mailbox: MailboxId,
) -> Result<Vec<Uid>, StoreError> {
    sqlx::query("SELECT uid FROM messages WHERE mailbox_id = $1 ORDER BY uid")
        .bind(mailbox.0)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| Ok(Uid(u32_col(r, "uid")?)))
        .collect()
}

/// Messages and octets a write adds to (or, negative, frees from) an account's usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Usage {
    pub messages: i64,
    pub octets: i64,
}

impl Usage {
    /// The usage of `messages`.
    pub fn of(messages: &[MessageRecord]) -> Self {
        Self {
            messages: i64::try_from(messages.len()).unwrap_or(i64::MAX),
            octets: messages.iter().map(|m| i64::from(m.size)).sum(),
        }
    }

    /// The same amount, freed instead of added.
    pub fn freed(self) -> Self {
        Self {
            messages: -self.messages,
            octets: -self.octets,
        }
    }
}

/// Takes the row lock of the account that owns `mailbox` and returns it. Writes that change
/// an account's usage lock the account before any of its mailboxes (the order the hierarchy
/// operations use), so that they cannot deadlock on PostgreSQL. Errors: `NoSuchMailbox`.
pub(super) async fn lock_account_of(
    conn: &mut AnyConnection,
    mailbox: MailboxId,
) -> Result<AccountId, StoreError> {
    let row = sqlx::query(
        "UPDATE accounts SET used_messages = used_messages
         WHERE id = (SELECT account_id FROM mailboxes WHERE id = $1) RETURNING id",
    )
    .bind(mailbox.0)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NoSuchMailbox)?;
    Ok(AccountId(row.try_get("id")?))
}

/// The account that owns `mailbox` (no lock). Errors: `NoSuchMailbox`.
pub(super) async fn account_of(
    conn: &mut AnyConnection,
    mailbox: MailboxId,
) -> Result<AccountId, StoreError> {
    let row = sqlx::query("SELECT account_id FROM mailboxes WHERE id = $1")
        .bind(mailbox.0)
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NoSuchMailbox)?;
    Ok(AccountId(row.try_get("account_id")?))
}

/// Adds `delta` to the usage counters of `account` and checks the quota (docs/quota.md).
///
/// Where `delta` grows a resource, the new usage must not exceed the account's limit, nor
/// (for storage) the total over the tenant's accounts the tenant's limit. The `UPDATE` takes
/// the account row lock (PostgreSQL: a concurrent writer of the same account waits and then
/// adds to the committed value); the tenant check takes the tenant row lock before it sums,
/// so writers of one tenant check one after another, each seeing the others' commits. On
/// SQLite the transaction already holds the database write lock.
///
/// Errors: `OverQuota` (the caller drops the transaction: nothing is written),
/// `NoSuchAccount`.
pub(super) async fn charge(
    conn: &mut AnyConnection,
    account: AccountId,
    delta: Usage,
) -> Result<(), StoreError> {
    if delta == Usage::default() {
        return Ok(());
    }
    let row = sqlx::query(
        "UPDATE accounts SET used_messages = used_messages + $2, used_storage = used_storage + $3
         WHERE id = $1
         RETURNING tenant, used_messages, used_storage, quota_messages, quota_storage",
    )
    .bind(account.0)
    .bind(delta.messages)
    .bind(delta.octets)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NoSuchAccount)?;
    let over = |used: i64, limit: Option<i64>| limit.filter(|l| used > *l);
    if delta.messages > 0
        && let Some(limit) = over(
            row.try_get("used_messages")?,
            row.try_get("quota_messages")?,
        )
    {
        return Err(StoreError::OverQuota(QuotaExceeded::Messages {
            limit: u64::try_from(limit).unwrap_or(0),
        }));
    }
    if delta.octets <= 0 {
        return Ok(());
    }
    if let Some(limit) = over(row.try_get("used_storage")?, row.try_get("quota_storage")?) {
        return Err(StoreError::OverQuota(QuotaExceeded::Storage {
            limit: u64::try_from(limit).unwrap_or(0),
        }));
    }
    let tenant: String = row.try_get("tenant")?;
    let Some(limit) = lock_tenant_limit(conn, &tenant).await? else {
        return Ok(());
    };
    if tenant_storage(conn, &tenant).await? > limit {
        return Err(StoreError::OverQuota(QuotaExceeded::TenantStorage {
            limit: u64::try_from(limit).unwrap_or(0),
        }));
    }
    Ok(())
}

/// The tenant's storage limit, octets, taking the tenant row lock when there is one;
/// `None` (and no lock) when the tenant has no limit.
async fn lock_tenant_limit(
    conn: &mut AnyConnection,
    tenant: &str,
) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query(
        "UPDATE tenants SET quota_storage = quota_storage
         WHERE name = $1 AND quota_storage IS NOT NULL RETURNING quota_storage",
    )
    .bind(tenant)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.try_get("quota_storage")).transpose()?)
}

/// Octets stored by all accounts of `tenant` (the sum of their counters).
pub(super) async fn tenant_storage(
    conn: &mut AnyConnection,
    tenant: &str,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(used_storage), 0) AS BIGINT) AS total
         FROM accounts WHERE tenant = $1",
    )
    .bind(tenant)
    .fetch_one(conn)
    .await?;
    Ok(row.try_get("total")?)
}

/// Deletes messages, leaving tombstones with `modseq` (already allocated); returns the usage
/// they held, which the caller takes off the account ([`charge`]).
pub(super) async fn remove_messages(
    conn: &mut AnyConnection,
    mailbox: MailboxId,
    uids: &[Uid],
    modseq: ModSeq,
) -> Result<Usage, StoreError> {
    let mut removed = Usage::default();
    for chunk in uids.chunks(CHUNK) {
        let insert = format!(
            "INSERT INTO expunged (mailbox_id, uid, modseq)
             SELECT mailbox_id, uid, $2 FROM messages WHERE mailbox_id = $1 AND uid IN ({})",
            placeholders(3, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(insert))
            .bind(mailbox.0)
            .bind(modseq_param(modseq));
        for uid in chunk {
            q = q.bind(i64::from(uid.0));
        }
        q.execute(&mut *conn).await?;
        let delete = format!(
            "DELETE FROM messages WHERE mailbox_id = $1 AND uid IN ({}) RETURNING size",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(delete)).bind(mailbox.0);
        for uid in chunk {
            q = q.bind(i64::from(uid.0));
        }
        for row in q.fetch_all(&mut *conn).await? {
            removed.messages += 1;
            removed.octets += row.try_get::<i64, _>("size")?;
        }
    }
    Ok(removed)
}
