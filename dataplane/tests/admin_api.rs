//! The admin API of `mcp dataplane`, called in-process (`tower::ServiceExt::oneshot`) on a
//! real SQLite store: the contract of `mcp_crds::dataplane`, authentication, retention, and
//! hostile requests. HTTPS and PostgreSQL are covered end to end by
//! `e2e/imap/test_dataplane_mode.py`.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use chrono::DateTime;
use mcp_crds::dataplane::{ADMIN_PATH, AccountState, DeleteOutcome, Problem};
use mcp_dataplane::admin::{Admin, AdminToken, MAX_BODY, router};
use mcp_dataplane::auth::{AuthError, Authenticator};
use mcp_dataplane::pipeline::{PipelineSet, Pipelines};
use mcp_dataplane::standalone::apply::DigestKey;
use mcp_dataplane::store::{
    AccountUpsert, BlobId, BlobStore, MessageCache, MetadataStore, NewMessage,
};
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const ALICE: &str = "alice@acme.example";

struct Api {
    router: Router,
    store: MetadataStore,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn state(&self) -> AccountState {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        serde_json::from_value(self.body.clone()).expect("AccountState")
    }

    fn outcome(&self) -> DeleteOutcome {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        serde_json::from_value(self.body.clone()).expect("DeleteOutcome")
    }

    /// The problem document, checked: media type, and `status` equal to the HTTP status.
    fn problem(&self) -> Problem {
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{}",
            self.body
        );
        let p: Problem = serde_json::from_value(self.body.clone()).expect("Problem");
        assert_eq!(p.status, self.status.as_u16());
        assert_eq!(p.type_, "about:blank");
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
        blobs,
        tenant: "acme".into(),
        domains: vec!["acme.example".into(), "mail.acme.example".into()],
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
        store,
        _dir: dir,
    }
}

fn url(address: &str) -> String {
    format!("{ADMIN_PATH}/{address}")
}

/// The body the operator sends for `address` with `password`.
fn account(address: &str, password: &str) -> Value {
    json!({
        "tenant": "acme",
        "spec": {
            "tenant": "acme",
            "address": address,
            "credentials": {"secretRef": {"name": "alice"}},
        },
        "password": password,
    })
}

impl Api {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// An authenticated request; `body` is sent as `application/json` when not `None`.
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
        self.send(request.expect("request")).await
    }

    async fn put(&self, address: &str, body: &Value) -> Answer {
        self.call(Method::PUT, &url(address), Some(body)).await
    }

    async fn get(&self, address: &str) -> Answer {
        self.call(Method::GET, &url(address), None).await
    }

    async fn delete(&self, address: &str, retention: &str) -> Answer {
        let uri = format!("{}?retention={retention}", url(address));
        self.call(Method::DELETE, &uri, None).await
    }

    /// How a login attempt ends: `ok`, `invalid` (unknown or wrong credentials),
    /// `suspended` or `unavailable`.
    async fn login(&self, address: &str, password: &str) -> &'static str {
        match Authenticator::new(self.store.clone())
            .verify(address, password)
            .await
        {
            Ok(_) => "ok",
            Err(AuthError::InvalidCredentials) => "invalid",
            Err(AuthError::Suspended) => "suspended",
            Err(AuthError::Unavailable(_)) => "unavailable",
        }
    }

    async fn append_to_inbox(&self, address: &str, text: &str) {
        let account = self
            .store
            .account_by_address(address)
            .await
            .expect("lookup")
            .expect("account");
        let inbox = self
            .store
            .mailbox(account.id, "INBOX")
            .await
            .expect("lookup")
            .expect("INBOX");
        let message = NewMessage {
            flags: Vec::new(),
            internal_date: DateTime::parse_from_rfc3339("2024-01-02T03:04:05+00:00").expect("date"),
            size: u32::try_from(text.len()).expect("size"),
            blob: BlobId::of(text.as_bytes()),
            cache: MessageCache {
                envelope: b"NIL".to_vec(),
                body: b"NIL".to_vec(),
                bodystructure: b"NIL".to_vec(),
            },
            metadata: Default::default(),
        };
        self.store.append(inbox.id, &message).await.expect("append");
    }
}

#[tokio::test]
async fn put_creates_the_account_with_default_folders_and_quota() {
    let api = api().await;
    let mut body = account("Alice@ACME.example", "alice-pw");
    body["spec"]["quota"] = json!({"storage": "512Mi", "messages": 1000});
    body["spec"]["aliases"] = json!(["al@mail.acme.example"]);
    let state = api.put(ALICE, &body).await.state();
    assert_eq!(state.address, ALICE);
    assert!(state.active && state.created && !state.updated);
    assert_eq!(
        state.folders,
        ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    );
    assert_eq!((state.messages, state.bytes), (0, 0));
    assert_eq!(state.quota.storage, Some(512 << 20));
    assert_eq!(state.quota.messages, Some(1000));
    assert_eq!(api.login(ALICE, "alice-pw").await, "ok");

    let got = api.get(ALICE).await.state();
    assert_eq!(
        got,
        AccountState {
            created: false,
            ..state
        }
    );
}

#[tokio::test]
async fn an_unchanged_put_writes_nothing_and_a_changed_one_updates() {
    let api = api().await;
    let body = account(ALICE, "alice-pw");
    api.put(ALICE, &body).await.state();
    let stored = api.store.account_by_address(ALICE).await.expect("lookup");

    let again = api.put(ALICE, &body).await.state();
    assert!(!again.created && !again.updated);
    // No re-hash: argon2 salts every hash, so an equal hash means nothing was written.
    assert_eq!(
        api.store.account_by_address(ALICE).await.expect("lookup"),
        stored
    );

    let changed = api.put(ALICE, &account(ALICE, "new-pw")).await.state();
    assert!(!changed.created && changed.updated);
    assert_eq!(api.login(ALICE, "new-pw").await, "ok");
    assert_eq!(api.login(ALICE, "alice-pw").await, "invalid");
}

#[tokio::test]
async fn a_suspended_mailbox_is_an_inactive_account() {
    let api = api().await;
    let mut body = account(ALICE, "alice-pw");
    body["spec"]["state"] = json!("Suspended");
    let state = api.put(ALICE, &body).await.state();
    assert!(!state.active);
    assert_eq!(api.login(ALICE, "alice-pw").await, "suspended");
}

#[tokio::test]
async fn get_of_an_unknown_account_is_404() {
    let api = api().await;
    let answer = api.get(ALICE).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.problem().detail.expect("detail").contains(ALICE));
}

#[tokio::test]
async fn retain_keeps_the_mail_and_a_later_put_finds_it() {
    let api = api().await;
    let body = account(ALICE, "alice-pw");
    api.put(ALICE, &body).await.state();
    api.append_to_inbox(ALICE, "Subject: kept\r\n\r\nstill here\r\n")
        .await;

    let outcome = api.delete(ALICE, "Retain").await.outcome();
    assert_eq!(outcome.address, ALICE);
    assert!(outcome.existed);
    assert_eq!(outcome.retention, mcp_crds::mailbox::Retention::Retain);
    assert_eq!(
        api.login(ALICE, "alice-pw").await,
        "invalid",
        "a retained account must not log in"
    );
    let retained = api.get(ALICE).await.state();
    assert!(!retained.active);
    assert_eq!(retained.messages, 1);

    // Idempotent: a repeated Retain still finds the (retained) account.
    assert!(api.delete(ALICE, "Retain").await.outcome().existed);

    // The same request as before re-activates the account with its mail, although its
    // digest is the one stored before the deletion.
    let back = api.put(ALICE, &body).await.state();
    assert!(back.active && !back.created && back.updated);
    assert_eq!(back.messages, 1);
    assert_eq!(back.bytes, 29);
    assert_eq!(api.login(ALICE, "alice-pw").await, "ok");
}

#[tokio::test]
async fn delete_removes_the_account_and_is_idempotent() {
    let api = api().await;
    api.put(ALICE, &account(ALICE, "alice-pw")).await.state();
    api.append_to_inbox(ALICE, "Subject: gone\r\n\r\nbye\r\n")
        .await;

    let outcome = api.delete(ALICE, "Delete").await.outcome();
    assert!(outcome.existed);
    assert_eq!(outcome.retention, mcp_crds::mailbox::Retention::Delete);
    assert_eq!(api.get(ALICE).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api.login(ALICE, "alice-pw").await, "invalid");
    assert!(!api.delete(ALICE, "Delete").await.outcome().existed);
    assert!(!api.delete(ALICE, "Retain").await.outcome().existed);

    // A new account at the address starts empty.
    let fresh = api.put(ALICE, &account(ALICE, "alice-pw")).await.state();
    assert!(fresh.created);
    assert_eq!(fresh.messages, 0);
}

#[tokio::test]
async fn accounts_of_another_tenant_in_a_shared_store_are_left_alone() {
    let api = api().await;
    api.store
        .upsert_account(&AccountUpsert {
            tenant: "other".into(),
            address: ALICE.into(),
            password_hash: String::new(),
            active: true,
            spec_digest: "d".into(),
            quota_storage: None,
            quota_messages: None,
            ..Default::default()
        })
        .await
        .expect("upsert");
    let answer = api.put(ALICE, &account(ALICE, "alice-pw")).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(
        answer
            .problem()
            .detail
            .expect("detail")
            .contains("\"other\"")
    );
    assert_eq!(api.get(ALICE).await.status, StatusCode::NOT_FOUND);
    assert!(!api.delete(ALICE, "Delete").await.outcome().existed);
    let kept = api.store.account_by_address(ALICE).await.expect("lookup");
    assert_eq!(kept.expect("still there").tenant, "other");
}

#[tokio::test]
async fn requests_without_the_token_are_401_with_a_bearer_challenge() {
    let api = api().await;
    api.put(ALICE, &account(ALICE, "alice-pw")).await.state();
    let cases: &[(&[&str], &str)] = &[
        (&[], "Bearer"),
        (
            &["Bearer wrong-token-0123456789"],
            "Bearer error=\"invalid_token\"",
        ),
        (&["Bearer"], "Bearer"),
        (&["Bearer "], "Bearer"),
        (&[&format!("Basic {TOKEN}")], "Bearer"),
        (
            &[&format!("Bearer {TOKEN}x")],
            "Bearer error=\"invalid_token\"",
        ),
        (
            &[&format!("Bearer {TOKEN}"), &format!("Bearer {TOKEN}")],
            "Bearer",
        ),
    ];
    for (values, challenge) in cases {
        for (method, uri) in [
            (Method::GET, url(ALICE)),
            (Method::DELETE, format!("{}?retention=Delete", url(ALICE))),
            (Method::PATCH, url(ALICE)),
            (Method::GET, "/nowhere".to_owned()),
        ] {
            let mut builder = Request::builder().method(method.clone()).uri(&uri);
            for v in *values {
                builder = builder.header("authorization", *v);
            }
            let answer = api
                .send(builder.body(Body::empty()).expect("request"))
                .await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{values:?} {method} {uri}"
            );
            assert_eq!(
                answer
                    .headers
                    .get("www-authenticate")
                    .map(|v| v.to_str().ok()),
                Some(Some(*challenge)),
                "{values:?}"
            );
            assert!(
                answer.headers.get("allow").is_none(),
                "routing ran before auth"
            );
            answer.problem();
        }
    }
    // Nothing was deleted, and the scheme is case-insensitive (RFC 9110 §11.1).
    let request = Request::builder()
        .uri(url(ALICE))
        .header("authorization", format!("bEaReR {TOKEN}"))
        .body(Body::empty())
        .expect("request");
    assert_eq!(api.send(request).await.status, StatusCode::OK);
}

/// One hostile request and what must come back: status and a field named in `detail`.
struct Hostile {
    what: &'static str,
    method: Method,
    uri: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: StatusCode,
    detail: &'static str,
}

fn hostile_requests() -> Vec<Hostile> {
    let valid = account(ALICE, "alice-pw");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut v = valid.clone();
        edit(&mut v);
        v.to_string().into_bytes()
    };
    let put = |what, body: Vec<u8>, status, detail| Hostile {
        what,
        method: Method::PUT,
        uri: url(ALICE),
        content_type: Some("application/json"),
        body,
        status,
        detail,
    };
    let bad = StatusCode::BAD_REQUEST;
    let long_local = "a".repeat(250);
    vec![
        put(
            "not JSON",
            b"{\"tenant\": ".to_vec(),
            bad,
            "tenant: EOF while parsing",
        ),
        put("not an object", b"[1, 2]".to_vec(), bad, "body: "),
        put("empty body", Vec::new(), bad, "body: "),
        put(
            "trailing garbage",
            [valid.to_string().as_bytes(), b" {}"].concat(),
            bad,
            "body: trailing characters",
        ),
        put(
            "invalid UTF-8",
            b"{\"tenant\": \"\xff\"}".to_vec(),
            bad,
            "invalid unicode",
        ),
        put(
            "unknown top-level field",
            with(&|v| v["admin"] = json!(true)),
            bad,
            "unknown field `admin`",
        ),
        put(
            "unknown spec field",
            with(&|v| v["spec"]["mailboxSize"] = json!(1)),
            bad,
            "spec.mailboxSize: unknown field",
        ),
        put(
            "unknown nested field",
            with(&|v| v["spec"]["credentials"]["secretRef"]["extra"] = json!(1)),
            bad,
            "spec.credentials.secretRef.extra: unknown field",
        ),
        put(
            "wrong type",
            with(&|v| v["spec"]["address"] = json!(5)),
            bad,
            "spec.address: invalid type",
        ),
        put(
            "missing password",
            with(&|v| {
                v.as_object_mut().expect("object").remove("password");
            }),
            bad,
            "missing field `password`",
        ),
        put(
            "empty password",
            with(&|v| v["password"] = json!("")),
            bad,
            "password: must not be empty",
        ),
        put(
            "other tenant",
            with(&|v| v["tenant"] = json!("other")),
            bad,
            "tenant: \"other\" is not this dataplane's tenant",
        ),
        put(
            "other tenant in the spec",
            with(&|v| v["spec"]["tenant"] = json!("other")),
            bad,
            "spec.tenant: ",
        ),
        put(
            "address differs from the path",
            with(&|v| v["spec"]["address"] = json!("bob@acme.example")),
            bad,
            "spec.address: \"bob@acme.example\" is not the address of the path",
        ),
        put(
            "alias outside the domains",
            with(&|v| v["spec"]["aliases"] = json!(["a@evil.example"])),
            bad,
            "spec.aliases: domain of \"a@evil.example\"",
        ),
        put(
            "alias not an address",
            with(&|v| v["spec"]["aliases"] = json!(["no-at-sign"])),
            bad,
            "spec.aliases: \"no-at-sign\" is not a local@domain address",
        ),
        put(
            "too many aliases",
            with(&|v| {
                v["spec"]["aliases"] = json!(
                    (0..101)
                        .map(|i| format!("a{i}@acme.example"))
                        .collect::<Vec<_>>()
                )
            }),
            bad,
            "spec.aliases: more than 100",
        ),
        put(
            "display name too long",
            with(&|v| v["spec"]["displayName"] = json!("x".repeat(300))),
            bad,
            "spec.displayName: longer than 256",
        ),
        put(
            "quota not a quantity",
            with(&|v| v["spec"]["quota"] = json!({"storage": "lots"})),
            bad,
            "spec.quota.storage: \"lots\" is not a quantity",
        ),
        put(
            "negative message quota",
            with(&|v| v["spec"]["quota"] = json!({"messages": -5})),
            bad,
            "spec.quota.messages: -5 is negative",
        ),
        put(
            "unknown state",
            with(&|v| v["spec"]["state"] = json!("Frozen")),
            bad,
            "spec.state: unknown variant `Frozen`",
        ),
        put(
            "external identity",
            with(&|v| v["spec"]["credentials"] = json!({"external": {"provider": "Oidc"}})),
            bad,
            "spec.credentials.external: external identity providers",
        ),
        put(
            "no credentials source",
            with(&|v| v["spec"]["credentials"] = json!({})),
            bad,
            "spec.credentials: one of secretRef and external",
        ),
        put(
            "deeply nested JSON",
            valid
                .to_string()
                .replace(
                    "\"spec\":{",
                    &format!(
                        "\"spec\":{{\"extra\":{}{},",
                        "[".repeat(10_000),
                        "]".repeat(10_000)
                    ),
                )
                .into_bytes(),
            bad,
            "spec.extra",
        ),
        put(
            "body over the limit",
            vec![b' '; MAX_BODY + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "body: larger than 65536 octets",
        ),
        Hostile {
            content_type: None,
            ..put(
                "no content type",
                valid.to_string().into_bytes(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type",
            )
        },
        Hostile {
            content_type: Some("text/plain"),
            ..put(
                "text body",
                valid.to_string().into_bytes(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type",
            )
        },
        Hostile {
            uri: url("%zz@acme.example"),
            ..put("bad percent-encoding", with(&|_| {}), bad, "address: ")
        },
        Hostile {
            uri: url("%ff%fe@acme.example"),
            ..put("percent-encoded non-UTF-8", with(&|_| {}), bad, "address: ")
        },
        Hostile {
            uri: url("alice%40acme.example%"),
            ..put(
                "truncated percent-encoding",
                with(&|_| {}),
                bad,
                "address: ",
            )
        },
        Hostile {
            uri: url("alice@evil.example"),
            ..put(
                "address outside the domains",
                with(&|v| v["spec"]["address"] = json!("alice@evil.example")),
                bad,
                "address: domain of \"alice@evil.example\"",
            )
        },
        Hostile {
            uri: url(&format!("{long_local}@acme.example")),
            ..put(
                "address too long",
                with(&|_| {}),
                bad,
                "address: longer than 254",
            )
        },
        Hostile {
            uri: url("al%20ice@acme.example"),
            ..put(
                "white space in the address",
                with(&|_| {}),
                bad,
                "address: ",
            )
        },
        Hostile {
            what: "DELETE without retention",
            method: Method::DELETE,
            uri: url(ALICE),
            content_type: None,
            body: Vec::new(),
            status: bad,
            detail: "retention: required",
        },
        Hostile {
            what: "retention in the wrong case",
            method: Method::DELETE,
            uri: format!("{}?retention=retain", url(ALICE)),
            content_type: None,
            body: Vec::new(),
            status: bad,
            detail: "retention: \"retain\" is neither Retain nor Delete",
        },
        Hostile {
            what: "retention twice",
            method: Method::DELETE,
            uri: format!("{}?retention=Delete&retention=Retain", url(ALICE)),
            content_type: None,
            body: Vec::new(),
            status: bad,
            detail: "retention: given more than once",
        },
        Hostile {
            what: "unknown query parameter",
            method: Method::DELETE,
            uri: format!("{}?retention=Delete&force=1", url(ALICE)),
            content_type: None,
            body: Vec::new(),
            status: bad,
            detail: "force: unknown query parameter",
        },
        Hostile {
            what: "bad percent-encoding in the query",
            method: Method::DELETE,
            uri: format!("{}?retention=%zz", url(ALICE)),
            content_type: None,
            body: Vec::new(),
            status: bad,
            detail: "query: ",
        },
        Hostile {
            what: "GET of a non-address",
            method: Method::GET,
            uri: url("nobody"),
            content_type: None,
            body: Vec::new(),
            status: bad,
            detail: "address: \"nobody\" is not a local@domain address",
        },
        Hostile {
            what: "PATCH",
            method: Method::PATCH,
            uri: url(ALICE),
            content_type: None,
            body: Vec::new(),
            status: StatusCode::METHOD_NOT_ALLOWED,
            detail: "PATCH",
        },
        Hostile {
            what: "path below an account",
            method: Method::GET,
            uri: format!("{ADMIN_PATH}/{ALICE}/folders"),
            content_type: None,
            body: Vec::new(),
            status: StatusCode::NOT_FOUND,
            detail: "no such endpoint",
        },
        Hostile {
            what: "the collection itself",
            method: Method::GET,
            uri: ADMIN_PATH.to_owned(),
            content_type: None,
            body: Vec::new(),
            status: StatusCode::NOT_FOUND,
            detail: "no such endpoint",
        },
    ]
}

#[tokio::test]
async fn hostile_requests_get_a_problem_naming_the_field_and_change_nothing() {
    let api = api().await;
    for h in hostile_requests() {
        let mut builder = Request::builder()
            .method(h.method.clone())
            .uri(&h.uri)
            .header("authorization", format!("Bearer {TOKEN}"));
        if let Some(ct) = h.content_type {
            builder = builder.header("content-type", ct);
        }
        let answer = api
            .send(builder.body(Body::from(h.body)).expect("request"))
            .await;
        assert_eq!(answer.status, h.status, "{}: {}", h.what, answer.body);
        let detail = answer.problem().detail.unwrap_or_default();
        assert!(
            detail.contains(h.detail),
            "{}: want {:?} in {detail:?}",
            h.what,
            h.detail
        );
        assert!(
            !detail.contains("alice-pw"),
            "{}: password in {detail:?}",
            h.what
        );
    }
    // No request created an account, not even half of one.
    assert_eq!(api.get(ALICE).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.store.account_by_address(ALICE).await.expect("lookup"),
        None
    );
}

#[tokio::test]
async fn content_type_parameters_and_case_are_accepted() {
    let api = api().await;
    let request = Request::builder()
        .method(Method::PUT)
        .uri(url("alice%40acme.example"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(Body::from(account(ALICE, "alice-pw").to_string()))
        .expect("request");
    let state = api.send(request).await.state();
    assert_eq!(state.address, ALICE);
}

#[tokio::test]
async fn a_failing_store_is_503_so_the_operator_retries() {
    let api = api().await;
    api.put(ALICE, &account(ALICE, "alice-pw")).await.state();
    api.store.close().await;
    for answer in [
        api.get(ALICE).await,
        api.put(ALICE, &account(ALICE, "other-pw")).await,
        api.delete(ALICE, "Delete").await,
    ] {
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            answer.body
        );
        assert!(
            answer
                .problem()
                .detail
                .expect("detail")
                .contains("metadata store")
        );
    }
}

#[tokio::test]
async fn plugins_state_is_served_behind_the_token() {
    let api = api().await;
    let path = mcp_crds::dataplane::PLUGINS_PATH;
    let a = api.call(Method::GET, path, None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body, json!({"plugins": []}));
    let unauthenticated = Request::builder()
        .method(Method::GET)
        .uri(path)
        .body(Body::empty())
        .expect("request");
    assert_eq!(api.send(unauthenticated).await.status, 401);
    let a = api.call(Method::GET, &format!("{path}?x=1"), None).await;
    assert_eq!(a.status, 400);
}
