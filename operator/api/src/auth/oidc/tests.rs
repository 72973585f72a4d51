//! The verifier against a real HTTP issuer on 127.0.0.1 (axum) serving discovery and a JWKS
//! of keys generated here (RSA with the `rsa` crate, P-256, P-384 and Ed25519 with rcgen),
//! with tokens signed by jsonwebtoken.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::jwks::KeySet;
use super::*;
use crate::auth::Role;

const AUDIENCE: &str = "mcp-api";

// ---------------------------------------------------------------------------------------
// Keys

/// A signing key and its public JWK.
struct TestKey {
    encoding: EncodingKey,
    /// The public JWK, without `kid` and `alg` (added per JWKS entry).
    jwk: Value,
}

impl TestKey {
    /// Its JWK under `kid`, with `alg` if given.
    fn jwk(&self, kid: &str, alg: Option<&str>) -> Value {
        let mut jwk = self.jwk.clone();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        if let Some(alg) = alg {
            jwk["alg"] = json!(alg);
        }
        jwk
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One RSA key for the whole test binary: generation is slow in a debug build.
fn rsa_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::Generate as _;
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let private = rsa::PrivateKey::generate();
        let der = private.to_pkcs1_der().unwrap();
        let public = private.to_public_key();
        TestKey {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({"kty": "RSA", "n": b64(&public.n_bytes()), "e": b64(&public.e_bytes())}),
        }
    })
}

fn rsa_public_pkcs1_der() -> Vec<u8> {
    let Value::String(n) = &rsa_key().jwk["n"] else {
        unreachable!()
    };
    // Enough for the confusion attack: the attacker uses some public rendering of the key
    // as the HMAC secret; the test tries several.
    URL_SAFE_NO_PAD.decode(n).unwrap()
}

fn ec_key(alg: &'static rcgen::SignatureAlgorithm, crv: &str) -> TestKey {
    let pair = rcgen::KeyPair::generate_for(alg).unwrap();
    let raw = pair.public_key_raw();
    // Uncompressed SEC1 point: 0x04 || x || y.
    let half = (raw.len() - 1) / 2;
    TestKey {
        encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
        jwk: json!({"kty": "EC", "crv": crv, "x": b64(&raw[1..1 + half]), "y": b64(&raw[1 + half..])}),
    }
}

fn p256_key() -> TestKey {
    ec_key(&rcgen::PKCS_ECDSA_P256_SHA256, "P-256")
}

fn p384_key() -> TestKey {
    ec_key(&rcgen::PKCS_ECDSA_P384_SHA384, "P-384")
}

fn ed_key() -> TestKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    TestKey {
        encoding: EncodingKey::from_ed_der(&pair.serialize_der()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key_raw())}),
    }
}

// ---------------------------------------------------------------------------------------
// The issuer

#[derive(Default)]
struct IssuerState {
    /// The `issuer` the discovery document advertises (default: the real URL).
    advertised: Mutex<Option<String>>,
    jwks: Mutex<Value>,
    /// Answer 500 to JWKS requests.
    fail_jwks: AtomicBool,
    jwks_fetches: AtomicUsize,
    url: OnceLock<String>,
}

/// A tiny OIDC issuer on 127.0.0.1: `/.well-known/openid-configuration` and `/jwks`.
struct TestIssuer {
    url: String,
    state: Arc<IssuerState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn discovery(State(state): State<Arc<IssuerState>>) -> Json<Value> {
    let url = state.url.get().cloned().unwrap_or_default();
    let issuer = state
        .advertised
        .lock()
        .unwrap()
        .clone()
        .unwrap_or(url.clone());
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{url}/jwks"),
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    }))
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if state.fail_jwks.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    Json(state.jwks.lock().unwrap().clone()).into_response()
}

impl TestIssuer {
    async fn start(keys: Vec<Value>) -> Self {
        let state = Arc::new(IssuerState {
            jwks: Mutex::new(json!({ "keys": keys })),
            ..IssuerState::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        state.url.set(url.clone()).unwrap();
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, state, server }
    }

    fn set_keys(&self, keys: Vec<Value>) {
        *self.state.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    fn fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    fn config(&self) -> OidcConfig {
        OidcConfig::new(self.url.clone(), AUDIENCE)
    }

    async fn verifier(&self) -> OidcVerifier {
        self.verifier_with(|_| {}).await
    }

    async fn verifier_with(&self, tweak: impl FnOnce(&mut OidcConfig)) -> OidcVerifier {
        let mut config = self.config();
        tweak(&mut config);
        OidcVerifier::discover(config.validate().unwrap())
            .await
            .unwrap()
    }

    /// Valid claims: admin, five minutes left.
    fn claims(&self) -> Value {
        let now = now();
        json!({
            "iss": self.url, "aud": AUDIENCE, "sub": "alice",
            "exp": now + 300, "iat": now, "nbf": now,
            "mcp_role": "admin",
        })
    }

    /// Valid claims with `patch` merged in (a `null` removes a claim).
    fn claims_with(&self, patch: Value) -> Value {
        let mut claims = self.claims();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(key: &TestKey, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// A token assembled by hand: any header, any claims, any signature bytes.
fn forge(header: Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

/// The issuer of most tests: `rsa-1` (bound to RS256), `rsa-2` (no alg), `ec-1` (P-256),
/// `ec384-1` (P-384), `ed-1` (Ed25519).
struct Fixture {
    issuer: TestIssuer,
    p256: TestKey,
    p384: TestKey,
    ed: TestKey,
}

impl Fixture {
    async fn start() -> Self {
        let (p256, p384, ed) = (p256_key(), p384_key(), ed_key());
        let issuer = TestIssuer::start(vec![
            rsa_key().jwk("rsa-1", Some("RS256")),
            rsa_key().jwk("rsa-2", None),
            p256.jwk("ec-1", None),
            p384.jwk("ec384-1", Some("ES384")),
            ed.jwk("ed-1", Some("EdDSA")),
        ])
        .await;
        Self {
            issuer,
            p256,
            p384,
            ed,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Accepted tokens

#[tokio::test]
async fn accepts_each_key_type_and_maps_the_role_claim() {
    let f = Fixture::start().await;
    let v = f.issuer.verifier().await;
    let i = &f.issuer;
    let cases: Vec<(&str, String, Role)> = vec![
        (
            "RS256 admin",
            sign(rsa_key(), Algorithm::RS256, Some("rsa-1"), &i.claims()),
            Role::Admin,
        ),
        (
            "PS256 on an RSA key without alg",
            sign(rsa_key(), Algorithm::PS256, Some("rsa-2"), &i.claims()),
            Role::Admin,
        ),
        (
            "ES256 viewer",
            sign(
                &f.p256,
                Algorithm::ES256,
                Some("ec-1"),
                &i.claims_with(json!({"mcp_role": "viewer"})),
            ),
            Role::Viewer,
        ),
        (
            "ES384 tenant-admin",
            sign(
                &f.p384,
                Algorithm::ES384,
                Some("ec384-1"),
                &i.claims_with(json!({"mcp_role": "tenant-admin", "mcp_tenant": "acme"})),
            ),
            Role::TenantAdmin("acme".into()),
        ),
        (
            "EdDSA, aud as an array containing ours",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"aud": ["other", AUDIENCE]})),
            ),
            Role::Admin,
        ),
        (
            "expired 30 s ago, within the 60 s leeway",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"exp": now() - 30})),
            ),
            Role::Admin,
        ),
        (
            "no nbf, no iat",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"nbf": null, "iat": null})),
            ),
            Role::Admin,
        ),
    ];
    for (name, token, role) in cases {
        let principal = v
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(principal.role, role, "{name}");
        assert_eq!(principal.subject, format!("oidc:{}#alice", i.url), "{name}");
    }
}

#[tokio::test]
async fn a_token_without_kid_uses_the_only_key_of_the_set() {
    let ed = ed_key();
    let issuer = TestIssuer::start(vec![ed.jwk("only", None)]).await;
    let v = issuer.verifier().await;
    let token = sign(&ed, Algorithm::EdDSA, None, &issuer.claims());
    assert_eq!(v.verify(&token).await.unwrap().role, Role::Admin);
}

// ---------------------------------------------------------------------------------------
// Hostile tokens

type Expect = fn(&OidcError) -> bool;

#[tokio::test]
async fn hostile_tokens_are_refused_with_the_right_error() {
    let f = Fixture::start().await;
    let v = f.issuer.verifier().await;
    let i = &f.issuer;
    let attacker_ec = p256_key();
    let good = sign(rsa_key(), Algorithm::RS256, Some("rsa-1"), &i.claims());
    let viewer = sign(
        &f.ed,
        Algorithm::EdDSA,
        Some("ed-1"),
        &i.claims_with(json!({"mcp_role": "viewer"})),
    );
    let escalated = {
        // The payload of an admin token, the signature of a viewer token.
        let admin = sign(&f.ed, Algorithm::EdDSA, Some("ed-1"), &i.claims());
        let admin_parts: Vec<&str> = admin.split('.').collect();
        let viewer_parts: Vec<&str> = viewer.split('.').collect();
        format!("{}.{}.{}", admin_parts[0], admin_parts[1], viewer_parts[2])
    };
    let hmac = |secret: &[u8]| {
        let key = EncodingKey::from_secret(secret).unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        jsonwebtoken::encode(&header, &i.claims(), &key).unwrap()
    };
    let jwk_json = serde_json::to_vec(&rsa_key().jwk("rsa-1", Some("RS256"))).unwrap();

    let cases: Vec<(&str, String, Expect)> = vec![
        // Time
        (
            "expired an hour ago",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"exp": now() - 3600})),
            ),
            |e| matches!(e, OidcError::Expired),
        ),
        (
            "nbf in an hour",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"nbf": now() + 3600})),
            ),
            |e| matches!(e, OidcError::NotYetValid),
        ),
        (
            "iat in an hour",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"iat": now() + 3600})),
            ),
            |e| matches!(e, OidcError::NotYetValid),
        ),
        (
            "exp is a string",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"exp": "tomorrow"})),
            ),
            |e| matches!(e, OidcError::InvalidClaim { claim } if claim == "exp"),
        ),
        (
            "no exp",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"exp": null})),
            ),
            |e| matches!(e, OidcError::InvalidClaim { claim } if claim == "exp"),
        ),
        (
            "iat is a string",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"iat": "now"})),
            ),
            |e| matches!(e, OidcError::InvalidClaim { claim } if claim == "iat"),
        ),
        // Issuer and audience
        (
            "another issuer",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"iss": "https://evil.example"})),
            ),
            |e| matches!(e, OidcError::WrongIssuer),
        ),
        (
            "issuer with a trailing slash (exact match only)",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"iss": format!("{}/", i.url)})),
            ),
            |e| matches!(e, OidcError::WrongIssuer),
        ),
        (
            "no iss",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"iss": null})),
            ),
            |e| matches!(e, OidcError::InvalidClaim { claim } if claim == "iss"),
        ),
        (
            "another audience",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"aud": "someone-else"})),
            ),
            |e| matches!(e, OidcError::WrongAudience),
        ),
        (
            "audience array without ours",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"aud": ["a", "b"]})),
            ),
            |e| matches!(e, OidcError::WrongAudience),
        ),
        (
            "no aud",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"aud": null})),
            ),
            |e| matches!(e, OidcError::InvalidClaim { claim } if claim == "aud"),
        ),
        (
            "no sub",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"sub": null})),
            ),
            |e| matches!(e, OidcError::InvalidClaim { claim } if claim == "sub"),
        ),
        (
            "empty sub",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"sub": ""})),
            ),
            |e| matches!(e, OidcError::InvalidClaim { claim } if claim == "sub"),
        ),
        (
            "numeric sub",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"sub": 42})),
            ),
            |e| matches!(e, OidcError::InvalidClaim { claim } if claim == "sub"),
        ),
        // Keys and algorithms
        (
            "unknown kid",
            sign(&f.ed, Algorithm::EdDSA, Some("nobody"), &i.claims()),
            |e| matches!(e, OidcError::UnknownKey),
        ),
        (
            "no kid with several keys in the set",
            sign(&f.ed, Algorithm::EdDSA, None, &i.claims()),
            |e| matches!(e, OidcError::UnknownKey),
        ),
        (
            "alg none, empty signature",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","kid":"rsa-1"}"#),
                b64(i.claims().to_string().as_bytes())
            ),
            |e| matches!(e, OidcError::Malformed),
        ),
        (
            "alg none, some signature",
            forge(json!({"alg": "none", "kid": "rsa-1"}), &i.claims(), b"x"),
            |e| matches!(e, OidcError::AlgorithmNotAllowed { alg } if alg == "none"),
        ),
        (
            "alg None (case)",
            forge(json!({"alg": "None", "kid": "rsa-1"}), &i.claims(), b"x"),
            |e| matches!(e, OidcError::AlgorithmNotAllowed { .. }),
        ),
        (
            "HS256 keyed with the RSA modulus (algorithm confusion)",
            hmac(&rsa_public_pkcs1_der()),
            |e| matches!(e, OidcError::AlgorithmNotAllowed { alg } if alg == "HS256"),
        ),
        (
            "HS256 keyed with the JWK JSON (algorithm confusion)",
            hmac(&jwk_json),
            |e| matches!(e, OidcError::AlgorithmNotAllowed { alg } if alg == "HS256"),
        ),
        (
            "RS256 header naming the EC key, signed with RSA",
            sign(rsa_key(), Algorithm::RS256, Some("ec-1"), &i.claims()),
            |e| {
                matches!(
                    e,
                    OidcError::KeyMismatch {
                        alg: SigningAlgorithm::RS256
                    }
                )
            },
        ),
        (
            "ES256 header naming the RSA key",
            sign(&attacker_ec, Algorithm::ES256, Some("rsa-2"), &i.claims()),
            |e| {
                matches!(
                    e,
                    OidcError::KeyMismatch {
                        alg: SigningAlgorithm::ES256
                    }
                )
            },
        ),
        (
            "ES384 header naming the P-256 key",
            sign(&f.p384, Algorithm::ES384, Some("ec-1"), &i.claims()),
            |e| {
                matches!(
                    e,
                    OidcError::KeyMismatch {
                        alg: SigningAlgorithm::ES384
                    }
                )
            },
        ),
        (
            "EdDSA header naming the EC key",
            sign(&f.ed, Algorithm::EdDSA, Some("ec-1"), &i.claims()),
            |e| {
                matches!(
                    e,
                    OidcError::KeyMismatch {
                        alg: SigningAlgorithm::EdDSA
                    }
                )
            },
        ),
        (
            "PS256 on the key bound to RS256",
            sign(rsa_key(), Algorithm::PS256, Some("rsa-1"), &i.claims()),
            |e| {
                matches!(
                    e,
                    OidcError::KeyMismatch {
                        alg: SigningAlgorithm::PS256
                    }
                )
            },
        ),
        (
            "signed by another P-256 key under the issuer's kid",
            sign(&attacker_ec, Algorithm::ES256, Some("ec-1"), &i.claims()),
            |e| matches!(e, OidcError::BadSignature),
        ),
        (
            "attacker key embedded in the header (jwk) with its own kid",
            {
                let mut header = Header::new(Algorithm::ES256);
                header.kid = Some("attacker".into());
                header.jwk =
                    Some(serde_json::from_value(attacker_ec.jwk("attacker", None)).unwrap());
                header.jku = Some(format!("{}/evil-jwks", i.url));
                jsonwebtoken::encode(&header, &i.claims(), &attacker_ec.encoding).unwrap()
            },
            |e| matches!(e, OidcError::UnknownKey),
        ),
        ("viewer signature on an admin payload", escalated, |e| {
            matches!(e, OidcError::BadSignature)
        }),
        (
            "unsupported crit header",
            forge(
                json!({"alg": "EdDSA", "kid": "ed-1", "crit": ["exp"], "exp": 1}),
                &i.claims(),
                &[0; 64],
            ),
            |e| matches!(e, OidcError::Malformed),
        ),
        // Shape and size
        (
            "truncated signature",
            good[..good.len() - 20].to_owned(),
            |e| matches!(e, OidcError::BadSignature | OidcError::Malformed),
        ),
        (
            "truncated to two parts",
            good[..good.rfind('.').unwrap()].to_owned(),
            |e| matches!(e, OidcError::Malformed),
        ),
        ("empty", String::new(), |e| {
            matches!(e, OidcError::Malformed)
        }),
        ("one word", "garbage".into(), |e| {
            matches!(e, OidcError::Malformed)
        }),
        ("dots only", "..".into(), |e| {
            matches!(e, OidcError::Malformed)
        }),
        ("four parts", format!("{good}.x"), |e| {
            matches!(e, OidcError::Malformed)
        }),
        (
            "a JWE (five parts)",
            "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d".into(),
            |e| matches!(e, OidcError::Malformed),
        ),
        ("not base64url", "ey+J/.ab$c.d=e".into(), |e| {
            matches!(e, OidcError::Malformed)
        }),
        (
            "header not JSON",
            format!("{}.{}.AAAA", b64(b"not json"), b64(b"{}")),
            |e| matches!(e, OidcError::Malformed),
        ),
        (
            "header without alg",
            forge(json!({"kid": "ed-1"}), &i.claims(), b"x"),
            |e| matches!(e, OidcError::Malformed),
        ),
        (
            "payload not JSON, correctly signed",
            {
                // Sign a payload that is not JSON with the issuer's key.
                let message = format!(
                    "{}.{}",
                    b64(br#"{"alg":"EdDSA","kid":"ed-1"}"#),
                    b64(b"\xff\xfe not json")
                );
                let signature = jsonwebtoken::crypto::sign(
                    message.as_bytes(),
                    &f.ed.encoding,
                    Algorithm::EdDSA,
                )
                .unwrap();
                format!("{message}.{signature}")
            },
            |e| matches!(e, OidcError::Malformed),
        ),
        ("with a trailing newline", format!("{good}\n"), |e| {
            matches!(e, OidcError::Malformed)
        }),
        (
            "with Bearer prefix left on",
            format!("Bearer {good}"),
            |e| matches!(e, OidcError::Malformed),
        ),
        (
            "oversized (9000 bytes)",
            format!(
                "{}.{}.{}",
                "a".repeat(3000),
                "b".repeat(3000),
                "c".repeat(3000)
            ),
            |e| matches!(e, OidcError::TooLarge { limit: 8192 }),
        ),
        ("non-ASCII", "é.é.é".into(), |e| {
            matches!(e, OidcError::Malformed)
        }),
        // Roles (authenticated: 403)
        (
            "no role claim",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"mcp_role": null})),
            ),
            |e| matches!(e, OidcError::NoRole { .. }),
        ),
        (
            "tenant-admin without tenant",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"mcp_role": "tenant-admin"})),
            ),
            |e| matches!(e, OidcError::MissingTenant { claim, .. } if claim == "mcp_tenant"),
        ),
        (
            "tenant-admin of a tenant that is no tenant name",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"mcp_role": "tenant-admin", "mcp_tenant": "Acme Corp"})),
            ),
            |e| matches!(e, OidcError::MissingTenant { .. }),
        ),
        (
            "unknown role",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"mcp_role": "root"})),
            ),
            |e| matches!(e, OidcError::UnknownRole { .. }),
        ),
        (
            "role as an array",
            sign(
                &f.ed,
                Algorithm::EdDSA,
                Some("ed-1"),
                &i.claims_with(json!({"mcp_role": ["admin"]})),
            ),
            |e| matches!(e, OidcError::UnknownRole { .. }),
        ),
    ];
    for (name, token, expect) in cases {
        let error = match v.verify(&token).await {
            Ok(p) => panic!("{name}: accepted as {p:?}"),
            Err(e) => e,
        };
        assert!(expect(&error), "{name}: unexpected error {error:?}");
        let forbidden = matches!(
            error,
            OidcError::NoRole { .. }
                | OidcError::MissingTenant { .. }
                | OidcError::UnknownRole { .. }
        );
        let kind = if forbidden {
            OidcErrorKind::Forbidden
        } else {
            OidcErrorKind::Unauthenticated
        };
        assert_eq!(error.kind(), kind, "{name}");
        let challenge = if forbidden {
            "insufficient_scope"
        } else {
            "invalid_token"
        };
        assert_eq!(error.bearer_error(), Some(challenge), "{name}");
        // No message repeats the token (or a telling piece of it).
        let message = format!("{error} {error:?}");
        for part in token.split('.').filter(|p| p.len() >= 8) {
            assert!(
                !message.contains(part),
                "{name}: error shows the token: {message}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// JWKS cache and refresh

#[tokio::test]
async fn kid_rotation_refreshes_once_and_floods_of_unknown_kids_are_rate_limited() {
    let (old, new, newer) = (p256_key(), ed_key(), ed_key());
    let issuer = TestIssuer::start(vec![old.jwk("k1", None)]).await;
    let v = issuer.verifier().await;
    assert_eq!(issuer.fetches(), 1, "discovery fetches the JWKS once");

    let token = sign(&old, Algorithm::ES256, Some("k1"), &issuer.claims());
    v.verify(&token).await.unwrap();
    assert_eq!(issuer.fetches(), 1, "a known kid needs no fetch");

    // The issuer rotates: k2 appears; the first token naming it triggers one refresh.
    issuer.set_keys(vec![old.jwk("k1", None), new.jwk("k2", None)]);
    let rotated = sign(&new, Algorithm::EdDSA, Some("k2"), &issuer.claims());
    assert_eq!(v.verify(&rotated).await.unwrap().role, Role::Admin);
    assert_eq!(issuer.fetches(), 2);

    // A flood of made-up kids, sequential and concurrent: no further fetch within 30 s.
    for n in 0..20 {
        let bogus = sign(
            &new,
            Algorithm::EdDSA,
            Some(&format!("bogus-{n}")),
            &issuer.claims(),
        );
        assert!(matches!(v.verify(&bogus).await, Err(OidcError::UnknownKey)));
    }
    let tokens: Vec<String> = (0..20)
        .map(|n| {
            sign(
                &new,
                Algorithm::EdDSA,
                Some(&format!("flood-{n}")),
                &issuer.claims(),
            )
        })
        .collect();
    let results = futures_join_all(&v, &tokens).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(OidcError::UnknownKey)))
    );
    assert_eq!(issuer.fetches(), 2, "unknown kids are rate-limited");
    assert_eq!(v.jwks_fetches(), 2);

    // The price of the limit: a key published less than 30 s after the last kid-miss
    // refresh is only seen at the next allowed refresh (issuers publish keys ahead).
    issuer.set_keys(vec![new.jwk("k2", None), newer.jwk("k3", None)]);
    let too_soon = sign(&newer, Algorithm::EdDSA, Some("k3"), &issuer.claims());
    assert!(matches!(
        v.verify(&too_soon).await,
        Err(OidcError::UnknownKey)
    ));
    // Known keys still work meanwhile.
    v.verify(&rotated).await.unwrap();
    assert_eq!(issuer.fetches(), 2);
}

/// Verifies all `tokens` concurrently.
async fn futures_join_all(
    v: &OidcVerifier,
    tokens: &[String],
) -> Vec<Result<Principal, OidcError>> {
    let mut set = tokio::task::JoinSet::new();
    for token in tokens {
        let (v, token) = (v.clone(), token.clone());
        set.spawn(async move { v.verify(&token).await });
    }
    let mut results = Vec::new();
    while let Some(r) = set.join_next().await {
        results.push(r.unwrap());
    }
    results
}

#[tokio::test]
async fn a_failing_refresh_keeps_the_old_keys() {
    let key = p256_key();
    let issuer = TestIssuer::start(vec![key.jwk("k1", None)]).await;
    let v = issuer
        .verifier_with(|c| c.jwks_min_refresh_seconds = 0)
        .await;
    let known = sign(&key, Algorithm::ES256, Some("k1"), &issuer.claims());
    let unknown = sign(&key, Algorithm::ES256, Some("k9"), &issuer.claims());

    // The JWKS endpoint fails.
    issuer.state.fail_jwks.store(true, Ordering::SeqCst);
    assert!(matches!(
        v.verify(&unknown).await,
        Err(OidcError::UnknownKey)
    ));
    assert_eq!(issuer.fetches(), 2, "the unknown kid tried a refresh");
    v.verify(&known).await.unwrap();

    // The JWKS endpoint answers, but with nothing usable.
    issuer.state.fail_jwks.store(false, Ordering::SeqCst);
    issuer.set_keys(vec![json!({"kty": "oct", "k": "c2VjcmV0", "kid": "k9"})]);
    assert!(matches!(
        v.verify(&unknown).await,
        Err(OidcError::UnknownKey)
    ));
    assert_eq!(issuer.fetches(), 3);
    v.verify(&known).await.unwrap();
}

#[tokio::test]
async fn the_jwks_is_refreshed_periodically() {
    let (old, new) = (p256_key(), ed_key());
    let issuer = TestIssuer::start(vec![old.jwk("k1", None)]).await;
    let v = issuer.verifier_with(|c| c.jwks_refresh_seconds = 1).await;
    issuer.set_keys(vec![new.jwk("k2", None)]);
    // Wait (bounded) for the background refresh; no token is verified meanwhile.
    for _ in 0..300 {
        if v.inner.jwks.current().candidates(Some("k2")).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let keys = v.inner.jwks.current();
    assert!(
        keys.candidates(Some("k2")).is_some(),
        "the new key was fetched"
    );
    assert!(
        keys.candidates(Some("k1")).is_none(),
        "the removed key is gone"
    );
    assert!(issuer.fetches() >= 2);
}

// ---------------------------------------------------------------------------------------
// Discovery

#[tokio::test]
async fn discovery_refuses_a_document_naming_another_issuer() {
    let issuer = TestIssuer::start(vec![ed_key().jwk("k1", None)]).await;
    *issuer.state.advertised.lock().unwrap() = Some("https://evil.example".into());
    let error = OidcVerifier::discover(issuer.config().validate().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, OidcError::Discovery { .. }), "{error:?}");
    assert_eq!(error.kind(), OidcErrorKind::IssuerUnavailable);
}

#[tokio::test]
async fn discovery_fails_without_usable_keys_or_document() {
    let issuer = TestIssuer::start(vec![json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hs"})]).await;
    let error = OidcVerifier::discover(issuer.config().validate().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, OidcError::Jwks { .. }), "{error:?}");

    // An issuer path with no discovery document (404).
    let mut config = issuer.config();
    config.issuer = format!("{}/realms/none", issuer.url);
    let error = OidcVerifier::discover(config.validate().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, OidcError::Discovery { reason, .. } if reason.contains("404")),
        "{error:?}"
    );

    // Nothing listens.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = OidcVerifier::discover(OidcConfig::new(closed, AUDIENCE).validate().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, OidcError::Discovery { reason, .. } if reason.to_lowercase().contains("refused")),
        "the cause is shown: {error}"
    );
}

#[test]
fn jwks_parsing_keeps_only_usable_signature_keys() {
    let ed = ed_key();
    let p256 = p256_key();
    let short_rsa = json!({"kty": "RSA", "kid": "rsa-512", "e": "AQAB", "n": b64(&[0xff; 64])});
    let off_curve =
        json!({"kty": "EC", "crv": "P-256", "kid": "off", "x": b64(&[1; 32]), "y": b64(&[2; 32])});
    let cases: Vec<(&str, Value, bool)> = vec![
        ("Ed25519", ed.jwk("a", None), true),
        ("P-256", p256.jwk("a", None), true),
        ("RSA 3072", rsa_key().jwk("a", Some("RS256")), true),
        (
            "symmetric oct key",
            json!({"kty": "oct", "k": "c2VjcmV0", "kid": "a"}),
            false,
        ),
        (
            "encryption key",
            {
                let mut k = p256.jwk("a", None);
                k["use"] = json!("enc");
                k
            },
            false,
        ),
        (
            "key_ops without verify",
            {
                let mut k = p256.jwk("a", None);
                k["key_ops"] = json!(["encrypt"]);
                k
            },
            false,
        ),
        (
            "RSA bound to HS256",
            rsa_key().jwk("a", Some("HS256")),
            false,
        ),
        (
            "RSA bound to RSA-OAEP",
            rsa_key().jwk("a", Some("RSA-OAEP")),
            false,
        ),
        ("EC key bound to RS256", p256.jwk("a", Some("RS256")), false),
        ("RSA 512 bits", short_rsa, false),
        ("P-256 point off the curve", off_curve, false),
        (
            "Ed25519 with 16-byte x",
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": b64(&[7; 16])}),
            false,
        ),
        (
            "Ed25519 with 64-byte x",
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": b64(&[7; 64])}),
            false,
        ),
        (
            "X25519",
            json!({"kty": "OKP", "crv": "X25519", "kid": "a", "x": b64(&[7; 32])}),
            false,
        ),
        (
            "P-521",
            json!({"kty": "EC", "crv": "P-521", "kid": "a", "x": b64(&[7; 66]), "y": b64(&[7; 66])}),
            false,
        ),
        ("unknown kty", json!({"kty": "XYZ", "kid": "a"}), false),
        ("not an object", json!("key"), false),
    ];
    for (name, jwk, usable) in cases {
        let body = serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap();
        assert_eq!(KeySet::parse(&body).is_ok(), usable, "{name}");
    }
    // One odd key does not spoil the others.
    let body = serde_json::to_vec(&json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hs"}, ed.jwk("ed", None), "junk"
    ]}))
    .unwrap();
    let set = KeySet::parse(&body).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set.candidates(Some("hs")).is_none());
    for body in [&b"not json"[..], b"{}", b"{\"keys\": 5}", b"[]"] {
        assert!(KeySet::parse(body).is_err());
    }
}

// ---------------------------------------------------------------------------------------
// Settings

#[test]
fn settings_are_validated_once() {
    let ok = OidcConfig::new("https://idp.example/realms/mcp", AUDIENCE);
    let settings = ok.clone().validate().unwrap();
    assert_eq!(settings.issuer(), "https://idp.example/realms/mcp");
    assert_eq!(settings.audience(), AUDIENCE);
    assert_eq!(settings.leeway(), Duration::from_secs(60));
    assert_eq!(settings.algorithms(), &SigningAlgorithm::ALL);
    for loopback in [
        "http://127.0.0.1:5556/dex",
        "http://localhost:8080",
        "http://[::1]:1",
    ] {
        OidcConfig::new(loopback, AUDIENCE).validate().unwrap();
    }

    type Tweak = fn(&mut OidcConfig);
    let cases: Vec<(&str, Tweak)> = vec![
        ("issuer", |c| c.issuer = "http://idp.example".into()),
        ("issuer", |c| c.issuer = "http://10.0.0.1".into()),
        ("issuer", |c| c.issuer = "idp.example".into()),
        ("issuer", |c| {
            c.issuer = "https://user:pw@idp.example".into()
        }),
        ("issuer", |c| {
            c.issuer = "https://idp.example/?tenant=x".into()
        }),
        ("issuer", |c| c.issuer = "https://idp.example/#x".into()),
        ("issuer", |c| c.issuer = "ftp://idp.example".into()),
        ("issuer", |c| c.issuer = String::new()),
        ("audience", |c| c.audience = " ".into()),
        ("leewaySeconds", |c| c.leeway_seconds = 301),
        ("algorithms", |c| c.algorithms.clear()),
        ("maxTokenBytes", |c| c.max_token_bytes = 100),
        ("maxTokenBytes", |c| c.max_token_bytes = 1 << 20),
        ("jwksRefreshSeconds", |c| c.jwks_refresh_seconds = 0),
        ("roles.roleClaim", |c| {
            c.roles.role_claim = Some(String::new())
        }),
        ("roles.roleClaim", |c| {
            c.roles.role_claim = Some("/a//b".into())
        }),
        ("roles.tenantClaim", |c| {
            c.roles.tenant_claim = "a\nb".into()
        }),
        ("roles.groupsClaim", |c| {
            c.roles.groups.insert("ops".into(), Role::Admin);
        }),
        ("roles.groups", |c| {
            c.roles.groups_claim = Some("groups".into());
            c.roles
                .groups
                .insert("ops".into(), Role::TenantAdmin("Not A Tenant".into()));
        }),
        ("roles.groups", |c| {
            c.roles.groups_claim = Some("groups".into());
            c.roles.groups.insert(String::new(), Role::Viewer);
        }),
        ("roles", |c| c.roles.role_claim = None),
        ("caPem", |c| c.ca_pem = Some("not a certificate".into())),
    ];
    for (field, tweak) in cases {
        let mut config = ok.clone();
        tweak(&mut config);
        match config.validate() {
            Err(OidcError::InvalidSettings { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{field}: expected InvalidSettings, got {other:?}"),
        }
    }
}

#[test]
fn config_json_cannot_name_none_or_hmac_algorithms() {
    let parse = |json: Value| serde_json::from_value::<OidcConfig>(json);
    let base = json!({"issuer": "https://idp.example", "audience": AUDIENCE});
    let config = parse(base.clone()).unwrap();
    assert_eq!(config, OidcConfig::new("https://idp.example", AUDIENCE));
    for bad in ["none", "HS256", "HS512", "rs256", "RSA-OAEP", ""] {
        let mut json = base.clone();
        json["algorithms"] = json!([bad]);
        assert!(parse(json).is_err(), "{bad}");
    }
    let mut unknown = base.clone();
    unknown["audiences"] = json!(["x"]);
    assert!(parse(unknown).is_err(), "unknown fields are refused");
    let full = parse(json!({
        "issuer": "https://idp.example", "audience": AUDIENCE, "leewaySeconds": 30,
        "algorithms": ["RS256", "EdDSA"],
        "roles": {
            "roleClaim": null, "groupsClaim": "/realm_access/roles",
            "groups": {
                "mcp-admins": {"role": "admin"},
                "acme-ops": {"role": "tenant-admin", "tenant": "acme"},
                "auditors": {"role": "viewer"}
            }
        }
    }))
    .unwrap();
    let settings = full.validate().unwrap();
    assert_eq!(
        settings.algorithms(),
        &[SigningAlgorithm::RS256, SigningAlgorithm::EdDSA]
    );
    assert_eq!(settings.roles.groups.len(), 3);
}

// ---------------------------------------------------------------------------------------
// Role mapping

#[test]
fn groups_map_to_the_most_privileged_role() {
    let mut config = OidcConfig::new("https://idp.example", AUDIENCE);
    config.roles.groups_claim = Some("/realm_access/roles".into());
    config.roles.groups.insert("mcp-admins".into(), Role::Admin);
    config
        .roles
        .groups
        .insert("acme-ops".into(), Role::TenantAdmin("acme".into()));
    config
        .roles
        .groups
        .insert("acme-ops-2".into(), Role::TenantAdmin("acme".into()));
    config
        .roles
        .groups
        .insert("globex-ops".into(), Role::TenantAdmin("globex".into()));
    config.roles.groups.insert("auditors".into(), Role::Viewer);
    let mapping = config.validate().unwrap().roles;
    let groups = |g: Value| json!({"realm_access": {"roles": g}});
    let cases: Vec<(&str, Value, Result<Role, &str>)> = vec![
        (
            "admin group",
            groups(json!(["x", "mcp-admins"])),
            Ok(Role::Admin),
        ),
        (
            "admin wins",
            groups(json!(["auditors", "acme-ops", "mcp-admins"])),
            Ok(Role::Admin),
        ),
        (
            "tenant-admin over viewer",
            groups(json!(["auditors", "acme-ops"])),
            Ok(Role::TenantAdmin("acme".into())),
        ),
        (
            "two groups, one tenant",
            groups(json!(["acme-ops", "acme-ops-2"])),
            Ok(Role::TenantAdmin("acme".into())),
        ),
        ("viewer", groups(json!(["auditors"])), Ok(Role::Viewer)),
        (
            "a single string",
            groups(json!("auditors")),
            Ok(Role::Viewer),
        ),
        (
            "two tenants",
            groups(json!(["acme-ops", "globex-ops"])),
            Err("ambiguous"),
        ),
        (
            "no mapped group",
            groups(json!(["x", 5, null])),
            Err("none"),
        ),
        ("no groups claim", json!({}), Err("none")),
        (
            "groups claim not a list",
            groups(json!({"a": 1})),
            Err("none"),
        ),
        (
            "role claim wins over groups",
            {
                let mut c = groups(json!(["mcp-admins"]));
                c["mcp_role"] = json!("viewer");
                c
            },
            Ok(Role::Viewer),
        ),
        (
            "a bad role claim is not rescued by groups",
            {
                let mut c = groups(json!(["mcp-admins"]));
                c["mcp_role"] = json!("superuser");
                c
            },
            Err("unknown"),
        ),
        (
            "tenant from a namespaced claim name",
            json!({"mcp_role": "tenant-admin", "mcp_tenant": "acme"}),
            Ok(Role::TenantAdmin("acme".into())),
        ),
    ];
    for (name, claims, expected) in cases {
        let got = roles::role_of(&mapping, &claims, "oidc:x#y");
        match (got, expected) {
            (Ok(role), Ok(want)) => assert_eq!(role, want, "{name}"),
            (Err(OidcError::AmbiguousRole { .. }), Err("ambiguous"))
            | (Err(OidcError::NoRole { .. }), Err("none"))
            | (Err(OidcError::UnknownRole { .. }), Err("unknown")) => {}
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn custom_claim_names_and_pointers() {
    let mut config = OidcConfig::new("https://idp.example", AUDIENCE);
    config.roles.role_claim = Some("https://mcp.example/role".into());
    config.roles.tenant_claim = "/mcp/tenant".into();
    let mapping = config.validate().unwrap().roles;
    let claims = json!({"https://mcp.example/role": "tenant-admin", "mcp": {"tenant": "acme"}});
    assert_eq!(
        roles::role_of(&mapping, &claims, "s").unwrap(),
        Role::TenantAdmin("acme".into())
    );
}

// ---------------------------------------------------------------------------------------
// A real OpenID Connect provider

/// Against ORY Hydra (`eval "$(e2e/services/hydra.sh start)"` sets `MCP_TEST_OIDC_ISSUER` and
/// `MCP_TEST_OIDC_CLIENT=<id>:<secret>`): RS256 access tokens of the client-credentials
/// grant, roles from the `scp` claim. Without those variables the test passes with a notice,
/// unless `MCP_REQUIRE_OIDC=1`.
#[tokio::test]
async fn tokens_of_a_real_provider_hydra() {
    let (Ok(issuer), Ok(client)) = (
        std::env::var("MCP_TEST_OIDC_ISSUER"),
        std::env::var("MCP_TEST_OIDC_CLIENT"),
    ) else {
        assert_ne!(
            std::env::var("MCP_REQUIRE_OIDC").as_deref(),
            Ok("1"),
            "MCP_REQUIRE_OIDC=1 but MCP_TEST_OIDC_ISSUER/MCP_TEST_OIDC_CLIENT are not set"
        );
        eprintln!("real OIDC provider test skipped: eval \"$(e2e/services/hydra.sh start)\"");
        return;
    };
    let (id, secret) = client.split_once(':').unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let discovery: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token_endpoint = discovery["token_endpoint"].as_str().unwrap().to_owned();
    let token = |scope: &'static str, audience: &'static str| {
        let (http, token_endpoint) = (http.clone(), token_endpoint.clone());
        async move {
            let answer: Value = http
                .post(token_endpoint)
                .basic_auth(id, Some(secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "grant_type=client_credentials&scope={scope}&audience={audience}"
                ))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["access_token"]
                .as_str()
                .unwrap_or_else(|| panic!("no access token: {answer}"))
                .to_owned()
        }
    };

    let mut config = OidcConfig::new(issuer.clone(), AUDIENCE);
    config.roles.groups_claim = Some("scp".into());
    config.roles.groups.insert("mcp-admin".into(), Role::Admin);
    config
        .roles
        .groups
        .insert("mcp-viewer".into(), Role::Viewer);
    let v = OidcVerifier::discover(config.validate().unwrap())
        .await
        .unwrap();

    let admin = v.verify(&token("mcp-admin", AUDIENCE).await).await.unwrap();
    assert_eq!(admin.role, Role::Admin);
    assert_eq!(admin.subject, format!("oidc:{issuer}#{id}"));
    let viewer = v
        .verify(&token("mcp-viewer", AUDIENCE).await)
        .await
        .unwrap();
    assert_eq!(viewer.role, Role::Viewer);
    assert!(matches!(
        v.verify(&token("other", AUDIENCE).await).await,
        Err(OidcError::NoRole { .. })
    ));
    assert!(matches!(
        v.verify(&token("mcp-admin", "someone-else").await).await,
        Err(OidcError::WrongAudience)
    ));
    let good = token("mcp-viewer", AUDIENCE).await;
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["scp"] = json!(["mcp-admin"]);
    let escalated = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    assert!(matches!(
        v.verify(&escalated).await,
        Err(OidcError::BadSignature)
    ));
}

// ---------------------------------------------------------------------------------------
// The settings file (--oidc-config) and the facade's bearer hook

#[test]
fn settings_files_are_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String, Result<(), &str>)> = vec![
        (
            "yaml with groups",
            "issuer: https://idp.example/realms/mcp\naudience: mcp-api\nroles:\n  groupsClaim: groups\n  groups: {mcp-admins: {role: admin}, acme-ops: {role: tenant-admin, tenant: acme}}\n".into(),
            Ok(()),
        ),
        (
            "json",
            r#"{"issuer": "https://idp.example", "audience": "mcp-api", "leewaySeconds": 5}"#.into(),
            Ok(()),
        ),
        ("empty", String::new(), Err("file")),
        ("not a map", "- issuer\n".into(), Err("file")),
        (
            "unknown key",
            "issuer: https://idp.example\naudience: a\nclientSecret: s\n".into(),
            Err("clientSecret"),
        ),
        ("no audience", "issuer: https://idp.example\n".into(), Err("audience")),
        (
            "http issuer off loopback",
            "issuer: http://idp.example\naudience: a\n".into(),
            Err("issuer"),
        ),
        (
            "hmac",
            "issuer: https://idp.example\naudience: a\nalgorithms: [HS256]\n".into(),
            Err("file"),
        ),
        (
            "too large",
            format!("issuer: https://idp.example\naudience: a\n#{}\n", "x".repeat(300 * 1024)),
            Err("at most"),
        ),
    ];
    for (name, text, want) in cases {
        let path = dir.path().join("oidc.yaml");
        std::fs::write(&path, &text).unwrap();
        match (OidcConfig::from_file(&path), want) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{name}: {e}"),
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
    let missing = OidcConfig::from_file(&dir.path().join("absent.yaml")).unwrap_err();
    assert!(missing.to_string().contains("absent.yaml"), "{missing}");
}

#[tokio::test]
async fn the_authenticator_admits_maps_and_refuses_bearer_tokens() {
    use crate::auth::{Authenticator, RateLimit};
    use axum::http::{HeaderMap, HeaderValue, header::AUTHORIZATION};

    let f = Fixture::start().await;
    let i = &f.issuer;
    let dir = tempfile::tempdir().unwrap();
    let keys = crate::store::ApiKeyStore::connect(&format!(
        "sqlite://{}",
        dir.path().join("api.sqlite").display()
    ))
    .await
    .unwrap();
    let auth =
        Authenticator::new(keys, RateLimit::default()).with_bearer(Arc::new(i.verifier().await));
    let bearer = |token: &str| {
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    };
    let sign_claims = |claims: &Value| sign(rsa_key(), Algorithm::RS256, Some("rsa-1"), claims);

    let admin = auth
        .authenticate(&bearer(&sign_claims(&i.claims())))
        .await
        .unwrap();
    assert_eq!(admin.role, Role::Admin);
    assert!(admin.subject.ends_with("#alice"), "{}", admin.subject);
    let tenant_admin = auth
        .authenticate(&bearer(&sign_claims(&i.claims_with(
            json!({"sub": "bob", "mcp_role": "tenant-admin", "mcp_tenant": "acme"}),
        ))))
        .await
        .unwrap();
    assert_eq!(tenant_admin.role, Role::TenantAdmin("acme".into()));

    let cases: Vec<(&str, Value, StatusCode)> = vec![
        ("no role", json!({"mcp_role": null}), StatusCode::FORBIDDEN),
        (
            "unknown role",
            json!({"mcp_role": "root"}),
            StatusCode::FORBIDDEN,
        ),
        (
            "tenant-admin without tenant",
            json!({"mcp_role": "tenant-admin"}),
            StatusCode::FORBIDDEN,
        ),
        (
            "other audience",
            json!({"aud": "someone-else"}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "expired",
            json!({"exp": now() - 3600}),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (name, patch, status) in cases {
        let err = auth
            .authenticate(&bearer(&sign_claims(&i.claims_with(patch))))
            .await
            .unwrap_err();
        assert_eq!(err.status, status, "{name}: {err}");
        assert!(
            !err.detail.contains("eyJ"),
            "{name}: the token leaks: {err}"
        );
    }
    let err = auth.authenticate(&bearer("not.a.jwt")).await.unwrap_err();
    assert_eq!(err.status, StatusCode::UNAUTHORIZED);
    assert!(
        err.headers
            .iter()
            .any(|(n, v)| n == "www-authenticate" && v.to_str().unwrap().contains("Bearer")),
        "{err:?}"
    );
}
