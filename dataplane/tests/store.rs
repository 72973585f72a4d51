//! Storage tests. Every metadata test is written once and runs against SQLite (a temp file)
//! and PostgreSQL (a fresh database per test on the server in `MCP_TEST_POSTGRES_URL`; see
//! `e2e/services/postgres.sh`). Without that variable the PostgreSQL variants pass with a
//! notice, unless `MCP_REQUIRE_POSTGRES=1`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use mcp_dataplane::store::*;
use sqlx::{Connection, PgConnection};

#[macro_use]
mod common;

use common::{Db, account_with, date, mailbox, with_database};

both_backends!(
    account_upsert_is_idempotent,
    create_and_delete_mailboxes,
    rename_with_children,
    rename_inbox,
    subscriptions,
    append_allocates_uid_and_modseq,
    store_flags_ops,
    store_flags_unchanged_since,
    expunge_with_tombstones,
    changes_since,
    copy_and_move,
    counts,
    cache_round_trip,
    flags_are_normalised,
    delete_account_and_referenced_blobs,
    account_quota_usage_and_retention,
    concurrent_appends,
    concurrent_appends_two_pools,
    changes_reach_other_processes,
    aliases_route_recipients_and_collisions_are_refused,
    labels_and_pipeline_ref_round_trip,
    message_metadata_round_trip,
    quarantine_hold_list_get_delete,
    quarantine_release_appends_exactly_once_and_notifies,
    quarantine_release_falls_back_to_inbox,
    quarantine_failed_release_keeps_the_message,
    quarantine_release_into_a_deleted_account_is_an_error,
    quarantine_concurrent_releases_store_one_message,
    quarantine_paging_and_filters,
    quarantined_blobs_are_referenced,
);

// ---------------------------------------------------------------------------------------
// Helpers

async fn account(s: &MetadataStore) -> AccountRecord {
    account_with(s, "User@Example.COM", None, None).await
}

fn msg(flags: &[&str], body: &str) -> NewMessage {
    NewMessage {
        flags: flags.iter().map(|f| f.to_string()).collect(),
        internal_date: date(),
        size: u32::try_from(body.len()).expect("size"),
        blob: BlobId::of(body.as_bytes()),
        cache: MessageCache {
            envelope: format!("(env {body})").into_bytes(),
            body: b"(\"text\" \"plain\")".to_vec(),
            bodystructure: b"(\"text\" \"plain\" NIL)".to_vec(),
        },
        metadata: Default::default(),
    }
}

async fn append_n(s: &MetadataStore, mb: MailboxId, n: usize) -> Vec<Uid> {
    let mut uids = Vec::new();
    for i in 0..n {
        let (_, uid, _) = s
            .append(mb, &msg(&[], &format!("message {i}")))
            .await
            .expect("append");
        uids.push(uid);
    }
    uids
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn uids(v: &[u32]) -> Vec<Uid> {
    v.iter().copied().map(Uid).collect()
}

async fn highest(s: &MetadataStore, mb: MailboxId) -> ModSeq {
    s.changes_since(mb, ModSeq(u64::MAX))
        .await
        .expect("changes")
        .highest_modseq
}

// ---------------------------------------------------------------------------------------
// Tests (each runs on both backends)

async fn account_upsert_is_idempotent(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    assert_eq!(a.address, "user@example.com");
    assert!(a.active);
    let again = account(s).await;
    assert_eq!(again, a);

    let boxes = s.list_mailboxes(a.id).await.expect("list");
    let mut expected: Vec<(String, Option<SpecialUse>)> = DEFAULT_FOLDERS
        .iter()
        .map(|(n, u)| (n.to_string(), *u))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let got: Vec<(String, Option<SpecialUse>)> = boxes
        .iter()
        .map(|m| (m.name.clone(), m.special_use))
        .collect();
    assert_eq!(got, expected, "default folders, once, ordered by name");
    let validities: HashSet<UidValidity> = boxes.iter().map(|m| m.uid_validity).collect();
    assert_eq!(validities.len(), boxes.len(), "distinct UIDVALIDITYs");
    for m in &boxes {
        assert_ne!(m.uid_validity.0, 0);
        assert_eq!(m.uid_next, Uid(1));
        assert_eq!(m.highest_modseq, ModSeq(1));
    }

    let updated = s
        .upsert_account(&AccountUpsert {
            tenant: "acme".into(),
            address: "user@EXAMPLE.com".into(),
            password_hash: "$argon2id$y".into(),
            active: false,
            spec_digest: "d2".into(),
            quota_storage: None,
            quota_messages: None,
            ..Default::default()
        })
        .await
        .expect("update");
    assert_eq!(updated.id, a.id);
    assert_eq!(updated.password_hash, "$argon2id$y");
    assert!(!updated.active);
    assert_eq!(updated.spec_digest, "d2");
    assert_eq!(
        s.list_mailboxes(a.id).await.expect("list").len(),
        DEFAULT_FOLDERS.len()
    );

    let found = s
        .account_by_address("USER@example.com")
        .await
        .expect("lookup");
    assert_eq!(found, Some(updated));
    assert_eq!(
        s.account_by_address("nobody@example.com")
            .await
            .expect("lookup"),
        None
    );
}

async fn create_and_delete_mailboxes(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    let work = s.create_mailbox(a.id, "Work", None).await.expect("create");
    assert_eq!((work.uid_next, work.highest_modseq), (Uid(1), ModSeq(1)));
    assert_ne!(work.uid_validity.0, 0);
    assert!(matches!(
        s.create_mailbox(a.id, "Work", None).await,
        Err(StoreError::AlreadyExists)
    ));
    let sub = s
        .create_mailbox(a.id, "Work/Sub", Some(SpecialUse::Flagged))
        .await
        .expect("create child");
    assert_eq!(sub.special_use, Some(SpecialUse::Flagged));
    append_n(s, work.id, 2).await;

    assert!(matches!(
        s.delete_mailbox(a.id, "Work").await,
        Err(StoreError::HasChildren)
    ));
    s.delete_mailbox(a.id, "Work/Sub")
        .await
        .expect("delete child");
    s.delete_mailbox(a.id, "Work").await.expect("delete");
    assert!(matches!(
        s.delete_mailbox(a.id, "Work").await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert_eq!(s.mailbox(a.id, "Work").await.expect("lookup"), None);
    assert!(s.messages(work.id).await.expect("messages").is_empty());

    let again = s
        .create_mailbox(a.id, "Work", None)
        .await
        .expect("re-create");
    assert!(
        again.uid_validity > work.uid_validity,
        "re-created mailbox gets a new UIDVALIDITY"
    );
    assert!(again.uid_validity > sub.uid_validity);

    assert_eq!(mailbox(s, &a, "inbox").await.name, "INBOX");
    assert!(matches!(
        s.create_mailbox(AccountId(999_999), "X", None).await,
        Err(StoreError::NoSuchAccount)
    ));
}

async fn rename_with_children(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    for name in ["a", "a/x", "a/x/y", "ab"] {
        s.create_mailbox(a.id, name, None).await.expect("create");
    }
    let before = mailbox(s, &a, "a").await;
    append_n(s, before.id, 2).await;

    s.rename_mailbox(a.id, "a", "b").await.expect("rename");
    let names: Vec<String> = s
        .list_mailboxes(a.id)
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.name)
        .filter(|n| !DEFAULT_FOLDERS.iter().any(|(d, _)| d == n))
        .collect();
    assert_eq!(names, strings(&["ab", "b", "b/x", "b/x/y"]));
    let after = mailbox(s, &a, "b").await;
    assert_eq!(
        (after.id, after.uid_validity),
        (before.id, before.uid_validity)
    );
    assert_eq!(s.messages(after.id).await.expect("messages").len(), 2);

    assert!(matches!(
        s.rename_mailbox(a.id, "b", "ab").await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        s.rename_mailbox(a.id, "nope", "c").await,
        Err(StoreError::NoSuchMailbox)
    ));

    // Into its own subtree: b -> b/c.
    s.rename_mailbox(a.id, "b", "b/c")
        .await
        .expect("rename into subtree");
    for name in ["b/c", "b/c/x", "b/c/x/y"] {
        assert!(
            s.mailbox(a.id, name).await.expect("lookup").is_some(),
            "{name}"
        );
    }
    assert_eq!(s.mailbox(a.id, "b").await.expect("lookup"), None);
}

async fn rename_inbox(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    s.append(inbox.id, &msg(&["\\Seen"], "one"))
        .await
        .expect("append");
    append_n(s, inbox.id, 2).await;
    let modseq_before = highest(s, inbox.id).await;

    s.rename_mailbox(a.id, "inbox", "Old")
        .await
        .expect("rename INBOX");
    let inbox_after = mailbox(s, &a, "INBOX").await;
    assert_eq!(inbox_after.id, inbox.id);
    assert_eq!(inbox_after.uid_validity, inbox.uid_validity);
    assert_eq!(inbox_after.uid_next, Uid(4), "UIDs are not reused");
    assert!(s.messages(inbox.id).await.expect("messages").is_empty());
    let changes = s
        .changes_since(inbox.id, modseq_before)
        .await
        .expect("changes");
    assert_eq!(changes.expunged, uids(&[1, 2, 3]));

    let old = mailbox(s, &a, "Old").await;
    assert_ne!(old.uid_validity, inbox.uid_validity);
    let moved = s.messages(old.id).await.expect("messages");
    assert_eq!(
        moved.iter().map(|m| m.uid).collect::<Vec<_>>(),
        uids(&[1, 2, 3])
    );
    assert_eq!(moved[0].flags, strings(&["\\Seen"]));
    assert_eq!(moved[0].internal_date, date());

    // INBOX can be renamed below itself; the new mailbox is a child of the kept INBOX.
    append_n(s, inbox.id, 1).await;
    s.rename_mailbox(a.id, "INBOX", "inbox/Older")
        .await
        .expect("rename INBOX below itself");
    let older = mailbox(s, &a, "INBOX/Older").await;
    assert_eq!(s.messages(older.id).await.expect("messages").len(), 1);
    assert!(s.messages(inbox.id).await.expect("messages").is_empty());
    assert_eq!(mailbox(s, &a, "INBOX").await.uid_next, Uid(5));
}

async fn subscriptions(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    for name in ["b", "a", "a", "inbox", "Gone/Away"] {
        s.set_subscribed(a.id, name, true).await.expect("subscribe");
    }
    assert_eq!(
        s.subscriptions(a.id).await.expect("list"),
        strings(&["Gone/Away", "INBOX", "a", "b"])
    );
    s.set_subscribed(a.id, "a", false)
        .await
        .expect("unsubscribe");
    s.set_subscribed(a.id, "never", false)
        .await
        .expect("unsubscribe unknown");
    assert_eq!(
        s.subscriptions(a.id).await.expect("list"),
        strings(&["Gone/Away", "INBOX", "b"])
    );
}

async fn append_allocates_uid_and_modseq(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    let mut bus = s.bus().subscribe();
    let mut last = (Uid(0), inbox.highest_modseq);
    for (i, expected_uid) in (1..=3).enumerate() {
        let (validity, uid, modseq) = s
            .append(inbox.id, &msg(&["\\Flagged"], &format!("body {i}")))
            .await
            .expect("append");
        assert_eq!(validity, inbox.uid_validity);
        assert_eq!(uid, Uid(expected_uid));
        assert!(uid > last.0 && modseq > last.1);
        last = (uid, modseq);
        assert_eq!(
            bus.recv().await.expect("published"),
            Change::Mailbox(inbox.id)
        );
    }
    let now = mailbox(s, &a, "INBOX").await;
    assert_eq!(now.uid_next, Uid(4));
    assert_eq!(now.highest_modseq, last.1);

    let msgs = s.messages(inbox.id).await.expect("messages");
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0].flags, strings(&["\\Flagged"]));
    assert_eq!(msgs[0].internal_date, date());
    assert_eq!(msgs[0].internal_date.offset().local_minus_utc(), 7200);
    assert_eq!(msgs[0].size, 6);
    assert_eq!(msgs[0].blob, BlobId::of(b"body 0"));
    assert_eq!(msgs[2].modseq, last.1);

    assert!(matches!(
        s.append(MailboxId(999_999), &msg(&[], "x")).await,
        Err(StoreError::NoSuchMailbox)
    ));
}

async fn store_flags_ops(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    let (_, uid, _) = s
        .append(inbox.id, &msg(&["\\Seen", "$Work"], "m"))
        .await
        .expect("append");

    // (operation, flags, expected flags afterwards, whether it is a change)
    let cases: &[(FlagOp, &[&str], &[&str], bool)] = &[
        (
            FlagOp::Add,
            &["\\flagged"],
            &["\\Seen", "$Work", "\\Flagged"],
            true,
        ),
        (
            FlagOp::Add,
            &["\\SEEN", "$work"],
            &["\\Seen", "$Work", "\\Flagged"],
            false,
        ),
        (FlagOp::Remove, &["$WORK"], &["\\Seen", "\\Flagged"], true),
        (
            FlagOp::Remove,
            &["\\Deleted"],
            &["\\Seen", "\\Flagged"],
            false,
        ),
        (
            FlagOp::Replace,
            &["\\Flagged", "\\Seen"],
            &["\\Seen", "\\Flagged"],
            false,
        ),
        (
            FlagOp::Replace,
            &["\\Draft", "\\Recent"],
            &["\\Draft"],
            true,
        ),
        (FlagOp::Replace, &[], &[], true),
        (FlagOp::Remove, &["\\Draft"], &[], false),
    ];
    for (i, (op, flags, expected, changes)) in cases.iter().enumerate() {
        let before = highest(s, inbox.id).await;
        let out = s
            .store_flags(inbox.id, &[uid, Uid(99)], *op, &strings(flags), None)
            .await
            .expect("store");
        let after = highest(s, inbox.id).await;
        let stored = &s.messages(inbox.id).await.expect("messages")[0];
        assert_eq!(stored.flags, strings(expected), "case {i}");
        assert!(out.modified.is_empty());
        if *changes {
            assert_eq!(after, ModSeq(before.0 + 1), "case {i}: one new MODSEQ");
            assert_eq!(out.updated.len(), 1, "case {i}");
            assert_eq!(out.updated[0].modseq, after);
            assert_eq!(&out.updated[0], stored);
        } else {
            assert_eq!(
                after, before,
                "case {i}: a no-op does not bump HIGHESTMODSEQ"
            );
            assert!(out.updated.is_empty(), "case {i}");
        }
    }
}

async fn store_flags_unchanged_since(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    let (_, u1, m1) = s.append(inbox.id, &msg(&[], "1")).await.expect("append");
    let (_, u2, _) = s.append(inbox.id, &msg(&[], "2")).await.expect("append");
    s.store_flags(inbox.id, &[u2], FlagOp::Add, &strings(&["$x"]), None)
        .await
        .expect("store");
    let out = s
        .store_flags(
            inbox.id,
            &[u1, u2],
            FlagOp::Add,
            &strings(&["\\Seen"]),
            Some(m1),
        )
        .await
        .expect("conditional store");
    assert_eq!(
        out.updated.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![u1]
    );
    assert_eq!(out.modified, vec![u2]);
    let msgs = s.messages(inbox.id).await.expect("messages");
    assert_eq!(msgs[1].flags, strings(&["$x"]), "u2 untouched");

    // RFC 7162 §3.1.3: UNCHANGEDSINCE 0 fails for every message (MODSEQs start at 1).
    let before = highest(s, inbox.id).await;
    let zero = s
        .store_flags(
            inbox.id,
            &[u1, u2],
            FlagOp::Add,
            &strings(&["\\Flagged"]),
            Some(ModSeq(0)),
        )
        .await
        .expect("conditional store");
    assert!(zero.updated.is_empty());
    assert_eq!(zero.modified, vec![u1, u2]);
    // A passing test that changes nothing keeps MODSEQs: "adding the flag when it is
    // already present ... SHOULD NOT change the mod-sequence" (RFC 7162 §3.1).
    let noop = s
        .store_flags(
            inbox.id,
            &[u1],
            FlagOp::Add,
            &strings(&["\\Seen"]),
            Some(before),
        )
        .await
        .expect("conditional store");
    assert!(noop.updated.is_empty() && noop.modified.is_empty());
    assert_eq!(highest(s, inbox.id).await, before);
}

async fn expunge_with_tombstones(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    append_n(s, inbox.id, 5).await;
    let before = highest(s, inbox.id).await;
    assert!(s.expunge(inbox.id, None).await.expect("expunge").is_empty());
    assert_eq!(
        highest(s, inbox.id).await,
        before,
        "nothing to expunge: no new MODSEQ"
    );

    s.store_flags(
        inbox.id,
        &uids(&[2, 3, 5]),
        FlagOp::Add,
        &strings(&["\\Deleted"]),
        None,
    )
    .await
    .expect("store");
    let first = s
        .expunge(inbox.id, Some(&uids(&[2, 4])))
        .await
        .expect("expunge subset");
    assert_eq!(first, uids(&[2]));
    let after_first = highest(s, inbox.id).await;
    let rest = s.expunge(inbox.id, None).await.expect("expunge all");
    assert_eq!(rest, uids(&[3, 5]));
    let remaining: Vec<Uid> = s
        .messages(inbox.id)
        .await
        .expect("messages")
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(remaining, uids(&[1, 4]));

    let all = s.changes_since(inbox.id, before).await.expect("changes");
    assert_eq!(all.expunged, uids(&[2, 3, 5]));
    let later = s
        .changes_since(inbox.id, after_first)
        .await
        .expect("changes");
    assert_eq!(later.expunged, uids(&[3, 5]));
    assert_eq!(later.highest_modseq, ModSeq(after_first.0 + 1));

    // The VANISHED (EARLIER) data of QRESYNC (RFC 7162 §3.2.5).
    let vanished = |since| s.expunged_since(inbox.id, since);
    assert_eq!(
        vanished(ModSeq(0)).await.expect("tombstones"),
        uids(&[2, 3, 5])
    );
    assert_eq!(
        vanished(after_first).await.expect("tombstones"),
        uids(&[3, 5])
    );
    assert!(
        vanished(later.highest_modseq)
            .await
            .expect("tombstones")
            .is_empty()
    );
    assert!(
        s.expunged_since(MailboxId(999_999), ModSeq(0))
            .await
            .expect("unknown mailbox")
            .is_empty()
    );
}

async fn changes_since(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    append_n(s, inbox.id, 3).await;
    let h = highest(s, inbox.id).await;
    s.store_flags(
        inbox.id,
        &[Uid(1)],
        FlagOp::Add,
        &strings(&["\\Seen"]),
        None,
    )
    .await
    .expect("store");

    let c = s.changes_since(inbox.id, h).await.expect("changes");
    assert_eq!(c.highest_modseq, ModSeq(h.0 + 1));
    assert_eq!(
        c.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        uids(&[1])
    );
    assert!(c.expunged.is_empty());
    let all = s.changes_since(inbox.id, ModSeq(0)).await.expect("changes");
    assert_eq!(
        all.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        uids(&[1, 2, 3])
    );
    let none = s
        .changes_since(inbox.id, c.highest_modseq)
        .await
        .expect("changes");
    assert!(none.changed.is_empty() && none.expunged.is_empty());
    assert!(matches!(
        s.changes_since(MailboxId(999_999), ModSeq(0)).await,
        Err(StoreError::NoSuchMailbox)
    ));
}

async fn copy_and_move(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    let src = mailbox(s, &a, "INBOX").await;
    let dest = mailbox(s, &a, "Archive").await;
    for i in 0..4 {
        s.append(src.id, &msg(&["$k"], &format!("src {i}")))
            .await
            .expect("append");
    }
    append_n(s, dest.id, 1).await;

    let copied = s
        .copy(src.id, dest.id, &uids(&[4, 2, 9]))
        .await
        .expect("copy");
    assert_eq!(copied.uid_validity, dest.uid_validity);
    assert_eq!(copied.pairs, vec![(Uid(2), Uid(2)), (Uid(4), Uid(3))]);
    let d = s.messages(dest.id).await.expect("messages");
    assert_eq!(d.len(), 3);
    assert_eq!(d[1].flags, strings(&["$k"]));
    assert_eq!(d[1].blob, BlobId::of(b"src 1"));
    assert_eq!(d[2].blob, BlobId::of(b"src 3"));
    assert_eq!(d[1].modseq, d[2].modseq);
    assert_eq!(
        s.messages(src.id).await.expect("messages").len(),
        4,
        "copy keeps the source"
    );

    let src_modseq = highest(s, src.id).await;
    let moved = s
        .move_messages(src.id, dest.id, &uids(&[1, 3]))
        .await
        .expect("move");
    assert_eq!(moved.pairs, vec![(Uid(1), Uid(4)), (Uid(3), Uid(5))]);
    let left: Vec<Uid> = s
        .messages(src.id)
        .await
        .expect("messages")
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(left, uids(&[2, 4]));
    let c = s.changes_since(src.id, src_modseq).await.expect("changes");
    assert_eq!(c.expunged, uids(&[1, 3]));
    let cache = s.cache(dest.id, &uids(&[4])).await.expect("cache");
    assert_eq!(cache[0].1.envelope, b"(env src 0)".to_vec());

    let empty = s
        .copy(src.id, dest.id, &uids(&[77]))
        .await
        .expect("copy nothing");
    assert_eq!(
        (empty.uid_validity, empty.pairs.len()),
        (dest.uid_validity, 0)
    );
    assert!(matches!(
        s.copy(src.id, MailboxId(999_999), &uids(&[2])).await,
        Err(StoreError::NoSuchMailbox)
    ));
}

async fn counts(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    assert_eq!(
        s.counts(inbox.id).await.expect("counts"),
        MailboxCounts::default()
    );
    s.append(inbox.id, &msg(&["\\Seen"], &"a".repeat(100)))
        .await
        .expect("append");
    s.append(inbox.id, &msg(&["\\Deleted"], &"b".repeat(200)))
        .await
        .expect("append");
    s.append(inbox.id, &msg(&[], &"c".repeat(300)))
        .await
        .expect("append");
    assert_eq!(
        s.counts(inbox.id).await.expect("counts"),
        MailboxCounts {
            messages: 3,
            unseen: 2,
            deleted: 1,
            size: 600,
            deleted_storage: 200,
        }
    );
}

async fn cache_round_trip(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    let mut m = msg(&[], "cached");
    m.cache.envelope = vec![0, 1, 2, 255, b'"'];
    m.cache.bodystructure =
        b"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"8BIT\" 6 1)".to_vec();
    let (_, uid, _) = s.append(inbox.id, &m).await.expect("append");
    append_n(s, inbox.id, 1).await;
    let got = s
        .cache(inbox.id, &[Uid(99), uid, uid])
        .await
        .expect("cache");
    assert_eq!(got, vec![(uid, m.cache)]);
}

async fn flags_are_normalised(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    let raw = [
        "\\seen",
        "\\SEEN",
        "$Label",
        "$label",
        "\\Recent",
        "\\flagged",
        "\\ANSWERED",
        "\\draft",
        "\\deleted",
    ];
    s.append(inbox.id, &msg(&raw, "x")).await.expect("append");
    let stored = &s.messages(inbox.id).await.expect("messages")[0];
    assert_eq!(
        stored.flags,
        strings(&[
            "\\Seen",
            "$Label",
            "\\Flagged",
            "\\Answered",
            "\\Draft",
            "\\Deleted"
        ])
    );
}

async fn delete_account_and_referenced_blobs(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    s.append(inbox.id, &msg(&[], "kept")).await.expect("append");
    s.append(inbox.id, &msg(&[], "kept")).await.expect("append");
    let refs = s.referenced_blobs().await.expect("refs");
    assert_eq!(refs, HashSet::from([BlobId::of(b"kept")]));
    s.delete_account(a.id).await.expect("delete account");
    assert_eq!(
        s.account_by_address(&a.address).await.expect("lookup"),
        None
    );
    assert!(s.referenced_blobs().await.expect("refs").is_empty());
    assert!(matches!(
        s.delete_account(a.id).await,
        Err(StoreError::NoSuchAccount)
    ));
}

async fn account_quota_usage_and_retention(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    assert_eq!((a.quota_storage, a.quota_messages), (None, None));
    let usage = s.account_usage(a.id).await.expect("usage");
    assert_eq!(
        usage.folders,
        strings(&["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"])
    );
    assert_eq!((usage.messages, usage.bytes), (0, 0));

    let inbox = mailbox(s, &a, "INBOX").await;
    let sent = mailbox(s, &a, "Sent").await;
    s.append(inbox.id, &msg(&[], "12345"))
        .await
        .expect("append");
    s.append(inbox.id, &msg(&[], "123")).await.expect("append");
    s.append(sent.id, &msg(&[], "1")).await.expect("append");
    let (_, uid, _) = s.append(sent.id, &msg(&[], "gone")).await.expect("append");
    s.store_flags(sent.id, &[uid], FlagOp::Add, &strings(&["\\Deleted"]), None)
        .await
        .expect("flag");
    s.expunge(sent.id, Some(&[uid])).await.expect("expunge");
    let usage = s.account_usage(a.id).await.expect("usage");
    assert_eq!((usage.messages, usage.bytes), (3, 9));

    let limited = s
        .upsert_account(&AccountUpsert {
            tenant: "acme".into(),
            address: a.address.clone(),
            password_hash: "$argon2id$x".into(),
            active: true,
            spec_digest: "d1".into(),
            quota_storage: Some(1 << 40),
            quota_messages: Some(5),
            ..Default::default()
        })
        .await
        .expect("upsert");
    assert_eq!(limited.quota_storage, Some(1 << 40));
    assert_eq!(limited.quota_messages, Some(5));

    let retained = s.retain_account(a.id).await.expect("retain");
    assert!(!retained.active);
    assert_eq!(retained.password_hash, "");
    assert_eq!(retained.spec_digest, "");
    assert_eq!(retained.quota_storage, Some(1 << 40));
    assert_eq!(s.retain_account(a.id).await.expect("again"), retained);
    let usage = s.account_usage(a.id).await.expect("usage");
    assert_eq!((usage.messages, usage.bytes), (3, 9));

    assert!(matches!(
        s.retain_account(AccountId(a.id.0 + 1000)).await,
        Err(StoreError::NoSuchAccount)
    ));
    assert_eq!(
        s.account_usage(AccountId(a.id.0 + 1000))
            .await
            .expect("usage"),
        AccountUsage::default()
    );
}

/// Appends `per_task` messages from `tasks` tasks spread over `stores` into `mb`.
async fn hammer(stores: &[MetadataStore], mb: MailboxId, tasks: usize, per_task: usize) {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let s = stores[t % stores.len()].clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                s.append(mb, &msg(&[], &format!("task {t} msg {i}")))
                    .await
                    .expect("append");
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
}

async fn assert_dense_uids(s: &MetadataStore, mb: MailboxId, n: u32) {
    let msgs = s.messages(mb).await.expect("messages");
    let got: Vec<u32> = msgs.iter().map(|m| m.uid.0).collect();
    assert_eq!(got, (1..=n).collect::<Vec<_>>(), "UIDs exactly 1..={n}");
    let modseqs: HashSet<ModSeq> = msgs.iter().map(|m| m.modseq).collect();
    assert_eq!(modseqs.len(), msgs.len(), "one MODSEQ per append");
    // UID order and MODSEQ order agree: allocation is serialised per mailbox.
    assert!(msgs.windows(2).all(|w| w[0].modseq < w[1].modseq));
    let mb = s.changes_since(mb, ModSeq(0)).await.expect("changes");
    assert_eq!(mb.highest_modseq, ModSeq(u64::from(n) + 1));
}

async fn concurrent_appends(db: &Db) {
    let a = account(&db.store).await;
    let inbox = mailbox(&db.store, &a, "INBOX").await;
    hammer(std::slice::from_ref(&db.store), inbox.id, 16, 50).await;
    assert_dense_uids(&db.store, inbox.id, 800).await;
}

/// Two pools on one database stand in for two replicas (two processes).
async fn concurrent_appends_two_pools(db: &Db) {
    let a = account(&db.store).await;
    let inbox = mailbox(&db.store, &a, "INBOX").await;
    let other = MetadataStore::connect(&db.url).await.expect("second pool");
    hammer(&[db.store.clone(), other.clone()], inbox.id, 16, 30).await;
    assert_dense_uids(&other, inbox.id, 480).await;

    // Concurrent MOVEs from both pools into one mailbox and back never collide either.
    let archive = mailbox(&db.store, &a, "Archive").await;
    let mut handles = Vec::new();
    for (i, s) in [db.store.clone(), other.clone()].into_iter().enumerate() {
        handles.push(tokio::spawn(async move {
            for k in 0..20u32 {
                let uid = Uid(1 + u32::try_from(i).expect("i") * 100 + k);
                let out = s
                    .move_messages(inbox.id, archive.id, &[uid])
                    .await
                    .expect("move");
                assert_eq!(out.pairs.len(), 1);
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    let moved: Vec<u32> = other
        .messages(archive.id)
        .await
        .expect("messages")
        .iter()
        .map(|m| m.uid.0)
        .collect();
    assert_eq!(moved, (1..=40).collect::<Vec<_>>());
    assert_eq!(
        db.store.messages(inbox.id).await.expect("messages").len(),
        440
    );
    other.close().await;
}

/// Waits (bounded, so a bug fails instead of hanging) for the next announcement.
async fn next_change(bus: &mut tokio::sync::broadcast::Receiver<Change>) -> Change {
    tokio::time::timeout(Duration::from_secs(20), bus.recv())
        .await
        .expect("an announcement within 20 s")
        .expect("bus open")
}

/// Appends to `mailbox` through `writer` until `bus` (another pool's) hears of it: its
/// listener connects in the background.
async fn append_until_heard(
    writer: &MetadataStore,
    mailbox: MailboxId,
    bus: &mut tokio::sync::broadcast::Receiver<Change>,
    body: &str,
) {
    loop {
        writer
            .append(mailbox, &msg(&[], body))
            .await
            .expect("append");
        if let Ok(c) = tokio::time::timeout(Duration::from_millis(500), bus.recv()).await {
            assert_eq!(c.expect("open"), Change::Mailbox(mailbox));
            return;
        }
    }
}

/// A second pool stands in for another replica: on PostgreSQL every committed change of one
/// reaches the other's bus (LISTEN/NOTIFY), once per transaction, and a process does not
/// hear its own changes twice; a rolled-back (failed) change notifies nobody. On SQLite
/// (one process) nothing crosses.
async fn changes_reach_other_processes(db: &Db) {
    let a = account(&db.store).await;
    let inbox = mailbox(&db.store, &a, "INBOX").await;
    let other = MetadataStore::connect(&db.url).await.expect("second pool");
    let mut theirs = other.bus().subscribe();
    let mut ours = db.store.bus().subscribe();
    let postgres = db.url.starts_with("postgres");
    if postgres {
        append_until_heard(&db.store, inbox.id, &mut theirs, "warm-up").await;
        while theirs.try_recv().is_ok() {}
    }
    while ours.try_recv().is_ok() {}

    let (_, uid, _) = db
        .store
        .append(inbox.id, &msg(&[], "crossing"))
        .await
        .expect("append");
    db.store
        .store_flags(inbox.id, &[uid], FlagOp::Add, &strings(&["\\Seen"]), None)
        .await
        .expect("store");
    db.store
        .store_flags(
            inbox.id,
            &[uid],
            FlagOp::Add,
            &strings(&["\\Deleted"]),
            None,
        )
        .await
        .expect("store");
    db.store.expunge(inbox.id, None).await.expect("expunge");
    let archive = mailbox(&db.store, &a, "Archive").await;
    let (_, moved, _) = db
        .store
        .append(inbox.id, &msg(&[], "moved"))
        .await
        .expect("append");
    db.store
        .move_messages(inbox.id, archive.id, &[moved])
        .await
        .expect("move");
    // Expunging nothing commits no change: the lock-only UPDATE does not notify.
    db.store.expunge(inbox.id, None).await.expect("expunge");

    let expected = [
        Change::Mailbox(inbox.id), // append
        Change::Mailbox(inbox.id), // \Seen
        Change::Mailbox(inbox.id), // \Deleted
        Change::Mailbox(inbox.id), // expunge
        Change::Mailbox(inbox.id), // append
    ];
    let mut local = Vec::new();
    while let Ok(c) = ours.try_recv() {
        local.push(c);
    }
    assert_eq!(&local[..5], &expected, "announced locally once each");
    assert_eq!(
        local.len(),
        7,
        "the move announces both mailboxes: {local:?}"
    );
    assert!(ours.try_recv().is_err(), "no echo of our own changes");
    if postgres {
        let mut remote = Vec::new();
        for _ in 0..7 {
            remote.push(next_change(&mut theirs).await);
        }
        assert_eq!(&remote[..5], &expected);
        let mut moved_pair = remote[5..].to_vec();
        moved_pair.sort_by_key(|c| match c {
            Change::Mailbox(id) => id.0,
            Change::All => 0,
        });
        let mut pair = vec![Change::Mailbox(inbox.id), Change::Mailbox(archive.id)];
        pair.sort_by_key(|c| match c {
            Change::Mailbox(id) => id.0,
            Change::All => 0,
        });
        assert_eq!(moved_pair, pair);
        // And the other way round.
        other
            .append(archive.id, &msg(&[], "from the other side"))
            .await
            .expect("append");
        assert_eq!(next_change(&mut ours).await, Change::Mailbox(archive.id));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(ours.try_recv().is_err(), "exactly once");

        // The listening connections are killed: once back, everything is announced as
        // changed (what was sent meanwhile is lost), and changes cross again.
        while theirs.try_recv().is_ok() {}
        let mut admin = PgConnection::connect(&db.url).await.expect("connect");
        let killed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'
               AND pg_terminate_backend(pid)",
        )
        .fetch_one(&mut admin)
        .await
        .expect("terminate");
        assert_eq!(killed, 2, "one listener per pool");
        admin.close().await.expect("close");
        assert_eq!(next_change(&mut theirs).await, Change::All);
        append_until_heard(&db.store, inbox.id, &mut theirs, "after the loss").await;
    } else {
        assert!(theirs.try_recv().is_err(), "SQLite: nothing crosses pools");
    }
    other.close().await;
}

// ---------------------------------------------------------------------------------------
// Backend-independent tests

#[test]
fn normalize_flags_rules() {
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &[]),
        (&["\\SEEN", "\\seen"], &["\\Seen"]),
        (&["$Foo", "$FOO", "\\Recent", "\\RECENT"], &["$Foo"]),
        (
            &["\\draft", "\\answered", "\\Flagged", "\\DELETED"],
            &["\\Draft", "\\Answered", "\\Flagged", "\\Deleted"],
        ),
        (&["", "NonJunk"], &["NonJunk"]),
    ];
    for (input, expected) in cases {
        assert_eq!(normalize_flags(input), strings(expected), "{input:?}");
    }
}

#[test]
fn database_url_rewrite() {
    assert_eq!(
        with_database("postgres://u@h:1/postgres", "t_1"),
        "postgres://u@h:1/t_1"
    );
    assert_eq!(
        with_database("postgres://u@h:1/postgres?sslmode=disable", "t"),
        "postgres://u@h:1/t?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h:1", "t"), "postgres://u@h:1/t");
}

#[tokio::test]
async fn sqlite_file_is_wal_and_persistent() {
    use sqlx::SqliteConnection;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("sub.db").display());
    let s = MetadataStore::connect(&url).await.expect("connect");
    let a = account(&s).await;
    s.close().await;
    let mut conn = SqliteConnection::connect(&url).await.expect("raw connect");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
    conn.close().await.expect("close");
    let again = MetadataStore::connect(&url)
        .await
        .expect("reopen (migrations are idempotent)");
    assert_eq!(
        again.account_by_address(&a.address).await.expect("lookup"),
        Some(a)
    );
    assert!(MetadataStore::connect("mysql://localhost/x").await.is_err());
}

#[tokio::test]
async fn blob_put_get() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = BlobStore::open(dir.path().join("blobs"))
        .await
        .expect("open");
    let body = b"From: a@example.com\r\n\r\nhello\r\n";
    let id = blobs.put(body).await.expect("put");
    assert_eq!(id, BlobId::of(body));
    assert!(id.is_valid());
    let path = dir
        .path()
        .join("blobs")
        .join(&id.0[..2])
        .join(&id.0[2..4])
        .join(&id.0);
    assert_eq!(std::fs::read(&path).expect("file in place"), body);
    assert_eq!(blobs.get(&id).await.expect("get").as_ref(), body);
    assert_eq!(blobs.put(body).await.expect("put again"), id, "idempotent");
    let entries = std::fs::read_dir(path.parent().expect("dir"))
        .expect("dir")
        .count();
    assert_eq!(entries, 1, "no temp files left behind");
    assert!(blobs.exists(&id).await.expect("exists"));

    let missing = BlobId::of(b"never stored");
    assert!(matches!(
        blobs.get(&missing).await,
        Err(BlobError::NotFound(_))
    ));
    let bogus = BlobId("../../etc/passwd".into());
    assert!(matches!(
        blobs.get(&bogus).await,
        Err(BlobError::NotFound(_))
    ));
    assert!(!blobs.exists(&bogus).await.expect("exists"));

    blobs.delete(&id).await.expect("delete");
    assert!(matches!(blobs.get(&id).await, Err(BlobError::NotFound(_))));
    assert!(matches!(
        blobs.delete(&id).await,
        Err(BlobError::NotFound(_))
    ));
    let empty = blobs.put(b"").await.expect("empty body");
    assert!(blobs.get(&empty).await.expect("get").is_empty());
}

#[tokio::test]
async fn blob_ranges_follow_partial_fetch_semantics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = BlobStore::open(dir.path()).await.expect("open");
    let body = b"0123456789";
    let id = blobs.put(body).await.expect("put");
    // (start, len, expected): fewer octets when the body ends first, none past its end.
    let cases: &[(u64, u64, &[u8])] = &[
        (0, 3, b"012"),
        (4, 2, b"45"),
        (8, 10, b"89"),
        (10, 1, b""),
        (1000, 1, b""),
        (0, 0, b""),
        (2, u64::MAX, b"23456789"),
        (u64::MAX, u64::MAX, b""),
    ];
    for &(start, len, want) in cases {
        let got = blobs.get_range(&id, start, len).await.expect("range");
        assert_eq!(got.as_ref(), want, "{start}+{len}");
    }
    for bad in [BlobId::of(b"never stored"), BlobId("../x".into())] {
        assert!(matches!(
            blobs.get_range(&bad, 0, 1).await,
            Err(BlobError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn blob_orphan_collection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = BlobStore::open(dir.path()).await.expect("open");
    let kept = blobs.put(b"referenced").await.expect("put");
    let orphan = blobs.put(b"orphan").await.expect("put");
    let referenced = HashSet::from([kept.clone()]);

    // Young orphans survive (their message may not be committed yet).
    assert_eq!(
        blobs
            .collect_orphans(&referenced, Duration::from_secs(3600))
            .await
            .expect("gc"),
        0
    );
    assert!(blobs.exists(&orphan).await.expect("exists"));

    assert_eq!(
        blobs
            .collect_orphans(&referenced, Duration::ZERO)
            .await
            .expect("gc"),
        1
    );
    assert!(!blobs.exists(&orphan).await.expect("exists"));
    assert!(blobs.exists(&kept).await.expect("exists"));
}

// ---------------------------------------------------------------------------------------
// Pipeline storage: aliases, labels, message metadata, quarantine

fn upsert(address: &str, aliases: &[&str]) -> AccountUpsert {
    AccountUpsert {
        tenant: "acme".into(),
        address: address.into(),
        password_hash: "$argon2id$x".into(),
        active: true,
        spec_digest: "d1".into(),
        aliases: strings(aliases),
        ..Default::default()
    }
}

async fn aliases_route_recipients_and_collisions_are_refused(db: &Db) {
    let s = &db.store;
    let a = s
        .upsert_account(&upsert(
            "a@example.com",
            &[
                "Sales@Example.com",
                "sales@example.com",
                "A@example.com",
                "info@example.com",
            ],
        ))
        .await
        .expect("upsert a");
    assert_eq!(
        s.aliases(a.id).await.expect("aliases"),
        strings(&["info@example.com", "sales@example.com"])
    );
    for recipient in [
        "a@example.com",
        "A@EXAMPLE.COM",
        "SALES@example.com",
        "info@example.com",
    ] {
        let found = s.account_by_recipient(recipient).await.expect("route");
        assert_eq!(found.map(|f| f.id), Some(a.id), "{recipient}");
    }
    assert_eq!(
        s.account_by_recipient("nobody@example.com")
            .await
            .expect("route"),
        None
    );
    // Aliases are not login names.
    assert_eq!(
        s.account_by_address("sales@example.com")
            .await
            .expect("lookup"),
        None
    );

    // (account b's address, its aliases, contested address, kind)
    let cases: &[(&str, &[&str], &str, &str)] = &[
        (
            "b@example.com",
            &["A@example.com"],
            "a@example.com",
            "the address",
        ),
        (
            "b@example.com",
            &["x@example.com", "Sales@example.com"],
            "sales@example.com",
            "an alias",
        ),
        ("info@example.com", &[], "info@example.com", "an alias"),
    ];
    for (address, aliases, contested, kind) in cases {
        match s.upsert_account(&upsert(address, aliases)).await {
            Err(StoreError::AddressTaken {
                address: got,
                account,
                owner,
                kind: k,
            }) => {
                assert_eq!(
                    (got.as_str(), k),
                    (*contested, *kind),
                    "{address} {aliases:?}"
                );
                assert_eq!(account, *address);
                assert_eq!(owner, "a@example.com");
                let text = StoreError::AddressTaken {
                    address: got,
                    account,
                    owner,
                    kind: k,
                }
                .to_string();
                assert!(
                    text.contains(address) && text.contains("a@example.com"),
                    "{text}"
                );
            }
            other => panic!("{address} {aliases:?}: {other:?}"),
        }
        // Nothing was written.
        assert_eq!(s.account_by_address(address).await.expect("lookup"), None);
        assert_eq!(
            s.account_by_recipient("x@example.com")
                .await
                .expect("route"),
            None
        );
    }

    // A new set replaces the old one; the freed alias can be taken by another account.
    s.upsert_account(&upsert("a@example.com", &["info@example.com"]))
        .await
        .expect("shrink");
    assert_eq!(
        s.account_by_recipient("sales@example.com")
            .await
            .expect("route"),
        None
    );
    let b = s
        .upsert_account(&upsert("b@example.com", &["sales@example.com"]))
        .await
        .expect("b takes the freed alias");
    assert_eq!(
        s.account_by_recipient("sales@example.com")
            .await
            .expect("route")
            .map(|r| r.id),
        Some(b.id)
    );

    // Deleting an account frees its aliases.
    s.delete_account(a.id).await.expect("delete");
    assert_eq!(
        s.account_by_recipient("info@example.com")
            .await
            .expect("route"),
        None
    );
    s.upsert_account(&upsert("info@example.com", &[]))
        .await
        .expect("the alias is free");
}

async fn labels_and_pipeline_ref_round_trip(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    assert!(a.labels.is_empty());
    assert_eq!(a.pipeline_ref, None);
    let labels = BTreeMap::from([
        ("team".to_string(), "finance".to_string()),
        ("mcp.dev/tier".to_string(), "gold \"quoted\" ü".to_string()),
    ]);
    let mut u = upsert(&a.address, &[]);
    u.labels = labels.clone();
    u.pipeline_ref = Some("strict".into());
    let stored = s.upsert_account(&u).await.expect("upsert");
    assert_eq!(
        (&stored.labels, stored.pipeline_ref.as_deref()),
        (&labels, Some("strict"))
    );
    let read = s
        .account_by_recipient(&a.address)
        .await
        .expect("lookup")
        .expect("exists");
    assert_eq!(
        (read.labels, read.pipeline_ref),
        (labels, Some("strict".into()))
    );
    let cleared = s
        .upsert_account(&upsert(&a.address, &[]))
        .await
        .expect("clear");
    assert!(cleared.labels.is_empty());
    assert_eq!(cleared.pipeline_ref, None);
}

async fn message_metadata_round_trip(db: &Db) {
    let s = &db.store;
    let a = account(s).await;
    let inbox = mailbox(s, &a, "INBOX").await;
    let archive = mailbox(s, &a, "Archive").await;
    let meta = BTreeMap::from([
        ("dlp.matches".to_string(), "2".to_string()),
        ("spam.score".to_string(), "-1.5".to_string()),
    ]);
    let mut tagged = msg(&[], "tagged");
    tagged.metadata = meta.clone();
    let (_, uid, _) = s.append(inbox.id, &tagged).await.expect("append");
    let (_, plain, _) = s
        .append(inbox.id, &msg(&[], "plain"))
        .await
        .expect("append");
    assert_eq!(
        s.message_metadata(inbox.id, uid).await.expect("read"),
        Some(meta.clone())
    );
    assert_eq!(
        s.message_metadata(inbox.id, plain).await.expect("read"),
        Some(BTreeMap::new())
    );
    assert_eq!(
        s.message_metadata(inbox.id, Uid(99)).await.expect("read"),
        None
    );
    // COPY and MOVE keep it.
    let copied = s.copy(inbox.id, archive.id, &[uid]).await.expect("copy");
    assert_eq!(
        s.message_metadata(archive.id, copied.pairs[0].1)
            .await
            .expect("read"),
        Some(meta.clone())
    );
    // Merging adds keys and replaces values, on a message with or without metadata.
    let more = BTreeMap::from([
        ("spam.score".to_string(), "3.0".to_string()),
        ("scan.done".to_string(), "yes".to_string()),
    ]);
    assert!(
        s.merge_message_metadata(inbox.id, uid, &more)
            .await
            .expect("merge")
    );
    let mut merged = meta;
    merged.extend(more.clone());
    assert_eq!(
        s.message_metadata(inbox.id, uid).await.expect("read"),
        Some(merged)
    );
    assert!(
        s.merge_message_metadata(inbox.id, plain, &more)
            .await
            .expect("merge")
    );
    assert_eq!(
        s.message_metadata(inbox.id, plain).await.expect("read"),
        Some(more.clone())
    );
    assert!(
        !s.merge_message_metadata(inbox.id, Uid(99), &more)
            .await
            .expect("merge")
    );
    // One message by UID.
    assert_eq!(
        s.message(inbox.id, plain)
            .await
            .expect("read")
            .map(|m| m.uid),
        Some(plain)
    );
    assert_eq!(s.message(inbox.id, Uid(99)).await.expect("read"), None);
}

/// A quarantine on the test database with blobs in a fresh directory.
async fn quarantine(db: &Db) -> (Quarantine, BlobStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = BlobStore::open(dir.path().join("blobs"))
        .await
        .expect("blobs");
    (Quarantine::new(db.store.clone(), blobs.clone()), blobs, dir)
}

const HELD: &str =
    "From: a@example.org\r\nTo: user@example.com\r\nSubject: card\r\n\r\n4111 1111 1111 1111\r\n";

fn held(a: &AccountRecord, folder: &str, body: &str) -> HeldMessage {
    HeldMessage {
        tenant: a.tenant.clone(),
        account: a.id,
        recipient: "Sales@Example.com".into(),
        mail_from: "a@example.org".into(),
        stage: mcp_crds::pipeline::Stage::Deliver,
        folder: folder.into(),
        reason: "dlp: payment card number".into(),
        pipeline: "default".into(),
        step: "dlp".into(),
        revision: "rev-1".into(),
        flags: strings(&["\\flagged", "$Held"]),
        internal_date: date(),
        message: bytes::Bytes::from(body.to_owned()),
    }
}

async fn quarantine_hold_list_get_delete(db: &Db) {
    let (q, blobs, _dir) = quarantine(db).await;
    let a = account(&db.store).await;
    let id = q.hold(held(&a, "INBOX", HELD)).await.expect("hold");
    let entry = q.get(&id).await.expect("get");
    assert_eq!(entry.id, id);
    assert_eq!(entry.tenant, "acme");
    assert_eq!(entry.account, Some(a.id));
    assert_eq!(entry.account_address.as_deref(), Some("user@example.com"));
    assert_eq!(entry.recipient, "sales@example.com");
    assert_eq!(entry.mail_from, "a@example.org");
    assert_eq!(entry.stage, mcp_crds::pipeline::Stage::Deliver);
    assert_eq!(
        (entry.folder.as_str(), entry.reason.as_str()),
        ("INBOX", "dlp: payment card number")
    );
    assert_eq!(
        (
            entry.pipeline.as_str(),
            entry.step.as_str(),
            entry.revision.as_str()
        ),
        ("default", "dlp", "rev-1")
    );
    assert_eq!(entry.size as usize, HELD.len());
    assert_eq!(entry.flags, strings(&["\\Flagged", "$Held"]));
    assert_eq!(entry.internal_date, date());
    assert_eq!(entry.blob, BlobId::of(HELD.as_bytes()));
    // The original is in the blob store before hold returns.
    assert_eq!(
        &blobs.get(&entry.blob).await.expect("blob")[..],
        HELD.as_bytes()
    );
    let (_, body) = q.message(&id).await.expect("message");
    assert_eq!(&body[..], HELD.as_bytes());

    let all = QuarantineQuery {
        tenant: "acme".into(),
        account: None,
        after: None,
        limit: 10,
    };
    assert_eq!(q.list(&all).await.expect("list"), vec![entry.clone()]);

    q.delete(&id).await.expect("delete");
    assert!(matches!(
        q.get(&id).await,
        Err(QuarantineError::NotFound(_))
    ));
    assert!(matches!(
        q.delete(&id).await,
        Err(QuarantineError::NotFound(_))
    ));
    assert!(matches!(
        q.release(&id).await,
        Err(QuarantineError::NotFound(_))
    ));
    assert!(q.list(&all).await.expect("list").is_empty());
    let unknown: QuarantineId = "0".repeat(44).parse().expect("id");
    assert!(matches!(
        q.delete(&unknown).await,
        Err(QuarantineError::NotFound(_))
    ));
    assert!(matches!(
        q.release(&unknown).await,
        Err(QuarantineError::NotFound(_))
    ));
}

async fn quarantine_release_appends_exactly_once_and_notifies(db: &Db) {
    let (q, _blobs, _dir) = quarantine(db).await;
    let s = &db.store;
    let a = account(s).await;
    let archive = mailbox(s, &a, "Archive").await;
    let id = q.hold(held(&a, "Archive", HELD)).await.expect("hold");
    assert!(s.messages(archive.id).await.expect("messages").is_empty());

    let mut bus = s.bus().subscribe();
    let released = q.release(&id).await.expect("release");
    assert_eq!(released.account, a.id);
    assert_eq!(released.folder, "Archive");
    assert_eq!(released.uid_validity, archive.uid_validity);
    assert_eq!(released.uid, Uid(1));
    assert_eq!(
        bus.try_recv().expect("IDLE sessions are told"),
        Change::Mailbox(archive.id)
    );

    let stored = s.messages(archive.id).await.expect("messages");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].uid, released.uid);
    assert_eq!(stored[0].blob, BlobId::of(HELD.as_bytes()));
    assert_eq!(stored[0].size as usize, HELD.len());
    assert_eq!(stored[0].flags, strings(&["\\Flagged", "$Held"]));
    assert_eq!(stored[0].internal_date, date());
    let cache = s.cache(archive.id, &[released.uid]).await.expect("cache");
    let envelope = String::from_utf8(cache[0].1.envelope.clone()).expect("utf-8");
    assert!(envelope.contains("\"card\""), "{envelope}");

    // A second release (a retry after a lost answer) changes nothing.
    assert!(matches!(
        q.release(&id).await,
        Err(QuarantineError::NotFound(_))
    ));
    assert!(matches!(
        q.delete(&id).await,
        Err(QuarantineError::NotFound(_))
    ));
    assert_eq!(s.messages(archive.id).await.expect("messages").len(), 1);
}

async fn quarantine_release_falls_back_to_inbox(db: &Db) {
    let (q, _blobs, _dir) = quarantine(db).await;
    let s = &db.store;
    let a = account(s).await;
    s.create_mailbox(a.id, "Projects/Secret", None)
        .await
        .expect("create");
    let id = q
        .hold(held(&a, "Projects/Secret", HELD))
        .await
        .expect("hold");
    s.delete_mailbox(a.id, "Projects/Secret")
        .await
        .expect("delete folder");
    let released = q.release(&id).await.expect("release");
    assert_eq!(released.folder, "INBOX");
    let inbox = mailbox(s, &a, "INBOX").await;
    assert_eq!(s.messages(inbox.id).await.expect("messages").len(), 1);
}

/// A release that fails inside its transaction (here: no folder to put the message in)
/// rolls back the deletion of the quarantine row. The same holds for a crash at any point
/// of the transaction: the row and the message change in one commit.
async fn quarantine_failed_release_keeps_the_message(db: &Db) {
    let (q, _blobs, _dir) = quarantine(db).await;
    let s = &db.store;
    let a = account(s).await;
    let id = q.hold(held(&a, "Archive", HELD)).await.expect("hold");
    s.delete_mailbox(a.id, "Archive")
        .await
        .expect("delete Archive");
    s.delete_mailbox(a.id, "INBOX").await.expect("delete INBOX");
    match q.release(&id).await {
        Err(QuarantineError::NoFolder { folder, .. }) => assert_eq!(folder, "Archive"),
        other => panic!("{other:?}"),
    }
    assert!(q.get(&id).await.is_ok(), "still quarantined");
    s.create_mailbox(a.id, "INBOX", None)
        .await
        .expect("recreate INBOX");
    assert_eq!(q.release(&id).await.expect("release").folder, "INBOX");
}

async fn quarantine_release_into_a_deleted_account_is_an_error(db: &Db) {
    let (q, _blobs, _dir) = quarantine(db).await;
    let s = &db.store;
    let a = account(s).await;
    let id = q.hold(held(&a, "INBOX", HELD)).await.expect("hold");
    s.delete_account(a.id).await.expect("delete account");
    let entry = q.get(&id).await.expect("kept");
    assert_eq!((entry.account, entry.account_address), (None, None));
    match q.release(&id).await {
        Err(e @ QuarantineError::AccountGone { .. }) => {
            assert!(e.to_string().contains("sales@example.com"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // Even after the address is provisioned again: the old account is gone.
    account(s).await;
    assert!(matches!(
        q.release(&id).await,
        Err(QuarantineError::AccountGone { .. })
    ));
    q.delete(&id).await.expect("delete");
}

async fn quarantine_concurrent_releases_store_one_message(db: &Db) {
    let (q, _blobs, _dir) = quarantine(db).await;
    let s = &db.store;
    let a = account(s).await;
    let id = q.hold(held(&a, "INBOX", HELD)).await.expect("hold");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (q, id) = (q.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                q.release(&id).await.map(|_| "released")
            } else {
                q.delete(&id).await.map(|()| "deleted")
            }
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        match t.await.expect("join") {
            Ok(what) => won.push(what),
            Err(QuarantineError::NotFound(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    let inbox = mailbox(s, &a, "INBOX").await;
    let stored = s.messages(inbox.id).await.expect("messages").len();
    assert_eq!(stored, usize::from(won[0] == "released"));
}

async fn quarantine_paging_and_filters(db: &Db) {
    let (q, _blobs, _dir) = quarantine(db).await;
    let s = &db.store;
    let a = account(s).await;
    let b = s
        .upsert_account(&upsert("b@example.com", &[]))
        .await
        .expect("b");
    let mut other = upsert("c@other.example", &[]);
    other.tenant = "globex".into();
    let c = s.upsert_account(&other).await.expect("c");
    let mut ids = Vec::new();
    for i in 0..5 {
        let owner = if i % 2 == 0 { &a } else { &b };
        ids.push(
            q.hold(held(owner, "INBOX", &format!("{HELD}{i}")))
                .await
                .expect("hold"),
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    q.hold(held(&c, "INBOX", HELD))
        .await
        .expect("hold other tenant");

    let page = |after: Option<QuarantineId>, account, limit| QuarantineQuery {
        tenant: "acme".into(),
        account,
        after,
        limit,
    };
    let first = q.list(&page(None, None, 2)).await.expect("list");
    assert_eq!(
        first.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids[..2]
    );
    // The cursor still works when its entry was released meanwhile.
    q.release(&ids[1]).await.expect("release");
    let second = q
        .list(&page(Some(ids[1].clone()), None, 2))
        .await
        .expect("list");
    assert_eq!(
        second.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids[2..4]
    );
    let last = q
        .list(&page(Some(ids[3].clone()), None, 2))
        .await
        .expect("list");
    assert_eq!(
        last.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids[4..]
    );

    let of_a = q.list(&page(None, Some(a.id), 100)).await.expect("list");
    assert_eq!(
        of_a.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        [ids[0].clone(), ids[2].clone(), ids[4].clone()]
    );
    // A huge limit is clamped, a zero one means one.
    assert_eq!(
        q.list(&page(None, None, u32::MAX))
            .await
            .expect("list")
            .len(),
        4
    );
    assert_eq!(q.list(&page(None, None, 0)).await.expect("list").len(), 1);
    let globex = QuarantineQuery {
        tenant: "globex".into(),
        account: None,
        after: None,
        limit: 10,
    };
    assert_eq!(q.list(&globex).await.expect("list").len(), 1);
}

async fn quarantined_blobs_are_referenced(db: &Db) {
    let (q, _blobs, _dir) = quarantine(db).await;
    let s = &db.store;
    let a = account(s).await;
    let id = q.hold(held(&a, "INBOX", HELD)).await.expect("hold");
    let blob = BlobId::of(HELD.as_bytes());
    assert_eq!(
        s.referenced_blobs().await.expect("refs"),
        HashSet::from([blob.clone()])
    );
    q.release(&id).await.expect("release");
    // Now referenced by the stored message.
    assert_eq!(
        s.referenced_blobs().await.expect("refs"),
        HashSet::from([blob])
    );
    let id = q.hold(held(&a, "INBOX", "other")).await.expect("hold");
    assert!(
        s.referenced_blobs()
            .await
            .expect("refs")
            .contains(&BlobId::of(b"other"))
    );
    q.delete(&id).await.expect("delete");
    assert!(
        !s.referenced_blobs()
            .await
            .expect("refs")
            .contains(&BlobId::of(b"other"))
    );
}
