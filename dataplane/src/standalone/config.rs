//! Configuration of the standalone server, validated once at start-up.
//!
//! [`Settings`] is what the operator typed (every field optional, strings as given);
//! [`Config::from_settings`] turns it into a [`Config`] whose values are known to be usable,
//! or a [`ConfigError`] naming the offending field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::store::{BlobLocation, S3Settings, gc};
use crate::tls::TlsSource;

/// Default directory of the YAML resources.
pub const DEFAULT_RESOURCES: &str = "config/samples/standalone";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Default IMAP (STARTTLS) listen address.
pub const DEFAULT_IMAP: &str = "127.0.0.1:1143";
/// Default IMAPS (implicit TLS) listen address.
pub const DEFAULT_IMAPS: &str = "127.0.0.1:1993";
/// Default LMTP listen address.
pub const DEFAULT_LMTP: &str = "127.0.0.1:2424";
/// Default metrics (HTTP) listen address.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9090";
/// Default REST API (`/api/v1`, HTTP) listen address.
pub const DEFAULT_REST: &str = "127.0.0.1:8080";
/// File name of the API key database inside the data directory.
pub const API_STORE_FILE: &str = "api.sqlite";
/// Environment variable holding the S3 access key id of `--blob-url s3://...`.
pub const ACCESS_KEY_ID_ENV: &str = "AWS_ACCESS_KEY_ID";
/// Environment variable holding the S3 secret access key of `--blob-url s3://...`.
pub const SECRET_ACCESS_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";

/// Raw settings as given on the command line or by a test; `None` means "use the default".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Directory of `*.yaml`/`*.yml` resources. Default [`DEFAULT_RESOURCES`].
    pub resources: Option<PathBuf>,
    /// Data directory (SQLite file, blobs, generated TLS certificate). Default
    /// [`DEFAULT_DATA_DIR`]; created if missing.
    pub data_dir: Option<PathBuf>,
    /// IMAP listen address, `IP:PORT`. Default [`DEFAULT_IMAP`].
    pub imap: Option<String>,
    /// IMAPS listen address, `IP:PORT`. Default [`DEFAULT_IMAPS`].
    pub imaps: Option<String>,
    /// LMTP listen address, `IP:PORT`. Default [`DEFAULT_LMTP`].
    pub lmtp: Option<String>,
    /// Metrics listen address, `IP:PORT`. Default [`DEFAULT_METRICS`].
    pub metrics: Option<String>,
    /// REST API listen address, `IP:PORT`. Default [`DEFAULT_REST`].
    pub rest: Option<String>,
    /// Metadata store URL, `sqlite://PATH` or `postgres://...`. Default
    /// `sqlite://DATA/meta.sqlite`.
    pub store_url: Option<String>,
    /// API key database URL, `sqlite://PATH` or `postgres://...`. Default
    /// `sqlite://DATA/api.sqlite` ([`API_STORE_FILE`]).
    pub api_store_url: Option<String>,
    /// File holding the bootstrap admin API key (mode without access for other users).
    /// Default: none, a key is generated when no usable admin key exists.
    pub bootstrap_key_file: Option<PathBuf>,
    /// REST requests per second per credential (at least 1). Default 20.
    pub rest_rate: Option<u32>,
    /// REST burst per credential (at least 1). Default 40.
    pub rest_burst: Option<u32>,
    /// OIDC settings file of the REST API (YAML or JSON,
    /// [`mcp_api::auth::oidc::OidcConfig`]): bearer tokens of that issuer are accepted
    /// besides API keys. Default none.
    pub oidc_config: Option<PathBuf>,
    /// Blob directory. Default `DATA/blobs`. Not with `blob_url`.
    pub blob_dir: Option<PathBuf>,
    /// Blob store URL instead of a directory:
    /// `s3://BUCKET/PREFIX?endpoint=URL&region=REGION&path_style=true` (see
    /// [`S3Settings::from_url`]); credentials from [`ACCESS_KEY_ID_ENV`] and
    /// [`SECRET_ACCESS_KEY_ENV`]. Not with `blob_dir`.
    pub blob_url: Option<String>,
    /// PEM certificate chain; needs `tls_key`. Default: a self-signed certificate in
    /// `DATA/tls/`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key; needs `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Interval of `* OK Still here` keepalives during IDLE, seconds (1..=300). Default
    /// [`crate::imap::Limits`]'s 120. Mostly for tests.
    pub idle_keepalive_secs: Option<u64>,
    /// Mean seconds between two collections of orphaned bodies; 0 turns collection off.
    /// Default 3600 ([`gc::Schedule`]).
    pub gc_interval_secs: Option<u64>,
    /// Grace period of orphan collection, seconds (at least 60: a younger body may belong
    /// to a write about to commit). Default 3600.
    pub gc_min_age_secs: Option<u64>,
}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Directory of the YAML resources; exists.
    pub resources: PathBuf,
    /// Data directory, absolute; created by [`super::run`] if missing.
    pub data_dir: PathBuf,
    /// IMAP (STARTTLS) listen address.
    pub imap: SocketAddr,
    /// IMAPS (implicit TLS) listen address.
    pub imaps: SocketAddr,
    /// LMTP listen address.
    pub lmtp: SocketAddr,
    /// Metrics (HTTP) listen address.
    pub metrics: SocketAddr,
    /// REST API (HTTP) listen address.
    pub rest: SocketAddr,
    /// Metadata store URL (`sqlite://` or `postgres://`/`postgresql://`).
    pub store_url: String,
    /// API key database URL (`sqlite://` or `postgres://`/`postgresql://`).
    pub api_store_url: String,
    /// The bootstrap admin key's file, absolute; exists.
    pub bootstrap_key_file: Option<PathBuf>,
    /// Per-credential rate limit of the REST API.
    pub rest_rate_limit: mcp_api::auth::RateLimit,
    /// The OIDC issuer of the REST API's bearer tokens, checked (`--oidc-config`).
    pub oidc: Option<mcp_api::auth::oidc::OidcSettings>,
    /// Where the blobs live: a directory (absolute) or an S3 bucket.
    pub blobs: BlobLocation,
    /// Source of the TLS certificate.
    pub tls: TlsSource,
    /// Interval of IDLE keepalives, seconds (1..=300).
    pub idle_keepalive_secs: u64,
    /// When orphaned bodies are collected.
    pub orphan_gc: gc::Schedule,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {field}: {message}")]
pub struct ConfigError {
    /// The setting's name as on the command line, e.g. `--imap`.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        message: message.into(),
    }
}

fn addr(
    field: &'static str,
    value: Option<&str>,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let value = value.unwrap_or(default);
    value
        .parse()
        .map_err(|_| err(field, format!("{value:?} is not an IP:PORT socket address")))
}

fn absolute(field: &'static str, path: &Path) -> Result<PathBuf, ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(err(field, "must not be empty"));
    }
    std::path::absolute(path).map_err(|e| err(field, format!("{}: {e}", path.display())))
}

fn database_url(field: &'static str, url: &str) -> Result<String, ConfigError> {
    let supported = ["sqlite:", "postgres://", "postgresql://"];
    if supported.iter().any(|s| url.starts_with(s)) {
        Ok(url.to_owned())
    } else {
        Err(err(
            field,
            "must start with sqlite:, postgres:// or postgresql://",
        ))
    }
}

fn existing_file(field: &'static str, path: &Path) -> Result<PathBuf, ConfigError> {
    if path.is_file() {
        absolute(field, path)
    } else {
        Err(err(
            field,
            format!("{} is not a readable file", path.display()),
        ))
    }
}

/// The blob store of a `--blob-url` (only `s3://` so far), with the credentials from the
/// process environment (`mcp quarantine --blob-url`).
///
/// # Errors
/// [`ConfigError`] naming `--blob-url`.
pub fn blob_location_from_url(url: &str) -> Result<BlobLocation, ConfigError> {
    blob_url(url, &|name: &str| std::env::var(name).ok()).map(BlobLocation::S3)
}

/// The S3 settings of `--blob-url` (only `s3://` so far), with the credentials from `env`.
fn blob_url(url: &str, env: &impl Fn(&str) -> Option<String>) -> Result<S3Settings, ConfigError> {
    if !url.starts_with("s3://") {
        return Err(err(
            "--blob-url",
            "must start with s3:// (for a directory use --blob-dir)",
        ));
    }
    let credential = |name: &str| {
        env(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            err(
                "--blob-url",
                format!("the S3 credentials come from {name}, which is not set"),
            )
        })
    };
    let access_key_id = credential(ACCESS_KEY_ID_ENV)?;
    let secret_access_key = credential(SECRET_ACCESS_KEY_ENV)?;
    // The URL carries no secret: quoting it is fine.
    S3Settings::from_url(url, access_key_id, secret_access_key)
        .map_err(|e| err("--blob-url", format!("{url}: {e}")))
}

impl Config {
    /// Validates `settings` and fills in defaults; S3 credentials come from the process
    /// environment.
    ///
    /// Checks: the listen addresses (`--rest` included) parse and do not share a port; the
    /// resource directory exists; TLS certificate and key are given together and exist; the
    /// store URLs have a supported scheme; the bootstrap key file holds one key and other
    /// users cannot read or write it; the REST rate limits are at least 1; the blob URL
    /// parses and its credentials are set. Does not touch the network or create anything.
    ///
    /// # Errors
    /// The first [`ConfigError`], naming the setting.
    pub fn from_settings(settings: &Settings) -> Result<Config, ConfigError> {
        Self::from_settings_with_env(settings, |name| std::env::var(name).ok())
    }

    /// Like [`Config::from_settings`], with environment variables looked up through `env`.
    ///
    /// # Errors
    /// As [`Config::from_settings`].
    pub fn from_settings_with_env(
        settings: &Settings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let resources = settings
            .resources
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RESOURCES));
        if !resources.is_dir() {
            return Err(err(
                "--resources",
                format!("{} is not a directory", resources.display()),
            ));
        }
        let resources = absolute("--resources", &resources)?;
        let data_dir = absolute(
            "--data-dir",
            settings
                .data_dir
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_DATA_DIR)),
        )?;
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(err(
                "--data-dir",
                format!("{} exists and is not a directory", data_dir.display()),
            ));
        }

        let imap = addr("--imap", settings.imap.as_deref(), DEFAULT_IMAP)?;
        let imaps = addr("--imaps", settings.imaps.as_deref(), DEFAULT_IMAPS)?;
        let lmtp = addr("--lmtp", settings.lmtp.as_deref(), DEFAULT_LMTP)?;
        let metrics = addr("--metrics", settings.metrics.as_deref(), DEFAULT_METRICS)?;
        let rest = addr("--rest", settings.rest.as_deref(), DEFAULT_REST)?;
        let named = [
            ("--imap", imap),
            ("--imaps", imaps),
            ("--lmtp", lmtp),
            ("--metrics", metrics),
            ("--rest", rest),
        ];
        for (i, (field, a)) in named.iter().enumerate() {
            for (other, b) in &named[..i] {
                if a.port() != 0
                    && a.port() == b.port()
                    && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
                {
                    return Err(err(field, format!("{a} collides with {other} {b}")));
                }
            }
        }

        let store_url = match &settings.store_url {
            Some(url) => database_url("--store-url", url)?,
            None => format!("sqlite://{}", data_dir.join("meta.sqlite").display()),
        };
        let api_store_url = match &settings.api_store_url {
            Some(url) => database_url("--api-store-url", url)?,
            None => format!("sqlite://{}", data_dir.join(API_STORE_FILE).display()),
        };
        let bootstrap_key_file = settings
            .bootstrap_key_file
            .as_deref()
            .map(|f| existing_file("--bootstrap-key-file", f))
            .transpose()?;
        if let Some(file) = &bootstrap_key_file {
            // Permissions and format now, before anything is locked or written.
            mcp_api::bootstrap::read_key_file(file)
                .map_err(|e| err("--bootstrap-key-file", e.to_string()))?;
        }
        let rate =
            |field: &'static str, value: Option<u32>, default: std::num::NonZeroU32| match value {
                None => Ok(default),
                Some(v) => {
                    std::num::NonZeroU32::new(v).ok_or_else(|| err(field, "must be at least 1"))
                }
            };
        let defaults = mcp_api::auth::RateLimit::default();
        let rest_rate_limit = mcp_api::auth::RateLimit {
            per_second: rate("--rest-rate", settings.rest_rate, defaults.per_second)?,
            burst: rate("--rest-burst", settings.rest_burst, defaults.burst)?,
        };
        let oidc = settings
            .oidc_config
            .as_deref()
            .map(|f| {
                let file = existing_file("--oidc-config", f)?;
                mcp_api::auth::oidc::OidcConfig::from_file(&file)
                    .map_err(|e| err("--oidc-config", e.to_string()))
            })
            .transpose()?;
        let blobs = match (&settings.blob_dir, &settings.blob_url) {
            (Some(_), Some(_)) => {
                return Err(err("--blob-url", "give either --blob-dir or --blob-url"));
            }
            (Some(dir), None) => BlobLocation::Dir(absolute("--blob-dir", dir)?),
            (None, None) => BlobLocation::Dir(data_dir.join("blobs")),
            (None, Some(url)) => BlobLocation::S3(blob_url(url, &env)?),
        };

        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => TlsSource::Files {
                cert: existing_file("--tls-cert", cert)?,
                key: existing_file("--tls-key", key)?,
            },
            (None, None) => TlsSource::SelfSigned {
                dir: data_dir.join("tls"),
            },
            (Some(_), None) => return Err(err("--tls-key", "required with --tls-cert")),
            (None, Some(_)) => return Err(err("--tls-cert", "required with --tls-key")),
        };

        let idle_keepalive_secs = match settings.idle_keepalive_secs {
            None => crate::imap::Limits::default().idle_keepalive_secs,
            Some(secs @ 1..=300) => secs,
            Some(secs) => {
                return Err(err(
                    "--idle-keepalive-secs",
                    format!("{secs} is not between 1 and 300 seconds"),
                ));
            }
        };

        let defaults = gc::Schedule::default();
        let orphan_gc = gc::Schedule {
            every: settings
                .gc_interval_secs
                .map_or(defaults.every, Duration::from_secs),
            min_age: match settings.gc_min_age_secs {
                None => defaults.min_age,
                Some(secs @ 60..) => Duration::from_secs(secs),
                Some(secs) => {
                    return Err(err(
                        "--gc-min-age-secs",
                        format!(
                            "{secs} is under 60 seconds: a younger body may belong to a write about to commit"
                        ),
                    ));
                }
            },
        };

        Ok(Config {
            resources,
            data_dir,
            imap,
            imaps,
            lmtp,
            metrics,
            rest,
            store_url,
            api_store_url,
            bootstrap_key_file,
            rest_rate_limit,
            oidc,
            blobs,
            tls,
            idle_keepalive_secs,
            orphan_gc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(dir: &Path) -> Settings {
        Settings {
            resources: Some(dir.to_owned()),
            data_dir: Some(dir.join("data")),
            ..Settings::default()
        }
    }

    #[test]
    fn defaults_put_everything_under_the_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Config::from_settings(&base(dir.path())).expect("valid");
        let data = dir.path().join("data");
        assert_eq!(c.imap, "127.0.0.1:1143".parse().expect("addr"));
        assert_eq!(c.imaps, "127.0.0.1:1993".parse().expect("addr"));
        assert_eq!(c.lmtp, "127.0.0.1:2424".parse().expect("addr"));
        assert_eq!(c.metrics, "127.0.0.1:9090".parse().expect("addr"));
        assert_eq!(c.rest, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(
            c.store_url,
            format!("sqlite://{}/meta.sqlite", data.display())
        );
        assert_eq!(
            c.api_store_url,
            format!("sqlite://{}/api.sqlite", data.display())
        );
        assert_eq!(c.bootstrap_key_file, None);
        assert_eq!(c.rest_rate_limit, mcp_api::auth::RateLimit::default());
        assert_eq!(c.blobs, BlobLocation::Dir(data.join("blobs")));
        assert_eq!(
            c.tls,
            TlsSource::SelfSigned {
                dir: data.join("tls")
            }
        );
    }

    #[test]
    fn invalid_settings_name_their_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        let file = p.join("file");
        std::fs::write(&file, "x").expect("write");
        let cases: Vec<(Settings, &str)> = vec![
            (
                Settings {
                    imap: Some("localhost".into()),
                    ..base(p)
                },
                "--imap",
            ),
            (
                Settings {
                    imaps: Some("1.2.3.4:99999".into()),
                    ..base(p)
                },
                "--imaps",
            ),
            (
                Settings {
                    metrics: Some("127.0.0.1:1143".into()),
                    ..base(p)
                },
                "--metrics",
            ),
            (
                Settings {
                    imaps: Some("0.0.0.0:1143".into()),
                    ..base(p)
                },
                "--imaps",
            ),
            (
                Settings {
                    lmtp: Some("127.0.0.1:1993".into()),
                    ..base(p)
                },
                "--lmtp",
            ),
            (
                Settings {
                    lmtp: Some("2424".into()),
                    ..base(p)
                },
                "--lmtp",
            ),
            (
                Settings {
                    resources: Some(p.join("nope")),
                    ..base(p)
                },
                "--resources",
            ),
            (
                Settings {
                    data_dir: Some(file.clone()),
                    ..base(p)
                },
                "--data-dir",
            ),
            (
                Settings {
                    store_url: Some("mysql://x".into()),
                    ..base(p)
                },
                "--store-url",
            ),
            (
                Settings {
                    tls_cert: Some(file.clone()),
                    ..base(p)
                },
                "--tls-key",
            ),
            (
                Settings {
                    tls_key: Some(file.clone()),
                    ..base(p)
                },
                "--tls-cert",
            ),
            (
                Settings {
                    idle_keepalive_secs: Some(0),
                    ..base(p)
                },
                "--idle-keepalive-secs",
            ),
            (
                Settings {
                    idle_keepalive_secs: Some(301),
                    ..base(p)
                },
                "--idle-keepalive-secs",
            ),
            (
                Settings {
                    gc_min_age_secs: Some(59),
                    ..base(p)
                },
                "--gc-min-age-secs",
            ),
            (
                Settings {
                    rest: Some("localhost:8080".into()),
                    ..base(p)
                },
                "--rest",
            ),
            (
                Settings {
                    rest: Some("127.0.0.1:9090".into()),
                    ..base(p)
                },
                "--rest",
            ),
            (
                Settings {
                    imap: Some("0.0.0.0:8080".into()),
                    ..base(p)
                },
                "--rest",
            ),
            (
                Settings {
                    api_store_url: Some("mysql://x".into()),
                    ..base(p)
                },
                "--api-store-url",
            ),
            (
                Settings {
                    bootstrap_key_file: Some(p.join("nope")),
                    ..base(p)
                },
                "--bootstrap-key-file",
            ),
            (
                // "x": not a key (and readable by others with the usual umask).
                Settings {
                    bootstrap_key_file: Some(file.clone()),
                    ..base(p)
                },
                "--bootstrap-key-file",
            ),
            (
                Settings {
                    rest_rate: Some(0),
                    ..base(p)
                },
                "--rest-rate",
            ),
            (
                Settings {
                    rest_burst: Some(0),
                    ..base(p)
                },
                "--rest-burst",
            ),
            (
                Settings {
                    oidc_config: Some(p.join("absent.yaml")),
                    ..base(p)
                },
                "--oidc-config",
            ),
            (
                // "x" is not an OIDC settings document.
                Settings {
                    oidc_config: Some(file.clone()),
                    ..base(p)
                },
                "--oidc-config",
            ),
            (
                Settings {
                    tls_cert: Some(p.join("nope")),
                    tls_key: Some(file.clone()),
                    ..base(p)
                },
                "--tls-cert",
            ),
        ];
        for (settings, field) in cases {
            let e = Config::from_settings(&settings).expect_err(field);
            assert_eq!(e.field, field, "{e}");
        }
    }

    #[test]
    fn blob_url_selects_s3_with_credentials_from_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Settings {
            blob_url: Some(
                "s3://bodies/acme/?endpoint=http://127.0.0.1:9000&region=eu-west-1&path_style=true"
                    .into(),
            ),
            ..base(dir.path())
        };
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("SECRET".to_owned()),
            _ => None,
        };
        let c = Config::from_settings_with_env(&s, env).expect("valid");
        let BlobLocation::S3(s3) = &c.blobs else {
            panic!("not S3: {:?}", c.blobs);
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str(), s3.region.as_str()),
            ("bodies", "acme/", "eu-west-1")
        );
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s3.force_path_style);
        assert_eq!(
            (s3.access_key_id.as_str(), s3.secret_access_key.as_str()),
            ("AKID", "SECRET")
        );
    }

    #[test]
    fn bad_blob_urls_name_the_flag_and_never_a_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        let full = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("s3cr3t-value".to_owned()),
            _ => None,
        };
        let no_secret = |name: &str| (name == "AWS_ACCESS_KEY_ID").then(|| "AKID".to_owned());
        let cases: Vec<(Settings, bool, &str)> = vec![
            (
                Settings {
                    blob_url: Some("file:///srv/blobs".into()),
                    ..base(p)
                },
                true,
                "s3://",
            ),
            (
                Settings {
                    blob_url: Some("s3://bodies/p/".into()),
                    blob_dir: Some(p.join("b")),
                    ..base(p)
                },
                true,
                "either",
            ),
            (
                Settings {
                    blob_url: Some("s3://bodies/p/".into()),
                    ..base(p)
                },
                false,
                "AWS_SECRET_ACCESS_KEY",
            ),
            (
                Settings {
                    blob_url: Some("s3://Bodies/p/".into()),
                    ..base(p)
                },
                true,
                "bucket",
            ),
            (
                Settings {
                    blob_url: Some("s3://bodies/p/?path_style=maybe".into()),
                    ..base(p)
                },
                true,
                "path_style",
            ),
        ];
        for (settings, with_secret, needle) in cases {
            let e = if with_secret {
                Config::from_settings_with_env(&settings, full)
            } else {
                Config::from_settings_with_env(&settings, no_secret)
            }
            .expect_err(needle);
            assert_eq!(e.field, "--blob-url", "{e}");
            let text = e.to_string();
            assert!(text.contains(needle), "{text}");
            assert!(!text.contains("s3cr3t-value"), "{text}");
        }
    }

    #[test]
    fn port_zero_never_collides() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Settings {
            imap: Some("127.0.0.1:0".into()),
            imaps: Some("127.0.0.1:0".into()),
            lmtp: Some("127.0.0.1:0".into()),
            metrics: Some("127.0.0.1:0".into()),
            store_url: Some("postgres://u:p@127.0.0.1:5432/mcp".into()),
            ..base(dir.path())
        };
        let c = Config::from_settings(&s).expect("valid");
        assert_eq!(c.store_url, "postgres://u:p@127.0.0.1:5432/mcp");
    }
}
