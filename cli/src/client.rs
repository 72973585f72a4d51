//! The HTTP client of the facade: base URL, credentials, and answers as JSON or
//! [`Error::Problem`].

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::{Client as Http, RequestBuilder};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::Value;
use url::Url;

use crate::error::{Error, Problem, Result};

/// Prefix of every path of the facade.
pub const BASE_PATH: &str = "/api/v1";
/// Time allowed for an ordinary request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Time allowed for one chunk of a bulk import (every row's password is hashed).
pub const IMPORT_TIMEOUT: Duration = Duration::from_secs(600);

/// How the client authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// `X-API-Key: <key>`.
    ApiKey(String),
    /// `Authorization: Bearer <token>` (an OIDC JWT).
    Token(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::ApiKey(k) => write!(f, "ApiKey({})", crate::config::mask_key(k)),
            Credential::Token(_) => f.write_str("Token(…)"),
        }
    }
}

impl Credential {
    /// How it may be shown: a key masked as `mcp_<prefix>_…`, a token as `bearer token`.
    pub fn describe(&self) -> String {
        match self {
            Credential::ApiKey(k) => format!("API key {}", crate::config::mask_key(k)),
            Credential::Token(_) => "bearer token".to_owned(),
        }
    }
}

/// A body to send.
#[derive(Debug)]
pub enum Body {
    /// `application/json`.
    Json(Value),
    /// Raw octets with their content type (`text/csv`).
    Raw(&'static str, Vec<u8>),
}

/// A 2xx answer.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: u16,
    /// Its body as JSON (`Null` when empty).
    pub body: Value,
}

/// A client of one server with one credential.
#[derive(Debug)]
pub struct Client {
    http: Http,
    base: Url,
    credential: Option<Credential>,
}

/// `server` as the base URL of the facade: `http://h:p` and `http://h:p/api/v1/` both give
/// `http://h:p/api/v1`.
///
/// # Errors
/// [`Error::Usage`] for a URL that is not `http` or `https`.
pub fn base_url(server: &str) -> Result<Url> {
    let bad = |why: String| Error::Usage(format!("--server {server:?}: {why}"));
    let mut url = Url::parse(server.trim()).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http:// or https:// URL".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not hold a query or fragment".into()));
    }
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix(BASE_PATH).unwrap_or(path).to_owned();
    url.set_path(&format!("{path}{BASE_PATH}"));
    Ok(url)
}

impl Client {
    /// A client of the facade at `server` (see [`base_url`]).
    ///
    /// # Errors
    /// [`Error::Usage`] for a bad URL or a credential that cannot be a header value;
    /// [`Error::Io`]/[`Error::Parse`] for an unreadable `ca_file` (PEM certificates);
    /// [`Error::Answer`] when the TLS client cannot be built.
    pub fn new(
        server: &str,
        credential: Option<Credential>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self> {
        let base = base_url(server)?;
        if let Some(c) = &credential {
            let v = match c {
                Credential::ApiKey(k) => k,
                Credential::Token(t) => t,
            };
            if HeaderValue::from_str(v).is_err() || v.is_empty() {
                return Err(Error::Usage(
                    "the API key or token holds characters a header cannot".into(),
                ));
            }
        }
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        // Some platform roots may be unparsable; the others still count.
        let _ = roots.add_parsable_certificates(native.certs);
        if let Some(path) = ca_file {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let pem = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| Error::parse(path, e))?;
                roots.add(cert).map_err(|e| Error::parse(path, e))?;
                added += 1;
            }
            if added == 0 {
                return Err(Error::parse(path, "holds no PEM certificate"));
            }
        }
        let setup = |e: String| Error::Answer {
            url: base.to_string(),
            reason: format!("TLS client setup: {e}"),
        };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = Http::builder()
            .use_preconfigured_tls(tls)
            // A redirect would carry X-API-Key to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("mcp-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| setup(e.to_string()))?;
        Ok(Self {
            http,
            base,
            credential,
        })
    }

    /// The base URL (`.../api/v1`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The URL of `segments` under the base, each percent-encoded as one path segment,
    /// with `query`.
    pub fn url(&self, segments: &[String], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let mut r = self
            .http
            .request(method, url)
            .header(ACCEPT, "application/json, application/problem+json");
        match &self.credential {
            Some(Credential::ApiKey(k)) => r = r.header("X-API-Key", k),
            Some(Credential::Token(t)) => r = r.header(AUTHORIZATION, format!("Bearer {t}")),
            None => {}
        }
        r
    }

    /// Sends `method` to `segments` with `query` and `body`; a 2xx answer as JSON.
    ///
    /// # Errors
    /// [`Error::Problem`] for any other status, [`Error::Http`] when the server cannot be
    /// reached, [`Error::Answer`] for a 2xx body that is not JSON.
    pub fn send(
        &self,
        method: Method,
        segments: &[String],
        query: &[(&str, String)],
        body: Option<Body>,
        timeout: Option<Duration>,
    ) -> Result<Answer> {
        let url = self.url(segments, query);
        let shown = url.to_string();
        let mut r = self.request(method, url);
        match body {
            Some(Body::Json(v)) => r = r.json(&v),
            Some(Body::Raw(ct, bytes)) => r = r.header(CONTENT_TYPE, ct).body(bytes),
            None => {}
        }
        if let Some(t) = timeout {
            r = r.timeout(t);
        }
        let http = |source| Error::Http {
            url: shown.clone(),
            source,
        };
        let response = r.send().map_err(http)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().map_err(http)?;
        if !(200..300).contains(&status) {
            return Err(Error::Problem(Problem::from_answer(status, &bytes)));
        }
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| Error::Answer {
                url: shown.clone(),
                reason: format!("not JSON: {e}"),
            })?
        };
        Ok(Answer { status, body })
    }

    /// `GET`: the body.
    ///
    /// # Errors
    /// As [`Client::send`].
    pub fn get(&self, segments: &[String], query: &[(&str, String)]) -> Result<Value> {
        Ok(self.send(Method::GET, segments, query, None, None)?.body)
    }

    /// `GET`, `None` for a 404.
    ///
    /// # Errors
    /// As [`Client::send`], except 404.
    pub fn get_opt(&self, segments: &[String]) -> Result<Option<Value>> {
        match self.get(segments, &[]) {
            Ok(v) => Ok(Some(v)),
            Err(Error::Problem(p)) if p.status == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_urls_become_the_base() {
        let cases = [
            (
                "http://127.0.0.1:8080",
                Some("http://127.0.0.1:8080/api/v1"),
            ),
            (
                "http://127.0.0.1:8080/",
                Some("http://127.0.0.1:8080/api/v1"),
            ),
            ("http://h:1/api/v1/", Some("http://h:1/api/v1")),
            ("https://h/mcp", Some("https://h/mcp/api/v1")),
            ("ftp://h", None),
            ("not a url", None),
            ("http://h/?a=b", None),
        ];
        for (s, want) in cases {
            assert_eq!(
                base_url(s).ok().map(|u| u.to_string()).as_deref(),
                want,
                "{s}"
            );
        }
    }

    #[test]
    fn segments_are_encoded_one_each() {
        let c = Client::new("http://h:1", None, None).expect("client");
        let u = c.url(
            &[
                "tenants".into(),
                "a/b".into(),
                "plugins".into(),
                "x:enable".into(),
            ],
            &[("labelSelector", "a=b,c".into())],
        );
        assert_eq!(
            u.as_str(),
            "http://h:1/api/v1/tenants/a%2Fb/plugins/x:enable?labelSelector=a%3Db%2Cc"
        );
    }

    /// Serves one canned HTTP/1.1 `answer` on a loopback port; the join handle gives the
    /// request it read (head and body).
    fn one_shot(answer: String) -> (String, std::thread::JoinHandle<String>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = conn.read(&mut buf).expect("read");
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_owned)
                        })
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len || n == 0 {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            conn.write_all(answer.as_bytes()).expect("write");
            String::from_utf8_lossy(&got).to_string()
        });
        (url, handle)
    }

    #[test]
    fn hostile_and_odd_answers() {
        // (status line, extra headers, body, Ok(body) or Err(what the error shows))
        type Case = (
            &'static str,
            &'static str,
            &'static str,
            Result<Value, &'static str>,
        );
        let cases: &[Case] = &[
            (
                "200 OK",
                "Content-Type: application/json\r\n",
                r#"{"a": 1}"#,
                Ok(json!({"a": 1})),
            ),
            ("204 No Content", "", "", Ok(Value::Null)),
            ("200 OK", "", "not json!", Err("not JSON")),
            (
                "502 Bad Gateway",
                "",
                "<html>x</html>",
                Err("502 Bad Gateway: <html>x</html>"),
            ),
            (
                "409 Conflict",
                "Content-Type: application/problem+json\r\n",
                r#"{"title":"Conflict","status":409,"detail":"in use"}"#,
                Err("409 Conflict: in use"),
            ),
            // A redirect is not followed: the key would go wherever it points.
            (
                "302 Found",
                "Location: http://elsewhere.invalid/\r\n",
                "",
                Err("302 Found"),
            ),
        ];
        for (status, headers, body, want) in cases {
            let answer = format!(
                "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let (url, server) = one_shot(answer.clone());
            let c = Client::new(
                &url,
                Some(Credential::ApiKey("mcp_abcdefgh_s3cret".into())),
                None,
            )
            .expect("client");
            let got = c.send(
                Method::POST,
                &["tenants".into()],
                &[],
                Some(Body::Json(json!({"x": 1}))),
                None,
            );
            let request = server.join().expect("server");
            assert!(
                request.starts_with("POST /api/v1/tenants HTTP/1.1"),
                "{request}"
            );
            assert!(
                request
                    .to_ascii_lowercase()
                    .contains("x-api-key: mcp_abcdefgh_s3cret"),
                "{request}"
            );
            assert!(request.ends_with("{\"x\":1}"), "{request}");
            match (got, want) {
                (Ok(a), Ok(body)) => assert_eq!(&a.body, body, "{answer}"),
                (Err(e), Err(shown)) => {
                    assert!(e.to_string().contains(shown), "{answer}: {e}")
                }
                (got, want) => panic!("{answer}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn an_unreachable_server_is_an_http_error() {
        // A port that was free a moment ago.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let c = Client::new(&format!("http://127.0.0.1:{port}"), None, None).expect("client");
        let e = c.get(&["tenants".into()], &[]).expect_err("refused");
        assert!(matches!(e, Error::Http { .. }), "{e:?}");
        assert_eq!(e.exit_code(), crate::error::EXIT_FAILURE);
    }

    #[test]
    fn ca_file_is_trusted_for_https() {
        use std::io::{Read, Write};
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        let dir = tempfile::tempdir().expect("dir");
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, cert.pem()).expect("write");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
                )
                .expect("server config"),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("https://{}", listener.local_addr().expect("addr"));
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (tcp, _) = listener.accept().expect("accept");
                let conn = rustls::ServerConnection::new(Arc::clone(&server_config)).expect("conn");
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut buf = [0u8; 4096];
                // The untrusting client aborts the handshake: nothing to answer.
                if tls.read(&mut buf).unwrap_or(0) == 0 {
                    continue;
                }
                let body = r#"{"items":[]}"#;
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        let untrusting = Client::new(&url, None, None).expect("client");
        assert!(matches!(
            untrusting.get(&["tenants".into()], &[]),
            Err(Error::Http { .. })
        ));
        let trusting = Client::new(&url, None, Some(&pem)).expect("client");
        assert_eq!(
            trusting.get(&["tenants".into()], &[]).expect("https"),
            json!({"items": []})
        );
        server.join().expect("server");

        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        assert!(matches!(
            Client::new(&url, None, Some(&junk)),
            Err(Error::Parse { .. })
        ));
        assert!(matches!(
            Client::new(&url, None, Some(&dir.path().join("missing.pem"))),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn credentials_never_show_the_secret() {
        let k = Credential::ApiKey("mcp_abcdefgh_0123456789secret".into());
        assert_eq!(format!("{k:?}"), "ApiKey(mcp_abcdefgh_…)");
        assert_eq!(k.describe(), "API key mcp_abcdefgh_…");
        let t = Credential::Token("eyJ.secret.sig".into());
        assert!(!format!("{t:?}").contains("secret"));
        assert!(matches!(
            Client::new("http://h", Some(Credential::ApiKey("a\nb".into())), None),
            Err(Error::Usage(_))
        ));
    }
}
