//! The quarantine endpoints of the admin API and the Mailbox fields the pipeline needs
//! (labels, pipelineRef, aliases), called in-process on a real SQLite store and blob
//! directory; the store behaviour itself is tested on both backends in `store.rs`.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use chrono::DateTime;
use mcp_crds::dataplane::{
    ADMIN_PATH, AccountState, Problem, QUARANTINE_PATH, QuarantineEntry, QuarantineList,
    ReleaseOutcome,
};
use mcp_crds::pipeline::Stage;
use mcp_dataplane::admin::{Admin, AdminToken, router};
use mcp_dataplane::pipeline::{PipelineSet, Pipelines};
use mcp_dataplane::standalone::apply::DigestKey;
use mcp_dataplane::store::{
    AccountRecord, AccountUpsert, BlobStore, HeldMessage, MetadataStore, Quarantine, QuarantineId,
};
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const ALICE: &str = "alice@acme.example";
const MESSAGE: &str =
    "From: x@example.org\r\nTo: alice@acme.example\r\nSubject: held\r\n\r\nbody\r\n";

struct Api {
    router: Router,
    store: MetadataStore,
    quarantine: Quarantine,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        serde_json::from_slice(&self.body).expect("JSON")
    }

    fn problem(&self) -> Problem {
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{:?}",
            self.body
        );
        let p: Problem = serde_json::from_slice(&self.body).expect("Problem");
        assert_eq!(p.status, self.status.as_u16());
        p
    }
}

async fn api() -> Api {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("meta.sqlite").display());
    let store = MetadataStore::connect(&url).await.expect("connect");
    let blobs = BlobStore::open(dir.path().join("blobs"))
        .await
        .expect("blobs");
    let admin = Admin {
        store: store.clone(),
        blobs: blobs.clone(),
        tenant: "acme".into(),
        domains: vec!["acme.example".into()],
        key: DigestKey::from_bytes([3; 32]),
        pipelines: Pipelines::new(PipelineSet::default()),
        plugins: mcp_dataplane::plugin_host::PluginHost::new(
            mcp_dataplane::plugin_host::HostMode::Standalone {
                data_dir: dir.path().to_owned(),
            },
            Default::default(),
        ),
    };
    Api {
        router: router(admin, AdminToken::new(TOKEN.as_bytes())),
        quarantine: Quarantine::new(store.clone(), blobs),
        store,
        _dir: dir,
    }
}

impl Api {
    async fn call(&self, method: Method, uri: &str, body: Option<&Value>) -> Answer {
        let builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {TOKEN}"));
        let request = match body {
            Some(b) => builder
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => builder.body(Body::empty()),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn put_account(&self, address: &str, extra: Value) -> Answer {
        let mut body = json!({
            "tenant": "acme",
            "spec": {
                "tenant": "acme",
                "address": address,
                "credentials": {"secretRef": {"name": "pw"}},
            },
            "password": "pw",
        });
        if let (Some(obj), Value::Object(extra)) = (body.as_object_mut(), extra) {
            for (k, v) in extra {
                if k == "spec" {
                    if let (Some(spec), Value::Object(fields)) = (obj["spec"].as_object_mut(), v) {
                        spec.extend(fields);
                    }
                } else {
                    obj.insert(k, v);
                }
            }
        }
        self.call(Method::PUT, &format!("{ADMIN_PATH}/{address}"), Some(&body))
            .await
    }

    async fn account(&self, tenant: &str, address: &str) -> AccountRecord {
        self.store
            .upsert_account(&AccountUpsert {
                tenant: tenant.into(),
                address: address.into(),
                password_hash: String::new(),
                active: true,
                spec_digest: "d".into(),
                ..Default::default()
            })
            .await
            .expect("upsert")
    }

    async fn hold(&self, a: &AccountRecord, folder: &str) -> QuarantineId {
        self.quarantine
            .hold(HeldMessage {
                tenant: a.tenant.clone(),
                account: a.id,
                recipient: a.address.clone(),
                mail_from: "x@example.org".into(),
                stage: Stage::Deliver,
                folder: folder.into(),
                reason: "dlp: card".into(),
                pipeline: "default".into(),
                step: "dlp".into(),
                revision: "r1".into(),
                flags: Vec::new(),
                internal_date: DateTime::parse_from_rfc3339("2024-01-02T03:04:05+01:00")
                    .expect("date"),
                message: Bytes::from_static(MESSAGE.as_bytes()),
            })
            .await
            .expect("hold")
    }
}

fn q(rest: &str) -> String {
    format!("{QUARANTINE_PATH}{rest}")
}

#[tokio::test]
async fn list_get_raw_release_and_delete() {
    let api = api().await;
    let alice = api.account("acme", ALICE).await;
    let first = api.hold(&alice, "Archive").await;
    let second = api.hold(&alice, "INBOX").await;

    let list: QuarantineList = api.call(Method::GET, &q(""), None).await.json();
    assert_eq!(
        list.items.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        [first.as_str(), second.as_str()]
    );
    assert_eq!(list.next, None);
    let entry = &list.items[0];
    assert_eq!(entry.mailbox.as_deref(), Some(ALICE));
    assert_eq!(entry.stage, Stage::Deliver);
    assert_eq!(entry.folder, "Archive");
    assert_eq!(entry.size, MESSAGE.len() as u64);
    assert_eq!(entry.internal_date, "2024-01-02T03:04:05+01:00");

    let page: QuarantineList = api.call(Method::GET, &q("?limit=1"), None).await.json();
    assert_eq!(page.next.as_deref(), Some(first.as_str()));
    let page: QuarantineList = api
        .call(Method::GET, &q(&format!("?limit=1&after={first}")), None)
        .await
        .json();
    assert_eq!(page.items[0].id, second.as_str());
    let by_mailbox: QuarantineList = api
        .call(Method::GET, &q("?mailbox=Alice%40ACME.example"), None)
        .await
        .json();
    assert_eq!(by_mailbox.items.len(), 2);
    let nobody: QuarantineList = api
        .call(Method::GET, &q("?mailbox=nobody@acme.example"), None)
        .await
        .json();
    assert!(nobody.items.is_empty());

    let got: QuarantineEntry = api
        .call(Method::GET, &q(&format!("/{first}")), None)
        .await
        .json();
    assert_eq!(&got, entry);
    for uri in [
        q(&format!("/{first}?raw=1")),
        q(&format!("/{first}/message")),
    ] {
        let raw = api.call(Method::GET, &uri, None).await;
        assert_eq!(raw.status, StatusCode::OK, "{uri}");
        assert_eq!(
            raw.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("message/rfc822")
        );
        assert_eq!(&raw.body[..], MESSAGE.as_bytes());
    }

    let released: ReleaseOutcome = api
        .call(Method::POST, &q(&format!("/{first}/release")), None)
        .await
        .json();
    assert_eq!(
        (
            released.mailbox.as_str(),
            released.folder.as_str(),
            released.uid
        ),
        (ALICE, "Archive", 1)
    );
    let archive = api
        .store
        .mailbox(alice.id, "Archive")
        .await
        .expect("lookup")
        .expect("Archive");
    assert_eq!(released.uid_validity, archive.uid_validity.0);
    assert_eq!(
        api.store
            .messages(archive.id)
            .await
            .expect("messages")
            .len(),
        1
    );
    // Released twice: 404, and still one message.
    let again = api
        .call(Method::POST, &q(&format!("/{first}/release")), None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(again.problem().detail.unwrap_or_default().contains("id:"));
    assert_eq!(
        api.store
            .messages(archive.id)
            .await
            .expect("messages")
            .len(),
        1
    );

    let deleted = api
        .call(Method::DELETE, &q(&format!("/{second}")), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.body.is_empty());
    let gone = api
        .call(Method::DELETE, &q(&format!("/{second}")), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    gone.problem();
    let empty: QuarantineList = api.call(Method::GET, &q(""), None).await.json();
    assert!(empty.items.is_empty());
}

#[tokio::test]
async fn another_tenants_entries_are_invisible() {
    let api = api().await;
    let other = api.account("globex", "bob@globex.example").await;
    let id = api.hold(&other, "INBOX").await;
    let list: QuarantineList = api.call(Method::GET, &q(""), None).await.json();
    assert!(list.items.is_empty());
    for (method, uri) in [
        (Method::GET, q(&format!("/{id}"))),
        (Method::GET, q(&format!("/{id}/message"))),
        (Method::POST, q(&format!("/{id}/release"))),
        (Method::DELETE, q(&format!("/{id}"))),
    ] {
        let answer = api.call(method.clone(), &uri, None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {uri}");
        answer.problem();
    }
    // Untouched.
    assert!(api.quarantine.get(&id).await.is_ok());
}

#[tokio::test]
async fn release_into_a_deleted_account_is_409() {
    let api = api().await;
    let alice = api.account("acme", ALICE).await;
    let id = api.hold(&alice, "INBOX").await;
    api.store.delete_account(alice.id).await.expect("delete");
    let entry: QuarantineEntry = api
        .call(Method::GET, &q(&format!("/{id}")), None)
        .await
        .json();
    assert_eq!(entry.mailbox, None);
    let answer = api
        .call(Method::POST, &q(&format!("/{id}/release")), None)
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    let detail = answer.problem().detail.unwrap_or_default();
    assert!(
        detail.contains("no longer exists") && detail.contains(ALICE),
        "{detail}"
    );
    assert_eq!(
        api.call(Method::DELETE, &q(&format!("/{id}")), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn hostile_quarantine_requests_are_refused_and_change_nothing() {
    let api = api().await;
    let alice = api.account("acme", ALICE).await;
    let id = api.hold(&alice, "INBOX").await;
    let unknown = "0".repeat(44);
    let huge = "a".repeat(10_000);
    // (method, uri, status, text in detail, Allow header)
    let cases: Vec<(Method, String, StatusCode, &str, Option<&str>)> = vec![
        (Method::GET, q("/abc"), StatusCode::BAD_REQUEST, "id:", None),
        (
            Method::GET,
            q(&format!("/{}", id.as_str().to_uppercase())),
            StatusCode::BAD_REQUEST,
            "id:",
            None,
        ),
        (
            Method::GET,
            q(&format!("/{id}0")),
            StatusCode::BAD_REQUEST,
            "id:",
            None,
        ),
        (
            Method::GET,
            q("/..%2Faccounts%2Falice"),
            StatusCode::BAD_REQUEST,
            "id:",
            None,
        ),
        (
            Method::GET,
            q("/%2e%2e"),
            StatusCode::BAD_REQUEST,
            "id:",
            None,
        ),
        (
            Method::DELETE,
            q(&format!("/{}%27%20OR%201=1", &id.as_str()[..36])),
            StatusCode::BAD_REQUEST,
            "id:",
            None,
        ),
        (
            Method::POST,
            q(&format!("/{huge}/release")),
            StatusCode::BAD_REQUEST,
            "id:",
            None,
        ),
        (
            Method::GET,
            q(&format!("/{unknown}")),
            StatusCode::NOT_FOUND,
            "id:",
            None,
        ),
        (
            Method::GET,
            q(&format!("/{unknown}/message")),
            StatusCode::NOT_FOUND,
            "id:",
            None,
        ),
        (
            Method::POST,
            q(&format!("/{unknown}/release")),
            StatusCode::NOT_FOUND,
            "id:",
            None,
        ),
        (
            Method::DELETE,
            q(&format!("/{unknown}")),
            StatusCode::NOT_FOUND,
            "id:",
            None,
        ),
        (
            Method::GET,
            q("?limit=1000000"),
            StatusCode::BAD_REQUEST,
            "limit:",
            None,
        ),
        (
            Method::GET,
            q("?limit=0"),
            StatusCode::BAD_REQUEST,
            "limit:",
            None,
        ),
        (
            Method::GET,
            q("?limit=-1"),
            StatusCode::BAD_REQUEST,
            "limit:",
            None,
        ),
        (
            Method::GET,
            q("?limit=99999999999999999999"),
            StatusCode::BAD_REQUEST,
            "limit:",
            None,
        ),
        (
            Method::GET,
            q("?limit=1&limit=2"),
            StatusCode::BAD_REQUEST,
            "limit: given more than once",
            None,
        ),
        (
            Method::GET,
            q("?after=../x"),
            StatusCode::BAD_REQUEST,
            "after:",
            None,
        ),
        (
            Method::GET,
            q("?mailbox=nobody"),
            StatusCode::BAD_REQUEST,
            "mailbox:",
            None,
        ),
        (
            Method::GET,
            q("?mailbox=bob@globex.example"),
            StatusCode::BAD_REQUEST,
            "mailbox:",
            None,
        ),
        (
            Method::GET,
            q(&format!("?mailbox={huge}@acme.example")),
            StatusCode::BAD_REQUEST,
            "mailbox:",
            None,
        ),
        (
            Method::GET,
            q("?mailbox=%FF"),
            StatusCode::BAD_REQUEST,
            "query:",
            None,
        ),
        (
            Method::GET,
            q("?tenant=globex"),
            StatusCode::BAD_REQUEST,
            "tenant: unknown query parameter",
            None,
        ),
        (
            Method::GET,
            q(&format!("/{id}?raw=yes")),
            StatusCode::BAD_REQUEST,
            "raw:",
            None,
        ),
        (
            Method::GET,
            q(&format!("/{id}/message?raw=1")),
            StatusCode::BAD_REQUEST,
            "raw: unknown",
            None,
        ),
        (
            Method::POST,
            q(&format!("/{id}/release?force=1")),
            StatusCode::BAD_REQUEST,
            "force: unknown",
            None,
        ),
        (
            Method::PUT,
            q(""),
            StatusCode::METHOD_NOT_ALLOWED,
            "PUT",
            Some("GET"),
        ),
        (
            Method::DELETE,
            q(""),
            StatusCode::METHOD_NOT_ALLOWED,
            "DELETE",
            Some("GET"),
        ),
        (
            Method::POST,
            q(&format!("/{id}")),
            StatusCode::METHOD_NOT_ALLOWED,
            "POST",
            Some("GET, DELETE"),
        ),
        (
            Method::GET,
            q(&format!("/{id}/release")),
            StatusCode::METHOD_NOT_ALLOWED,
            "GET",
            Some("POST"),
        ),
        (
            Method::DELETE,
            q(&format!("/{id}/release")),
            StatusCode::METHOD_NOT_ALLOWED,
            "DELETE",
            Some("POST"),
        ),
        (
            Method::DELETE,
            q(&format!("/{id}/message")),
            StatusCode::METHOD_NOT_ALLOWED,
            "DELETE",
            Some("GET"),
        ),
        (
            Method::GET,
            q(&format!("/{id}/other")),
            StatusCode::NOT_FOUND,
            "no such endpoint",
            None,
        ),
        (
            Method::GET,
            q(&format!("/{id}/release/x")),
            StatusCode::NOT_FOUND,
            "no such endpoint",
            None,
        ),
    ];
    for (method, uri, status, detail, allow) in cases {
        let what = format!("{method} {}", &uri[..uri.len().min(120)]);
        let answer = api.call(method, &uri, None).await;
        assert_eq!(answer.status, status, "{what}: {:?}", answer.body);
        let got = answer.problem().detail.unwrap_or_default();
        assert!(got.contains(detail), "{what}: want {detail:?} in {got:?}");
        assert_eq!(
            answer.headers.get("allow").and_then(|v| v.to_str().ok()),
            allow,
            "{what}"
        );
    }
    // Without the token: 401, whatever the path.
    let request = Request::builder()
        .method(Method::POST)
        .uri(q(&format!("/{id}/release")))
        .body(Body::empty())
        .expect("request");
    let answer = api
        .router
        .clone()
        .oneshot(request)
        .await
        .expect("infallible");
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    // Still quarantined, nothing stored.
    assert!(api.quarantine.get(&id).await.is_ok());
    let inbox = api
        .store
        .mailbox(alice.id, "INBOX")
        .await
        .expect("lookup")
        .expect("INBOX");
    assert!(
        api.store
            .messages(inbox.id)
            .await
            .expect("messages")
            .is_empty()
    );
}

#[tokio::test]
async fn put_stores_labels_pipeline_ref_and_aliases_and_reapplies_on_change() {
    let api = api().await;
    let extra = json!({
        "labels": {"team": "finance"},
        "spec": {"aliases": ["Sales@acme.example"], "pipelineRef": {"name": "strict"}},
    });
    let created: AccountState = api.put_account(ALICE, extra.clone()).await.json();
    assert!(created.created);
    let stored = api
        .store
        .account_by_recipient("sales@ACME.example")
        .await
        .expect("route")
        .expect("alias routes");
    assert_eq!(stored.address, ALICE);
    assert_eq!(
        stored.labels.get("team").map(String::as_str),
        Some("finance")
    );
    assert_eq!(stored.pipeline_ref.as_deref(), Some("strict"));

    let same: AccountState = api.put_account(ALICE, extra).await.json();
    assert!(!same.created && !same.updated);
    let relabelled: AccountState = api
        .put_account(
            ALICE,
            json!({
                "labels": {"team": "legal"},
                "spec": {"aliases": ["Sales@acme.example"], "pipelineRef": {"name": "strict"}},
            }),
        )
        .await
        .json();
    assert!(relabelled.updated, "a label change re-applies");
    let stored = api
        .store
        .account_by_address(ALICE)
        .await
        .expect("lookup")
        .expect("alice");
    assert_eq!(stored.labels.get("team").map(String::as_str), Some("legal"));

    // Another account claiming alice's alias or address as alias: 409 naming both.
    for contested in ["sales@acme.example", ALICE] {
        let answer = api
            .put_account(
                "bob@acme.example",
                json!({"spec": {"aliases": [contested]}}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{contested}");
        let detail = answer.problem().detail.unwrap_or_default();
        assert!(
            detail.starts_with("spec.aliases:")
                && detail.contains(contested)
                && detail.contains("bob@acme.example")
                && detail.contains(ALICE),
            "{detail}"
        );
    }
    // An account whose address is alice's alias: 409 on spec.address.
    let answer = api.put_account("sales@acme.example", json!({})).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    let detail = answer.problem().detail.unwrap_or_default();
    assert!(
        detail.starts_with("spec.address:") && detail.contains(ALICE),
        "{detail}"
    );
    assert_eq!(
        api.store
            .account_by_address("bob@acme.example")
            .await
            .expect("lookup"),
        None
    );
}
