//! The client of a tenant's dataplane admin API (`mcp_crds::dataplane`, docs/operator.md).
//!
//! The operator provisions Mailboxes into the tenant's store through this API: HTTPS to the
//! dataplane Service's `admin` port (9443), pinned to the self-signed certificate the
//! operator issued in the admin Secret (no other CA is trusted), with the bearer token from
//! the same Secret. [`Dataplanes`] keeps one client per tenant and forgets it after an error,
//! so a re-issued Secret is picked up on the next attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_crds::dataplane::{
    ADMIN_PATH, AccountRequest, AccountState, DeleteOutcome, PIPELINES_PATH, PLUGINS_PATH,
    PipelinesState, PluginsState, Problem, QUARANTINE_PATH, QuarantineEntry, QuarantineList,
    ReleaseOutcome,
};
use mcp_crds::mailbox::Retention;
use reqwest::{StatusCode, Url};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Time allowed for one admin API request, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Time allowed for the read-only `GET`s (account and pipeline state), which do no work on
/// the dataplane: a dataplane that cannot answer one within this is unavailable, and the
/// reconciliation asking it must not wait for the long [`REQUEST_TIMEOUT`].
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the admin Secret gives the operator: the certificate to pin and the bearer token.
#[derive(Clone)]
pub struct AdminCredentials {
    /// PEM certificate of the admin API (`tls.crt`).
    pub cert_pem: Vec<u8>,
    /// The bearer token (`token`).
    pub token: String,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminCredentials(..)")
    }
}

/// Why an admin API call failed.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// No answer: connection refused, TLS failure, timeout. The dataplane is not running yet,
    /// or not reachable from the operator.
    #[error("dataplane admin API at {url} unreachable: {detail}")]
    Unavailable {
        /// The request URL.
        url: String,
        /// What failed, with its causes (connection refused, certificate not trusted, ...).
        detail: String,
    },
    /// The dataplane answered with an error status.
    #[error("dataplane admin API refused {method} {url}: {status} {detail}")]
    Refused {
        /// HTTP method.
        method: &'static str,
        /// The request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The problem's detail (or title, or the raw body).
        detail: String,
    },
    /// The answer could not be decoded.
    #[error("dataplane admin API at {url} answered an unreadable body: {message}")]
    Decode {
        /// The request URL.
        url: String,
        /// What could not be read.
        message: String,
    },
    /// The admin certificate or URL cannot be used to build a client.
    #[error("dataplane admin client: {0}")]
    Setup(String),
}

impl DataplaneError {
    /// CamelCase reason, for conditions, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            DataplaneError::Unavailable { .. } => "DataplaneUnavailable",
            DataplaneError::Refused { status, .. } if *status >= 500 => "DataplaneUnavailable",
            DataplaneError::Refused { .. } => "DataplaneRefused",
            DataplaneError::Decode { .. } => "DataplaneRefused",
            DataplaneError::Setup(_) => "DataplaneClientSetup",
        }
    }

    /// Whether the request itself was refused (4xx): retrying the same request will not help
    /// until the spec or the Secret changes.
    pub fn is_permanent(&self) -> bool {
        matches!(self, DataplaneError::Refused { status, .. } if (400..500).contains(status) && *status != 401 && *status != 408 && *status != 429)
    }
}

/// [`DataplaneError::Unavailable`] with `error` and its sources, innermost last.
fn unavailable(url: &Url, error: &reqwest::Error) -> DataplaneError {
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    DataplaneError::Unavailable {
        url: url.to_string(),
        detail,
    }
}

/// The detail of a problem body (or its title, or the raw body, cut to 512 characters).
fn problem_detail(body: &[u8]) -> String {
    match serde_json::from_slice::<Problem>(body) {
        Ok(p) => p.detail.unwrap_or(p.title),
        Err(_) => String::from_utf8_lossy(body).chars().take(512).collect(),
    }
}

/// A client of one tenant's admin API.
#[derive(Debug)]
pub struct DataplaneClient {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl DataplaneClient {
    /// A client of the admin API at `base` (e.g. `https://mcp-acme-dataplane.mcp-acme.svc:9443`)
    /// trusting only `credentials.cert_pem`.
    ///
    /// # Errors
    /// [`DataplaneError::Setup`] for an unusable URL or certificate.
    pub fn new(base: &str, credentials: &AdminCredentials) -> Result<Self, DataplaneError> {
        let setup = |m: String| DataplaneError::Setup(m);
        let base = Url::parse(base).map_err(|e| setup(format!("URL {base:?}: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        let mut any = false;
        for cert in CertificateDer::pem_slice_iter(&credentials.cert_pem) {
            let cert = cert.map_err(|e| setup(format!("admin certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| setup(format!("admin certificate: {e}")))?;
            any = true;
        }
        if !any {
            return Err(setup("admin certificate: no PEM certificate".into()));
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
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| setup(e.to_string()))?;
        Ok(Self {
            http,
            base,
            token: credentials.token.clone(),
        })
    }

    /// `path` (an absolute path of the admin API) under the base URL.
    fn path_url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            for s in path.split('/').filter(|s| !s.is_empty()) {
                segments.push(s);
            }
        }
        url
    }

    fn url(&self, address: &str) -> Url {
        let mut url = self.base.clone();
        {
            // A base with a path is fine; cannot-be-a-base URLs were refused by `new`'s parse
            // of an https URL.
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.pop_if_empty();
                for s in ADMIN_PATH.split('/').filter(|s| !s.is_empty()) {
                    segments.push(s);
                }
                segments.push(address);
            }
        }
        url
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        request: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<(StatusCode, Option<T>), DataplaneError> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| unavailable(url, &e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| unavailable(url, &e))?;
        if status.is_success() {
            let value = serde_json::from_slice(&body).map_err(|e| DataplaneError::Decode {
                url: url.to_string(),
                message: e.to_string(),
            })?;
            return Ok((status, Some(value)));
        }
        if status == StatusCode::NOT_FOUND && method == "GET" {
            return Ok((status, None));
        }
        Err(DataplaneError::Refused {
            method,
            url: url.to_string(),
            status: status.as_u16(),
            detail: problem_detail(&body),
        })
    }

    /// `PUT` the account `request.spec.address`: creates or updates it.
    ///
    /// # Errors
    /// [`DataplaneError`]; `Refused` with a 4xx names the field the dataplane rejected.
    pub async fn put_account(
        &self,
        request: &AccountRequest,
    ) -> Result<AccountState, DataplaneError> {
        let url = self.url(&request.spec.address.to_lowercase());
        let (_, state) = self
            .send("PUT", self.http.put(url.clone()).json(request), &url)
            .await?;
        state.ok_or_else(|| DataplaneError::Decode {
            url: url.to_string(),
            message: "empty body".into(),
        })
    }

    /// `GET` the account `address`; `None` when it does not exist.
    ///
    /// # Errors
    /// [`DataplaneError`].
    pub async fn get_account(&self, address: &str) -> Result<Option<AccountState>, DataplaneError> {
        let url = self.url(&address.to_lowercase());
        let request = self.http.get(url.clone()).timeout(PROBE_TIMEOUT);
        Ok(self.send("GET", request, &url).await?.1)
    }

    /// `GET {PIPELINES_PATH}`: the Pipelines the dataplane runs and their revisions.
    ///
    /// # Errors
    /// [`DataplaneError`]; a dataplane that does not serve the path (404, an older build) is
    /// `Refused`.
    pub async fn get_pipelines(&self) -> Result<PipelinesState, DataplaneError> {
        self.get_report(PIPELINES_PATH, "serve its pipelines").await
    }

    /// `GET {PLUGINS_PATH}`: the dataplane's connection to each PluginDeployment it knows.
    ///
    /// # Errors
    /// [`DataplaneError`]; a dataplane that does not serve the path (404, an older build) is
    /// `Refused`.
    pub async fn get_plugins(&self) -> Result<PluginsState, DataplaneError> {
        self.get_report(PLUGINS_PATH, "report its plugins").await
    }

    /// `GET path` of a read-only report; `what` completes "the dataplane does not ..." when
    /// it answers without one (404 from an older build).
    async fn get_report<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<T, DataplaneError> {
        let url = self.path_url(path);
        let request = self.http.get(url.clone()).timeout(PROBE_TIMEOUT);
        let (status, state) = self.send("GET", request, &url).await?;
        state.ok_or_else(|| DataplaneError::Refused {
            method: "GET",
            url: url.to_string(),
            status: status.as_u16(),
            detail: format!("the dataplane does not {what} (an older build?)"),
        })
    }

    /// `GET {QUARANTINE_PATH}`: a page of the tenant's quarantine (of `mailbox` only when
    /// given), at most `limit` entries after the id `after`.
    ///
    /// # Errors
    /// [`DataplaneError`]; `Refused` 400 for a bad `after` or `mailbox`.
    pub async fn quarantine_list(
        &self,
        mailbox: Option<&str>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<QuarantineList, DataplaneError> {
        let mut url = self.path_url(QUARANTINE_PATH);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &limit.to_string());
            if let Some(m) = mailbox {
                q.append_pair("mailbox", m);
            }
            if let Some(a) = after {
                q.append_pair("after", a);
            }
        }
        let request = self.http.get(url.clone()).timeout(PROBE_TIMEOUT);
        let (status, list) = self.send("GET", request, &url).await?;
        list.ok_or_else(|| DataplaneError::Refused {
            method: "GET",
            url: url.to_string(),
            status: status.as_u16(),
            detail: "the dataplane does not serve its quarantine (an older build?)".into(),
        })
    }

    /// The URL of the quarantined message `id` (one path segment), with `suffix` segments.
    fn quarantine_url(&self, id: &str, suffix: &[&str]) -> Url {
        let mut url = self.path_url(QUARANTINE_PATH);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(id);
            for s in suffix {
                segments.push(s);
            }
        }
        url
    }

    /// `GET {QUARANTINE_PATH}/{id}`: the entry's metadata; `None` when there is none.
    ///
    /// # Errors
    /// [`DataplaneError`].
    pub async fn quarantine_get(
        &self,
        id: &str,
    ) -> Result<Option<QuarantineEntry>, DataplaneError> {
        let url = self.quarantine_url(id, &[]);
        let request = self.http.get(url.clone()).timeout(PROBE_TIMEOUT);
        Ok(self.send("GET", request, &url).await?.1)
    }

    /// `POST {QUARANTINE_PATH}/{id}/release`: delivers the message where it was headed.
    ///
    /// # Errors
    /// [`DataplaneError`]; `Refused` 404 (no such entry) or 409 (account gone, over quota).
    pub async fn quarantine_release(&self, id: &str) -> Result<ReleaseOutcome, DataplaneError> {
        let url = self.quarantine_url(id, &["release"]);
        let (_, outcome) = self.send("POST", self.http.post(url.clone()), &url).await?;
        outcome.ok_or_else(|| DataplaneError::Decode {
            url: url.to_string(),
            message: "empty body".into(),
        })
    }

    /// `DELETE {QUARANTINE_PATH}/{id}`: drops the message (204).
    ///
    /// # Errors
    /// [`DataplaneError`]; `Refused` 404 (no such entry).
    pub async fn quarantine_delete(&self, id: &str) -> Result<(), DataplaneError> {
        let url = self.quarantine_url(id, &[]);
        let response = self
            .http
            .delete(url.clone())
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| unavailable(&url, &e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.bytes().await.map_err(|e| unavailable(&url, &e))?;
        Err(DataplaneError::Refused {
            method: "DELETE",
            url: url.to_string(),
            status: status.as_u16(),
            detail: problem_detail(&body),
        })
    }

    /// `DELETE` the account `address` with `retention`. Idempotent.
    ///
    /// # Errors
    /// [`DataplaneError`].
    pub async fn delete_account(
        &self,
        address: &str,
        retention: Retention,
    ) -> Result<DeleteOutcome, DataplaneError> {
        let mut url = self.url(&address.to_lowercase());
        let retention = match retention {
            Retention::Retain => "Retain",
            Retention::Delete => "Delete",
        };
        url.query_pairs_mut().append_pair("retention", retention);
        let (_, outcome) = self
            .send("DELETE", self.http.delete(url.clone()), &url)
            .await?;
        outcome.ok_or_else(|| DataplaneError::Decode {
            url: url.to_string(),
            message: "empty body".into(),
        })
    }
}

/// Where each tenant's admin API is, and one cached client per tenant.
#[derive(Debug, Default)]
pub struct Dataplanes {
    overrides: HashMap<String, String>,
    clients: Mutex<HashMap<String, Arc<DataplaneClient>>>,
}

impl Dataplanes {
    /// Clients reaching each tenant through its Service's DNS name, except the tenants of
    /// `overrides` (tenant name → base URL), for an operator running outside the cluster.
    pub fn new(overrides: HashMap<String, String>) -> Self {
        Self {
            overrides,
            clients: Mutex::default(),
        }
    }

    /// The base URL of `tenant`'s admin API: the override, or
    /// `https://<service>.<namespace>.svc:9443`.
    pub fn base_url(&self, tenant: &str, service: &str, namespace: &str) -> String {
        self.overrides.get(tenant).cloned().unwrap_or_else(|| {
            format!(
                "https://{service}.{namespace}.svc:{}",
                crate::tenant::ADMIN.number
            )
        })
    }

    /// The cached client of `tenant`, if any.
    pub fn cached(&self, tenant: &str) -> Option<Arc<DataplaneClient>> {
        self.lock().get(tenant).cloned()
    }

    /// Caches and returns a client of `tenant` built from `credentials`.
    ///
    /// # Errors
    /// As [`DataplaneClient::new`].
    pub fn connect(
        &self,
        tenant: &str,
        base: &str,
        credentials: &AdminCredentials,
    ) -> Result<Arc<DataplaneClient>, DataplaneError> {
        let client = Arc::new(DataplaneClient::new(base, credentials)?);
        self.lock().insert(tenant.to_owned(), client.clone());
        Ok(client)
    }

    /// Drops the cached client of `tenant` (after an error, or when the tenant goes).
    pub fn forget(&self, tenant: &str) {
        self.lock().remove(tenant);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<DataplaneClient>>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> AdminCredentials {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        AdminCredentials {
            cert_pem: key.cert.pem().into_bytes(),
            token: "t".into(),
        }
    }

    #[test]
    fn urls_encode_the_address_as_one_segment() {
        let c = DataplaneClient::new("https://svc.ns.svc:9443", &credentials()).expect("client");
        assert_eq!(
            c.url("a/b?c@example.com").as_str(),
            "https://svc.ns.svc:9443/internal/v1/accounts/a%2Fb%3Fc@example.com"
        );
        let c = DataplaneClient::new("https://127.0.0.1:1/base/", &credentials()).expect("client");
        assert_eq!(
            c.url("alice@example.com").as_str(),
            "https://127.0.0.1:1/base/internal/v1/accounts/alice@example.com"
        );
        assert_eq!(
            c.path_url(PIPELINES_PATH).as_str(),
            "https://127.0.0.1:1/base/internal/v1/pipelines"
        );
    }

    #[test]
    fn setup_errors_name_the_problem() {
        let bad_pem = AdminCredentials {
            cert_pem: b"not a certificate".to_vec(),
            token: "t".into(),
        };
        for (base, creds, want) in [
            ("not a url", credentials(), "URL"),
            ("https://x:1", bad_pem, "no PEM certificate"),
        ] {
            let e = DataplaneClient::new(base, &creds).expect_err(base);
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn overrides_win_over_service_dns() {
        let d = Dataplanes::new([("acme".to_owned(), "https://127.0.0.1:4443".to_owned())].into());
        assert_eq!(d.base_url("acme", "s", "n"), "https://127.0.0.1:4443");
        assert_eq!(
            d.base_url("other", "mcp-other-dataplane", "mcp-other"),
            "https://mcp-other-dataplane.mcp-other.svc:9443"
        );
    }
}
