//! Applying the YAML resources of the standalone mode to the store.
//!
//! Every `*.yaml`/`*.yml` file of the resource directory is read with
//! [`Resource::parse_stream`] (the CRD types are the one source of truth), the set is
//! validated as a whole ([`desired_accounts`]), and each Mailbox becomes an account
//! ([`apply`]). Each account carries a digest of what it was applied from (tenant, spec and
//! password); an account whose digest is unchanged is skipped, so a re-apply costs one
//! lookup per mailbox and no argon2 work, and an edited Mailbox or Secret is applied on the
//! next start.
//!
//! Namespaces: a Mailbox lives in its Tenant's namespace (`spec.namespace`, default
//! `mcp-<tenant>`); if it names a namespace it must be that one. Its Secret is looked up by
//! name in that namespace; a Secret without `metadata.namespace` matches any namespace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mcp_crds::dataplane::QuotaLimits;
use mcp_crds::mailbox::MailboxState;
use mcp_crds::quota::Quota;
use mcp_crds::{
    Mailbox, MailboxSpec, Pipeline, PluginDeployment, Resource, ResourceError, SecretResource,
    Tenant,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::auth::{HashError, hash_password};
use crate::store::{AccountRecord, AccountUpsert, MetadataStore, StoreError};

/// Why the resources could not be applied. Each variant names the file or account involved.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The resource directory or one of its files could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The directory or file.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// A file is not a valid YAML stream of supported resources.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The document and field at fault.
        source: ResourceError,
    },
    /// A resource is well-formed but inconsistent with the others.
    #[error("{path}: {kind} {name:?}: {field}: {message}")]
    Invalid {
        /// The file holding the resource.
        path: PathBuf,
        /// `Tenant`, `Mailbox` or `Secret`.
        kind: &'static str,
        /// The resource's `metadata.name`.
        name: String,
        /// Path of the offending field, e.g. `spec.address`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A valid MCP resource of a kind the standalone mode does not apply yet (MigrationJob).
    /// Refused rather than ignored, so nobody believes it took effect.
    #[error("{path}: {kind} {name:?}: not supported in standalone mode yet")]
    Unsupported {
        /// The file holding the resource.
        path: PathBuf,
        /// The resource's kind.
        kind: &'static str,
        /// The resource's `metadata.name`.
        name: String,
    },
    /// The digest key file could not be read or written, or is corrupt.
    #[error("{path}: {message}")]
    DigestKey {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Hashing a password failed.
    #[error("{address}: {source}")]
    Hash {
        /// The account.
        address: String,
        /// argon2's error.
        source: HashError,
    },
    /// The store failed while reading or writing an account.
    #[error("{address}: {source}")]
    Store {
        /// The account.
        address: String,
        /// Store error.
        source: StoreError,
    },
}

/// A resource together with the file it came from.
#[derive(Clone, Debug)]
struct Sourced<T> {
    path: PathBuf,
    value: T,
}

/// All resources read from a directory, by kind, in file-name order.
#[derive(Clone, Debug, Default)]
pub struct ResourceSet {
    tenants: Vec<Sourced<Tenant>>,
    mailboxes: Vec<Sourced<Mailbox>>,
    secrets: Vec<Sourced<SecretResource>>,
    pipelines: Vec<Sourced<Pipeline>>,
    plugin_deployments: Vec<Sourced<PluginDeployment>>,
}

impl ResourceSet {
    /// Number of (Tenants, Mailboxes, Secrets) read.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.tenants.len(), self.mailboxes.len(), self.secrets.len())
    }

    /// The Pipelines read, in file-name order.
    pub fn pipelines(&self) -> Vec<Pipeline> {
        self.pipelines.iter().map(|p| p.value.clone()).collect()
    }

    /// The PluginDeployments read, in file-name order.
    pub fn plugin_deployments(&self) -> Vec<PluginDeployment> {
        self.plugin_deployments
            .iter()
            .map(|p| p.value.clone())
            .collect()
    }

    /// The file each PluginDeployment came from, by `(namespace, name)`; for error messages.
    pub fn plugin_deployment_file(&self, namespace: &str, name: &str) -> Option<&Path> {
        self.plugin_deployments
            .iter()
            .find(|p| {
                p.value.metadata.namespace.as_deref() == Some(namespace)
                    && p.value.metadata.name.as_deref() == Some(name)
            })
            .map(|p| p.path.as_path())
    }

    /// The file each Pipeline came from, by `(namespace, name)`; for error messages.
    pub fn pipeline_file(&self, namespace: &str, name: &str) -> Option<&Path> {
        self.pipelines
            .iter()
            .find(|p| {
                p.value.metadata.namespace.as_deref() == Some(namespace)
                    && p.value.metadata.name.as_deref() == Some(name)
            })
            .map(|p| p.path.as_path())
    }

    /// The tenant owning `namespace` (a Tenant's `spec.namespace`, default `mcp-<name>`).
    pub fn tenant_of(&self, namespace: &str) -> Option<String> {
        self.tenants.iter().find_map(|t| {
            let name = t.value.metadata.name.clone()?;
            (tenant_namespace(&t.value) == namespace).then_some(name)
        })
    }
}

/// The namespace of a Tenant named `tenant` without `spec.namespace`: `mcp-<tenant>` (the
/// operator's rule for names of at most 59 characters).
pub fn default_namespace(tenant: &str) -> String {
    format!("mcp-{tenant}")
}

/// A Tenant's namespace: `spec.namespace`, else [`default_namespace`] of its name.
pub fn tenant_namespace(t: &Tenant) -> String {
    t.spec
        .namespace
        .clone()
        .unwrap_or_else(|| default_namespace(t.metadata.name.as_deref().unwrap_or_default()))
}

/// Reads every `*.yaml` and `*.yml` file directly in `dir` (not recursively), in file-name
/// order.
///
/// # Errors
/// [`ApplyError::Read`] or [`ApplyError::Parse`] naming the file; [`ApplyError::Invalid`]
/// or [`ApplyError::Unsupported`] for a resource the standalone mode cannot use
/// ([`ResourceSet::push`]).
pub fn read_dir(dir: &Path) -> Result<ResourceSet, ApplyError> {
    read_dirs(&[dir])
}

/// Reads the resources of several directories ([`read_dir`] each), in order: `mcp
/// standalone` reads `--resources` and the REST API's `DATA/resources/` together.
///
/// # Errors
/// As [`read_dir`].
pub fn read_dirs(dirs: &[&Path]) -> Result<ResourceSet, ApplyError> {
    let mut set = ResourceSet::default();
    for dir in dirs {
        for (path, r) in read_files(dir)? {
            set.push(path, r)?;
        }
    }
    Ok(set)
}

/// The resources of every `*.yaml` and `*.yml` file directly in `dir`, in file-name order,
/// each with its file.
///
/// # Errors
/// [`ApplyError::Read`] or [`ApplyError::Parse`] naming the file.
pub fn read_files(dir: &Path) -> Result<Vec<(PathBuf, Resource)>, ApplyError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ApplyError::Read { path, source }
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let path = entry.map_err(read_err(dir))?.path();
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(read_err(&path))?;
        let resources = Resource::parse_stream(&text).map_err(|source| ApplyError::Parse {
            path: path.clone(),
            source,
        })?;
        out.extend(resources.into_iter().map(|r| (path.clone(), r)));
    }
    Ok(out)
}

impl ResourceSet {
    /// Adds `r`, read from `path` (a file, or where the REST API keeps it).
    ///
    /// # Errors
    /// [`ApplyError::Invalid`] for a PluginDeployment with `env[].valueFrom` (standalone has
    /// no Secrets or ConfigMaps to read it from); [`ApplyError::Unsupported`] for a
    /// MigrationJob (no migration worker in standalone mode).
    pub fn push(&mut self, path: PathBuf, r: Resource) -> Result<(), ApplyError> {
        match r {
            Resource::Tenant(t) => self.tenants.push(Sourced { path, value: *t }),
            Resource::Mailbox(m) => self.mailboxes.push(Sourced { path, value: *m }),
            Resource::Secret(s) => self.secrets.push(Sourced { path, value: s }),
            Resource::Pipeline(p) => self.pipelines.push(Sourced { path, value: *p }),
            Resource::PluginDeployment(d) => {
                // Standalone has no Secrets or ConfigMaps to read a variable from.
                if let Some(i) = d.spec.env.iter().position(|e| e.value_from.is_some()) {
                    return Err(ApplyError::Invalid {
                        path,
                        kind: "PluginDeployment",
                        name: d.metadata.name.clone().unwrap_or_default(),
                        field: "spec.env[].valueFrom",
                        message: format!(
                            "env[{i}] ({:?}): valueFrom (Secret and ConfigMap keys) works in Kubernetes only; standalone needs value",
                            d.spec.env[i].name
                        ),
                    });
                }
                self.plugin_deployments.push(Sourced { path, value: *d });
            }
            Resource::MigrationJob(_) => {
                return Err(ApplyError::Unsupported {
                    path,
                    kind: r.kind(),
                    name: resource_name(&r),
                });
            }
        }
        Ok(())
    }
}

fn resource_name(r: &Resource) -> String {
    let name = match r {
        Resource::Tenant(t) => t.metadata.name.as_deref(),
        Resource::Mailbox(m) => m.metadata.name.as_deref(),
        Resource::Pipeline(p) => p.metadata.name.as_deref(),
        Resource::PluginDeployment(p) => p.metadata.name.as_deref(),
        Resource::MigrationJob(m) => m.metadata.name.as_deref(),
        Resource::Secret(s) => Some(s.name.as_str()),
    };
    name.unwrap_or("").to_owned()
}

/// A 32-octet key for the account digests, kept in the data directory.
///
/// The digest covers the password, so an unkeyed hash stored next to the argon2 hash would
/// let anyone holding a database copy test password guesses at SHA-256 speed. Keyed, the
/// database alone reveals nothing. Losing the key only costs one re-hash of every account.
#[derive(Clone)]
pub struct DigestKey([u8; 32]);

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestKey(..)")
    }
}

impl DigestKey {
    /// A key from raw bytes (tests, or callers that keep the key elsewhere).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads the key from `path` (64 hex digits), or creates it (random, mode 0600) when the
    /// file does not exist.
    ///
    /// # Errors
    /// [`ApplyError::DigestKey`] when the file cannot be read or written or is corrupt.
    pub fn load_or_create(path: &Path) -> Result<Self, ApplyError> {
        let fail = |message: String| ApplyError::DigestKey {
            path: path.to_owned(),
            message,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut key = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut key).map_err(|e| {
                    fail(format!("not 64 hex digits ({e}); delete it to regenerate"))
                })?;
                Ok(Self(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                let text = format!("{}\n", hex::encode(key));
                crate::tls::write_atomically(path, text.as_bytes(), 0o600)
                    .map_err(|e| fail(e.to_string()))?;
                Ok(Self(key))
            }
            Err(e) => Err(fail(e.to_string())),
        }
    }
}

/// HMAC-SHA-256 (RFC 2104) over `msg`.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// One account that a Mailbox asks for: from the standalone resources
/// ([`desired_accounts`]) or from the admin API, both through [`desired_account`].
#[derive(Clone)]
pub struct DesiredAccount {
    /// Where the Mailbox came from, for logs: its file, or the admin API.
    pub origin: String,
    /// Owning tenant's name.
    pub tenant: String,
    /// Login name and primary address, lower-case.
    pub address: String,
    /// Whether login is allowed (`spec.state: Active`).
    pub active: bool,
    /// Keyed digest of (tenant, spec, password): `hmac-sha256:` and 64 hex digits.
    pub digest: String,
    /// The limits of `spec.quota`.
    pub quota: QuotaLimits,
    /// The Mailbox's `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// The Mailbox's `spec.pipelineRef.name`.
    pub pipeline_ref: Option<String>,
    /// The Mailbox's `spec.aliases`, lower-case, sorted, without duplicates or the address.
    pub aliases: Vec<String>,
    password: String,
}

impl std::fmt::Debug for DesiredAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredAccount")
            .field("origin", &self.origin)
            .field("tenant", &self.tenant)
            .field("address", &self.address)
            .field("active", &self.active)
            .field("digest", &self.digest)
            .field("quota", &self.quota)
            .field("labels", &self.labels)
            .field("pipeline_ref", &self.pipeline_ref)
            .field("aliases", &self.aliases)
            .finish_non_exhaustive()
    }
}

/// Why one Mailbox cannot become an account: the field at fault, as a path in the Mailbox
/// (`spec.address`, `spec.aliases`, `spec.quota.storage`, ...) or `password`, and why.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidAccount {
    /// Path of the field.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// Checks that `spec.address` and each of `spec.aliases` is a `local@domain` address in one
/// of `domains` (compared ASCII case-insensitively).
///
/// # Errors
/// [`InvalidAccount`] naming `spec.address` or `spec.aliases`.
pub fn check_addresses(spec: &MailboxSpec, domains: &[String]) -> Result<(), InvalidAccount> {
    let address = spec.address.to_lowercase();
    for (field, a) in std::iter::once(("spec.address", &address))
        .chain(spec.aliases.iter().map(|a| ("spec.aliases", a)))
    {
        let bad = |message| InvalidAccount { field, message };
        let (_, domain) =
            split_address(a).ok_or_else(|| bad(format!("{a:?} is not a local@domain address")))?;
        if !domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
            return Err(bad(format!(
                "domain of {a:?} is not one of tenant {:?}'s spec.domains {domains:?}",
                spec.tenant
            )));
        }
    }
    Ok(())
}

/// The account `spec` asks for, with `password`, in a tenant whose mail domains are
/// `domains`. The one validation both the standalone resources and the admin API go
/// through: addresses ([`check_addresses`]), a non-empty password, and `spec.quota`
/// ([`crate::quota::limits`]). The digest covers (`spec.tenant`, `spec`, `password`,
/// `labels`) keyed with `key`, so an unchanged request is recognised without hashing the
/// password.
///
/// # Errors
/// [`InvalidAccount`] naming the field.
pub fn desired_account(
    origin: impl Into<String>,
    domains: &[String],
    spec: &MailboxSpec,
    labels: &BTreeMap<String, String>,
    password: &str,
    key: &DigestKey,
) -> Result<DesiredAccount, InvalidAccount> {
    check_addresses(spec, domains)?;
    if password.is_empty() {
        return Err(InvalidAccount {
            field: "password",
            message: "must not be empty".into(),
        });
    }
    let quota = crate::quota::limits(spec.quota.as_ref()).map_err(|e| InvalidAccount {
        field: e.field,
        message: e.message,
    })?;
    let input = DigestInput {
        version: 1,
        tenant: &spec.tenant,
        spec,
        password,
        labels,
    };
    let json = serde_json::to_vec(&input).map_err(|e| InvalidAccount {
        field: "spec",
        message: format!("cannot be serialised: {e}"),
    })?;
    Ok(DesiredAccount {
        origin: origin.into(),
        tenant: spec.tenant.clone(),
        address: spec.address.to_lowercase(),
        active: spec.state == MailboxState::Active,
        digest: format!("hmac-sha256:{}", hex::encode(hmac_sha256(&key.0, &json))),
        quota,
        labels: labels.clone(),
        pipeline_ref: spec.pipeline_ref.as_ref().map(|r| r.name.clone()),
        aliases: aliases_of(spec),
        password: password.to_owned(),
    })
}

/// `spec.aliases` lower-case, sorted, without duplicates or the primary address.
fn aliases_of(spec: &MailboxSpec) -> Vec<String> {
    let address = spec.address.to_lowercase();
    let mut aliases: Vec<String> = spec
        .aliases
        .iter()
        .map(|a| a.to_lowercase())
        .filter(|a| *a != address)
        .collect();
    aliases.sort();
    aliases.dedup();
    aliases
}

fn invalid<T>(
    r: &Sourced<T>,
    kind: &'static str,
    name: &str,
    field: &'static str,
    message: impl Into<String>,
) -> ApplyError {
    ApplyError::Invalid {
        path: r.path.clone(),
        kind,
        name: name.to_owned(),
        field,
        message: message.into(),
    }
}

/// Splits `local@domain`, rejecting anything that cannot be an IMAP login address.
fn split_address(address: &str) -> Option<(&str, &str)> {
    let (local, domain) = address.split_once('@')?;
    let bad = |s: &str| {
        s.is_empty()
            || s.contains('@')
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '"')
    };
    if bad(local) || bad(domain) || !domain.contains(|c: char| c.is_alphanumeric()) {
        return None;
    }
    Some((local, domain))
}

/// Whether `domain` is a lower-case DNS name: dot-separated labels of 1 to 63 characters
/// `a-z`, `0-9` and `-`, 253 characters at most.
pub(crate) fn valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[derive(Serialize)]
struct DigestInput<'a> {
    version: u32,
    tenant: &'a str,
    spec: &'a mcp_crds::MailboxSpec,
    password: &'a str,
    /// Omitted when empty, so digests of Mailboxes without labels stay what they were
    /// before labels were kept.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
}

/// Validates `set` as a whole and returns the accounts it asks for, in file order.
///
/// # Errors
/// The first [`ApplyError::Invalid`]: a Tenant without a name or with an empty or malformed
/// `spec.domains`; a duplicate Tenant, Secret or address; a Mailbox whose tenant does not
/// exist, whose address is malformed or outside its tenant's domains, whose namespace is not
/// its tenant's, or whose Secret or Secret key is missing or empty.
pub fn desired_accounts(
    set: &ResourceSet,
    key: &DigestKey,
) -> Result<Vec<DesiredAccount>, ApplyError> {
    let mut tenants: BTreeMap<String, &Sourced<Tenant>> = BTreeMap::new();
    for t in &set.tenants {
        let name = t.value.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(invalid(t, "Tenant", "", "metadata.name", "is required"));
        }
        if t.value.spec.domains.is_empty() {
            return Err(invalid(
                t,
                "Tenant",
                &name,
                "spec.domains",
                "needs at least one domain",
            ));
        }
        if let Some(d) = t.value.spec.domains.iter().find(|d| !valid_domain(d)) {
            return Err(invalid(
                t,
                "Tenant",
                &name,
                "spec.domains",
                format!("{d:?} is not a lower-case DNS name"),
            ));
        }
        if let Some(prev) = tenants.insert(name.clone(), t) {
            return Err(invalid(
                t,
                "Tenant",
                &name,
                "metadata.name",
                format!("already defined in {}", prev.path.display()),
            ));
        }
    }

    let mut secrets: BTreeMap<(Option<&str>, &str), &Sourced<SecretResource>> = BTreeMap::new();
    for s in &set.secrets {
        let id = (s.value.namespace.as_deref(), s.value.name.as_str());
        if let Some(prev) = secrets.insert(id, s) {
            return Err(invalid(
                s,
                "Secret",
                &s.value.name,
                "metadata.name",
                format!("already defined in {}", prev.path.display()),
            ));
        }
    }

    let mut out = Vec::new();
    // Every address and alias, with the Mailbox (name, file) that claims it.
    let mut addresses: BTreeMap<String, (String, &Path)> = BTreeMap::new();
    for m in &set.mailboxes {
        let name = m.value.metadata.name.clone().unwrap_or_default();
        let bad = |field, message: String| invalid(m, "Mailbox", &name, field, message);
        if name.is_empty() {
            return Err(bad("metadata.name", "is required".into()));
        }
        let spec = &m.value.spec;
        let tenant = tenants.get(&spec.tenant).ok_or_else(|| {
            bad(
                "spec.tenant",
                format!("no Tenant named {:?} in the resources", spec.tenant),
            )
        })?;
        let domains = &tenant.value.spec.domains;
        let address = spec.address.to_lowercase();
        check_addresses(spec, domains).map_err(|e| bad(e.field, e.message))?;
        let mine = std::iter::once(("spec.address", address.clone()))
            .chain(aliases_of(spec).into_iter().map(|a| ("spec.aliases", a)));
        for (field, a) in mine {
            if let Some((prev_name, prev_path)) =
                addresses.insert(a.clone(), (name.clone(), &m.path))
            {
                return Err(bad(
                    field,
                    format!(
                        "{a:?} is already used by Mailbox {prev_name:?} in {} (as its address \
                         or an alias)",
                        prev_path.display()
                    ),
                ));
            }
        }

        let namespace = tenant_namespace(&tenant.value);
        if let Some(ns) = &m.value.metadata.namespace
            && *ns != namespace
        {
            return Err(bad(
                "metadata.namespace",
                format!("must be the tenant's namespace {namespace:?}, not {ns:?}"),
            ));
        }

        let secret_ref = spec.credentials.secret_ref.as_ref().ok_or_else(|| {
            bad(
                "spec.credentials.secretRef",
                "is required in standalone mode".into(),
            )
        })?;
        let secret = secrets
            .get(&(Some(namespace.as_str()), secret_ref.name.as_str()))
            .or_else(|| secrets.get(&(None, secret_ref.name.as_str())))
            .ok_or_else(|| {
                bad(
                    "spec.credentials.secretRef.name",
                    format!("no Secret {namespace}/{} in the resources", secret_ref.name),
                )
            })?;
        let password = secret.value.data.get(&secret_ref.key).ok_or_else(|| {
            bad(
                "spec.credentials.secretRef.key",
                format!(
                    "Secret {} ({}) has no key {:?}",
                    secret_ref.name,
                    secret.path.display(),
                    secret_ref.key
                ),
            )
        })?;
        if password.is_empty() {
            return Err(bad(
                "spec.credentials.secretRef.key",
                format!(
                    "Secret {} key {:?} is empty",
                    secret_ref.name, secret_ref.key
                ),
            ));
        }

        let labels = m.value.metadata.labels.clone().unwrap_or_default();
        // As the operator does: the tenant's mailboxDefault fills what spec.quota leaves out.
        let mut spec = spec.clone();
        let default = tenant.value.spec.quota.as_ref();
        spec.quota = Quota::effective(
            spec.quota.as_ref(),
            default.and_then(|q| q.mailbox_default.as_ref()),
        );
        let account = desired_account(
            m.path.display().to_string(),
            domains,
            &spec,
            &labels,
            password,
            key,
        )
        .map_err(|e| bad(e.field, e.message))?;
        out.push(account);
    }
    Ok(out)
}

/// The storage limit of each Tenant (`spec.quota.storage`, octets; `None`: no limit), by
/// name, in file order (docs/quota.md).
///
/// # Errors
/// [`ApplyError::Invalid`] naming a Tenant whose `spec.quota.storage` is not a quantity.
pub fn tenant_quotas(set: &ResourceSet) -> Result<Vec<(String, Option<u64>)>, ApplyError> {
    set.tenants
        .iter()
        .map(|t| {
            let name = t.value.metadata.name.clone().unwrap_or_default();
            let storage = t.value.spec.quota.as_ref().and_then(|q| q.storage.as_ref());
            let limit = storage
                .map(|q| crate::quota::quantity_bytes(&q.0))
                .transpose()
                .map_err(|e| invalid(t, "Tenant", &name, "spec.quota.storage", e))?;
            Ok((name, limit))
        })
        .collect()
}

/// Stores the tenant limits of [`tenant_quotas`]; every process on the store enforces them.
///
/// # Errors
/// [`ApplyError::Store`] naming the tenant.
pub async fn apply_tenant_quotas(
    store: &MetadataStore,
    quotas: &[(String, Option<u64>)],
) -> Result<(), ApplyError> {
    for (tenant, limit) in quotas {
        store
            .set_tenant_quota(tenant, *limit)
            .await
            .map_err(|source| ApplyError::Store {
                address: format!("Tenant {tenant}"),
                source,
            })?;
    }
    Ok(())
}

/// What [`apply`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Accounts that did not exist.
    pub created: usize,
    /// Accounts whose digest changed.
    pub updated: usize,
    /// Accounts already up to date (no write, no hashing).
    pub unchanged: usize,
}

/// What [`apply_one`] did to one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The account did not exist and was created with the default folders.
    Created,
    /// The account existed with another digest and was updated; its mail is kept.
    Updated,
    /// The stored digest was equal: nothing written, no password hashing.
    Unchanged,
}

/// Creates or updates the account of every `accounts` entry whose stored digest differs
/// ([`apply_one`] each).
///
/// Accounts in the store that no Mailbox asks for are left alone (their retention is the
/// Mailbox's `spec.retention`, handled when deletion is implemented).
///
/// # Errors
/// [`ApplyError::Store`] or [`ApplyError::Hash`] naming the account; accounts before it
/// are already applied (each upsert is its own transaction, and re-applying is idempotent).
pub async fn apply(
    store: &MetadataStore,
    accounts: &[DesiredAccount],
) -> Result<ApplyReport, ApplyError> {
    let mut report = ApplyReport::default();
    for a in accounts {
        match apply_one(store, a).await?.0 {
            Applied::Created => report.created += 1,
            Applied::Updated => report.updated += 1,
            Applied::Unchanged => report.unchanged += 1,
        }
    }
    Ok(report)
}

/// Creates or updates one account unless its stored digest equals `a.digest`; returns what
/// it did and the account as stored afterwards. A new account gets the default special-use
/// folders ([`MetadataStore::upsert_account`]); an existing one keeps its folders and
/// messages. The password is hashed (argon2id, on a blocking thread) only when something
/// is written.
///
/// # Errors
/// [`ApplyError::Store`] or [`ApplyError::Hash`] naming the account; nothing is written
/// then (the upsert is one transaction).
pub async fn apply_one(
    store: &MetadataStore,
    a: &DesiredAccount,
) -> Result<(Applied, AccountRecord), ApplyError> {
    let store_err = |source| ApplyError::Store {
        address: a.address.clone(),
        source,
    };
    let existing = store
        .account_by_address(&a.address)
        .await
        .map_err(store_err)?;
    // Comparing what the digest covers catches accounts stored before the quota, label,
    // pipelineRef and alias columns existed: their digest is unchanged, but those values
    // are still to be written.
    if let Some(e) = &existing
        && e.spec_digest == a.digest
        && e.quota_storage == a.quota.storage
        && e.quota_messages == a.quota.messages
        && e.labels == a.labels
        && e.pipeline_ref == a.pipeline_ref
        && store.aliases(e.id).await.map_err(store_err)? == a.aliases
    {
        return Ok((Applied::Unchanged, e.clone()));
    }
    let password = a.password.clone();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApplyError::Store {
            address: a.address.clone(),
            source: StoreError::Corrupt(format!("password hashing aborted: {e}")),
        })?
        .map_err(|source| ApplyError::Hash {
            address: a.address.clone(),
            source,
        })?;
    let record = store
        .upsert_account(&AccountUpsert {
            tenant: a.tenant.clone(),
            address: a.address.clone(),
            password_hash,
            active: a.active,
            spec_digest: a.digest.clone(),
            quota_storage: a.quota.storage,
            quota_messages: a.quota.messages,
            labels: a.labels.clone(),
            pipeline_ref: a.pipeline_ref.clone(),
            aliases: a.aliases.clone(),
        })
        .await
        .map_err(store_err)?;
    if existing.is_some() {
        tracing::info!(address = %a.address, origin = %a.origin, "account updated");
        Ok((Applied::Updated, record))
    } else {
        tracing::info!(address = %a.address, origin = %a.origin, "account created");
        Ok((Applied::Created, record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "apiVersion: mcp.dev/v1alpha1\nkind: Tenant\nmetadata: {name: example}\nspec: {domains: [example.com]}\n";
    const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: alice, namespace: mcp-example}\nstringData: {password: alice-demo}\n";
    const MAILBOX: &str = "apiVersion: mcp.dev/v1alpha1\nkind: Mailbox\nmetadata: {name: alice, namespace: mcp-example}\nspec:\n  tenant: example\n  address: Alice@Example.com\n  credentials: {secretRef: {name: alice}}\n";

    fn key() -> DigestKey {
        DigestKey::from_bytes([7; 32])
    }

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        dir
    }

    fn desired(files: &[(&str, &str)]) -> Result<Vec<DesiredAccount>, ApplyError> {
        let dir = dir_with(files);
        desired_accounts(&read_dir(dir.path())?, &key())
    }

    #[test]
    fn hmac_matches_rfc4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sample_resources_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples/standalone");
        let set = read_dir(&dir).expect("samples parse");
        let accounts = desired_accounts(&set, &key()).expect("samples validate");
        let mut addresses: Vec<_> = accounts.iter().map(|a| a.address.as_str()).collect();
        addresses.sort();
        assert_eq!(addresses, ["alice@example.com", "bob@example.com"]);
        let alice = accounts
            .iter()
            .find(|a| a.address == "alice@example.com")
            .expect("alice");
        assert_eq!(alice.password, "alice-demo");
        assert!(alice.active);
    }

    #[test]
    fn plugin_deployments_are_read_and_value_from_is_refused_naming_the_field() {
        let plugin = "apiVersion: mcp.dev/v1alpha1\nkind: PluginDeployment\nmetadata: {name: p, namespace: mcp-example}\nspec:\n  command: [/bin/plugin]\n  env: [{name: A, value: x}]\n  protocol: {min: 1, max: 1}\n  stages: [deliver]\n";
        let d = tempfile::TempDir::new().expect("tempdir");
        std::fs::write(d.path().join("p.yaml"), plugin).expect("write");
        let set = read_dir(d.path()).expect("PluginDeployment accepted");
        assert_eq!(set.plugin_deployments().len(), 1);
        assert!(set.plugin_deployment_file("mcp-example", "p").is_some());

        let secret_env = plugin.replace(
            "[{name: A, value: x}]",
            "[{name: A, value: x}, {name: TOKEN, valueFrom: {secretKeyRef: {name: s, key: k}}}]",
        );
        std::fs::write(d.path().join("p.yaml"), secret_env).expect("write");
        let err = read_dir(d.path())
            .expect_err("valueFrom accepted")
            .to_string();
        assert!(
            err.contains(
                "p.yaml: PluginDeployment \"p\": spec.env[].valueFrom: env[1] (\"TOKEN\")"
            ),
            "{err}"
        );
    }

    #[test]
    fn kinds_standalone_does_not_apply_yet_are_refused_naming_file_and_resource() {
        let job = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples/k8s/migrationjob.yaml"),
        )
        .expect("sample");
        let d = tempfile::TempDir::new().expect("tempdir");
        std::fs::write(d.path().join("m.yaml"), job).expect("write");
        match read_dir(d.path()) {
            Err(ApplyError::Unsupported { kind, path, .. }) => {
                assert_eq!(kind, "MigrationJob");
                assert!(path.ends_with("m.yaml"));
            }
            other => panic!("MigrationJob accepted: {other:?}"),
        }
    }

    /// The digest covers the serialised Mailbox spec: new optional fields of the API must
    /// not change it for existing Mailboxes, or every account would be re-hashed on upgrade.
    #[test]
    fn mailbox_spec_serialisation_is_stable_for_digests() {
        let Resource::Mailbox(m) = Resource::parse_stream(MAILBOX).expect("valid").remove(0) else {
            panic!("not a Mailbox");
        };
        assert_eq!(
            serde_json::to_string(&m.spec).expect("serialises"),
            r#"{"tenant":"example","address":"Alice@Example.com","credentials":{"secretRef":{"name":"alice","key":"password"}},"state":"Active","retention":"Retain"}"#
        );
    }

    #[test]
    fn resources_may_be_spread_over_files_and_only_yaml_is_read() {
        let accounts = desired(&[
            ("a.yaml", TENANT),
            ("b.yml", SECRET),
            ("c.yaml", MAILBOX),
            ("notes.txt", "not yaml: ["),
        ])
        .expect("valid");
        assert_eq!(accounts.len(), 1);
        assert_eq!(accounts[0].address, "alice@example.com");
        assert!(accounts[0].digest.starts_with("hmac-sha256:"));
        assert_eq!(accounts[0].digest.len(), "hmac-sha256:".len() + 64);
    }

    #[test]
    fn digest_is_stable_and_changes_with_spec_password_and_key() {
        let base = desired(&[("a.yaml", TENANT), ("b.yaml", SECRET), ("c.yaml", MAILBOX)])
            .expect("valid")[0]
            .digest
            .clone();
        let again = desired(&[("a.yaml", TENANT), ("b.yaml", SECRET), ("c.yaml", MAILBOX)])
            .expect("valid")[0]
            .digest
            .clone();
        assert_eq!(base, again);

        let suspended = format!("{MAILBOX}  state: Suspended\n");
        let changed = desired(&[
            ("a.yaml", TENANT),
            ("b.yaml", SECRET),
            ("c.yaml", &suspended),
        ])
        .expect("valid");
        assert_ne!(changed[0].digest, base);
        assert!(!changed[0].active);

        let new_password = SECRET.replace("alice-demo", "changed");
        let changed = desired(&[
            ("a.yaml", TENANT),
            ("b.yaml", &new_password),
            ("c.yaml", MAILBOX),
        ])
        .expect("valid");
        assert_ne!(changed[0].digest, base);

        let dir = dir_with(&[("a.yaml", TENANT), ("b.yaml", SECRET), ("c.yaml", MAILBOX)]);
        let set = read_dir(dir.path()).expect("read");
        let other_key = desired_accounts(&set, &DigestKey::from_bytes([8; 32])).expect("valid");
        assert_ne!(other_key[0].digest, base);
    }

    #[test]
    fn inconsistent_resources_are_errors_naming_file_and_field() {
        let other_domain = MAILBOX.replace("Example.com", "other.org");
        let no_tenant = MAILBOX.replace("tenant: example", "tenant: nope");
        let no_secret = MAILBOX.replace("name: alice}}", "name: carol}}");
        let no_key = MAILBOX.replace("name: alice}}", "name: alice, key: pw}}");
        let wrong_ns = MAILBOX.replace("namespace: mcp-example}", "namespace: elsewhere}");
        let bad_alias = format!("{MAILBOX}  aliases: [a@other.org]\n");
        let no_at = MAILBOX.replace("Alice@Example.com", "alice");
        let no_domains = TENANT.replace("[example.com]", "[]");
        let upper_domain = TENANT.replace("[example.com]", "[Example.COM]");
        let empty_pw = SECRET.replace("alice-demo", "''");
        let bob = MAILBOX.replace("name: alice, namespace", "name: bob, namespace");
        let alice_with_alias = format!("{MAILBOX}  aliases: [Sales@example.com]\n");
        let bob_alias_of_alice = MAILBOX
            .replace("name: alice, namespace", "name: bob, namespace")
            .replace("Alice@Example.com", "bob@example.com")
            + "  aliases: [x@example.com, alice@EXAMPLE.com]\n";
        let bob_alias_of_sales =
            bob_alias_of_alice.replace("alice@EXAMPLE.com", "SALES@example.com");
        let bob_named_sales = MAILBOX
            .replace("name: alice, namespace", "name: bob, namespace")
            .replace("Alice@Example.com", "sales@example.com");
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (
                vec![
                    ("t.yaml", TENANT),
                    ("s.yaml", SECRET),
                    ("m.yaml", &other_domain),
                ],
                "m.yaml: Mailbox \"alice\": spec.address",
            ),
            (
                vec![
                    ("t.yaml", TENANT),
                    ("s.yaml", SECRET),
                    ("m.yaml", &no_tenant),
                ],
                "m.yaml: Mailbox \"alice\": spec.tenant",
            ),
            (
                vec![
                    ("t.yaml", TENANT),
                    ("s.yaml", SECRET),
                    ("m.yaml", &no_secret),
                ],
                "spec.credentials.secretRef.name",
            ),
            (
                vec![("t.yaml", TENANT), ("s.yaml", SECRET), ("m.yaml", &no_key)],
                "spec.credentials.secretRef.key",
            ),
            (
                vec![
                    ("t.yaml", TENANT),
                    ("s.yaml", &empty_pw),
                    ("m.yaml", MAILBOX),
                ],
                "spec.credentials.secretRef.key",
            ),
            (
                vec![
                    ("t.yaml", TENANT),
                    ("s.yaml", SECRET),
                    ("m.yaml", &wrong_ns),
                ],
                "metadata.namespace",
            ),
            (
                vec![
                    ("t.yaml", TENANT),
                    ("s.yaml", SECRET),
                    ("m.yaml", &bad_alias),
                ],
                "spec.aliases",
            ),
            (
                vec![("t.yaml", TENANT), ("s.yaml", SECRET), ("m.yaml", &no_at)],
                "spec.address",
            ),
            (
                vec![("t.yaml", &no_domains)],
                "t.yaml: Tenant \"example\": spec.domains",
            ),
            (vec![("t.yaml", &upper_domain)], "spec.domains"),
            (
                vec![("t.yaml", TENANT), ("u.yaml", TENANT)],
                "u.yaml: Tenant \"example\": metadata.name: already defined in",
            ),
            (
                vec![
                    ("t.yaml", TENANT),
                    ("s.yaml", SECRET),
                    ("m.yaml", MAILBOX),
                    ("n.yaml", &bob),
                ],
                "n.yaml: Mailbox \"bob\": spec.address: \"alice@example.com\" is already used",
            ),
            (
                vec![("t.yaml", "apiVersion: v1\nkind: ConfigMap\n")],
                "t.yaml: document 0: unsupported",
            ),
            (
                vec![
                    ("t.yaml", TENANT),
                    ("s.yaml", SECRET),
                    ("m.yaml", MAILBOX),
                    ("n.yaml", &bob_alias_of_alice),
                ],
                "n.yaml: Mailbox \"bob\": spec.aliases: \"alice@example.com\" is already used by Mailbox \"alice\" in",
            ),
            (
                vec![
                    ("t.yaml", TENANT),
                    ("s.yaml", SECRET),
                    ("m.yaml", &alice_with_alias),
                    ("n.yaml", &bob_alias_of_sales),
                ],
                "n.yaml: Mailbox \"bob\": spec.aliases: \"sales@example.com\" is already used by Mailbox \"alice\" in",
            ),
            (
                vec![
                    ("t.yaml", TENANT),
                    ("s.yaml", SECRET),
                    ("m.yaml", &alice_with_alias),
                    ("n.yaml", &bob_named_sales),
                ],
                "n.yaml: Mailbox \"bob\": spec.address: \"sales@example.com\" is already used by Mailbox \"alice\" in",
            ),
        ];
        for (files, want) in cases {
            let err = desired(&files).expect_err(want).to_string();
            assert!(err.contains(want), "want {want:?} in {err:?}");
        }
    }

    #[test]
    fn secret_without_namespace_matches_and_data_is_base64() {
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: alice}\ndata: {password: YWxpY2UtZGVtbw==}\n";
        let accounts =
            desired(&[("t.yaml", TENANT), ("s.yaml", secret), ("m.yaml", MAILBOX)]).expect("valid");
        assert_eq!(accounts[0].password, "alice-demo");
    }

    #[test]
    fn digest_key_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("apply.key");
        let a = DigestKey::load_or_create(&path).expect("create");
        let b = DigestKey::load_or_create(&path).expect("load");
        assert_eq!(a.0, b.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "zz").expect("corrupt");
        let err = DigestKey::load_or_create(&path)
            .expect_err("corrupt")
            .to_string();
        assert!(err.contains("apply.key"), "{err}");
    }

    #[test]
    fn labels_change_the_digest_and_their_absence_does_not() {
        let base = desired(&[("t.yaml", TENANT), ("s.yaml", SECRET), ("m.yaml", MAILBOX)])
            .expect("valid")
            .remove(0);
        let empty_labels = MAILBOX.replace(
            "namespace: mcp-example}",
            "namespace: mcp-example, labels: {}}",
        );
        let same = desired(&[
            ("t.yaml", TENANT),
            ("s.yaml", SECRET),
            ("m.yaml", &empty_labels),
        ])
        .expect("valid")
        .remove(0);
        assert_eq!(
            same.digest, base.digest,
            "digests of unlabelled Mailboxes are stable"
        );
        let labelled = MAILBOX.replace(
            "namespace: mcp-example}",
            "namespace: mcp-example, labels: {team: finance}}",
        ) + "  pipelineRef: {name: strict}\n  aliases: [Sales@example.com, alice@example.com]\n";
        let a = desired(&[
            ("t.yaml", TENANT),
            ("s.yaml", SECRET),
            ("m.yaml", &labelled),
        ])
        .expect("valid")
        .remove(0);
        assert_ne!(a.digest, base.digest);
        assert_eq!(a.labels.get("team").map(String::as_str), Some("finance"));
        assert_eq!(a.pipeline_ref.as_deref(), Some("strict"));
        assert_eq!(a.aliases, ["sales@example.com"]);
    }

    /// Needs the SQLite [`MetadataStore`].
    #[tokio::test]
    async fn labels_pipeline_ref_and_aliases_are_stored_and_edits_reapply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("meta.sqlite").display());
        let store = MetadataStore::connect(&url).await.expect("connect");
        let labelled = MAILBOX.replace(
            "namespace: mcp-example}",
            "namespace: mcp-example, labels: {team: finance}}",
        ) + "  pipelineRef: {name: strict}\n  aliases: [Sales@example.com]\n";
        let accounts = desired(&[
            ("t.yaml", TENANT),
            ("s.yaml", SECRET),
            ("m.yaml", &labelled),
        ])
        .expect("valid");
        apply(&store, &accounts).await.expect("apply");
        let a = store
            .account_by_recipient("sales@example.com")
            .await
            .expect("route")
            .expect("alias routes");
        assert_eq!(a.address, "alice@example.com");
        assert_eq!(a.labels.get("team").map(String::as_str), Some("finance"));
        assert_eq!(a.pipeline_ref.as_deref(), Some("strict"));
        let again = apply(&store, &accounts).await.expect("re-apply");
        assert_eq!(again.unchanged, 1);

        // Dropping the alias re-applies and frees it.
        let fewer = labelled.replace("  aliases: [Sales@example.com]\n", "");
        let accounts =
            desired(&[("t.yaml", TENANT), ("s.yaml", SECRET), ("m.yaml", &fewer)]).expect("valid");
        assert_eq!(apply(&store, &accounts).await.expect("apply").updated, 1);
        assert_eq!(
            store
                .account_by_recipient("sales@example.com")
                .await
                .expect("route"),
            None
        );
    }

    /// Needs the SQLite [`MetadataStore`].
    #[tokio::test]
    async fn reapply_is_idempotent_and_an_edit_is_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("meta.sqlite").display());
        let store = MetadataStore::connect(&url).await.expect("connect");
        let files = [("t.yaml", TENANT), ("s.yaml", SECRET), ("m.yaml", MAILBOX)];
        let accounts = desired(&files).expect("valid");

        let first = apply(&store, &accounts).await.expect("apply");
        assert_eq!(
            first,
            ApplyReport {
                created: 1,
                updated: 0,
                unchanged: 0
            }
        );
        let stored = store
            .account_by_address("alice@example.com")
            .await
            .expect("lookup")
            .expect("exists");

        let second = apply(&store, &accounts).await.expect("re-apply");
        assert_eq!(
            second,
            ApplyReport {
                created: 0,
                updated: 0,
                unchanged: 1
            }
        );
        let again = store
            .account_by_address("alice@example.com")
            .await
            .expect("lookup")
            .expect("exists");
        assert_eq!(again.password_hash, stored.password_hash);

        let suspended = format!("{MAILBOX}  state: Suspended\n");
        let edited = desired(&[
            ("t.yaml", TENANT),
            ("s.yaml", SECRET),
            ("m.yaml", &suspended),
        ])
        .expect("valid");
        let third = apply(&store, &edited).await.expect("apply edit");
        assert_eq!(
            third,
            ApplyReport {
                created: 0,
                updated: 1,
                unchanged: 0
            }
        );
        let after = store
            .account_by_address("alice@example.com")
            .await
            .expect("lookup")
            .expect("exists");
        assert!(!after.active);
        assert_eq!(after.spec_digest, edited[0].digest);
    }
}
