//! The configuration file of `mcp dataplane` ([`DataplaneConfig`], rendered by the operator),
//! read and validated once at start-up.
//!
//! [`Config::load`] reads the file, applies the command-line [`Overrides`] and checks
//! everything it can without touching the network: listen addresses, exactly one store URL
//! and one blob store (`blobDir`, or `s3` with its credentials read from the environment
//! variables it names), the certificate and key files, the admin token. Errors name the file
//! and the field (`config.yaml: imap: "x" is not IP:PORT`), or the flag that overrode it.
//!
//! Paths: every path in the file (`dataDir`, `blobDir`, the path of a `sqlite:` store URL,
//! `tlsCert`, `tlsKey`, `adminTlsCert`, `adminTlsKey`, `adminTokenFile`) resolves against
//! the directory of the configuration file when relative. `--data-dir DIR` replaces
//! `dataDir`, and moves with it every path of the file that lies under the configured
//! `dataDir` (the operator's `sqlite:///var/lib/mcp/meta.sqlite` and `/var/lib/mcp/blobs`
//! become `DIR/meta.sqlite` and `DIR/blobs`); paths elsewhere stay.

use std::path::{Path, PathBuf};

use mcp_crds::dataplane::DataplaneConfig;

use crate::admin::token::{AdminToken, TokenError};
use crate::server::Listen;
use crate::standalone::apply::valid_domain;
use crate::store::{BlobLocation, DEFAULT_CACHE_BYTES, S3Settings};
use crate::tls::TlsSource;

/// Command-line values that replace the file's (`None`: keep the file's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--data-dir`: replaces `dataDir`; paths under the configured `dataDir` move with it.
    /// Relative to the working directory.
    pub data_dir: Option<PathBuf>,
    /// `--imap`: replaces `imap`, `IP:PORT`.
    pub imap: Option<String>,
    /// `--imaps`: replaces `imaps`, `IP:PORT`.
    pub imaps: Option<String>,
    /// `--lmtp`: replaces `lmtp`, `IP:PORT`.
    pub lmtp: Option<String>,
    /// `--metrics`: replaces `metrics`, `IP:PORT`.
    pub metrics: Option<String>,
    /// `--admin`: replaces `admin`, `IP:PORT`.
    pub admin: Option<String>,
    /// `--plugin-service-host`: connect to `mode: service` plugins at this host (an IP
    /// address or a DNS name) instead of their Service's DNS name
    /// `mcp-plugin-<name>.<namespace>.svc`, which resolves only inside the cluster. The
    /// plugin's certificate is still verified against the Service's name. For running the
    /// rendered configuration outside a pod (tests, debugging); the file has no such field.
    pub plugin_service_host: Option<String>,
}

/// A metadata store URL. Its `Debug` shows only the scheme: a PostgreSQL URL carries a
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl(String);

impl StoreUrl {
    /// The URL, for [`crate::store::MetadataStore::connect`]. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.0.split(':').next().unwrap_or("");
        write!(f, "StoreUrl({scheme}:..)")
    }
}

/// A validated configuration of `mcp dataplane`.
#[derive(Clone, Debug)]
pub struct Config {
    /// The configuration file, as given.
    pub file: PathBuf,
    /// The Tenant's name.
    pub tenant: String,
    /// The Tenant's mail domains, lower-case DNS names, at least one.
    pub domains: Vec<String>,
    /// IMAP (STARTTLS) listen address.
    pub imap: Listen,
    /// IMAPS (implicit TLS) listen address.
    pub imaps: Listen,
    /// LMTP listen address.
    pub lmtp: Listen,
    /// Metrics (HTTP) listen address.
    pub metrics: Listen,
    /// Admin API (HTTPS) listen address.
    pub admin: Listen,
    /// Data directory, absolute: lock file, digest key, and with embedded storage the
    /// SQLite file and blobs. Created if missing.
    pub data_dir: PathBuf,
    /// Metadata store URL (`sqlite://` with an absolute path, or `postgres://`).
    pub store_url: StoreUrl,
    /// Where the blobs live: `blobDir` (absolute) or `s3` (with the credentials read from
    /// the environment variables it names).
    pub blobs: BlobLocation,
    /// IMAPS and STARTTLS certificate (`tlsCert`, `tlsKey`).
    pub tls: TlsSource,
    /// Admin API certificate (`adminTlsCert`, `adminTlsKey`).
    pub admin_tls: TlsSource,
    /// The admin API's bearer token (`adminTokenFile`).
    pub admin_token: AdminToken,
    /// The Pipelines file (`pipelines`), absolute; hot-reloaded. A missing file means no
    /// pipeline.
    pub pipelines: Option<PathBuf>,
    /// Directory of the Unix sockets of `unix` sidecar plugins (`pluginSocketDir`), absolute;
    /// default [`mcp_crds::plugin::SIDECAR_SOCKET_DIR`].
    pub plugin_socket_dir: PathBuf,
    /// Directory of the client certificates of `service` plugins (`pluginClientTlsDir`),
    /// absolute; default [`mcp_crds::plugin::CLIENT_TLS_DIR`].
    pub plugin_client_tls_dir: PathBuf,
    /// Where to connect to `service` plugins instead of their Service's DNS name
    /// (`--plugin-service-host`), as a URI host: an IPv6 address is bracketed. `None` in a pod.
    pub plugin_service_host: Option<String>,
    /// The Tenant's storage limit over all its mailboxes (`tenantStorageQuota`), octets;
    /// `None` means none (docs/quota.md).
    pub tenant_storage_quota: Option<u64>,
}

/// Why the configuration cannot be used. Names the file and field, or the flag.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", file.display())]
    Read {
        /// The configuration file.
        file: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// The file is not YAML of the expected shape (unknown field, wrong type, missing
    /// field); `field` is the path of the value at fault, empty for the document itself.
    #[error("{}: {}{message}", file.display(), if field.is_empty() { String::new() } else { format!("{field}: ") })]
    Parse {
        /// The configuration file.
        file: PathBuf,
        /// Path of the value at fault, e.g. `s3.bucket`; empty when it is the document.
        field: String,
        /// The parser's message (names an unknown field and the expected ones).
        message: String,
    },
    /// A field has an unusable value.
    #[error("{}: {field}: {message}", file.display())]
    Invalid {
        /// The configuration file.
        file: PathBuf,
        /// The field's name in the file, e.g. `imap`.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A command-line override has an unusable value.
    #[error("{flag}: {message}")]
    Flag {
        /// The flag, e.g. `--imap`.
        flag: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    /// The field or flag at fault (`imap`, `--admin`, `s3.bucket`); `None` for an
    /// unreadable file.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Parse { field, .. } => Some(field),
            ConfigError::Invalid { field, .. } => Some(field),
            ConfigError::Flag { flag, .. } => Some(flag),
        }
    }
}

/// Collects what is needed to build errors for one file.
struct Checker<'a> {
    file: &'a Path,
    dir: PathBuf,
}

impl Checker<'_> {
    fn invalid(&self, field: &'static str, message: impl Into<String>) -> ConfigError {
        if field.starts_with("--") {
            ConfigError::Flag {
                flag: field,
                message: message.into(),
            }
        } else {
            ConfigError::Invalid {
                file: self.file.to_owned(),
                field,
                message: message.into(),
            }
        }
    }

    /// `value` (or the override) as a listen address, with the field or flag that set it.
    fn listen(
        &self,
        field: &'static str,
        value: &str,
        flag: &'static str,
        flag_value: Option<&str>,
    ) -> Result<Listen, ConfigError> {
        let (field, value) = match flag_value {
            Some(v) => (flag, v),
            None => (field, value),
        };
        let addr = value
            .parse()
            .map_err(|_| self.invalid(field, format!("{value:?} is not IP:PORT")))?;
        Ok(Listen { field, addr })
    }

    /// A non-empty path of the file, absolute (relative ones resolve against the file's
    /// directory).
    fn path(&self, field: &'static str, value: &str) -> Result<PathBuf, ConfigError> {
        if value.is_empty() {
            return Err(self.invalid(field, "must not be empty"));
        }
        Ok(DataplaneConfig::resolve(&self.dir, value))
    }

    /// Like [`Checker::path`], and the file must exist.
    fn file(&self, field: &'static str, value: &str) -> Result<PathBuf, ConfigError> {
        let path = self.path(field, value)?;
        if !path.is_file() {
            return Err(self.invalid(field, format!("{} is not a readable file", path.display())));
        }
        Ok(path)
    }
}

/// `path` moved from under `from` to under `to`, when it lies under `from`.
fn reroot(path: &Path, from: &Path, to: &Path) -> PathBuf {
    match path.strip_prefix(from) {
        Ok(rest) => to.join(rest),
        Err(_) => path.to_owned(),
    }
}

/// The schemes [`crate::store::MetadataStore::connect`] supports.
const STORE_SCHEMES: [&str; 3] = ["sqlite:", "postgres://", "postgresql://"];

/// A `sqlite:` URL split into its path and its `?query` (empty when none), as sqlx reads
/// it; `None` for other schemes and for in-memory databases.
fn sqlite_path(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = match rest.find('?') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    (!path.is_empty() && !path.starts_with(':')).then_some((path, query))
}

impl Config {
    /// Reads `file` and validates it with `overrides`; environment variables named in the
    /// file (`storeUrlEnv`, `s3.accessKeyIdEnv`, `s3.secretAccessKeyEnv`) come from the
    /// process environment.
    ///
    /// # Errors
    /// The first [`ConfigError`], naming the file and field or the flag.
    pub fn load(file: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::load_with_env(file, overrides, |name| std::env::var(name).ok())
    }

    /// Like [`Config::load`], with environment variables looked up through `env`.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_with_env(
        file: &Path,
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        let doc: DataplaneConfig = serde_path_to_error::deserialize(
            yaml_serde::Deserializer::from_str(&text),
        )
        .map_err(|e| {
            let field = e.path().to_string();
            ConfigError::Parse {
                file: file.to_owned(),
                field: if field == "." { String::new() } else { field },
                message: e.into_inner().to_string(),
            }
        })?;
        Self::from_document(&doc, file, overrides, env)
    }

    /// Validates an already parsed document that was read from `file` (relative paths
    /// resolve against its directory).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_document(
        doc: &DataplaneConfig,
        file: &Path,
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let absolute_file = std::path::absolute(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        let dir = absolute_file
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_owned);
        let c = Checker { file, dir };

        if doc.tenant.is_empty() {
            return Err(c.invalid("tenant", "must not be empty"));
        }
        if !valid_domain(&doc.tenant) {
            return Err(c.invalid(
                "tenant",
                format!(
                    "{:?} is not a Tenant name (a lower-case DNS name)",
                    doc.tenant
                ),
            ));
        }
        if doc.domains.is_empty() {
            return Err(c.invalid("domains", "needs at least one domain"));
        }
        if let Some(d) = doc.domains.iter().find(|d| !valid_domain(d)) {
            return Err(c.invalid("domains", format!("{d:?} is not a lower-case DNS name")));
        }

        let o = overrides;
        let imap = c.listen("imap", &doc.imap, "--imap", o.imap.as_deref())?;
        let imaps = c.listen("imaps", &doc.imaps, "--imaps", o.imaps.as_deref())?;
        let lmtp = c.listen("lmtp", &doc.lmtp, "--lmtp", o.lmtp.as_deref())?;
        let metrics = c.listen("metrics", &doc.metrics, "--metrics", o.metrics.as_deref())?;
        let admin = c.listen("admin", &doc.admin, "--admin", o.admin.as_deref())?;
        let served = [imap, imaps, lmtp, metrics, admin];
        for (i, a) in served.iter().enumerate() {
            for b in &served[..i] {
                let (x, y) = (a.addr, b.addr);
                if x.port() != 0
                    && x.port() == y.port()
                    && (x.ip() == y.ip() || x.ip().is_unspecified() || y.ip().is_unspecified())
                {
                    return Err(c.invalid(a.field, format!("{x} collides with {} {y}", b.field)));
                }
            }
        }

        let configured_data_dir = c.path("dataDir", &doc.data_dir)?;
        let data_dir = match &o.data_dir {
            None => configured_data_dir.clone(),
            Some(d) if d.as_os_str().is_empty() => {
                return Err(c.invalid("--data-dir", "must not be empty"));
            }
            Some(d) => std::path::absolute(d)
                .map_err(|e| c.invalid("--data-dir", format!("{}: {e}", d.display())))?,
        };
        let data_field = if o.data_dir.is_some() {
            "--data-dir"
        } else {
            "dataDir"
        };
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(c.invalid(
                data_field,
                format!("{} exists and is not a directory", data_dir.display()),
            ));
        }
        let moved = |p: &Path| reroot(p, &configured_data_dir, &data_dir);

        let store_url = match (&doc.store_url, &doc.store_url_env) {
            (Some(_), Some(_)) => {
                return Err(c.invalid("storeUrl", "set only one of storeUrl and storeUrlEnv"));
            }
            (None, None) => {
                return Err(c.invalid("storeUrl", "one of storeUrl and storeUrlEnv is required"));
            }
            (Some(url), None) => {
                if !STORE_SCHEMES.iter().any(|s| url.starts_with(s)) {
                    return Err(c.invalid(
                        "storeUrl",
                        "must start with sqlite:, postgres:// or postgresql://",
                    ));
                }
                url.clone()
            }
            (None, Some(name)) => {
                if name.is_empty() {
                    return Err(c.invalid("storeUrlEnv", "must not be empty"));
                }
                let url = env(name).ok_or_else(|| {
                    c.invalid(
                        "storeUrlEnv",
                        format!("environment variable {name} is not set"),
                    )
                })?;
                // The URL may hold a password: never quote it.
                if !STORE_SCHEMES.iter().any(|s| url.starts_with(s)) {
                    return Err(c.invalid(
                        "storeUrlEnv",
                        format!(
                            "the URL in {name} must start with sqlite:, postgres:// or postgresql://"
                        ),
                    ));
                }
                url
            }
        };
        let store_url = match sqlite_path(&store_url) {
            Some((path, query)) => {
                let path = moved(&DataplaneConfig::resolve(&c.dir, path));
                format!("sqlite://{}{query}", path.display())
            }
            None => store_url,
        };

        let blobs = match (&doc.blob_dir, &doc.s3) {
            (Some(_), Some(_)) => {
                return Err(c.invalid("blobDir", "set only one of blobDir and s3"));
            }
            (None, None) => return Err(c.invalid("blobDir", "one of blobDir and s3 is required")),
            (None, Some(s3)) => BlobLocation::S3(s3_settings(&c, s3, &env)?),
            (Some(dir), None) => BlobLocation::Dir(moved(&c.path("blobDir", dir)?)),
        };

        let tls = TlsSource::Files {
            cert: c.file("tlsCert", &doc.tls_cert)?,
            key: c.file("tlsKey", &doc.tls_key)?,
        };
        let admin_tls = TlsSource::Files {
            cert: c.file("adminTlsCert", &doc.admin_tls_cert)?,
            key: c.file("adminTlsKey", &doc.admin_tls_key)?,
        };
        let token_file = c.file("adminTokenFile", &doc.admin_token_file)?;
        let admin_token = AdminToken::from_file(&token_file).map_err(|e| {
            let message = match e {
                TokenError::Read { path, source } => {
                    format!("{}: cannot read: {source}", path.display())
                }
                TokenError::Unusable { path, message } => {
                    format!("{}: {message}", path.display())
                }
            };
            c.invalid("adminTokenFile", message)
        })?;

        // May be missing at start (an empty ConfigMap key is not projected): no pipeline.
        let pipelines = doc
            .pipelines
            .as_deref()
            .map(|p| c.path("pipelines", p))
            .transpose()?;

        let plugin_socket_dir = c.path(
            "pluginSocketDir",
            doc.plugin_socket_dir
                .as_deref()
                .unwrap_or(mcp_crds::plugin::SIDECAR_SOCKET_DIR),
        )?;
        let plugin_client_tls_dir = c.path(
            "pluginClientTlsDir",
            doc.plugin_client_tls_dir
                .as_deref()
                .unwrap_or(mcp_crds::plugin::CLIENT_TLS_DIR),
        )?;

        let tenant_storage_quota = doc
            .tenant_storage_quota
            .as_deref()
            .map(crate::quota::quantity_bytes)
            .transpose()
            .map_err(|e| c.invalid("tenantStorageQuota", e))?;

        let plugin_service_host = o
            .plugin_service_host
            .as_deref()
            .map(|h| {
                uri_host(h).ok_or_else(|| {
                    c.invalid(
                        "--plugin-service-host",
                        format!("{h:?} is neither an IP address nor a DNS name"),
                    )
                })
            })
            .transpose()?;

        Ok(Config {
            file: file.to_owned(),
            pipelines,
            plugin_socket_dir,
            plugin_client_tls_dir,
            plugin_service_host,
            tenant_storage_quota,
            tenant: doc.tenant.clone(),
            domains: doc.domains.clone(),
            imap,
            imaps,
            lmtp,
            metrics,
            admin,
            data_dir,
            store_url: StoreUrl(store_url),
            blobs,
            tls,
            admin_tls,
            admin_token,
        })
    }
}

/// The S3 settings of the file's `s3`, with the credentials from the environment variables
/// it names. Errors name the field (`s3.bucket`, `s3.accessKeyIdEnv`, ...) and never quote a
/// credential.
fn s3_settings(
    c: &Checker<'_>,
    s3: &mcp_crds::dataplane::S3Config,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<S3Settings, ConfigError> {
    let credential = |field: &'static str, name: &str| {
        if name.is_empty() {
            return Err(c.invalid(field, "must not be empty"));
        }
        env(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| c.invalid(field, format!("environment variable {name} is not set")))
    };
    let settings = S3Settings {
        bucket: s3.bucket.clone(),
        prefix: s3.prefix.clone(),
        endpoint: s3.endpoint.clone(),
        region: s3.region.clone(),
        force_path_style: s3.force_path_style,
        access_key_id: credential("s3.accessKeyIdEnv", &s3.access_key_id_env)?,
        secret_access_key: credential("s3.secretAccessKeyEnv", &s3.secret_access_key_env)?,
        cache_bytes: s3
            .cache_mib
            .map_or(DEFAULT_CACHE_BYTES, |mib| u64::from(mib) * 1024 * 1024),
    };
    settings.validate().map_err(|e| {
        let field = match e.field.as_str() {
            "bucket" => "s3.bucket",
            "prefix" => "s3.prefix",
            "endpoint" => "s3.endpoint",
            "region" => "s3.region",
            "accessKeyId" => "s3.accessKeyIdEnv",
            "secretAccessKey" => "s3.secretAccessKeyEnv",
            _ => "s3",
        };
        c.invalid(field, e.message)
    })?;
    Ok(settings)
}

/// `host` as the host of an `https://HOST:PORT` URI: an IPv4 address or a DNS name as given,
/// an IPv6 address bracketed; `None` for anything else (a port, a scheme, a path, spaces).
fn uri_host(host: &str) -> Option<String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Some(match ip {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        });
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    (name.len() <= 253 && name.split('.').all(label_ok)).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file the operator renders for an Embedded tenant, with the dataDir below `data`.
    fn operator_file(data: &Path) -> String {
        format!(
            "# Dataplane configuration of Tenant \"acme\", rendered by mcp-operator.\n\
             tenant: acme\n\
             domains: [acme.example, mail.acme.example]\n\
             imap: 0.0.0.0:143\n\
             imaps: 0.0.0.0:993\n\
             lmtp: 0.0.0.0:24\n\
             metrics: 0.0.0.0:9090\n\
             admin: 0.0.0.0:9443\n\
             dataDir: {d}\n\
             storeUrl: sqlite://{d}/meta.sqlite\n\
             blobDir: {d}/blobs\n\
             tlsCert: tls/tls.crt\n\
             tlsKey: tls/tls.key\n\
             adminTlsCert: admin/tls.crt\n\
             adminTlsKey: admin/tls.key\n\
             adminTokenFile: admin/token\n",
            d = data.display()
        )
    }

    /// A configuration directory laid out like the pod's `/etc/mcp`: `config.yaml`, `tls/`
    /// and `admin/` (the certificate files only need to exist for the loader).
    struct Dir {
        tmp: tempfile::TempDir,
    }

    impl Dir {
        fn new() -> Dir {
            let tmp = tempfile::tempdir().expect("tempdir");
            for sub in ["etc/tls", "etc/admin"] {
                std::fs::create_dir_all(tmp.path().join(sub)).expect("mkdir");
            }
            for f in [
                "tls/tls.crt",
                "tls/tls.key",
                "admin/tls.crt",
                "admin/tls.key",
            ] {
                std::fs::write(tmp.path().join("etc").join(f), "PEM").expect("write");
            }
            std::fs::write(
                tmp.path().join("etc/admin/token"),
                "0123456789abcdef0123456789abcdef\n",
            )
            .expect("write");
            Dir { tmp }
        }

        fn etc(&self) -> PathBuf {
            self.tmp.path().join("etc")
        }

        fn data(&self) -> PathBuf {
            self.tmp.path().join("var/lib/mcp")
        }

        fn load_text(&self, text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
            let file = self.etc().join("config.yaml");
            std::fs::write(&file, text).expect("write");
            Config::load_with_env(&file, overrides, |name| match name {
                "MCP_STORE_URL" => Some("postgres://mcp:secret-pw@db:5432/mcp".to_owned()),
                "BAD_STORE_URL" => Some("mysql://mcp:secret-pw@db/mcp".to_owned()),
                _ => None,
            })
        }

        fn load_text_env(
            &self,
            text: &str,
            env: impl Fn(&str) -> Option<String>,
        ) -> Result<Config, ConfigError> {
            let file = self.etc().join("config.yaml");
            std::fs::write(&file, text).expect("write");
            Config::load_with_env(&file, &Overrides::default(), env)
        }

        /// The operator's file with `line` replacing the line that starts with the same
        /// key (or appended when no line does; an empty value after `:` removes the key).
        fn load_edited(&self, line: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
            let text = edit(&operator_file(&self.data()), line);
            self.load_text(&text, overrides)
        }
    }

    fn edit(text: &str, line: &str) -> String {
        let key = line.split(':').next().unwrap_or("");
        let mut found = false;
        let mut out: Vec<String> = Vec::new();
        for l in text.lines() {
            if l.split(':').next() == Some(key) {
                found = true;
                if !line.ends_with(':') {
                    out.push(line.to_owned());
                }
            } else {
                out.push(l.to_owned());
            }
        }
        if !found {
            out.push(line.to_owned());
        }
        out.join("\n") + "\n"
    }

    #[test]
    fn the_operators_file_loads_with_paths_relative_to_its_directory() {
        let d = Dir::new();
        let c = d
            .load_edited("tenant: acme", &Overrides::default())
            .expect("valid");
        assert_eq!(c.tenant, "acme");
        assert_eq!(c.domains, ["acme.example", "mail.acme.example"]);
        assert_eq!(c.imap.addr, "0.0.0.0:143".parse().expect("addr"));
        assert_eq!(c.imap.field, "imap");
        assert_eq!(c.imaps.addr.port(), 993);
        assert_eq!(c.lmtp.addr.port(), 24);
        assert_eq!(c.metrics.addr.port(), 9090);
        assert_eq!(c.admin.addr.port(), 9443);
        assert_eq!(c.data_dir, d.data());
        assert_eq!(
            c.store_url.expose(),
            format!("sqlite://{}/meta.sqlite", d.data().display())
        );
        assert_eq!(c.blobs.dir(), Some(d.data().join("blobs").as_path()));
        let etc = d.etc();
        assert_eq!(
            c.tls,
            TlsSource::Files {
                cert: etc.join("tls/tls.crt"),
                key: etc.join("tls/tls.key")
            }
        );
        assert_eq!(
            c.admin_tls,
            TlsSource::Files {
                cert: etc.join("admin/tls.crt"),
                key: etc.join("admin/tls.key")
            }
        );
        assert!(c.admin_token.matches(b"0123456789abcdef0123456789abcdef"));
    }

    /// The type both sides share, serialised as the operator does, reads back.
    #[test]
    fn a_serialised_dataplane_config_loads() {
        let d = Dir::new();
        let doc = DataplaneConfig {
            tenant: "acme".into(),
            domains: vec!["acme.example".into()],
            imap: "0.0.0.0:143".into(),
            imaps: "0.0.0.0:993".into(),
            lmtp: "0.0.0.0:24".into(),
            metrics: "0.0.0.0:9090".into(),
            admin: "0.0.0.0:9443".into(),
            data_dir: d.data().display().to_string(),
            store_url: None,
            store_url_env: Some("MCP_STORE_URL".into()),
            blob_dir: Some(format!("{}/blobs", d.data().display())),
            s3: None,
            tls_cert: "tls/tls.crt".into(),
            tls_key: "tls/tls.key".into(),
            admin_tls_cert: "admin/tls.crt".into(),
            admin_tls_key: "admin/tls.key".into(),
            admin_token_file: "admin/token".into(),
            pipelines: None,
            plugin_socket_dir: None,
            plugin_client_tls_dir: None,
            tenant_storage_quota: Some("1Gi".into()),
        };
        let text = yaml_serde::to_string(&doc).expect("serialise");
        let c = d.load_text(&text, &Overrides::default()).expect("valid");
        assert_eq!(c.store_url.expose(), "postgres://mcp:secret-pw@db:5432/mcp");
        assert_eq!(c.blobs.dir(), Some(d.data().join("blobs").as_path()));
        assert_eq!(c.tenant_storage_quota, Some(1 << 30));
    }

    #[test]
    fn data_dir_override_moves_the_paths_under_the_configured_data_dir() {
        let d = Dir::new();
        let local = d.tmp.path().join("local");
        let overrides = Overrides {
            data_dir: Some(local.clone()),
            imap: Some("127.0.0.1:1143".into()),
            imaps: Some("127.0.0.1:1993".into()),
            lmtp: Some("127.0.0.1:2424".into()),
            metrics: Some("127.0.0.1:0".into()),
            admin: Some("127.0.0.1:0".into()),
            plugin_service_host: None,
        };
        let c = d.load_edited("tenant: acme", &overrides).expect("valid");
        assert_eq!(c.data_dir, local);
        assert_eq!(
            c.store_url.expose(),
            format!("sqlite://{}/meta.sqlite", local.display())
        );
        assert_eq!(c.blobs.dir(), Some(local.join("blobs").as_path()));
        assert_eq!(c.imap.addr, "127.0.0.1:1143".parse().expect("addr"));
        assert_eq!(c.imap.field, "--imap");
        assert_eq!(c.admin.field, "--admin");
        assert_eq!(c.lmtp.field, "--lmtp");

        // A blob directory elsewhere stays where it is; a relative one resolves against the
        // configuration directory, then moves if it lies under dataDir.
        let c = d
            .load_edited("blobDir: /srv/blobs", &overrides)
            .expect("valid");
        assert_eq!(c.blobs.dir(), Some(Path::new("/srv/blobs")));
        let text = edit(&operator_file(Path::new("data")), "blobDir: data/b");
        let c = d.load_text(&text, &overrides).expect("valid");
        assert_eq!(c.blobs.dir(), Some(local.join("b").as_path()));
        let c = d.load_text(&text, &Overrides::default()).expect("valid");
        assert_eq!(c.data_dir, d.etc().join("data"));
        assert_eq!(
            c.store_url.expose(),
            format!("sqlite://{}/meta.sqlite", d.etc().join("data").display())
        );
    }

    #[test]
    fn store_url_from_the_environment_is_used_and_never_shown() {
        let d = Dir::new();
        let text = edit(&operator_file(&d.data()), "storeUrl:");
        let text = edit(&text, "storeUrlEnv: MCP_STORE_URL");
        let c = d.load_text(&text, &Overrides::default()).expect("valid");
        assert_eq!(c.store_url.expose(), "postgres://mcp:secret-pw@db:5432/mcp");
        assert!(!format!("{c:?}").contains("secret-pw"), "{c:?}");

        for (line, want) in [
            (
                "storeUrlEnv: UNSET_VAR",
                "environment variable UNSET_VAR is not set",
            ),
            (
                "storeUrlEnv: BAD_STORE_URL",
                "the URL in BAD_STORE_URL must start with",
            ),
        ] {
            let e = d
                .load_text(&edit(&text, line), &Overrides::default())
                .expect_err(line);
            assert_eq!(e.field(), Some("storeUrlEnv"), "{e}");
            let e = e.to_string();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("secret-pw"), "{e}");
        }
    }

    #[test]
    fn invalid_fields_are_named_with_the_file() {
        let d = Dir::new();
        let cases: &[(&str, &str, &str)] = &[
            ("tenant: ''", "tenant", "must not be empty"),
            ("tenant: Acme Corp", "tenant", "not a Tenant name"),
            ("domains: []", "domains", "at least one"),
            ("domains: [Acme.Example]", "domains", "lower-case"),
            (
                "tenantStorageQuota: lots",
                "tenantStorageQuota",
                "not a quantity",
            ),
            ("imap: x", "imap", "\"x\" is not IP:PORT"),
            ("imaps: 0.0.0.0:99999", "imaps", "is not IP:PORT"),
            ("lmtp: localhost:24", "lmtp", "is not IP:PORT"),
            ("metrics: 127.0.0.1", "metrics", "is not IP:PORT"),
            ("admin: 0.0.0.0:143", "admin", "collides with imap"),
            ("metrics: 127.0.0.1:993", "metrics", "collides with imaps"),
            ("dataDir: ''", "dataDir", "must not be empty"),
            ("storeUrl:", "storeUrl", "one of storeUrl and storeUrlEnv"),
            ("storeUrlEnv: MCP_STORE_URL", "storeUrl", "only one of"),
            ("storeUrl: mysql://db/mcp", "storeUrl", "must start with"),
            ("blobDir:", "blobDir", "one of blobDir and s3"),
            (
                "s3: {bucket: b, prefix: p/, region: r, forcePathStyle: true, accessKeyIdEnv: A, secretAccessKeyEnv: S}",
                "blobDir",
                "only one of",
            ),
            (
                "tlsCert: tls/missing.crt",
                "tlsCert",
                "is not a readable file",
            ),
            ("tlsKey: ''", "tlsKey", "must not be empty"),
            (
                "adminTlsCert: /nonexistent/tls.crt",
                "adminTlsCert",
                "not a readable file",
            ),
            ("adminTlsKey: admin", "adminTlsKey", "not a readable file"),
            (
                "adminTokenFile: admin/none",
                "adminTokenFile",
                "not a readable file",
            ),
            (
                "adminTokenFile: tls/tls.crt",
                "adminTokenFile",
                "shorter than 16",
            ),
        ];
        for (line, field, message) in cases {
            let e = d.load_edited(line, &Overrides::default()).expect_err(line);
            assert_eq!(e.field(), Some(*field), "{line}: {e}");
            let text = e.to_string();
            assert!(
                text.starts_with(&format!(
                    "{}: {field}: ",
                    d.etc().join("config.yaml").display()
                )),
                "{line}: {text}"
            );
            assert!(text.contains(message), "{line}: {text}");
        }
    }

    /// The operator's `s3` with `blobDir` removed and `extra` fields.
    fn s3_file(d: &Dir, s3: &str) -> String {
        let text = edit(&operator_file(&d.data()), "blobDir:");
        edit(&text, s3)
    }

    #[test]
    fn s3_takes_its_credentials_from_the_named_variables() {
        let d = Dir::new();
        let text = s3_file(
            &d,
            "s3: {bucket: mail-bodies, prefix: acme/, endpoint: 'http://127.0.0.1:9000', region: us-east-1, forcePathStyle: true, accessKeyIdEnv: AWS_ACCESS_KEY_ID, secretAccessKeyEnv: AWS_SECRET_ACCESS_KEY}",
        );
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("s3cr3t".to_owned()),
            _ => None,
        };
        let c = d.load_text_env(&text, env).expect("valid");
        let BlobLocation::S3(s3) = &c.blobs else {
            panic!("not S3: {:?}", c.blobs);
        };
        assert_eq!(s3.bucket, "mail-bodies");
        assert_eq!(s3.prefix, "acme/");
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s3.force_path_style);
        assert_eq!(s3.access_key_id, "AKID");
        assert_eq!(s3.secret_access_key, "s3cr3t");
        assert!(
            !format!("{c:?}").contains("s3cr3t"),
            "Debug shows the secret"
        );
    }

    #[test]
    fn s3_errors_name_the_field_and_never_a_credential() {
        let d = Dir::new();
        let good = "bucket: b1b, prefix: p/, region: r, forcePathStyle: true";
        let env = |name: &str| match name {
            "A" => Some("AKID".to_owned()),
            "S" => Some("s3cr3t".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let cases = [
            (format!("s3: {{{good}, accessKeyIdEnv: MISSING, secretAccessKeyEnv: S}}"), "s3.accessKeyIdEnv", "MISSING is not set"),
            (format!("s3: {{{good}, accessKeyIdEnv: A, secretAccessKeyEnv: EMPTY}}"), "s3.secretAccessKeyEnv", "EMPTY is not set"),
            (format!("s3: {{{good}, accessKeyIdEnv: '', secretAccessKeyEnv: S}}"), "s3.accessKeyIdEnv", "must not be empty"),
            ("s3: {bucket: B, prefix: p/, region: r, forcePathStyle: true, accessKeyIdEnv: A, secretAccessKeyEnv: S}".to_owned(), "s3.bucket", "not a bucket name"),
            ("s3: {bucket: b1b, prefix: p/, region: '', forcePathStyle: true, accessKeyIdEnv: A, secretAccessKeyEnv: S}".to_owned(), "s3.region", "must not be empty"),
            ("s3: {bucket: b1b, prefix: p/, endpoint: 'ftp://x', region: r, forcePathStyle: true, accessKeyIdEnv: A, secretAccessKeyEnv: S}".to_owned(), "s3.endpoint", "http://"),
            ("s3: {bucket: b1b, prefix: /p, region: r, forcePathStyle: true, accessKeyIdEnv: A, secretAccessKeyEnv: S}".to_owned(), "s3.prefix", "must not start"),
        ];
        for (line, field, message) in cases {
            let e = d.load_text_env(&s3_file(&d, &line), env).expect_err(&line);
            assert_eq!(e.field(), Some(field), "{line}: {e}");
            let text = e.to_string();
            assert!(text.contains(message), "{line}: {text}");
            assert!(!text.contains("s3cr3t") && !text.contains("AKID"), "{text}");
        }
    }

    #[test]
    fn unknown_fields_and_wrong_shapes_are_named() {
        let d = Dir::new();
        let cases: &[(&str, &str, &str)] = &[
            ("lmtpPort: 24", "lmtpPort", "unknown field `lmtpPort`"),
            ("domains: acme.example", "domains", "invalid type"),
            ("imap: [1]", "imap", "invalid type"),
            (
                "s3: {bucket: b, prefix: p/, region: r, forcePathStyle: true, accessKeyIdEnv: A, secretAccessKeyEnv: S, acl: x}",
                "s3.acl",
                "unknown field `acl`",
            ),
            ("adminTokenFile:", "", "missing field `adminTokenFile`"),
        ];
        for (line, field, message) in cases {
            let e = d.load_edited(line, &Overrides::default()).expect_err(line);
            assert!(matches!(e, ConfigError::Parse { .. }), "{line}: {e:?}");
            assert_eq!(e.field(), Some(*field), "{line}: {e}");
            assert!(e.to_string().contains(message), "{line}: {e}");
        }
        for text in ["", "- a list\n", "tenant: [\n", "\u{0}"] {
            let e = d.load_text(text, &Overrides::default()).expect_err(text);
            assert!(matches!(e, ConfigError::Parse { .. }), "{text:?}: {e:?}");
        }
        let e = Config::load(&d.etc().join("none.yaml"), &Overrides::default())
            .expect_err("missing file");
        assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
    }

    #[test]
    fn invalid_overrides_name_the_flag() {
        let d = Dir::new();
        let cases: Vec<(Overrides, &str, &str)> = vec![
            (
                Overrides {
                    imap: Some("localhost:143".into()),
                    ..Overrides::default()
                },
                "--imap",
                "is not IP:PORT",
            ),
            (
                Overrides {
                    admin: Some("0.0.0.0:9090".into()),
                    ..Overrides::default()
                },
                "--admin",
                "collides with metrics",
            ),
            (
                Overrides {
                    lmtp: Some("127.0.0.1:x".into()),
                    ..Overrides::default()
                },
                "--lmtp",
                "is not IP:PORT",
            ),
            (
                Overrides {
                    lmtp: Some("0.0.0.0:143".into()),
                    ..Overrides::default()
                },
                "--lmtp",
                "collides with imap",
            ),
            (
                Overrides {
                    data_dir: Some(d.etc().join("admin/token")),
                    ..Overrides::default()
                },
                "--data-dir",
                "is not a directory",
            ),
            (
                Overrides {
                    data_dir: Some(PathBuf::new()),
                    ..Overrides::default()
                },
                "--data-dir",
                "must not be empty",
            ),
        ];
        let cases = cases.into_iter().chain(
            [
                "",
                "127.0.0.1:7000",
                "https://127.0.0.1",
                "host/path",
                "a b",
                "-x.example",
                "[::1]",
            ]
            .map(|h| {
                (
                    Overrides {
                        plugin_service_host: Some(h.into()),
                        ..Overrides::default()
                    },
                    "--plugin-service-host",
                    "is neither an IP address nor a DNS name",
                )
            }),
        );
        for (overrides, flag, message) in cases {
            let e = d.load_edited("tenant: acme", &overrides).expect_err(flag);
            assert!(matches!(e, ConfigError::Flag { .. }), "{e:?}");
            assert_eq!(e.field(), Some(flag));
            assert!(e.to_string().starts_with(&format!("{flag}: ")), "{e}");
            assert!(e.to_string().contains(message), "{e}");
        }
    }

    #[test]
    fn plugin_service_host_is_a_uri_host() {
        let d = Dir::new();
        let c = d
            .load_edited("tenant: acme", &Overrides::default())
            .expect("valid");
        assert_eq!(
            c.plugin_service_host, None,
            "absent unless the flag is given"
        );
        for (given, host) in [
            ("127.0.0.1", "127.0.0.1"),
            ("::1", "[::1]"),
            ("localhost", "localhost"),
            ("plugins.internal.example.", "plugins.internal.example."),
        ] {
            let overrides = Overrides {
                plugin_service_host: Some(given.into()),
                ..Overrides::default()
            };
            let c = d.load_edited("tenant: acme", &overrides).expect(given);
            assert_eq!(c.plugin_service_host.as_deref(), Some(host), "{given}");
        }
    }
}
