//! The command line of `mcp-cli` (clap derive); docs/cli.md shows every command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::Format;

/// mcp-cli: manage MCP through its REST API (/api/v1).
///
/// Log in once (`mcp-cli login --server URL --api-key-stdin`); the server and credentials
/// are then read from the config file ($MCP_CLI_CONFIG, else
/// $XDG_CONFIG_HOME/mcp/config.yaml). Exit codes: 0 success, 1 server, validation or
/// network error, 2 usage error.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-cli",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Base URL of the server (http://127.0.0.1:8080); overrides the context's.
    #[arg(long, global = true, env = "MCP_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// API key to send as X-API-Key; overrides the context's. Prefer MCP_API_KEY or
    /// `login --api-key-stdin`: a command line is visible to other users.
    #[arg(
        long,
        global = true,
        env = "MCP_API_KEY",
        hide_env_values = true,
        conflicts_with = "token",
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// OIDC bearer token (a JWT) to send as Authorization: Bearer; overrides the context's.
    #[arg(
        long,
        global = true,
        env = "MCP_TOKEN",
        hide_env_values = true,
        value_name = "JWT"
    )]
    pub token: Option<String>,
    /// PEM file of CA certificates to trust for an https server, besides the platform's
    /// (a private CA); `login` saves it in the context.
    #[arg(long, global = true, env = "MCP_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// The context of the config file to use (default: its current-context); `login`
    /// saves to it (default name: "default").
    #[arg(long, global = true, env = "MCP_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,
    /// Tenant of tenant-scoped commands (default: the context's tenant).
    #[arg(
        short = 't',
        long,
        global = true,
        env = "MCP_TENANT",
        value_name = "TENANT"
    )]
    pub tenant: Option<String>,
    /// Output format (list and get: table; writes: one `type/name outcome` line each).
    #[arg(short = 'o', long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<Format>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check credentials against a server and save them as a context of the config file.
    Login(LoginArgs),
    /// Remove a context (default: the current one) and its credentials from the config file.
    Logout,
    /// List the contexts of the config file (the current one marked `*`; keys masked).
    Contexts,
    /// Make a context of the config file the current one.
    UseContext {
        /// The context's name.
        name: String,
    },
    /// Tenants (cluster-wide).
    #[command(subcommand, visible_alias = "tenant")]
    Tenants(TenantsCmd),
    /// Mailboxes of a tenant.
    #[command(subcommand, visible_aliases = ["mailbox", "mb"])]
    Mailboxes(MailboxesCmd),
    /// Pipelines of a tenant.
    #[command(subcommand, visible_alias = "pipeline")]
    Pipelines(FileResourceCmd),
    /// Built-in plugins and PluginDeployments of a tenant.
    #[command(subcommand, visible_alias = "plugin")]
    Plugins(PluginsCmd),
    /// DLP policies of a tenant.
    #[command(subcommand, visible_alias = "policy")]
    Policies(FileResourceCmd),
    /// API keys.
    #[command(subcommand, name = "apikeys", visible_alias = "apikey")]
    ApiKeys(ApiKeysCmd),
    /// Held messages of a tenant.
    #[command(subcommand)]
    Quarantine(QuarantineCmd),
    /// MigrationJobs of a tenant.
    #[command(subcommand, name = "migrationjobs", visible_alias = "migrationjob")]
    MigrationJobs(FileResourceCmd),
    /// Create or update the resources of YAML/JSON files, like `kubectl apply -f`.
    Apply(ApplyArgs),
    /// Delete the resources of YAML/JSON files, like `kubectl delete -f`.
    Delete(DeleteArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Read the API key from standard input (one line) instead of --api-key.
    #[arg(long, conflicts_with_all = ["api_key", "token"])]
    pub api_key_stdin: bool,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Label selector (`a=b,c!=d,e,!f`).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
}

/// An object's name.
#[derive(Debug, Args)]
pub struct NameArg {
    /// Its name.
    pub name: String,
}

/// `create -f`.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// The object, a YAML or JSON file (`-`: standard input).
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: PathBuf,
    /// Validate on the server only, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Commands of a collection whose objects are created from files only.
#[derive(Debug, Subcommand)]
pub enum FileResourceCmd {
    /// List.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show one.
    Get(NameArg),
    /// Create one from a file.
    Create(FileArgs),
    /// Delete one.
    #[command(visible_alias = "rm")]
    Delete(NameArg),
}

/// `tenants`.
#[derive(Debug, Subcommand)]
pub enum TenantsCmd {
    /// List the Tenants.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show one Tenant.
    Get(NameArg),
    /// Create a Tenant: `tenants create acme --domain acme.example`, or `-f FILE`.
    Create(TenantCreate),
    /// Delete a Tenant (its resources first).
    #[command(visible_alias = "rm")]
    Delete(NameArg),
}

/// `tenants create`.
#[derive(Debug, Args)]
pub struct TenantCreate {
    /// The Tenant's name (a DNS label).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub name: Option<String>,
    /// A mail domain of the tenant (repeat for more).
    #[arg(
        long = "domain",
        value_name = "DOMAIN",
        required_unless_present = "file"
    )]
    pub domains: Vec<String>,
    /// Its Kubernetes namespace (default: mcp-<name>).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Create from a YAML or JSON file instead (`-`: standard input).
    #[arg(short = 'f', long, value_name = "FILE", conflicts_with_all = ["domains", "namespace"])]
    pub file: Option<PathBuf>,
    /// Validate on the server only, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `mailboxes`.
#[derive(Debug, Subcommand)]
pub enum MailboxesCmd {
    /// List the tenant's Mailboxes.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show one Mailbox.
    Get(NameArg),
    /// Create a Mailbox: `mailboxes create alice@example.com --password-stdin`, or `-f`.
    Create(MailboxCreate),
    /// Delete a Mailbox.
    #[command(visible_alias = "rm")]
    Delete(NameArg),
    /// Create or update many Mailboxes from a CSV or JSON file, with a progress bar.
    Import(ImportArgs),
}

/// `mailboxes create`.
#[derive(Debug, Args)]
pub struct MailboxCreate {
    /// The primary address (alice@example.com).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub address: Option<String>,
    /// The Mailbox's name (default: from the address, alice@example.com ->
    /// alice.example.com).
    #[arg(long)]
    pub name: Option<String>,
    /// Display name.
    #[arg(long)]
    pub display_name: Option<String>,
    /// Another address delivered to it (repeat for more).
    #[arg(long = "alias", value_name = "ADDRESS")]
    pub aliases: Vec<String>,
    /// Storage quota, a Kubernetes quantity (1G, 512Mi).
    #[arg(long, value_name = "QUANTITY")]
    pub quota: Option<String>,
    /// Most messages it may hold.
    #[arg(long, value_name = "COUNT")]
    pub quota_messages: Option<u64>,
    /// Active or Suspended.
    #[arg(long)]
    pub state: Option<String>,
    /// Read the password from standard input (the first line).
    #[arg(long, conflicts_with = "password_file")]
    pub password_stdin: bool,
    /// Read the password from a file (its first line).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Create from a YAML or JSON file instead (`-`: standard input).
    #[arg(short = 'f', long, value_name = "FILE", conflicts_with_all = ["name", "display_name", "aliases", "quota", "quota_messages", "state"])]
    pub file: Option<PathBuf>,
    /// Validate on the server only, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The format of an import file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// A header row naming the columns, then one Mailbox per row.
    Csv,
    /// An array of `{name?, labels?, spec, password?}`.
    Json,
}

/// `mailboxes import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file (`.csv` or `.json`; `-`: standard input, with --format).
    pub file: PathBuf,
    /// The format (default: from the file's extension).
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// Check every row on the server, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rows per request (the server takes at most 10000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub chunk_size: u16,
}

/// `plugins`.
#[derive(Debug, Subcommand)]
pub enum PluginsCmd {
    /// List the built-in plugins and the tenant's PluginDeployments.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show one PluginDeployment.
    Get(NameArg),
    /// Create a PluginDeployment from a file.
    Create(FileArgs),
    /// Delete a PluginDeployment.
    #[command(visible_alias = "rm")]
    Delete(NameArg),
    /// Start a suspended PluginDeployment.
    Enable(NameArg),
    /// Stop a PluginDeployment without deleting it (its Pipeline steps are skipped).
    Disable(NameArg),
}

/// A role of an API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Everything.
    Admin,
    /// One tenant's resources (with --tenant).
    TenantAdmin,
    /// Read-only.
    Viewer,
}

/// `apikeys`.
#[derive(Debug, Subcommand)]
pub enum ApiKeysCmd {
    /// List the API keys you may see.
    #[command(visible_alias = "ls")]
    List,
    /// Show one key (by id or name).
    Get(NameArg),
    /// Create a key; the whole key is printed once.
    Create(ApiKeyCreate),
    /// Delete a key (by id or name).
    #[command(visible_alias = "rm")]
    Delete(NameArg),
}

/// `apikeys create`.
#[derive(Debug, Args)]
pub struct ApiKeyCreate {
    /// Unique name (A-Z a-z 0-9 . _ -).
    #[arg(long)]
    pub name: String,
    /// Role; tenant-admin keys belong to --tenant.
    #[arg(long, value_enum)]
    pub role: Role,
    /// Expiry, RFC 3339 (2030-01-31T12:00:00Z); default never.
    #[arg(long, value_name = "TIME")]
    pub expires_at: Option<String>,
}

/// A quarantine entry's id.
#[derive(Debug, Args)]
pub struct IdArg {
    /// The entry's id (from `quarantine list`).
    pub id: String,
}

/// `quarantine`.
#[derive(Debug, Subcommand)]
pub enum QuarantineCmd {
    /// List held messages, oldest first.
    #[command(visible_alias = "ls")]
    List {
        /// Only those for this address.
        #[arg(long, value_name = "ADDRESS")]
        mailbox: Option<String>,
    },
    /// Show one held message's metadata.
    Get(IdArg),
    /// Deliver a held message to its mailbox.
    Release(IdArg),
    /// Drop a held message.
    #[command(visible_alias = "rm")]
    Delete(IdArg),
}

/// Where `apply` and `delete` read their objects.
#[derive(Debug, Args)]
pub struct Sources {
    /// A YAML (multi-document) or JSON file, a directory (its *.yaml, *.yml and *.json, by
    /// name), or `-` for standard input; repeat for more.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR|-",
        required = true
    )]
    pub files: Vec<PathBuf>,
    /// Descend into subdirectories.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

/// `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The objects.
    #[command(flatten)]
    pub sources: Sources,
    /// Validate each object on the server (?dryRun=true), write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `delete -f`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The objects.
    #[command(flatten)]
    pub sources: Sources,
    /// Say what would be deleted, delete nothing (the server has no dry-run delete: this
    /// only checks that each object exists).
    #[arg(long)]
    pub dry_run: bool,
    /// An object that does not exist is not an error.
    #[arg(long)]
    pub ignore_not_found: bool,
}
