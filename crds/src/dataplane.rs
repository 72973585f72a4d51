//! The contract between the operator and a tenant's dataplane (docs/operator.md).
//!
//! Two pieces, each one type on both sides so writer and reader cannot drift:
//!
//! - [`DataplaneConfig`]: the configuration file `config.yaml` the operator renders into a
//!   ConfigMap and `mcp dataplane --config` reads. Unknown fields are an error, so a typo or
//!   a field from a newer operator is named rather than ignored.
//! - The admin API the operator provisions Mailboxes through: HTTPS on [`DataplaneConfig::admin`]
//!   with a bearer token, paths under [`ADMIN_PATH`]. [`AccountRequest`] is the body of
//!   `PUT {ADMIN_PATH}/{address}`, [`AccountState`] the answer to `PUT` and `GET`,
//!   [`DeleteOutcome`] the answer to `DELETE {ADMIN_PATH}/{address}?retention=Retain|Delete`,
//!   and every error is a [`Problem`] (RFC 9457 `application/problem+json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::mailbox::{MailboxSpec, Retention};
use crate::pipeline::Stage;

/// The external plugins a dataplane connects to: `GET {PLUGINS_PATH}` answers [`PluginsState`].
pub const PLUGINS_PATH: &str = "/internal/v1/plugins";

/// The pipelines a dataplane runs: `GET {PIPELINES_PATH}` answers [`PipelinesState`].
pub const PIPELINES_PATH: &str = "/internal/v1/pipelines";

/// Prefix of the quarantine endpoints of the admin API (docs/pipeline.md, "Quarantine"):
///
/// - `GET {QUARANTINE_PATH}?mailbox=ADDR&limit=N&after=ID`: [`QuarantineList`];
/// - `GET {QUARANTINE_PATH}/{id}`: [`QuarantineEntry`] (with `?raw=1`, the original message
///   as `message/rfc822`);
/// - `GET {QUARANTINE_PATH}/{id}/message`: the original message as `message/rfc822`;
/// - `POST {QUARANTINE_PATH}/{id}/release`: [`ReleaseOutcome`];
/// - `DELETE {QUARANTINE_PATH}/{id}`: 204 No Content.
pub const QUARANTINE_PATH: &str = "/internal/v1/quarantine";

/// Default number of entries of one [`QuarantineList`] page.
pub const QUARANTINE_DEFAULT_LIMIT: u32 = 100;

/// Largest `limit` of `GET {QUARANTINE_PATH}`.
pub const QUARANTINE_MAX_LIMIT: u32 = 1000;

/// Prefix of the account endpoints of the admin API: `PUT`, `GET` and `DELETE`
/// `{ADMIN_PATH}/{address}` (the address percent-encoded as one path segment).
pub const ADMIN_PATH: &str = "/internal/v1/accounts";

/// The configuration file of one tenant's dataplane (`mcp dataplane --config FILE`).
///
/// Relative paths (`tlsCert`, `tlsKey`, `adminTlsCert`, `adminTlsKey`, `adminTokenFile`, and
/// also `dataDir`, `blobDir` and the path of a `sqlite:` store URL) resolve against the
/// directory of the configuration file ([`DataplaneConfig::resolve`]), so the ConfigMap and
/// Secrets projected into one directory can be run anywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataplaneConfig {
    /// The Tenant's name; the admin API refuses accounts of any other tenant.
    pub tenant: String,
    /// The Tenant's mail domains; every provisioned address and alias is in one of them.
    pub domains: Vec<String>,
    /// IMAP (STARTTLS) listen address, `IP:PORT`.
    pub imap: String,
    /// IMAPS (implicit TLS) listen address, `IP:PORT`.
    pub imaps: String,
    /// LMTP listen address, `IP:PORT` (served once LMTP exists, issue 4).
    pub lmtp: String,
    /// Metrics and health (`/metrics`, `/healthz`) listen address, `IP:PORT`, plain HTTP.
    pub metrics: String,
    /// Admin API listen address, `IP:PORT`, HTTPS with `adminTlsCert`/`adminTlsKey`.
    pub admin: String,
    /// Data directory (SQLite file and blobs with embedded storage).
    pub data_dir: String,
    /// Metadata store URL when it holds no secret (embedded SQLite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_url: Option<String>,
    /// Name of the environment variable holding the metadata store URL (PostgreSQL, whose URL
    /// carries a password). Exactly one of `storeUrl` and `storeUrlEnv` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_url_env: Option<String>,
    /// Blob directory (embedded storage). Exactly one of `blobDir` and `s3` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_dir: Option<String>,
    /// S3 bucket of the message bodies (PostgreSQL storage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
    /// PEM certificate chain served on IMAPS and after STARTTLS.
    pub tls_cert: String,
    /// PEM private key of `tlsCert`.
    pub tls_key: String,
    /// PEM certificate of the admin API: self-signed by the operator, which pins it.
    pub admin_tls_cert: String,
    /// PEM private key of `adminTlsCert`.
    pub admin_tls_key: String,
    /// File holding the admin API's bearer token (one line, surrounding whitespace ignored).
    pub admin_token_file: String,
    /// File holding the tenant's Pipelines: a YAML stream of `Pipeline` resources (spec
    /// only; status is ignored), as validated and rendered by the operator (docs/pipeline.md).
    /// Re-read when it changes, without dropping connections. Absent means no pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipelines: Option<String>,
    /// The Tenant's `spec.quota.storage`: total storage of all its mailboxes, a Kubernetes
    /// quantity in bytes (`100Gi`). Absent means no tenant-wide limit. Applied to the store
    /// at start-up, so every replica on the database enforces it (docs/quota.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_storage_quota: Option<String>,
    /// Directory of the Unix sockets of `transport: unix` sidecar plugins: PluginDeployment
    /// `x` listens on `<dir>/x.sock`. Absent means
    /// [`SIDECAR_SOCKET_DIR`](crate::plugin::SIDECAR_SOCKET_DIR) (the shared `emptyDir`);
    /// set it to run the rendered configuration outside a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_socket_dir: Option<String>,
    /// Directory of the client certificates of `mode: service` plugins:
    /// `<dir>/<name>/{tls.crt,tls.key,ca.crt}`. Absent means
    /// [`CLIENT_TLS_DIR`](crate::plugin::CLIENT_TLS_DIR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_client_tls_dir: Option<String>,
}

impl DataplaneConfig {
    /// `path` as given when absolute, otherwise joined to `config_dir` (the directory of the
    /// configuration file).
    pub fn resolve(config_dir: &Path, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_owned()
        } else {
            config_dir.join(p)
        }
    }
}

/// S3 settings of [`DataplaneConfig`], defaults applied by the operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix, e.g. `acme/`.
    pub prefix: String,
    /// Endpoint URL; absent means AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Region, e.g. `us-east-1`.
    pub region: String,
    /// Path-style addressing (`https://host/bucket/key`), needed by most non-AWS servers.
    pub force_path_style: bool,
    /// Name of the environment variable holding the access key id.
    pub access_key_id_env: String,
    /// Name of the environment variable holding the secret access key.
    pub secret_access_key_env: String,
    /// Capacity of each dataplane process's in-memory cache of message bodies, in MiB
    /// (0 turns it off); absent means 64.
    #[serde(default, rename = "cacheMiB", skip_serializing_if = "Option::is_none")]
    pub cache_mib: Option<u32>,
}

/// Body of `PUT {ADMIN_PATH}/{address}`: create or update one account.
///
/// Idempotent: the dataplane keeps a keyed digest of (tenant, spec, password) and skips an
/// account whose digest is unchanged, so repeating a request costs no password hashing.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountRequest {
    /// Must equal the dataplane's [`DataplaneConfig::tenant`].
    pub tenant: String,
    /// The Mailbox's spec; `spec.address` must equal the path's address (case-insensitive).
    pub spec: MailboxSpec,
    /// The Mailbox's labels, matched against the `mailboxSelector` of selector-scoped
    /// Pipelines by the dataplane.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The password from the Mailbox's credentials Secret; hashed with argon2id before it is
    /// stored. Never logged.
    pub password: String,
}

impl std::fmt::Debug for AccountRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRequest")
            .field("tenant", &self.tenant)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// One account as the dataplane's store holds it: the answer to `PUT` and `GET`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountState {
    /// Login name and primary address, lower-case.
    pub address: String,
    /// Whether login is allowed (`spec.state: Active`, and not retained after deletion).
    pub active: bool,
    /// `true` when this request created the account (`PUT` only; `false` on `GET`).
    pub created: bool,
    /// `true` when this request changed a stored account (`PUT` only).
    pub updated: bool,
    /// The account's folders, in name order (the default special-use ones at least).
    pub folders: Vec<String>,
    /// Messages stored, all folders.
    pub messages: u64,
    /// Octets stored (sum of RFC822.SIZE), all folders.
    pub bytes: u64,
    /// The limits stored from `spec.quota`; omitted when it sets none.
    #[serde(default, skip_serializing_if = "QuotaLimits::is_empty")]
    pub quota: QuotaLimits,
}

/// The limits of a Mailbox's `spec.quota` as numbers, as [`AccountState`] reports them. An
/// absent field means no limit. Enforced by the dataplane's store (docs/quota.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaLimits {
    /// Storage limit, octets (`spec.quota.storage` read as a quantity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<u64>,
    /// Message limit (`spec.quota.messages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
}

impl QuotaLimits {
    /// Whether neither limit is set.
    pub fn is_empty(&self) -> bool {
        self.storage.is_none() && self.messages.is_none()
    }
}

/// The answer to `DELETE {ADMIN_PATH}/{address}?retention=Retain|Delete`.
///
/// Idempotent: deleting an address that holds no account answers `existed: false`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOutcome {
    /// Login name and primary address, lower-case.
    pub address: String,
    /// Whether an account existed.
    pub existed: bool,
    /// The retention applied: `Retain` disabled login and kept the folders and messages (a
    /// later `PUT` of the same address finds them again); `Delete` removed them.
    pub retention: Retention,
}

/// The answer to `GET {PIPELINES_PATH}`: what the dataplane loaded from its `pipelines`
/// file, so the operator can tell when every dataplane runs a Pipeline's compiled revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelinesState {
    /// The Pipelines in force, in file order.
    pub pipelines: Vec<LoadedPipeline>,
    /// Why the last change of the file was refused (the previous pipelines stay in force);
    /// absent when the file in force is the newest one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One Pipeline in force in a dataplane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadedPipeline {
    /// The Pipeline's namespace.
    pub namespace: String,
    /// The Pipeline's name.
    pub name: String,
    /// Its [`crate::pipeline::PipelineSpec::revision`].
    pub revision: String,
    /// The steps this dataplane skips because the PluginDeployment they call is suspended
    /// (`spec.suspend`), in step order; omitted when none is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_steps: Vec<String>,
}

/// The answer to `GET {PLUGINS_PATH}`: the dataplane's connection to each PluginDeployment
/// it knows (from its `pipelines` file, or the standalone resource directory), so the
/// operator can report readiness and the negotiated protocol version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginsState {
    /// One entry per PluginDeployment, ordered by namespace then name.
    pub plugins: Vec<PluginState>,
}

/// One external plugin as a dataplane sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginState {
    /// The PluginDeployment's namespace.
    pub namespace: String,
    /// The PluginDeployment's name.
    pub name: String,
    /// Where the dataplane connects: `tcp://127.0.0.1:50051`, `unix:///path.sock` or
    /// `https://mcp-plugin-x.ns.svc:50051`.
    pub endpoint: String,
    /// The connection's state.
    pub phase: PluginPhase,
    /// The protocol version agreed at `Initialize`; absent before it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiated_version: Option<i32>,
    /// The plugin's own name and version from `Initialize` (`classifier 1.2.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// Why the last connection attempt or call failed; absent when serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Standalone mode: times the supervised process was restarted. 0 in Kubernetes.
    #[serde(default)]
    pub restarts: u32,
}

/// Where a dataplane's connection to a plugin stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PluginPhase {
    /// Not yet connected, or reconnecting with backoff.
    Connecting,
    /// Initialized and reporting `SERVING` on `grpc.health.v1`: calls go through.
    Serving,
    /// Connected but not `SERVING` (or `Initialize` refused): calls fail at once and the
    /// step's `onError` applies.
    NotServing,
    /// Too many consecutive failures: calls fail at once until the breaker's next probe.
    CircuitOpen,
    /// `spec.suspend` is `true`: not connected (standalone: its process is not running), and
    /// the steps that call it are skipped.
    Suspended,
}

/// A message the pipeline held in quarantine, as `GET {QUARANTINE_PATH}` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuarantineEntry {
    /// Opaque id: 44 lower-case hex digits, ordered by creation time.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// Primary address of the recipient account; absent once that account was deleted
    /// (the message can then only be fetched or deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    /// The address the message was sent to (an alias, maybe), lower-case.
    pub recipient: String,
    /// The envelope sender (`MAIL FROM`); empty for `<>` and for IMAP APPEND.
    pub mail_from: String,
    /// The stage whose pipeline held the message.
    pub stage: Stage,
    /// The folder the message was headed for; release puts it there (or in `INBOX` if the
    /// folder no longer exists).
    pub folder: String,
    /// Why it was held.
    pub reason: String,
    /// The Pipeline, `namespace/name`.
    pub pipeline: String,
    /// The step that held it.
    pub step: String,
    /// The Pipeline's compiled revision.
    pub revision: String,
    /// Size of the original message, octets.
    pub size: u64,
    /// IMAP flags it gets when released.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// INTERNALDATE it gets when released, RFC 3339.
    pub internal_date: String,
    /// When it was held, RFC 3339 UTC with milliseconds.
    pub created_at: String,
}

/// The answer to `GET {QUARANTINE_PATH}`: one page, ascending by id (creation order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuarantineList {
    /// The entries.
    pub items: Vec<QuarantineEntry>,
    /// The `after` value of the next page; present when this page is full (the next one
    /// may then be empty), absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The answer to `POST {QUARANTINE_PATH}/{id}/release`: where the message went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseOutcome {
    /// The released message's former quarantine id.
    pub id: String,
    /// Primary address of the account it went to.
    pub mailbox: String,
    /// The folder it went to.
    pub folder: String,
    /// UIDVALIDITY of that folder (RFC 9051 §2.3.1.1).
    pub uid_validity: u32,
    /// The message's UID there.
    pub uid: u32,
}

/// An RFC 9457 problem document, the body of every admin API error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI naming the problem type; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short, fixed summary of the type, e.g. `Bad Request`.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, naming the field at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
