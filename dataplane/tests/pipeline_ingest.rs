//! The ingest path against a real store (SQLite, blob directory): what each disposition and
//! each `onError` policy does to the mailbox and the quarantine, with plugins that fail on
//! purpose. Every case checks that the message is stored exactly once, or held exactly once,
//! or refused and nowhere: never lost, never duplicated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use mcp_crds::pipeline::{OnError, Stage};
use mcp_dataplane::ingest::{Ingest, Ingested, Submission};
use mcp_dataplane::pipeline::testing::{Behaviour, FaultPlugin};
use mcp_dataplane::pipeline::{
    CompiledPipeline, CompiledStep, PipelineMetrics, PipelineSet, Pipelines, Scope,
};
use mcp_dataplane::store::*;
use mcp_plugin_api::{Capability, Envelope, Mutation, Plugin, StepOutput, Verdict};
use prometheus_client::registry::Registry;

const MESSAGE: &[u8] = b"From: bob@example.net\r\nSubject: hi\r\n\r\nbody\r\n";

struct World {
    _dir: tempfile::TempDir,
    store: MetadataStore,
    blobs: BlobStore,
    account: AccountRecord,
    ingest: Arc<Ingest>,
}

fn step(name: &str, plugin: Arc<FaultPlugin>, on_error: OnError) -> CompiledStep {
    CompiledStep {
        name: name.into(),
        plugin_name: format!("fault-{name}"),
        capabilities: plugin.capabilities(),
        plugin,
        timeout: Duration::from_millis(200),
        on_error,
        retry: None,
        suspended: false,
    }
}

fn pipeline(stages: &[Stage], steps: Vec<CompiledStep>) -> CompiledPipeline {
    CompiledPipeline {
        namespace: "mcp-example".into(),
        name: "p".into(),
        revision: "0123456789abcdef".into(),
        tenant: Some("example".into()),
        scope: Scope::TenantDefault,
        stages: stages.iter().copied().collect::<BTreeSet<_>>(),
        steps,
        deadline: Duration::from_secs(5),
        dry_run: false,
    }
}

async fn world(pipelines: Vec<CompiledPipeline>) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("meta.db").display());
    let store = MetadataStore::connect(&url).await.expect("connect");
    let blobs = BlobStore::open(dir.path().join("blobs"))
        .await
        .expect("blobs");
    let account = store
        .upsert_account(&AccountUpsert {
            tenant: "example".into(),
            address: "alice@example.com".into(),
            password_hash: String::new(),
            active: true,
            ..AccountUpsert::default()
        })
        .await
        .expect("account");
    let metrics = Arc::new(PipelineMetrics::register(&mut Registry::default()));
    let set = Pipelines::new(PipelineSet::from_compiled(pipelines));
    let ingest = Ingest::new(store.clone(), blobs.clone(), set, metrics);
    World {
        _dir: dir,
        store,
        blobs,
        account,
        ingest,
    }
}

impl World {
    async fn submit(&self, stage: Stage) -> Ingested {
        self.ingest
            .submit(Submission {
                stage,
                account: self.account.clone(),
                folder: "INBOX".into(),
                envelope: Envelope {
                    mail_from: "bob@example.net".into(),
                    rcpt_to: "alice@example.com".into(),
                },
                message: Bytes::from_static(MESSAGE),
                flags: vec!["\\Seen".into()],
                internal_date: Utc::now().fixed_offset(),
            })
            .await
            .expect("ingest")
    }

    /// The messages of `folder`, as stored octets.
    async fn folder(&self, folder: &str) -> Vec<(MessageRecord, Bytes)> {
        let Some(m) = self
            .store
            .mailbox(self.account.id, folder)
            .await
            .expect("mailbox")
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for r in self.store.messages(m.id).await.expect("messages") {
            let body = self.blobs.get(&r.blob).await.expect("blob");
            out.push((r, body));
        }
        out
    }

    fn quarantine(&self) -> Quarantine {
        Quarantine::new(self.store.clone(), self.blobs.clone())
    }

    async fn held(&self) -> Vec<QuarantinedMessage> {
        self.quarantine()
            .list(&QuarantineQuery {
                tenant: "example".into(),
                account: None,
                after: None,
                limit: 100,
            })
            .await
            .expect("list")
    }
}

#[tokio::test]
async fn on_error_policies_store_hold_or_refuse_exactly_once() {
    type Fault = (&'static str, fn() -> Behaviour);
    let faults: [Fault; 4] = [
        ("panic", || Behaviour::Panic),
        ("panic at call", || Behaviour::PanicAtCall),
        ("hang", || Behaviour::Hang),
        ("undeclared mutation", || {
            Behaviour::Reply(StepOutput::mutate(vec![Mutation::ReplaceBody {
                body: Bytes::from_static(b"rewritten\r\n"),
            }]))
        }),
    ];
    for (fault, behaviour) in faults {
        for policy in [OnError::FailOpen, OnError::FailClosed, OnError::Quarantine] {
            let what = format!("{fault} under {policy:?}");
            let w = world(vec![pipeline(
                &[Stage::Deliver],
                vec![step("bad", FaultPlugin::new(behaviour(), &[]), policy)],
            )])
            .await;
            let got = w.submit(Stage::Deliver).await;
            let inbox = w.folder("INBOX").await;
            let held = w.held().await;
            match policy {
                OnError::FailOpen => {
                    assert!(
                        matches!(got, Ingested::Stored { filed: false, .. }),
                        "{what}: {got:?}"
                    );
                    assert_eq!(inbox.len(), 1, "{what}");
                    assert_eq!(&inbox[0].1[..], MESSAGE, "{what}: stored unchanged");
                    assert!(held.is_empty(), "{what}");
                }
                OnError::FailClosed => {
                    let Ingested::TempFailed { status, .. } = got else {
                        panic!("{what}: {got:?}")
                    };
                    assert_eq!(status.to_string(), "4.3.0", "{what}");
                    assert!(
                        inbox.is_empty() && held.is_empty(),
                        "{what}: refused and nowhere"
                    );
                }
                _ => {
                    let Ingested::Quarantined { id, reason } = got else {
                        panic!("{what}: {got:?}")
                    };
                    assert!(reason.starts_with("step bad failed"), "{what}: {reason}");
                    assert!(inbox.is_empty(), "{what}");
                    assert_eq!(held.len(), 1, "{what}");
                    let id: QuarantineId = id.parse().expect("id");
                    let (_, original) = w.quarantine().message(&id).await.expect("held message");
                    assert_eq!(&original[..], MESSAGE, "{what}: the original is held");
                    // Release puts it in INBOX once; a second release finds nothing.
                    w.quarantine().release(&id).await.expect("release");
                    assert!(w.quarantine().release(&id).await.is_err(), "{what}");
                    let inbox = w.folder("INBOX").await;
                    assert_eq!(inbox.len(), 1, "{what}");
                    assert_eq!(&inbox[0].1[..], MESSAGE, "{what}");
                    assert!(w.held().await.is_empty(), "{what}");
                }
            }
        }
    }
}

#[tokio::test]
async fn verdicts_reach_the_store_as_documented() {
    let quarantine_verdict = || {
        FaultPlugin::new(
            Behaviour::Reply(StepOutput {
                verdict: Verdict::quarantine("card number"),
                mutations: Vec::new(),
            }),
            &[],
        )
    };
    let cases: Vec<(Arc<FaultPlugin>, &str)> = vec![
        (
            FaultPlugin::new(
                Behaviour::Reply(StepOutput::verdict(Verdict::reject("no"))),
                &[],
            ),
            "rejected",
        ),
        (
            FaultPlugin::new(Behaviour::Reply(StepOutput::verdict(Verdict::Discard)), &[]),
            "discarded",
        ),
        (quarantine_verdict(), "quarantined"),
    ];
    for (plugin, want) in cases {
        let w = world(vec![pipeline(
            &[Stage::Append],
            vec![step("decide", plugin, OnError::FailClosed)],
        )])
        .await;
        let got = w.submit(Stage::Append).await;
        let inbox = w.folder("INBOX").await;
        let held = w.held().await;
        match want {
            "rejected" => assert!(
                matches!(got, Ingested::Rejected { .. }) && inbox.is_empty() && held.is_empty()
            ),
            "discarded" => {
                assert!(matches!(got, Ingested::Discarded) && inbox.is_empty() && held.is_empty())
            }
            _ => {
                assert!(matches!(got, Ingested::Quarantined { .. }), "{got:?}");
                assert!(inbox.is_empty());
                assert_eq!(held.len(), 1);
                assert_eq!(held[0].reason, "card number");
                assert_eq!(held[0].step, "decide");
                assert_eq!(held[0].pipeline, "mcp-example/p");
                // Released with the flags APPEND asked for.
                let id = held[0].id.clone();
                w.quarantine().release(&id).await.expect("release");
                let inbox = w.folder("INBOX").await;
                assert_eq!(inbox[0].0.flags, ["\\Seen"]);
            }
        }
    }
}

#[tokio::test]
async fn mutations_are_stored_with_the_message() {
    let plugin = FaultPlugin::new(
        Behaviour::Reply(StepOutput::mutate(vec![
            Mutation::add_header("X-Scanned", "yes").expect("valid"),
            Mutation::AddKeyword {
                keyword: "$Scanned".into(),
            },
            Mutation::FileInto {
                folder: "Archive/2026".into(),
            },
            Mutation::SetMetadata {
                key: "scan.result".into(),
                value: "clean".into(),
            },
        ])),
        &[
            Capability::AddHeader,
            Capability::AddKeyword,
            Capability::FileInto,
            Capability::SetMetadata,
        ],
    );
    let w = world(vec![pipeline(
        &[Stage::Deliver],
        vec![step("scan", plugin, OnError::FailClosed)],
    )])
    .await;
    let got = w.submit(Stage::Deliver).await;
    let Ingested::Stored {
        folder, uid, filed, ..
    } = got
    else {
        panic!("{got:?}")
    };
    assert_eq!((folder.as_str(), filed), ("Archive/2026", true));
    assert!(w.folder("INBOX").await.is_empty());
    assert!(
        w.store
            .mailbox(w.account.id, "Archive")
            .await
            .expect("mailbox")
            .is_some(),
        "superior created"
    );
    let archived = w.folder("Archive/2026").await;
    assert_eq!(archived.len(), 1);
    assert!(
        archived[0]
            .1
            .starts_with(b"X-Scanned: yes\r\nFrom: bob@example.net\r\n")
    );
    let flags: BTreeSet<&str> = archived[0].0.flags.iter().map(String::as_str).collect();
    assert_eq!(flags, BTreeSet::from(["$Scanned", "\\Seen"]));
    let mailbox = w
        .store
        .mailbox(w.account.id, "Archive/2026")
        .await
        .expect("m")
        .expect("m");
    let meta: BTreeMap<String, String> = w
        .store
        .message_metadata(mailbox.id, uid)
        .await
        .expect("metadata")
        .expect("message");
    assert_eq!(meta.get("scan.result").map(String::as_str), Some("clean"));
    assert_eq!(
        meta.get("pipeline.revisions").map(String::as_str),
        Some("mcp-example/p@0123456789abcdef")
    );
}

/// Polls `check` (a store query) until it holds; post-store runs in the background.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} never happened");
}

#[tokio::test]
async fn post_store_changes_the_stored_message() {
    let tagger = FaultPlugin::new(
        Behaviour::Reply(StepOutput::mutate(vec![
            Mutation::AddKeyword {
                keyword: "$Checked".into(),
            },
            Mutation::SetMetadata {
                key: "check.result".into(),
                value: "ok".into(),
            },
            Mutation::FileInto {
                folder: "Checked".into(),
            },
        ])),
        &[
            Capability::AddKeyword,
            Capability::SetMetadata,
            Capability::FileInto,
        ],
    );
    let w = world(vec![pipeline(
        &[Stage::PostStore],
        vec![step("check", tagger, OnError::FailOpen)],
    )])
    .await;
    let got = w.submit(Stage::Deliver).await;
    assert!(
        matches!(got, Ingested::Stored { ref folder, .. } if folder == "INBOX"),
        "{got:?}"
    );
    eventually("the post-store move", || async {
        let checked = w.folder("Checked").await;
        checked.len() == 1 && checked[0].0.flags.iter().any(|f| f == "$Checked")
    })
    .await;
    assert!(w.folder("INBOX").await.is_empty());
    let checked = w
        .store
        .mailbox(w.account.id, "Checked")
        .await
        .expect("m")
        .expect("m");
    let uid = w.folder("Checked").await[0].0.uid;
    let meta = w
        .store
        .message_metadata(checked.id, uid)
        .await
        .expect("metadata")
        .expect("message");
    assert_eq!(
        meta.get("check.result").map(String::as_str),
        Some("ok"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("pipeline.revisions.post-store")
            .map(String::as_str),
        Some("mcp-example/p@0123456789abcdef")
    );

    let w = world(vec![pipeline(
        &[Stage::PostStore],
        vec![step(
            "hold",
            FaultPlugin::new(
                Behaviour::Reply(StepOutput::verdict(Verdict::quarantine("late"))),
                &[],
            ),
            OnError::FailOpen,
        )],
    )])
    .await;
    w.submit(Stage::Deliver).await;
    eventually("the post-store quarantine", || async {
        w.held().await.len() == 1
    })
    .await;
    eventually("the expunge", || async {
        w.folder("INBOX").await.is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_held_message_records_the_address_it_was_sent_to() {
    let hold = FaultPlugin::new(
        Behaviour::Reply(StepOutput::verdict(Verdict::quarantine("held"))),
        &[],
    );
    let w = world(vec![pipeline(
        &[Stage::Deliver],
        vec![step("hold", hold, OnError::FailClosed)],
    )])
    .await;
    w.ingest
        .submit(Submission {
            stage: Stage::Deliver,
            account: w.account.clone(),
            folder: "INBOX".into(),
            envelope: Envelope {
                mail_from: "bob@example.net".into(),
                rcpt_to: "Sales@Example.com".into(),
            },
            message: Bytes::from_static(MESSAGE),
            flags: Vec::new(),
            internal_date: Utc::now().fixed_offset(),
        })
        .await
        .expect("ingest");
    let held = w.held().await;
    assert_eq!(
        held[0].recipient, "sales@example.com",
        "the alias, not the account"
    );
    assert_eq!(
        held[0].account_address.as_deref(),
        Some("alice@example.com")
    );
}

#[tokio::test]
async fn file_into_the_same_folder_in_another_case_is_not_filing() {
    let plugin = FaultPlugin::new(
        Behaviour::Reply(StepOutput::mutate(vec![Mutation::FileInto {
            folder: "inbox".into(),
        }])),
        &[Capability::FileInto],
    );
    let w = world(vec![pipeline(
        &[Stage::Append],
        vec![step("file", plugin, OnError::FailClosed)],
    )])
    .await;
    let got = w.submit(Stage::Append).await;
    assert!(
        matches!(got, Ingested::Stored { filed: false, ref folder, .. } if folder == "INBOX"),
        "{got:?}"
    );
}
