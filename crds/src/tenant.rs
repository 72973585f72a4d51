//! The `Tenant` kind: a cluster-scoped customer of the platform (DESIGN.md §2).

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::quota::{Quota, Usage};
use crate::reference::{SecretKeyRef, SecretRef};

/// A tenant: its mail domains, quotas, authentication providers and dataplane settings.
///
/// Cluster-scoped. The operator gives each tenant one namespace, where its `Mailbox`es,
/// `Pipeline`s, `PluginDeployment`s and `MigrationJob`s live. In standalone mode the
/// tenant's namespace is only a label on its mailboxes.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mcp.dev",
    version = "v1alpha1",
    kind = "Tenant",
    plural = "tenants",
    shortname = "mcpt",
    category = "mcp",
    status = "TenantStatus",
    derive = "PartialEq",
    doc = "A customer of the platform: mail domains, quotas, authentication providers and dataplane settings. Cluster-scoped; owns one namespace for its Mailboxes, Pipelines, PluginDeployments and MigrationJobs.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Domains","type":"string","jsonPath":".spec.domains"}"#,
    printcolumn = r#"{"name":"Namespace","type":"string","jsonPath":".status.namespace"}"#,
    printcolumn = r#"{"name":"Mailboxes","type":"integer","jsonPath":".status.mailboxes"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// Mail domains this tenant receives mail for: lower-case DNS names (`example.com`), at
    /// least one, each listed once. Every Mailbox address and alias of the tenant must be in
    /// one of them. Removing a domain that Mailboxes still use makes those Mailboxes not Ready.
    #[schemars(
        length(min = 1, max = 100),
        inner(
            length(min = 1, max = 253),
            regex(
                pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
            )
        )
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub domains: Vec<String>,
    /// Namespace holding the tenant's Mailboxes and other namespaced resources. Default
    /// `mcp-<tenant name>`; the operator creates it. Immutable once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf").message("namespace is immutable"))]
    pub namespace: Option<String>,
    /// Tenant-wide limits: total storage, delivery rate and REST API rate, and the default
    /// quota of each mailbox. Absent means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<TenantQuota>,
    /// How users of this tenant authenticate. Absent means password authentication only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
    /// The dataplane (IMAP/LMTP servers) the operator runs for this tenant. Absent means one
    /// replica with embedded storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataplane: Option<DataplaneSpec>,
}

/// Limits of a whole tenant. An absent field means "no limit".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantQuota {
    /// Total storage of all mailboxes of the tenant, a quantity in bytes (`100Gi`), counted
    /// as the sum of RFC822.SIZE over all their messages. A message that would take the total
    /// over it is refused in every mailbox of the tenant, as for a mailbox's own
    /// `quota.storage`; IMAP GETQUOTAROOT shows it as the quota root `Tenant quota`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Quantity>,
    /// Messages the tenant may receive per UTC day (LMTP deliveries plus IMAP APPENDs, one per
    /// recipient). Beyond it, delivery is answered with a temporary failure (LMTP 452) until
    /// the next day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub messages_per_day: Option<i64>,
    /// Rate limit of the REST API for this tenant's callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_rate: Option<ApiRate>,
    /// Default quota of each mailbox; a Mailbox's `spec.quota` overrides it field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox_default: Option<Quota>,
}

/// A token-bucket rate limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiRate {
    /// Sustained requests per second. Requests beyond it are answered with HTTP 429.
    #[schemars(range(min = 1, max = 100000))]
    pub requests_per_second: i32,
    /// Requests allowed in a burst above the sustained rate. Default: equal to
    /// `requestsPerSecond`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub burst: Option<i32>,
}

/// The authentication providers of a tenant. Several may be enabled at once; a login is
/// tried against each enabled one in the order password, OIDC, LDAP.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.password) || self.password.enabled || has(self.oidc) || has(self.ldap)").message("at least one authentication provider must be enabled: password is disabled and neither oidc nor ldap is set"))]
pub struct AuthSpec {
    /// Passwords from the Secrets that Mailboxes reference (`spec.credentials.secretRef`),
    /// stored as argon2id hashes. Absent means enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordAuth>,
    /// OpenID Connect: IMAP `AUTHENTICATE OAUTHBEARER` / `XOAUTH2` with access tokens of this
    /// issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcAuth>,
    /// LDAP simple bind against a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapAuth>,
}

/// Password authentication.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordAuth {
    /// Whether Mailbox passwords are accepted. Default `true`. Turning it off makes
    /// `LOGIN` and `AUTHENTICATE PLAIN` fail for every mailbox of the tenant.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for PasswordAuth {
    fn default() -> Self {
        Self { enabled: true }
    }
}

fn yes() -> bool {
    true
}

/// OpenID Connect token validation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcAuth {
    /// Issuer URL, `https://...`, exactly as in the tokens' `iss` claim. Its discovery
    /// document (`/.well-known/openid-configuration`) gives the signing keys.
    #[schemars(length(min = 9, max = 2048), regex(pattern = r"^https://"))]
    pub issuer: String,
    /// Accepted `aud` values; a token must carry at least one. At least one entry.
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 256)))]
    pub audiences: Vec<String>,
    /// The claim that holds the mailbox address the token logs in as. Default `email`.
    #[serde(default = "default_username_claim")]
    #[schemars(length(min = 1, max = 256))]
    pub username_claim: String,
}

fn default_username_claim() -> String {
    "email".to_owned()
}

/// LDAP bind authentication.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.bindDn) == has(self.bindPasswordSecretRef)").message("bindDn and bindPasswordSecretRef must be set together"))]
#[x_kube(validation = Rule::new("!self.startTls || self.url.startsWith('ldap://')").message("startTls applies to ldap:// URLs only; ldaps:// is already encrypted"))]
pub struct LdapAuth {
    /// Directory URL, `ldaps://host:636` or `ldap://host:389`.
    #[schemars(length(min = 8, max = 2048), regex(pattern = r"^ldaps?://"))]
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding. Default `false`.
    #[serde(default)]
    pub start_tls: bool,
    /// DN of the service account that searches for users. Absent means anonymous search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub bind_dn: Option<String>,
    /// The service account's password, in a Secret of the tenant's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_secret_ref: Option<SecretKeyRef>,
    /// Base DN under which users are searched (`ou=people,dc=example,dc=com`).
    #[schemars(length(min = 1, max = 1024))]
    pub user_search_base: String,
    /// Search filter; `{address}` is replaced by the escaped login address. Default
    /// `(mail={address})`.
    #[serde(default = "default_user_filter")]
    #[schemars(length(min = 1, max = 1024))]
    pub user_filter: String,
}

fn default_user_filter() -> String {
    "(mail={address})".to_owned()
}

/// The dataplane workload of a tenant.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.replicas <= 1 || (has(self.storage) && self.storage.backend == 'Postgres')").message("more than one replica needs storage.backend Postgres: embedded storage (SQLite and a local directory) has a single writer"))]
pub struct DataplaneSpec {
    /// Number of dataplane pods. Default 1. More than one needs `storage.backend: Postgres`.
    /// Changing it scales the Deployment; sessions on removed pods are closed and clients
    /// reconnect.
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,
    /// Where metadata and message bodies are stored. Absent means `Embedded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Certificate for IMAPS, STARTTLS and LMTP STARTTLS. Absent means the operator issues a
    /// self-signed certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// CPU and memory of each dataplane container. Changing it rolls the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

fn one() -> i32 {
    1
}

/// Storage of a tenant's mail.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.backend != 'Postgres' || (has(self.postgres) && has(self.s3))").message("backend Postgres requires both postgres.secretRef and s3.secretRef"))]
#[x_kube(validation = Rule::new("self.backend != 'Embedded' || (!has(self.postgres) && !has(self.s3))").message("postgres and s3 are only allowed with backend Postgres"))]
#[x_kube(validation = Rule::new("self.backend == oldSelf.backend").message("backend is immutable: migrate the data to a new tenant instead"))]
pub struct StorageSpec {
    /// `Embedded` (default): SQLite and a local blob directory on one PersistentVolume;
    /// single replica. `Postgres`: PostgreSQL for metadata and S3 for message bodies;
    /// horizontally scalable. Immutable.
    #[serde(default)]
    pub backend: StorageBackend,
    /// Size and class of the PersistentVolume for `Embedded` storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<EmbeddedStorage>,
    /// PostgreSQL connection for `Postgres` storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresStorage>,
    /// S3 bucket for message bodies with `Postgres` storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Storage>,
}

/// Storage backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StorageBackend {
    /// SQLite metadata and local blob directory, one replica.
    #[default]
    Embedded,
    /// PostgreSQL metadata and S3 bodies, any number of replicas.
    Postgres,
}

/// The PersistentVolumeClaim of embedded storage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedStorage {
    /// Requested volume size (`10Gi`). Default `10Gi`. Can grow if the StorageClass allows
    /// expansion; shrinking is refused by Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// StorageClass of the claim. Absent means the cluster default. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
}

/// PostgreSQL for metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresStorage {
    /// Secret in the tenant's namespace with key `uri`:
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=verify-full`. Changing the
    /// Secret's content rolls the dataplane pods.
    pub secret_ref: SecretRef,
}

/// S3-compatible object storage for message bodies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Storage {
    /// Bucket name. It must exist; MCP does not create it.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// Object key prefix inside the bucket, so several tenants can share one. Default: the
    /// tenant name followed by `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub prefix: Option<String>,
    /// Endpoint URL for non-AWS servers (`https://minio.storage:9000`). Absent means AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 2048), regex(pattern = r"^https?://"))]
    pub endpoint: Option<String>,
    /// Region. Default `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
    /// Address buckets as `endpoint/bucket` rather than `bucket.endpoint`; most non-AWS
    /// servers need it. Default `false`.
    #[serde(default)]
    pub force_path_style: bool,
    /// Secret in the tenant's namespace with keys `accessKeyId` and `secretAccessKey`.
    pub secret_ref: SecretRef,
}

/// TLS certificate of the dataplane.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// A `kubernetes.io/tls` Secret in the tenant's namespace (keys `tls.crt`, `tls.key`),
    /// e.g. issued by cert-manager. A renewed certificate is picked up without a restart.
    pub secret_ref: SecretRef,
}

/// What the platform observed about a Tenant.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// The `.metadata.generation` the operator last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The namespace the operator created for the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Number of Mailboxes in the tenant's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailboxes: Option<i32>,
    /// Storage and messages used by all mailboxes of the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Conditions, a list-map keyed on `type`; `Ready` first. `Ready` is `True` when the
    /// namespace exists and the dataplane serves.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
