//! The quarantine's rows (private to the store; the API is
//! [`Quarantine`](crate::store::quarantine::Quarantine)).

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::MetadataStore;
use super::sql::*;
use crate::store::BlobId;
use crate::store::quarantine::{
    HeldMessage, MAX_LIST_LIMIT, QuarantineId, QuarantineQuery, QuarantinedMessage, Released,
    stage_from_name, stage_name,
};
use crate::store::types::*;

const COLS: &str = "q.id, q.tenant, q.account_id, a.address AS account_address, q.recipient, \
     q.mail_from, q.stage, q.folder, q.reason, q.pipeline, q.step, q.revision, q.blob_id, \
     q.size, q.flags, q.internal_date, q.tz_offset, q.created_at";

fn quarantined_from_row(r: &AnyRow) -> Result<QuarantinedMessage, StoreError> {
    let id: String = r.try_get("id")?;
    let stage: String = r.try_get("stage")?;
    let created: i64 = r.try_get("created_at")?;
    let flags: String = r.try_get("flags")?;
    Ok(QuarantinedMessage {
        id: id
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("quarantine id = {id:?}")))?,
        tenant: r.try_get("tenant")?,
        account: r.try_get::<Option<i64>, _>("account_id")?.map(AccountId),
        account_address: r.try_get("account_address")?,
        recipient: r.try_get("recipient")?,
        mail_from: r.try_get("mail_from")?,
        stage: stage_from_name(&stage)
            .ok_or_else(|| StoreError::Corrupt(format!("quarantine stage = {stage:?}")))?,
        folder: r.try_get("folder")?,
        reason: r.try_get("reason")?,
        pipeline: r.try_get("pipeline")?,
        step: r.try_get("step")?,
        revision: r.try_get("revision")?,
        blob: BlobId(r.try_get("blob_id")?),
        size: u32_col(r, "size")?,
        flags: flags.split_whitespace().map(str::to_string).collect(),
        internal_date: date_from_cols(r.try_get("internal_date")?, r.try_get("tz_offset")?)?,
        created_at: DateTime::from_timestamp_millis(created)
            .ok_or_else(|| StoreError::Corrupt(format!("created_at = {created}")))?,
    })
}

impl MetadataStore {
    /// Inserts the row of a held message whose body is already stored as `blob`.
    pub(crate) async fn insert_quarantined(
        &self,
        id: &QuarantineId,
        held: &HeldMessage,
        blob: &BlobId,
        size: u32,
        created_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let flags = normalize_flags(&held.flags);
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO quarantine (id, tenant, account_id, recipient, mail_from, stage, folder,
                 reason, pipeline, step, revision, blob_id, size, flags, internal_date,
                 tz_offset, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(id.as_str())
        .bind(&held.tenant)
        .bind(held.account.0)
        .bind(held.recipient.to_lowercase())
        .bind(&held.mail_from)
        .bind(stage_name(held.stage))
        .bind(canonical_name(&held.folder))
        .bind(&held.reason)
        .bind(&held.pipeline)
        .bind(&held.step)
        .bind(&held.revision)
        .bind(&blob.0)
        .bind(i64::from(size))
        .bind(flags.join(" "))
        .bind(held.internal_date.timestamp())
        .bind(i64::from(
            held.internal_date.offset().local_minus_utc() / 60,
        ))
        .bind(created_at.timestamp_millis())
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One page of quarantined messages, ascending by id.
    pub(crate) async fn list_quarantined(
        &self,
        query: &QuarantineQuery,
    ) -> Result<Vec<QuarantinedMessage>, StoreError> {
        let limit = i64::from(query.limit.clamp(1, MAX_LIST_LIMIT));
        // Absent filters bind values that match everything: no dynamic SQL.
        let sql = format!(
            "SELECT {COLS} FROM quarantine q LEFT JOIN accounts a ON a.id = q.account_id
             WHERE q.tenant = $1 AND ($2 = 0 OR q.account_id = $3) AND q.id > $4
             ORDER BY q.id LIMIT $5"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(&query.tenant)
            .bind(i64::from(query.account.is_some()))
            .bind(query.account.map_or(0, |a| a.0))
            .bind(query.after.as_ref().map_or("", QuarantineId::as_str))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(quarantined_from_row).collect()
    }

    /// One quarantined message's row.
    pub(crate) async fn quarantined(
        &self,
        id: &QuarantineId,
    ) -> Result<Option<QuarantinedMessage>, StoreError> {
        let sql = format!(
            "SELECT {COLS} FROM quarantine q LEFT JOIN accounts a ON a.id = q.account_id
             WHERE q.id = $1"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(quarantined_from_row)
            .transpose()
    }

    /// Moves a quarantined message into its account in one transaction: deletes the row,
    /// picks the folder it was headed for (or `INBOX`), allocates UID and MODSEQ and inserts
    /// the message with `cache`. Publishes the folder on the bus after the commit.
    ///
    /// Errors (nothing changed): `NoSuchQuarantined` when the row is gone (a concurrent
    /// release or delete won), `NoSuchAccount` when its account was deleted,
    /// `NoSuchMailbox` when the account has neither folder, `OverQuota` when the message
    /// would take the account over quota (it stays in quarantine).
    pub(crate) async fn release_quarantined(
        &self,
        id: &QuarantineId,
        cache: MessageCache,
    ) -> Result<Released, StoreError> {
        let mut tx = self.begin_write().await?;
        // The DELETE takes the row lock: a concurrent release waits here and then finds
        // nothing.
        let row = sqlx::query(
            "DELETE FROM quarantine WHERE id = $1
             RETURNING account_id, folder, blob_id, size, flags, internal_date, tz_offset",
        )
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::NoSuchQuarantined(id.to_string()))?;
        let account = AccountId(
            row.try_get::<Option<i64>, _>("account_id")?
                .ok_or(StoreError::NoSuchAccount)?,
        );
        let folder: String = row.try_get("folder")?;
        // Account before mailbox, as every write that changes usage (docs/quota.md).
        lock_account(&mut tx, account).await?;
        let mailbox = match fetch_mailbox(&mut tx, account, &folder).await? {
            Some(m) => m,
            None => fetch_mailbox(&mut tx, account, "INBOX")
                .await?
                .ok_or(StoreError::NoSuchMailbox)?,
        };
        let flags: String = row.try_get("flags")?;
        let flags: Vec<String> = flags.split_whitespace().map(str::to_string).collect();
        let msg = NewMessage {
            flags: flags.clone(),
            internal_date: date_from_cols(
                row.try_get("internal_date")?,
                row.try_get("tz_offset")?,
            )?,
            size: u32_col(&row, "size")?,
            blob: BlobId(row.try_get("blob_id")?),
            cache,
            metadata: Default::default(),
        };
        let usage = Usage {
            messages: 1,
            octets: i64::from(msg.size),
        };
        charge(&mut tx, account, usage).await?;
        let alloc = allocate(&mut tx, mailbox.id, 1).await?;
        insert_message(
            &mut tx,
            mailbox.id,
            alloc.first_uid,
            alloc.modseq,
            &flags,
            &msg,
        )
        .await?;
        tx.commit().await?;
        self.bus.publish(mailbox.id);
        Ok(Released {
            account,
            folder: mailbox.name,
            uid_validity: alloc.uid_validity,
            uid: alloc.first_uid,
        })
    }

    /// Deletes a quarantined message's row; `false` when there was none.
    pub(crate) async fn delete_quarantined(&self, id: &QuarantineId) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM quarantine WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}
