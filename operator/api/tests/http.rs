//! The facade at the HTTP level (tower `oneshot`, no sockets): the auth matrix (role x
//! endpoint x tenant, inactive, expired and garbage credentials), hostile request bodies and
//! headers, rate limits, the bearer hook, health, and the OpenAPI document. Every answer
//! is checked against the document: its status must be documented for its operation, and
//! every error is `application/problem+json` with a consistent `status`.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use mcp_api::Api;
use mcp_api::auth::key::ApiKey;
use mcp_api::auth::{Authenticator, BearerError, BearerVerifier, Principal, RateLimit, Role};
use mcp_api::store::{ApiKeyPatch, ApiKeyStore, NewApiKey, now_secs};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Fixture {
    router: Router,
    doc: Value,
    store: ApiKeyStore,
    _dir: tempfile::TempDir,
    /// Keys by name: admin, t1, t2, viewer, inactive, expired.
    keys: Vec<(&'static str, String, i64)>,
}

impl Fixture {
    fn key(&self, name: &str) -> &str {
        &self.keys.iter().find(|(n, _, _)| *n == name).expect(name).1
    }
    fn id(&self, name: &str) -> i64 {
        self.keys.iter().find(|(n, _, _)| *n == name).expect(name).2
    }
}

async fn fixture_with(limit: RateLimit, bearer: Option<Arc<dyn BearerVerifier>>) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("api.sqlite").display());
    let store = ApiKeyStore::connect(&url).await.expect("store");
    let now = now_secs();
    let mut keys = Vec::new();
    for (name, role, expires) in [
        ("admin", Role::Admin, None),
        ("t1", Role::TenantAdmin("t1".into()), None),
        ("t2", Role::TenantAdmin("t2".into()), None),
        ("viewer", Role::Viewer, None),
        ("inactive", Role::Admin, None),
        ("expired", Role::Admin, Some(now - 10)),
        ("t1-other", Role::TenantAdmin("t1".into()), Some(now + 3600)),
    ] {
        let key = ApiKey::generate().expect("rng");
        let r = store
            .insert(
                &NewApiKey {
                    name: name.into(),
                    prefix: key.prefix().into(),
                    hash: key.hash(),
                    role,
                    expires_at: expires,
                },
                now - 100,
            )
            .await
            .expect("insert");
        keys.push((name, key.expose().to_owned(), r.id));
    }
    let inactive = keys[4].2;
    store
        .update(
            inactive,
            &ApiKeyPatch {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("deactivate");
    let mut auth = Authenticator::new(store.clone(), limit);
    if let Some(b) = bearer {
        auth = auth.with_bearer(b);
    }
    let api = Api::new(auth);
    let doc = serde_json::to_value(mcp_api::openapi_document()).expect("doc");
    Fixture {
        router: api.router(),
        doc,
        store,
        _dir: dir,
        keys,
    }
}

async fn fixture() -> Fixture {
    let plenty = NonZeroU32::new(10_000).expect("nonzero");
    fixture_with(
        RateLimit {
            per_second: plenty,
            burst: plenty,
        },
        None,
    )
    .await
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

/// The path template of `path` in the document (`/api/v1/apikeys/{id}`).
fn template(doc: &Value, path: &str) -> Option<String> {
    let paths = doc["paths"].as_object()?;
    paths
        .keys()
        .find(|t| {
            let a: Vec<_> = t.split('/').collect();
            let b: Vec<_> = path.split('?').next().unwrap_or("").split('/').collect();
            a.len() == b.len()
                && a.iter()
                    .zip(&b)
                    .all(|(x, y)| x == y || (x.starts_with('{') && !y.is_empty()))
        })
        .cloned()
}

async fn send(f: &Fixture, request: Request<Body>) -> Answer {
    let method = request.method().as_str().to_lowercase();
    let path = request.uri().path().to_owned();
    let response = f.router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    if status.is_client_error() || status.is_server_error() {
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{method} {path}: {status} is not problem+json: {body}"
        );
        assert_eq!(body["status"], status.as_u16(), "{method} {path}: {body}");
        assert_eq!(body["type"], "about:blank");
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{body}"
        );
    }
    // Every answer of a documented operation is documented.
    if let Some(t) = template(&f.doc, &path)
        && let Some(op) = f.doc["paths"][&t].get(&method)
    {
        assert!(
            op["responses"].get(status.as_str()).is_some(),
            "{method} {t}: status {status} is not documented: {body}"
        );
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn request(method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        r = r.header("x-api-key", k);
    }
    match body {
        Some(b) => r
            .header("content-type", "application/json")
            .body(Body::from(b.to_string()))
            .expect("request"),
        None => r.body(Body::empty()).expect("request"),
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    List,
    GetKey(&'static str),
    CreateViewer,
    CreateAdmin,
    CreateT1,
    CreateT2,
    Patch(&'static str),
    Delete(&'static str),
    /// A raw `{id}` path segment (an id that does not exist, or not a number).
    GetId(&'static str),
    PatchId(&'static str),
    DeleteId(&'static str),
}

#[tokio::test]
async fn auth_matrix_role_by_endpoint_by_tenant() {
    use Op::*;
    let ok = StatusCode::OK;
    let created = StatusCode::CREATED;
    let gone = StatusCode::NO_CONTENT;
    let e401 = StatusCode::UNAUTHORIZED;
    let e403 = StatusCode::FORBIDDEN;
    let e404 = StatusCode::NOT_FOUND;
    // (caller, operation, expected status)
    let cases: Vec<(&str, Op, StatusCode)> = vec![
        ("admin", List, ok),
        ("admin", GetKey("t1-other"), ok),
        ("admin", GetKey("viewer"), ok),
        ("admin", CreateViewer, created),
        ("admin", CreateAdmin, created),
        ("admin", CreateT2, created),
        ("admin", Patch("t1-other"), ok),
        ("admin", Delete("t1-other"), gone),
        ("admin", Delete("admin"), gone),
        // tenant-admin of t1: keys of t1 only, and only tenant-admin keys of t1
        ("t1", List, ok),
        ("t1", GetKey("t1-other"), ok),
        ("t1", GetKey("t2"), e404),
        ("t1", GetKey("admin"), e404),
        ("t1", GetKey("viewer"), e404),
        ("t1", CreateT1, created),
        ("t1", CreateT2, e403),
        ("t1", CreateViewer, e403),
        ("t1", CreateAdmin, e403),
        ("t1", Patch("t1-other"), ok),
        ("t1", Patch("t2"), e404),
        ("t1", Delete("t1-other"), gone),
        ("t1", Delete("t1"), gone),
        ("t1", Delete("admin"), e404),
        // another tenant's key
        ("t2", GetKey("t1-other"), e404),
        ("t2", Patch("t1-other"), e404),
        ("t2", Delete("t1-other"), e404),
        ("t2", CreateT1, e403),
        // viewer: no API keys at all
        ("viewer", List, e403),
        ("viewer", GetKey("t1-other"), e403),
        ("viewer", GetKey("viewer"), e403),
        ("viewer", CreateViewer, e403),
        ("viewer", Patch("viewer"), e403),
        ("viewer", Delete("t1-other"), e403),
        // ... and learns nothing about which ids exist: 403 before the lookup.
        ("viewer", GetId("987654321"), e403),
        ("viewer", PatchId("987654321"), e403),
        ("viewer", DeleteId("987654321"), e403),
        ("viewer", GetId("not-a-number"), e403),
        // roles that may manage keys get 404 for an id that does not exist
        ("admin", GetId("987654321"), e404),
        ("admin", DeleteId("not-a-number"), e404),
        ("t1", GetId("987654321"), e404),
        ("t1", PatchId("987654321"), e404),
        // unusable keys: 401 everywhere
        ("inactive", List, e401),
        ("inactive", CreateAdmin, e401),
        ("inactive", Delete("t1-other"), e401),
        ("expired", List, e401),
        ("expired", GetKey("admin"), e401),
        ("expired", CreateAdmin, e401),
        ("none", List, e401),
        ("none", GetKey("admin"), e401),
        ("none", CreateAdmin, e401),
        ("none", Patch("admin"), e401),
        ("none", Delete("admin"), e401),
    ];
    let mut details_401 = Vec::new();
    for (n, (caller, op, want)) in cases.into_iter().enumerate() {
        let f = fixture().await;
        let key = (caller != "none").then(|| f.key(caller).to_owned());
        let key = key.as_deref();
        let create = |name: String, role: &str, tenant: Option<&str>| {
            let mut b = json!({"name": name, "role": role});
            if let Some(t) = tenant {
                b["tenant"] = json!(t);
            }
            request(Method::POST, "/api/v1/apikeys", key, Some(b))
        };
        let url = |name: &str| format!("/api/v1/apikeys/{}", f.id(name));
        let req = match op {
            List => request(Method::GET, "/api/v1/apikeys", key, None),
            GetKey(k) => request(Method::GET, &url(k), key, None),
            CreateViewer => create(format!("new-{n}"), "viewer", None),
            CreateAdmin => create(format!("new-{n}"), "admin", None),
            CreateT1 => create(format!("new-{n}"), "tenant-admin", Some("t1")),
            CreateT2 => create(format!("new-{n}"), "tenant-admin", Some("t2")),
            Patch(k) => request(
                Method::PATCH,
                &url(k),
                key,
                Some(json!({"name": format!("renamed-{n}")})),
            ),
            Delete(k) => request(Method::DELETE, &url(k), key, None),
            GetId(id) => request(Method::GET, &format!("/api/v1/apikeys/{id}"), key, None),
            PatchId(id) => request(
                Method::PATCH,
                &format!("/api/v1/apikeys/{id}"),
                key,
                Some(json!({"active": true})),
            ),
            DeleteId(id) => request(Method::DELETE, &format!("/api/v1/apikeys/{id}"), key, None),
        };
        let a = send(&f, req).await;
        assert_eq!(a.status, want, "{caller} {op:?}: {}", a.body);
        match a.status {
            StatusCode::UNAUTHORIZED => {
                assert!(
                    a.headers.get("www-authenticate").is_some(),
                    "{caller} {op:?}"
                );
                details_401.push(a.body["detail"].clone());
            }
            StatusCode::CREATED => {
                let k = a.body["key"].as_str().expect("key shown once");
                assert!(ApiKey::parse(k).is_ok());
                assert_eq!(a.body["prefix"], k[4..12]);
                assert!(a.headers.get("location").is_some());
            }
            _ => {}
        }
        if matches!(op, List) && a.status == ok {
            let items = a.body["items"].as_array().expect("items");
            let names: Vec<_> = items
                .iter()
                .map(|i| i["name"].as_str().unwrap_or(""))
                .collect();
            if caller == "t1" {
                assert_eq!(names, ["t1", "t1-other"]);
            } else {
                assert_eq!(names.len(), 7);
            }
            for i in items {
                assert!(i.get("hash").is_none() && i.get("key").is_none(), "{i}");
            }
        }
    }
    // 401s never tell why.
    details_401.dedup();
    assert_eq!(details_401.len(), 1, "{details_401:?}");
}

#[tokio::test]
async fn garbage_credentials_are_401_and_last_use_is_recorded() {
    let f = fixture().await;
    let admin = f.key("admin").to_owned();
    let wrong_secret = format!(
        "{}{}",
        &admin[..13],
        &ApiKey::generate().expect("rng").expose()[13..]
    );
    let unknown = ApiKey::generate().expect("rng").expose().to_owned();
    let cases: Vec<(&str, Vec<(&str, HeaderValue)>)> = vec![
        (
            "empty X-API-Key",
            vec![("x-api-key", HeaderValue::from_static(""))],
        ),
        (
            "garbage",
            vec![("x-api-key", HeaderValue::from_static("garbage"))],
        ),
        (
            "unknown key",
            vec![("x-api-key", HeaderValue::from_str(&unknown).expect("hv"))],
        ),
        (
            "wrong secret",
            vec![(
                "x-api-key",
                HeaderValue::from_str(&wrong_secret).expect("hv"),
            )],
        ),
        (
            "non-UTF-8",
            vec![(
                "x-api-key",
                HeaderValue::from_bytes(b"mcp_\xff\xfe").expect("hv"),
            )],
        ),
        (
            "very long",
            vec![(
                "x-api-key",
                HeaderValue::from_str(&"a".repeat(8000)).expect("hv"),
            )],
        ),
        (
            "two keys",
            vec![
                ("x-api-key", HeaderValue::from_str(&admin).expect("hv")),
                ("x-api-key", HeaderValue::from_str(&admin).expect("hv")),
            ],
        ),
        (
            "key and bearer",
            vec![
                ("x-api-key", HeaderValue::from_str(&admin).expect("hv")),
                ("authorization", HeaderValue::from_static("Bearer abc")),
            ],
        ),
        (
            "basic auth",
            vec![(
                "authorization",
                HeaderValue::from_static("Basic YWRtaW46YWRtaW4="),
            )],
        ),
        (
            "bearer without verifier",
            vec![("authorization", HeaderValue::from_static("Bearer abc"))],
        ),
        (
            "bearer, no token",
            vec![("authorization", HeaderValue::from_static("Bearer "))],
        ),
        (
            "key as bearer",
            vec![(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {admin}")).expect("hv"),
            )],
        ),
    ];
    for (what, headers) in cases {
        let mut r = Request::builder().uri("/api/v1/apikeys");
        for (name, value) in headers {
            r = r.header(name, value);
        }
        let a = send(&f, r.body(Body::empty()).expect("request")).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}: {}", a.body);
        let challenge = a.headers["www-authenticate"].to_str().expect("ascii");
        assert!(challenge.contains("X-API-Key"), "{challenge}");
    }
    let before = f.store.get(f.id("admin")).await.expect("get").expect("row");
    assert_eq!(before.last_used_at, None);
    let a = send(
        &f,
        request(Method::GET, "/api/v1/apikeys", Some(&admin), None),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let after = f.store.get(f.id("admin")).await.expect("get").expect("row");
    assert!(after.last_used_at.is_some());
}

#[tokio::test]
async fn hostile_bodies_and_routes_are_problems() {
    let f = fixture().await;
    let admin = f.key("admin").to_owned();
    let post = |content_type: Option<&str>, body: Vec<u8>| {
        let mut r = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/apikeys")
            .header("x-api-key", admin.as_str());
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        r.body(Body::from(body)).expect("request")
    };
    let json_ct = Some("application/json");
    let past = "2001-01-01T00:00:00Z";
    let cases: Vec<(&str, Request<Body>, StatusCode, Option<&str>)> = vec![
        (
            "bad JSON",
            post(json_ct, b"{\"name\":".to_vec()),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "not an object",
            post(json_ct, b"[1,2]".to_vec()),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            "no content type",
            post(None, br#"{"name":"x","role":"viewer"}"#.to_vec()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
        ),
        (
            "text/plain",
            post(
                Some("text/plain"),
                br#"{"name":"x","role":"viewer"}"#.to_vec(),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
        ),
        (
            "unknown field",
            post(
                json_ct,
                br#"{"name":"x","role":"viewer","hash":"00"}"#.to_vec(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            "wrong type",
            post(json_ct, br#"{"name":1,"role":"viewer"}"#.to_vec()),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            "unknown role",
            post(json_ct, br#"{"name":"x","role":"root"}"#.to_vec()),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            "missing name",
            post(json_ct, br#"{"role":"viewer"}"#.to_vec()),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            "tenant-admin without tenant",
            post(json_ct, br#"{"name":"x","role":"tenant-admin"}"#.to_vec()),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("tenant"),
        ),
        (
            "viewer with tenant",
            post(
                json_ct,
                br#"{"name":"x","role":"viewer","tenant":"t1"}"#.to_vec(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("tenant"),
        ),
        (
            "bad tenant",
            post(
                json_ct,
                br#"{"name":"x","role":"tenant-admin","tenant":"T_1"}"#.to_vec(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("tenant"),
        ),
        (
            "empty name",
            post(json_ct, br#"{"name":"","role":"viewer"}"#.to_vec()),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            "name with space",
            post(json_ct, br#"{"name":"a b","role":"viewer"}"#.to_vec()),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            "long name",
            post(
                json_ct,
                format!(r#"{{"name":"{}","role":"viewer"}}"#, "a".repeat(64)).into_bytes(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            "bad expiry",
            post(
                json_ct,
                br#"{"name":"x","role":"viewer","expiresAt":"tomorrow"}"#.to_vec(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("expiresAt"),
        ),
        (
            "past expiry",
            post(
                json_ct,
                format!(r#"{{"name":"x","role":"viewer","expiresAt":"{past}"}}"#).into_bytes(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("expiresAt"),
        ),
        (
            "duplicate name",
            post(json_ct, br#"{"name":"viewer","role":"viewer"}"#.to_vec()),
            StatusCode::CONFLICT,
            None,
        ),
        (
            "too large",
            post(
                json_ct,
                format!(r#"{{"name":"{}","role":"viewer"}}"#, "a".repeat(2 << 20)).into_bytes(),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
        (
            "get non-numeric id",
            request(Method::GET, "/api/v1/apikeys/abc", Some(&admin), None),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "get unknown id",
            request(Method::GET, "/api/v1/apikeys/99999", Some(&admin), None),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "get huge id",
            request(
                Method::GET,
                "/api/v1/apikeys/99999999999999999999999",
                Some(&admin),
                None,
            ),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "patch unknown field",
            request(
                Method::PATCH,
                "/api/v1/apikeys/1",
                Some(&admin),
                Some(json!({"role": "admin"})),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            "patch bad expiry",
            request(
                Method::PATCH,
                "/api/v1/apikeys/1",
                Some(&admin),
                Some(json!({"expiresAt": 5})),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            "unknown route",
            request(Method::GET, "/api/v1/nothing", Some(&admin), None),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "outside the API",
            request(Method::GET, "/", None, None),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "wrong method",
            request(Method::PUT, "/api/v1/apikeys", Some(&admin), None),
            StatusCode::METHOD_NOT_ALLOWED,
            None,
        ),
        (
            "wrong method, health",
            request(Method::POST, "/api/v1/health/live", None, None),
            StatusCode::METHOD_NOT_ALLOWED,
            None,
        ),
    ];
    for (what, req, want, pointer) in cases {
        let a = send(&f, req).await;
        assert_eq!(a.status, want, "{what}: {}", a.body);
        if let Some(p) = pointer {
            let errors = a.body["errors"].as_array().expect("errors");
            assert!(errors.iter().any(|e| e["field"] == p), "{what}: {}", a.body);
        }
        if want == StatusCode::METHOD_NOT_ALLOWED {
            assert!(a.headers.get("allow").is_some(), "{what}");
        }
    }

    // Patch: expiry set, then removed with null; the active flag.
    let id = f.id("viewer");
    let url = format!("/api/v1/apikeys/{id}");
    let a = send(
        &f,
        request(
            Method::PATCH,
            &url,
            Some(&admin),
            Some(json!({"expiresAt": "2099-01-01T00:00:00Z", "active": false})),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["expiresAt"], "2099-01-01T00:00:00Z");
    assert_eq!(a.body["active"], false);
    let a = send(
        &f,
        request(
            Method::PATCH,
            &url,
            Some(&admin),
            Some(json!({"expiresAt": null})),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.get("expiresAt").is_none(), "{}", a.body);
    let a = send(
        &f,
        request(
            Method::PATCH,
            &url,
            Some(&admin),
            Some(json!({"name": "admin"})),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_created_key_works_and_a_deactivated_one_stops() {
    let f = fixture().await;
    let admin = f.key("admin").to_owned();
    let a = send(&f, request(Method::POST, "/api/v1/apikeys", Some(&admin), Some(json!({"name": "ci", "role": "tenant-admin", "tenant": "t9", "expiresAt": "2099-12-31T23:59:59Z"})))).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let key = a.body["key"].as_str().expect("key").to_owned();
    let location = a.headers["location"].to_str().expect("ascii").to_owned();
    let a = send(
        &f,
        request(Method::GET, "/api/v1/apikeys", Some(&key), None),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["items"][0]["name"], "ci");
    assert_eq!(a.body["items"][0]["tenant"], "t9");
    let a = send(&f, request(Method::GET, &location, Some(&admin), None)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.get("key").is_none(), "the key is shown only once");
    let a = send(
        &f,
        request(
            Method::PATCH,
            &location,
            Some(&admin),
            Some(json!({"active": false})),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = send(
        &f,
        request(Method::GET, "/api/v1/apikeys", Some(&key), None),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = send(&f, request(Method::DELETE, &location, Some(&admin), None)).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = send(&f, request(Method::GET, &location, Some(&admin), None)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rate_limit_is_per_key_with_retry_after() {
    let one = NonZeroU32::new(1).expect("nonzero");
    let two = NonZeroU32::new(2).expect("nonzero");
    let f = fixture_with(
        RateLimit {
            per_second: one,
            burst: two,
        },
        None,
    )
    .await;
    let admin = f.key("admin").to_owned();
    let viewer = f.key("t1").to_owned();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let a = send(
            &f,
            request(Method::GET, "/api/v1/apikeys", Some(&admin), None),
        )
        .await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            let secs: u64 = a.headers["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            assert!(secs >= 1);
        }
        statuses.push(a.status.as_u16());
    }
    // The burst of 2 passes, then 429 (a refill may let one more through on a slow machine).
    assert_eq!(&statuses[..2], [200, 200]);
    assert_eq!(statuses[3], 429, "{statuses:?}");
    let a = send(
        &f,
        request(Method::GET, "/api/v1/apikeys", Some(&viewer), None),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "another key has its own budget");
}

struct StubVerifier;

impl BearerVerifier for StubVerifier {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Principal, BearerError>> {
        Box::pin(async move {
            match token {
                "admin-token" => Ok(Principal {
                    subject: "oidc:test#alice".into(),
                    role: Role::Admin,
                }),
                "viewer-token" => Ok(Principal {
                    subject: "oidc:test#bob".into(),
                    role: Role::Viewer,
                }),
                "issuer-down" => Err(BearerError::Unavailable("JWKS fetch failed".into())),
                _ => Err(BearerError::Invalid("bad signature".into())),
            }
        })
    }
}

#[tokio::test]
async fn bearer_tokens_go_through_the_hook() {
    let plenty = NonZeroU32::new(1000).expect("nonzero");
    let f = fixture_with(
        RateLimit {
            per_second: plenty,
            burst: plenty,
        },
        Some(Arc::new(StubVerifier)),
    )
    .await;
    let bearer = |token: &str| {
        Request::builder()
            .uri("/api/v1/apikeys")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request")
    };
    assert_eq!(send(&f, bearer("admin-token")).await.status, StatusCode::OK);
    assert_eq!(
        send(&f, bearer("viewer-token")).await.status,
        StatusCode::FORBIDDEN
    );
    let a = send(&f, bearer("forged")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("Bearer")
    );
    let a = send(&f, bearer("issuer-down")).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !a.body["detail"].as_str().unwrap_or("").contains("JWKS"),
        "cause not sent"
    );
}

#[tokio::test]
async fn health_needs_no_key_and_ready_reports_its_checks() {
    let f = fixture().await;
    let a = send(&f, request(Method::GET, "/api/v1/health/live", None, None)).await;
    assert_eq!(
        (a.status, a.body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let a = send(&f, request(Method::GET, "/api/v1/health/ready", None, None)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.body["checks"],
        json!([{"name": "api_keys", "status": "ok"}])
    );
    f.store.close().await;
    let a = send(&f, request(Method::GET, "/api/v1/health/ready", None, None)).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert_eq!(a.body["checks"][0]["status"], "failed");
    // A closed key database: authenticated requests answer 503, not 500.
    let a = send(
        &f,
        request(Method::GET, "/api/v1/apikeys", Some(f.key("admin")), None),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
}

#[tokio::test]
async fn openapi_document_and_swagger_ui_are_served() {
    let f = fixture().await;
    let a = send(&f, request(Method::GET, "/api/v1/openapi.json", None, None)).await;
    assert_eq!(a.status, StatusCode::OK);
    let doc = a.body;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc, f.doc, "served document = openapi_document()");
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let responses = op["responses"].as_object().expect("responses");
            let public = path.starts_with("/api/v1/health/");
            for status in ["500"].into_iter().chain(if public {
                vec![]
            } else {
                vec!["401", "403", "429", "503"]
            }) {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} lacks {status}"
                    );
                }
            }
            assert!(op["operationId"].is_string(), "{method} {path}");
        }
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["securitySchemes"]["apiKey"].is_object());
    let a = send(&f, request(Method::GET, "/api/v1/docs/", None, None)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let a = send(
        &f,
        request(Method::GET, "/api/v1/docs/no-such-file.js", None, None),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}
