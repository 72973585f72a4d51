//! The HTTP client of discovery and JWKS: rustls with ring, the platform's roots plus the
//! configured extra CAs, no redirects, bounded time and body size.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use url::Url;

use super::OidcError;

/// A discovery document or a JWKS larger than this is refused.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Bound on one whole request (connect, headers, body).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Fetches small JSON documents from the issuer.
#[derive(Clone, Debug)]
pub(crate) struct Fetcher {
    http: reqwest::Client,
}

impl Fetcher {
    /// A client trusting the platform's roots and `extra_roots`.
    ///
    /// # Errors
    /// [`OidcError::InvalidSettings`] (field `caPem`) when a configured root is unusable or
    /// the TLS client cannot be built.
    pub(crate) async fn new(extra_roots: Vec<CertificateDer<'static>>) -> Result<Self, OidcError> {
        let setup = |reason: String| OidcError::InvalidSettings {
            field: "caPem",
            reason,
        };
        // Reading the platform's certificate files blocks.
        let native = tokio::task::spawn_blocking(rustls_native_certs::load_native_certs)
            .await
            .map_err(|e| setup(format!("loading the platform's roots: {e}")))?;
        for error in &native.errors {
            tracing::debug!(%error, "platform root certificates: skipped");
        }
        let mut roots = rustls::RootCertStore::empty();
        // Some platform roots may be unparsable; the others still count.
        let (_, _ignored) = roots.add_parsable_certificates(native.certs);
        for cert in extra_roots {
            roots
                .add(cert)
                .map_err(|e| setup(format!("unusable CA certificate: {e}")))?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("mcp-api/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| setup(e.to_string()))?;
        Ok(Self { http })
    }

    /// The body of a `200` answer to `GET url`, at most 256 KiB.
    ///
    /// # Errors
    /// A description of the failure: connection, TLS, status, size.
    pub(crate) async fn get(&self, url: &Url) -> Result<Vec<u8>, String> {
        let mut response = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(describe)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("HTTP status {}", response.status()));
        }
        if response
            .content_length()
            .is_some_and(|l| l > MAX_BODY_BYTES as u64)
        {
            return Err(format!("body over {MAX_BODY_BYTES} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(format!("body over {MAX_BODY_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// `error` and its causes, `: `-separated (reqwest's own message alone is "error sending
/// request"; the cause says refused, TLS, timeout…).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
