//! The `MigrationJob` kind: copies mailboxes from another IMAP server, then keeps them in
//! sync until cutover (DESIGN.md §2).

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::duration::Duration;
use crate::reference::SecretRef;

/// A migration from a source IMAP server into Mailboxes of this namespace: a full copy,
/// then delta syncs until cutover.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mcp.dev",
    version = "v1alpha1",
    kind = "MigrationJob",
    plural = "migrationjobs",
    shortname = "mcpmj",
    category = "mcp",
    namespaced,
    status = "MigrationJobStatus",
    derive = "PartialEq",
    doc = "A migration of mailboxes from another IMAP server into this tenant: full sync, periodic delta syncs, then cutover.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.source.host"}"#,
    printcolumn = r#"{"name":"Copied","type":"integer","jsonPath":".status.counters.messagesCopied"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MigrationJobSpec {
    /// The server to copy from. Immutable: start a new MigrationJob for another source.
    #[x_kube(validation = Rule::new("self == oldSelf").message("source is immutable"))]
    pub source: MigrationSource,
    /// Which source logins go to which Mailboxes: 1 to 10000 entries, each source login
    /// once. Entries may be added while the job runs; they start with a full sync.
    #[schemars(length(min = 1, max = 10000))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["source".into()]))]
    pub users: Vec<UserMapping>,
    /// Folder renames applied to every user (`INBOX.Sent` → `Sent`). Unlisted folders keep
    /// their names (hierarchy separator converted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["source".into()]))]
    pub folders: Vec<FolderMapping>,
    /// Source folders not copied (exact names, e.g. `Junk`, `[Gmail]/All Mail`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 1024)))]
    pub exclude_folders: Vec<String>,
    /// Scheduling, rate limits, dry run and cutover.
    #[serde(default)]
    pub options: MigrationOptions,
}

/// The source IMAP server.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.tls != 'None' || self.allowPlaintext").message("tls None sends credentials in clear text; set allowPlaintext: true to confirm"))]
#[x_kube(validation = Rule::new("!has(self.adminUser) || self.mechanism == 'PLAIN'").message("adminUser (proxy authentication) needs mechanism PLAIN, which carries an authorization identity"))]
pub struct MigrationSource {
    /// Host name or IP address of the source server.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// TCP port. Default 993 (implicit TLS); use 143 with `tls: StartTLS` or `None`.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// `Implicit` (default): TLS from the first byte. `StartTLS`: plain connection upgraded
    /// with STARTTLS (refused if the server does not offer it). `None`: no TLS; needs
    /// `allowPlaintext`.
    #[serde(default)]
    pub tls: SourceTls,
    /// Confirms that `tls: None` is intended. Default `false`.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// A Secret with `ca.crt` (PEM) to verify the source's certificate. Absent means the
    /// system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretRef>,
    /// SASL mechanism used to log in: `PLAIN` (default), `LOGIN`, `XOAUTH2` or
    /// `OAUTHBEARER`.
    #[serde(default)]
    pub mechanism: SaslMechanism,
    /// Secret with the source credentials. Without `adminUser`: one key per source login,
    /// its value that user's password (or OAuth token). With `adminUser`: key `password`,
    /// the admin's password. Read at the start of every sync.
    pub credentials_secret_ref: SecretRef,
    /// A source administrator (Dovecot master user, Cyrus admin) that logs in on behalf of
    /// every user through PLAIN's authorization identity, so per-user passwords are not
    /// needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 254))]
    pub admin_user: Option<String>,
}

fn default_port() -> i32 {
    993
}

/// TLS on the connection to the source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SourceTls {
    /// TLS from the first byte (IMAPS).
    #[default]
    Implicit,
    /// STARTTLS upgrade.
    #[serde(rename = "StartTLS")]
    StartTls,
    /// No TLS.
    None,
}

/// SASL mechanisms for the source login.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum SaslMechanism {
    /// RFC 4616.
    #[default]
    Plain,
    /// The IMAP LOGIN command.
    Login,
    /// Google/Microsoft XOAUTH2 with a bearer token.
    Xoauth2,
    /// RFC 7628 OAUTHBEARER.
    Oauthbearer,
}

/// One source login and the Mailbox it is copied into.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserMapping {
    /// Login name at the source.
    #[schemars(length(min = 1, max = 254))]
    pub source: String,
    /// Address of the target Mailbox in this namespace; it must exist.
    #[schemars(length(min = 3, max = 254))]
    pub target: String,
}

/// A folder rename.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FolderMapping {
    /// Folder name at the source, as it lists it (`INBOX.Sent`).
    #[schemars(length(min = 1, max = 1024))]
    pub source: String,
    /// Folder name in MCP (`Sent`), `/`-separated.
    #[schemars(length(min = 1, max = 1024))]
    pub target: String,
}

/// How the migration runs.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(self.cutover && self.dryRun)").message("cutover cannot be requested in a dry run"))]
pub struct MigrationOptions {
    /// Pause between delta syncs after the full sync (`5m`, default). Shorter intervals
    /// shrink the final delta at cutover and load the source more.
    #[serde(default = "default_delta_interval")]
    pub delta_interval: Duration,
    /// Parallel source connections across all users. Default 4.
    #[serde(default = "default_connections")]
    #[schemars(range(min = 1, max = 64))]
    pub max_connections: i32,
    /// Messages fetched per second across all connections. Absent means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub max_messages_per_second: Option<i32>,
    /// Bytes fetched per second across all connections (`10Mi`). Absent means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes_per_second: Option<Quantity>,
    /// List and count what would be copied without writing anything. Default `false`.
    #[serde(default)]
    pub dry_run: bool,
    /// Request cutover: after the next delta sync the job stops syncing and completes
    /// (phase `Completed`); point MX and clients at MCP before setting it. The job reports
    /// `CutoverReady` when the last delta was small enough for a quick cutover. Once set it
    /// cannot be unset. Default `false`.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self || !oldSelf").message("cutover cannot be withdrawn once requested"))]
    pub cutover: bool,
}

impl Default for MigrationOptions {
    fn default() -> Self {
        Self {
            delta_interval: default_delta_interval(),
            max_connections: default_connections(),
            max_messages_per_second: None,
            max_bytes_per_second: None,
            dry_run: false,
            cutover: false,
        }
    }
}

fn default_delta_interval() -> Duration {
    Duration::from_mins(5)
}

fn default_connections() -> i32 {
    4
}

/// Lifecycle of a migration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MigrationPhase {
    /// Accepted, not started.
    #[default]
    Pending,
    /// Copying everything for the first time.
    FullSync,
    /// Copying changes every `deltaInterval`.
    DeltaSync,
    /// The last delta was small; cutover can be requested.
    CutoverReady,
    /// Cutover done; no more syncs.
    Completed,
    /// Stopped on an error the job cannot recover from (see the `Ready` condition).
    Failed,
}

/// Totals of a migration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationCounters {
    /// Users whose full sync has finished.
    #[serde(default)]
    pub users_synced: i64,
    /// Folders seen at the source (after exclusions).
    #[serde(default)]
    pub folders_total: i64,
    /// Messages copied so far.
    #[serde(default)]
    pub messages_copied: i64,
    /// Messages skipped because they were already present.
    #[serde(default)]
    pub messages_skipped: i64,
    /// Bytes copied so far.
    #[serde(default)]
    pub bytes_copied: i64,
    /// Messages that failed to copy (listed in logs; retried at the next sync).
    #[serde(default)]
    pub errors: i64,
}

/// Progress of one folder of one user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FolderProgress {
    /// Source login.
    pub user: String,
    /// Source folder name.
    pub folder: String,
    /// Source UIDVALIDITY the progress refers to; a change restarts the folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_validity: Option<i64>,
    /// Highest source UID copied.
    #[serde(default)]
    pub last_uid: i64,
    /// Messages in the source folder at the last sync.
    #[serde(default)]
    pub messages_total: i64,
    /// Messages of the folder copied so far.
    #[serde(default)]
    pub messages_copied: i64,
}

/// What the platform observed about a MigrationJob.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationJobStatus {
    /// The `.metadata.generation` last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the migration is in its lifecycle.
    #[serde(default)]
    pub phase: MigrationPhase,
    /// When the last sync (full or delta) finished, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<String>,
    /// Totals over all users and folders.
    #[serde(default)]
    pub counters: MigrationCounters,
    /// Per-folder progress, a list-map keyed on `user` and `folder`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["user".into(), "folder".into()]))]
    pub folders: Vec<FolderProgress>,
    /// Conditions, a list-map keyed on `type`; `Ready` first. `Ready` is `True` while syncs
    /// succeed and after completion.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
