//! Quota enforcement in the metadata store (docs/quota.md): usage counters kept in the write
//! transactions, limits of the account and of its tenant, refusals that write nothing, and
//! concurrent writers from two pools (two processes) that never exceed a limit. Every test
//! runs on SQLite and on PostgreSQL (`MCP_TEST_POSTGRES_URL`, as in `tests/store.rs`).

use std::borrow::Cow;
use std::path::Path;

use mcp_dataplane::store::*;
use sqlx::Connection;

#[macro_use]
mod common;

use common::{Db, Fresh, account_with as account, date, mailbox};

both_backends!(
    counters_follow_every_write,
    account_limits_refuse_whole_writes,
    moves_within_an_account_ignore_the_limit,
    quarantine_release_is_refused_over_quota,
    tenant_storage_limit_spans_its_accounts,
    concurrent_writers_on_two_pools_never_exceed_the_limit,
);

#[tokio::test]
async fn sqlite_migration_backfills_usage() {
    migration_backfills_usage(false).await;
}

#[tokio::test]
async fn postgres_migration_backfills_usage() {
    migration_backfills_usage(true).await;
}

// ---------------------------------------------------------------------------------------
// Helpers

/// A message of exactly `size` octets (body text `tag` padded).
fn msg(tag: &str, size: usize) -> NewMessage {
    let body = format!("{tag:x<size$}");
    NewMessage {
        flags: Vec::new(),
        internal_date: date(),
        size: u32::try_from(body.len()).expect("size"),
        blob: BlobId::of(body.as_bytes()),
        cache: MessageCache::default(),
        metadata: Default::default(),
    }
}

/// (messages, octets) recomputed from the messages themselves, all folders.
async fn recount(s: &MetadataStore, a: AccountId) -> (u64, u64) {
    let mut total = (0, 0);
    for m in s.list_mailboxes(a).await.expect("list") {
        let c = s.counts(m.id).await.expect("counts");
        total.0 += u64::from(c.messages);
        total.1 += c.size;
    }
    total
}

/// The counters as GETQUOTA reports them; asserts they equal a recount.
async fn used(s: &MetadataStore, a: AccountId) -> (u64, u64) {
    let q = s.quota(a).await.expect("quota");
    assert_eq!(
        (q.messages, q.storage),
        recount(s, a).await,
        "counters drifted"
    );
    (q.messages, q.storage)
}

async fn delete(s: &MetadataStore, mb: MailboxId, uids: &[Uid]) {
    s.store_flags(mb, uids, FlagOp::Add, &["\\Deleted".to_owned()], None)
        .await
        .expect("flag");
}

fn over(r: Result<impl std::fmt::Debug, StoreError>) -> QuotaExceeded {
    match r {
        Err(StoreError::OverQuota(q)) => q,
        other => panic!("expected OverQuota, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Tests

async fn counters_follow_every_write(db: &Db) {
    let s = &db.store;
    let a = account(s, "u@example.com", None, None).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    let trash = mailbox(s, &a, "Trash").await;
    let mut uids = Vec::new();
    for (i, size) in [10, 20, 30].into_iter().enumerate() {
        uids.push(
            s.append(inbox.id, &msg(&format!("m{i}"), size))
                .await
                .expect("append")
                .1,
        );
    }
    assert_eq!(used(s, a.id).await, (3, 60));
    s.copy(inbox.id, trash.id, &uids[..2]).await.expect("copy");
    assert_eq!(used(s, a.id).await, (5, 90));
    s.move_messages(inbox.id, trash.id, &uids[2..])
        .await
        .expect("move");
    assert_eq!(used(s, a.id).await, (5, 90));
    delete(s, trash.id, &[Uid(1)]).await;
    assert_eq!(
        s.counts(trash.id).await.expect("counts").deleted_storage,
        10
    );
    s.expunge(trash.id, None).await.expect("expunge");
    assert_eq!(used(s, a.id).await, (4, 80));
    let folder = s
        .create_mailbox(a.id, "Folder", None)
        .await
        .expect("create");
    s.append(folder.id, &msg("f", 5)).await.expect("append");
    assert_eq!(used(s, a.id).await, (5, 85));
    s.delete_mailbox(a.id, "Folder").await.expect("delete");
    assert_eq!(used(s, a.id).await, (4, 80));
    s.rename_mailbox(a.id, "INBOX", "Old")
        .await
        .expect("rename inbox");
    assert_eq!(used(s, a.id).await, (4, 80));
    let usage = s.account_usage(a.id).await.expect("usage");
    assert_eq!((usage.messages, usage.bytes), (4, 80));
}

async fn account_limits_refuse_whole_writes(db: &Db) {
    let s = &db.store;
    let a = account(s, "u@example.com", Some(100), Some(3)).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    let trash = mailbox(s, &a, "Trash").await;
    let u1 = s.append(inbox.id, &msg("a", 60)).await.expect("append").1;
    // 60 + 41 > 100: refused, and nothing of it is visible.
    assert_eq!(
        over(s.append(inbox.id, &msg("b", 41)).await),
        QuotaExceeded::Storage { limit: 100 }
    );
    assert_eq!(mailbox(s, &a, "INBOX").await.uid_next, Uid(2));
    // Exactly at the limit is allowed.
    s.append(inbox.id, &msg("c", 40))
        .await
        .expect("fits exactly");
    assert_eq!(used(s, a.id).await, (2, 100));
    // COPY of both would need 100 more octets: refused whole, nothing copied.
    assert_eq!(
        over(s.copy(inbox.id, trash.id, &[Uid(2)]).await),
        QuotaExceeded::Storage { limit: 100 }
    );
    assert_eq!(
        over(s.copy(inbox.id, trash.id, &[u1, Uid(2)]).await),
        QuotaExceeded::Messages { limit: 3 }
    );
    assert_eq!(s.counts(trash.id).await.expect("counts").messages, 0);
    assert_eq!(mailbox(s, &a, "Trash").await.uid_next, Uid(1));
    // Expunging frees room.
    delete(s, inbox.id, &[u1]).await;
    s.expunge(inbox.id, None).await.expect("expunge");
    assert_eq!(used(s, a.id).await, (1, 40));
    s.append(inbox.id, &msg("d", 1)).await.expect("append");
    s.append(inbox.id, &msg("e", 1)).await.expect("append");
    // The fourth message is over the message limit.
    assert_eq!(
        over(s.append(inbox.id, &msg("f", 1)).await),
        QuotaExceeded::Messages { limit: 3 }
    );
    assert_eq!(used(s, a.id).await, (3, 42));
}

async fn moves_within_an_account_ignore_the_limit(db: &Db) {
    let s = &db.store;
    let a = account(s, "u@example.com", Some(1000), None).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    let archive = mailbox(s, &a, "Archive").await;
    let uids = [
        s.append(inbox.id, &msg("a", 400)).await.expect("append").1,
        s.append(inbox.id, &msg("b", 400)).await.expect("append").1,
    ];
    // The limit is lowered below the usage: nothing is deleted, moves and expunges work.
    let a = account(s, "u@example.com", Some(500), None).await;
    assert_eq!(s.quota(a.id).await.expect("quota").storage_limit, Some(500));
    s.move_messages(inbox.id, archive.id, &uids)
        .await
        .expect("move");
    assert_eq!(used(s, a.id).await, (2, 800));
    assert!(matches!(
        over(s.append(inbox.id, &msg("c", 1)).await),
        QuotaExceeded::Storage { limit: 500 }
    ));
    delete(s, archive.id, &[Uid(1)]).await;
    s.expunge(archive.id, None).await.expect("expunge");
    assert_eq!(used(s, a.id).await, (1, 400));
    s.append(inbox.id, &msg("d", 100))
        .await
        .expect("fits again");
}

async fn quarantine_release_is_refused_over_quota(db: &Db) {
    let s = &db.store;
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = BlobStore::open(dir.path().join("blobs"))
        .await
        .expect("blobs");
    let q = Quarantine::new(s.clone(), blobs);
    let a = account(s, "u@example.com", None, Some(1)).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    let held = HeldMessage {
        tenant: a.tenant.clone(),
        account: a.id,
        recipient: a.address.clone(),
        mail_from: "x@example.org".into(),
        stage: mcp_crds::pipeline::Stage::Deliver,
        folder: "INBOX".into(),
        reason: "test".into(),
        pipeline: "p".into(),
        step: "s".into(),
        revision: "r".into(),
        flags: Vec::new(),
        internal_date: date(),
        message: bytes::Bytes::from_static(b"Subject: held\r\n\r\nbody\r\n"),
    };
    let id = q.hold(held).await.expect("hold");
    s.append(inbox.id, &msg("a", 10)).await.expect("append");
    match q.release(&id).await {
        Err(QuarantineError::Store(StoreError::OverQuota(QuotaExceeded::Messages {
            limit: 1,
        }))) => {}
        other => panic!("release over quota: {other:?}"),
    }
    // Still held, nothing stored.
    assert!(q.get(&id).await.is_ok());
    assert_eq!(used(s, a.id).await, (1, 10));
    account(s, "u@example.com", None, Some(2)).await;
    q.release(&id).await.expect("release");
    assert_eq!(used(s, a.id).await.0, 2);
}

async fn tenant_storage_limit_spans_its_accounts(db: &Db) {
    let s = &db.store;
    let a = account(s, "a@example.com", None, None).await;
    let b = account(s, "b@example.com", None, None).await;
    let (ia, ib) = (mailbox(s, &a, "INBOX").await, mailbox(s, &b, "INBOX").await);
    s.append(ia.id, &msg("a", 300)).await.expect("append");
    s.set_tenant_quota("acme", Some(1000))
        .await
        .expect("tenant quota");
    s.set_tenant_quota("other", Some(1))
        .await
        .expect("other tenant");
    s.append(ib.id, &msg("b", 600)).await.expect("append");
    assert_eq!(
        over(s.append(ia.id, &msg("c", 101)).await),
        QuotaExceeded::TenantStorage { limit: 1000 }
    );
    s.append(ia.id, &msg("d", 100)).await.expect("fits exactly");
    let report = s.quota(b.id).await.expect("quota");
    assert_eq!(
        report.tenant,
        Some(TenantStorage {
            used: 1000,
            limit: 1000
        })
    );
    assert_eq!((report.storage, report.storage_limit), (600, None));
    // Removing the limit lifts it at once.
    s.set_tenant_quota("acme", None).await.expect("lift");
    assert_eq!(s.quota(a.id).await.expect("quota").tenant, None);
    s.append(ia.id, &msg("e", 5000)).await.expect("append");
}

async fn concurrent_writers_on_two_pools_never_exceed_the_limit(db: &Db) {
    const LIMIT: u64 = 20;
    let s = &db.store;
    let a = account(s, "u@example.com", Some(LIMIT * 100), Some(LIMIT)).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    // A second pool on the same database stands for a second dataplane process.
    let other = MetadataStore::connect(&db.url).await.expect("second pool");
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = if t % 2 == 0 { s.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut refused) = (0u64, 0u64);
            for i in 0..6 {
                match store
                    .append(inbox.id, &msg(&format!("t{t}m{i}"), 100))
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(StoreError::OverQuota(_)) => refused += 1,
                    Err(e) => panic!("append: {e}"),
                }
            }
            (ok, refused)
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (o, r) = t.await.expect("task");
        ok += o;
        refused += r;
    }
    assert_eq!(ok, LIMIT, "exactly the limit is stored");
    assert_eq!(refused, 48 - LIMIT);
    assert_eq!(used(s, a.id).await, (LIMIT, LIMIT * 100));
    assert_eq!(
        mailbox(s, &a, "INBOX").await.uid_next,
        Uid(21),
        "no UID is spent on a refusal"
    );
    other.close().await;
}

/// Messages stored before migration 0005 are counted by its backfill.
async fn migration_backfills_usage(postgres: bool) {
    let Some(fresh) = Fresh::new(postgres).await else {
        return;
    };
    let url = fresh.url.clone();
    sqlx::any::install_default_drivers();
    let dialect = if postgres { "postgres" } else { "sqlite" };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    let mut before = sqlx::migrate::Migrator::new(dir.as_path())
        .await
        .expect("migrations");
    before.migrations = Cow::Owned(
        before
            .migrations
            .iter()
            .filter(|m| m.version < 5)
            .cloned()
            .collect(),
    );
    if !postgres {
        // The store creates the file on connect; the old schema needs it first.
        let opts = url
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .expect("url")
            .create_if_missing(true);
        sqlx::SqliteConnection::connect_with(&opts)
            .await
            .expect("create")
            .close()
            .await
            .expect("close");
    }
    let pool = sqlx::AnyPool::connect(&url).await.expect("pool");
    before.run(&pool).await.expect("old schema");
    for stmt in [
        "INSERT INTO accounts (id, tenant, address, password_hash, active, spec_digest)
         VALUES (1, 'acme', 'u@example.com', '', 1, 'd')",
        "INSERT INTO mailboxes (id, account_id, name, uid_validity, uid_next, highest_modseq)
         VALUES (1, 1, 'INBOX', 1, 3, 2), (2, 1, 'Sent', 2, 2, 2)",
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, seen, deleted, internal_date,
             tz_offset, size, blob_id, envelope, body, bodystructure)
         VALUES (1, 1, 2, '', 0, 0, 0, 0, 100, 'x', '', '', ''),
                (1, 2, 2, '', 0, 0, 0, 0, 20, 'y', '', '', ''),
                (2, 1, 2, '', 0, 0, 0, 0, 3, 'z', '', '', '')",
    ] {
        sqlx::query(stmt).execute(&pool).await.expect(stmt);
    }
    pool.close().await;
    let store = MetadataStore::connect(&url).await.expect("migrate");
    let q = store.quota(AccountId(1)).await.expect("quota");
    assert_eq!((q.messages, q.storage), (3, 123));
    store.close().await;
    fresh.finish().await;
}
