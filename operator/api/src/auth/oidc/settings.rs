//! What the verifier trusts: the issuer, the audience, the algorithms, the clock skew and the
//! role mapping. [`OidcConfig`] is the serde form (a config file, flags); [`OidcSettings`]
//! is the same, checked once by [`OidcConfig::validate`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::OidcError;
use crate::auth::Role;

/// A JWS signature algorithm the verifier may accept (RFC 7518 §3).
///
/// Only asymmetric algorithms exist here: `none` and the HMAC family (`HS256`…) cannot be
/// configured, so a token signed with a JWKS public key used as an HMAC secret (algorithm
/// confusion) has no algorithm to be accepted under. Each algorithm is also bound to one key
/// type and curve of the JWKS (see [`SigningAlgorithm::key_type`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256; an `RSA` key.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384; an `RSA` key.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512; an `RSA` key.
    RS512,
    /// RSASSA-PSS with SHA-256; an `RSA` key.
    PS256,
    /// RSASSA-PSS with SHA-384; an `RSA` key.
    PS384,
    /// RSASSA-PSS with SHA-512; an `RSA` key.
    PS512,
    /// ECDSA over P-256 with SHA-256; an `EC` key on curve `P-256`.
    ES256,
    /// ECDSA over P-384 with SHA-384; an `EC` key on curve `P-384`.
    ES384,
    /// EdDSA (RFC 8037); an `OKP` key on curve `Ed25519`.
    EdDSA,
}

/// The JWK key type (and curve) an algorithm verifies with (RFC 7518 §6, RFC 8037 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `kty: RSA`.
    Rsa,
    /// `kty: EC`, `crv: P-256`.
    EcP256,
    /// `kty: EC`, `crv: P-384`.
    EcP384,
    /// `kty: OKP`, `crv: Ed25519`.
    Ed25519,
}

impl SigningAlgorithm {
    /// Every algorithm, the default of [`OidcConfig::algorithms`].
    pub const ALL: [SigningAlgorithm; 9] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    /// The name of the algorithm in a JOSE header (`"RS256"`, `"EdDSA"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The algorithm named `name` in a JOSE header; `None` for `none`, `HS256` and every
    /// other name this verifier never accepts.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The only key type this algorithm may be verified with.
    pub fn key_type(self) -> KeyType {
        match self {
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                KeyType::Rsa
            }
            Self::ES256 => KeyType::EcP256,
            Self::ES384 => KeyType::EcP384,
            Self::EdDSA => KeyType::Ed25519,
        }
    }

    /// The same algorithm in `jsonwebtoken`.
    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            Self::RS256 => A::RS256,
            Self::RS384 => A::RS384,
            Self::RS512 => A::RS512,
            Self::PS256 => A::PS256,
            Self::PS384 => A::PS384,
            Self::PS512 => A::PS512,
            Self::ES256 => A::ES256,
            Self::ES384 => A::ES384,
            Self::EdDSA => A::EdDSA,
        }
    }
}

impl std::fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a claim is read from: a top-level claim name (`mcp_role`,
/// `https://mcp.example/role`), or, starting with `/`, a JSON Pointer (RFC 6901) into the
/// claims (`/realm_access/roles`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClaimPath(String);

impl ClaimPath {
    /// The path as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parse(field: &'static str, raw: &str) -> Result<Self, OidcError> {
        if raw.is_empty() || raw.len() > 256 || raw.chars().any(char::is_control) {
            return Err(invalid(
                field,
                "a claim name of 1 to 256 printable characters",
            ));
        }
        if raw.starts_with('/') && raw.split('/').skip(1).any(str::is_empty) {
            return Err(invalid(field, "a JSON Pointer without empty segments"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The claim's value in `claims`, if present.
    pub(crate) fn get<'a>(&self, claims: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        if self.0.starts_with('/') {
            claims.pointer(&self.0)
        } else {
            claims.get(&self.0)
        }
    }
}

impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the claims of a token become a [`Role`] (serde form, part of [`OidcConfig`]).
///
/// A token's role comes from `roleClaim` when the token has that claim: a string, `admin`,
/// `tenant-admin` (the tenant is then the string in `tenantClaim`) or `viewer`. Otherwise
/// from `groupsClaim` (a string or an array of strings): each group named in `groups` gives
/// its role, and the most privileged wins (admin, then tenant-admin, then viewer); two
/// tenant-admin groups of different tenants are refused as ambiguous. A token with neither
/// is authenticated but has no role (HTTP 403).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleMappingConfig {
    /// The claim holding the role name. Default `mcp_role`; `null` reads roles from groups
    /// only.
    #[serde(default = "default_role_claim")]
    pub role_claim: Option<String>,
    /// The claim holding the tenant of a `tenant-admin` role claim. Default `mcp_tenant`.
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    /// The claim holding the caller's groups (`groups`, `/realm_access/roles`). Default none;
    /// required when `groups` is not empty.
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// Group name → role, e.g. `{"mcp-admins": {"role": "admin"}, "acme-ops": {"role":
    /// "tenant-admin", "tenant": "acme"}}`. Default empty.
    #[serde(default)]
    pub groups: BTreeMap<String, Role>,
}

fn default_role_claim() -> Option<String> {
    Some("mcp_role".into())
}

fn default_tenant_claim() -> String {
    "mcp_tenant".into()
}

impl Default for RoleMappingConfig {
    fn default() -> Self {
        Self {
            role_claim: default_role_claim(),
            tenant_claim: default_tenant_claim(),
            groups_claim: None,
            groups: BTreeMap::new(),
        }
    }
}

/// The OIDC settings as written in a config file or given as flags (camelCase keys,
/// unknown keys refused). [`OidcConfig::validate`] turns them into [`OidcSettings`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer identifier, exactly as the tokens' `iss` claim and the discovery
    /// document's `issuer` spell it (`https://idp.example/realms/mcp`). `https`, or `http` on
    /// a loopback address (tests, a local IdP).
    pub issuer: String,
    /// The audience the facade requires in `aud` (the client ID the IdP issues tokens for).
    pub audience: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds. Default 60, at most 300.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Algorithms accepted in the token header. Default: all of [`SigningAlgorithm::ALL`];
    /// `none` and `HS*` cannot be named.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<SigningAlgorithm>,
    /// How claims map to roles.
    #[serde(default)]
    pub roles: RoleMappingConfig,
    /// Tokens longer than this many bytes are refused before any parsing. Default 8192,
    /// between 512 and 65536.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// Seconds between background refreshes of the JWKS. Default 900, at least 1.
    #[serde(default = "default_refresh")]
    pub jwks_refresh_seconds: u64,
    /// At most one refresh per this many seconds is triggered by tokens whose `kid` is not
    /// in the cached JWKS (a flood of made-up key IDs cannot make the facade hammer the
    /// issuer). Default 30.
    #[serde(default = "default_min_refresh")]
    pub jwks_min_refresh_seconds: u64,
    /// Extra PEM certificates trusted for the issuer's HTTPS besides the platform's roots
    /// (an in-cluster IdP with a private CA). Default none.
    #[serde(default)]
    pub ca_pem: Option<String>,
}

fn default_leeway() -> u64 {
    60
}
fn default_algorithms() -> Vec<SigningAlgorithm> {
    SigningAlgorithm::ALL.to_vec()
}
fn default_max_token_bytes() -> usize {
    8192
}
fn default_refresh() -> u64 {
    900
}
fn default_min_refresh() -> u64 {
    30
}

/// Largest OIDC settings file [`OidcConfig::from_file`] reads, in bytes.
pub const MAX_CONFIG_FILE_BYTES: u64 = 256 * 1024;

impl OidcConfig {
    /// Reads and checks an OIDC settings file (`--oidc-config FILE`): YAML or JSON (JSON is
    /// YAML) holding one [`OidcConfig`] object in camelCase, e.g.
    ///
    /// ```yaml
    /// issuer: https://idp.example/realms/mcp
    /// audience: mcp-api
    /// roles:
    ///   groupsClaim: groups
    ///   groups: {mcp-admins: {role: admin}, acme-ops: {role: tenant-admin, tenant: acme}}
    /// ```
    ///
    /// Blocking file I/O: call it at start-up, before serving.
    ///
    /// # Errors
    /// [`OidcError::InvalidSettings`]: field `file` when the file cannot be read, is larger
    /// than [`MAX_CONFIG_FILE_BYTES`] or is not an [`OidcConfig`] (the message names the
    /// key and line at fault, unknown keys included); otherwise as [`OidcConfig::validate`].
    pub fn from_file(path: &std::path::Path) -> Result<OidcSettings, OidcError> {
        let shown = path.display();
        let size = std::fs::metadata(path)
            .map_err(|e| invalid("file", &format!("{shown}: {e}")))?
            .len();
        if size > MAX_CONFIG_FILE_BYTES {
            return Err(invalid(
                "file",
                &format!("{shown}: {size} bytes, at most {MAX_CONFIG_FILE_BYTES}"),
            ));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| invalid("file", &format!("{shown}: {e}")))?;
        let config: OidcConfig =
            yaml_serde::from_str(&text).map_err(|e| invalid("file", &format!("{shown}: {e}")))?;
        config.validate()
    }

    /// The defaults for `issuer` and `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_seconds: default_leeway(),
            algorithms: default_algorithms(),
            roles: RoleMappingConfig::default(),
            max_token_bytes: default_max_token_bytes(),
            jwks_refresh_seconds: default_refresh(),
            jwks_min_refresh_seconds: default_min_refresh(),
            ca_pem: None,
        }
    }

    /// Checks every field once.
    ///
    /// # Errors
    /// [`OidcError::InvalidSettings`] naming the first bad field: an issuer that is not an
    /// absolute `https` URL (or `http` on loopback) without credentials, query or fragment;
    /// an empty audience; a leeway over 300 s; no algorithm; a token size limit outside
    /// 512..=65536; a zero refresh interval; a bad claim name; groups without a groups
    /// claim; a tenant-admin group without a valid tenant name; no way to get a role at
    /// all; an unreadable `caPem`.
    pub fn validate(self) -> Result<OidcSettings, OidcError> {
        let issuer_url = fetchable_url(&self.issuer).map_err(|r| invalid("issuer", &r))?;
        if self.audience.trim().is_empty() || self.audience.len() > 1024 {
            return Err(invalid("audience", "required, at most 1024 bytes"));
        }
        if self.leeway_seconds > 300 {
            return Err(invalid("leewaySeconds", "at most 300"));
        }
        let mut algorithms = self.algorithms;
        algorithms.sort();
        algorithms.dedup();
        if algorithms.is_empty() {
            return Err(invalid("algorithms", "at least one algorithm"));
        }
        if !(512..=65536).contains(&self.max_token_bytes) {
            return Err(invalid("maxTokenBytes", "between 512 and 65536"));
        }
        if self.jwks_refresh_seconds == 0 {
            return Err(invalid("jwksRefreshSeconds", "at least 1"));
        }
        let roles = RoleMapping::from_config(self.roles)?;
        let extra_roots = match self.ca_pem {
            None => Vec::new(),
            Some(pem) => parse_pem_roots(&pem)?,
        };
        Ok(OidcSettings {
            issuer: self.issuer,
            issuer_url,
            audience: self.audience,
            leeway: Duration::from_secs(self.leeway_seconds),
            algorithms,
            roles,
            max_token_bytes: self.max_token_bytes,
            jwks_refresh: Duration::from_secs(self.jwks_refresh_seconds),
            jwks_min_refresh: Duration::from_secs(self.jwks_min_refresh_seconds),
            extra_roots,
        })
    }
}

/// Checked OIDC settings (see [`OidcConfig`] for each field's meaning and limits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcSettings {
    pub(crate) issuer: String,
    pub(crate) issuer_url: Url,
    pub(crate) audience: String,
    pub(crate) leeway: Duration,
    pub(crate) algorithms: Vec<SigningAlgorithm>,
    pub(crate) roles: RoleMapping,
    pub(crate) max_token_bytes: usize,
    pub(crate) jwks_refresh: Duration,
    pub(crate) jwks_min_refresh: Duration,
    pub(crate) extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
}

impl OidcSettings {
    /// The issuer identifier, as configured (compared byte for byte with `iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The required audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The accepted algorithms, sorted, without duplicates.
    pub fn algorithms(&self) -> &[SigningAlgorithm] {
        &self.algorithms
    }

    /// The allowed clock skew.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// Whether `url` may be fetched: `https`, or `http` to a loopback host.
    pub(crate) fn fetchable(url: &Url) -> bool {
        url.scheme() == "https" || (url.scheme() == "http" && is_loopback(url))
    }
}

/// The checked form of [`RoleMappingConfig`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RoleMapping {
    pub(crate) role_claim: Option<ClaimPath>,
    pub(crate) tenant_claim: ClaimPath,
    pub(crate) groups_claim: Option<ClaimPath>,
    pub(crate) groups: BTreeMap<String, Role>,
}

impl RoleMapping {
    fn from_config(config: RoleMappingConfig) -> Result<Self, OidcError> {
        let role_claim = config
            .role_claim
            .as_deref()
            .map(|c| ClaimPath::parse("roles.roleClaim", c))
            .transpose()?;
        let tenant_claim = ClaimPath::parse("roles.tenantClaim", &config.tenant_claim)?;
        let groups_claim = config
            .groups_claim
            .as_deref()
            .map(|c| ClaimPath::parse("roles.groupsClaim", c))
            .transpose()?;
        if !config.groups.is_empty() && groups_claim.is_none() {
            return Err(invalid(
                "roles.groupsClaim",
                "required when roles.groups is set",
            ));
        }
        for (group, role) in &config.groups {
            if group.is_empty() {
                return Err(invalid("roles.groups", "an empty group name"));
            }
            if let Role::TenantAdmin(tenant) = role
                && !is_tenant_name(tenant)
            {
                return Err(invalid(
                    "roles.groups",
                    "a tenant-admin group needs a tenant name (lower-case DNS name)",
                ));
            }
        }
        if role_claim.is_none() && config.groups.is_empty() {
            return Err(invalid(
                "roles",
                "no roleClaim and no groups: no token could ever have a role",
            ));
        }
        Ok(Self {
            role_claim,
            tenant_claim,
            groups_claim,
            groups: config.groups,
        })
    }
}

/// A Kubernetes object name (RFC 1123 subdomain), which every Tenant name is.
pub(crate) fn is_tenant_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn invalid(field: &'static str, reason: &str) -> OidcError {
    OidcError::InvalidSettings {
        field,
        reason: reason.to_owned(),
    }
}

/// `raw` as an URL the verifier may fetch from (issuer, `jwks_uri`): `https` (or `http` on
/// loopback), with a host, without credentials, query or fragment.
///
/// # Errors
/// Why it may not be fetched.
pub(crate) fn fetchable_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not an absolute URL: {e}"))?;
    if !OidcSettings::fetchable(&url) {
        return Err("must be https (http only on a loopback address)".into());
    }
    if url.host().is_none() || url.cannot_be_a_base() {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must have no query or fragment".into());
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn parse_pem_roots(pem: &str) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, OidcError> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("caPem", &format!("unreadable PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("caPem", "no PEM certificate"));
    }
    Ok(certs)
}
