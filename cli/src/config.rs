//! The configuration file of `mcp-cli`: named contexts, like a kubeconfig (docs/cli.md,
//! "Configuration").
//!
//! ```yaml
//! current-context: prod
//! contexts:
//!   - name: prod
//!     server: https://mcp.example.com
//!     api-key: mcp_k0o4xcsx_...
//!     tenant: acme            # optional default of --tenant
//!     ca-file: /etc/mcp/ca.pem  # optional extra CA certificates
//! ```
//!
//! It lives at `$MCP_CLI_CONFIG`, else `$XDG_CONFIG_HOME/mcp/config.yaml`, else
//! `~/.config/mcp/config.yaml`, and is written with mode 0600 (it holds credentials), by
//! write-then-rename so a crash leaves the old file whole.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "MCP_CLI_CONFIG";

/// One server and the credentials to use there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Context {
    /// The context's name.
    pub name: String,
    /// Base URL of the server (`http://127.0.0.1:8080`), without `/api/v1`.
    pub server: String,
    /// An API key (`X-API-Key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// An OIDC bearer token (`Authorization: Bearer`), instead of a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The default tenant of tenant-scoped commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// PEM file of extra CA certificates to trust for `server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// The context used when `--context` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    /// The contexts, in the order they were added.
    #[serde(default)]
    pub contexts: Vec<Context>,
}

impl Config {
    /// The context `name`, or the current one when `name` is `None`.
    pub fn context(&self, name: Option<&str>) -> Option<&Context> {
        let name = name.or(self.current_context.as_deref())?;
        self.contexts.iter().find(|c| c.name == name)
    }

    /// Adds `context`, replacing the one of the same name, and makes it current.
    pub fn upsert(&mut self, context: Context) {
        self.current_context = Some(context.name.clone());
        match self.contexts.iter_mut().find(|c| c.name == context.name) {
            Some(c) => *c = context,
            None => self.contexts.push(context),
        }
    }

    /// Removes context `name` (the current one when `None`); returns its name, or `None`
    /// when there is no such context. Removing the current context leaves none current.
    pub fn remove(&mut self, name: Option<&str>) -> Option<String> {
        let name = name.or(self.current_context.as_deref())?.to_owned();
        let before = self.contexts.len();
        self.contexts.retain(|c| c.name != name);
        if self.contexts.len() == before {
            return None;
        }
        if self.current_context.as_deref() == Some(name.as_str()) {
            self.current_context = None;
        }
        Some(name)
    }
}

/// Where the config file is: `$MCP_CLI_CONFIG`, `$XDG_CONFIG_HOME/mcp/config.yaml`, or
/// `$HOME/.config/mcp/config.yaml` (each taken only when set and non-empty).
///
/// # Errors
/// [`Error::Usage`] when none of the three variables is set.
pub fn default_path(env: impl Fn(&str) -> Option<String>) -> Result<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(p) = set(CONFIG_ENV) {
        return Ok(PathBuf::from(p));
    }
    if let Some(x) = set("XDG_CONFIG_HOME") {
        return Ok(Path::new(&x).join("mcp").join("config.yaml"));
    }
    if let Some(h) = set("HOME") {
        return Ok(Path::new(&h)
            .join(".config")
            .join("mcp")
            .join("config.yaml"));
    }
    Err(Error::Usage(format!(
        "cannot place the config file: set {CONFIG_ENV}, XDG_CONFIG_HOME or HOME"
    )))
}

/// Reads the config file at `path`; a missing file is an empty config.
///
/// # Errors
/// [`Error::Io`] when it cannot be read, [`Error::Parse`] when it is not a config.
pub fn load(path: &Path) -> Result<Config> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(e) => return Err(Error::io(path, e)),
    };
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    yaml_serde::from_str(&text).map_err(|e| Error::parse(path, e))
}

/// Writes `config` to `path` with mode 0600 (its directory is created with mode 0700),
/// replacing the file atomically.
///
/// # Errors
/// [`Error::Io`] when the directory or the file cannot be written.
pub fn save(path: &Path, config: &Config) -> Result<()> {
    let text = yaml_serde::to_string(config).map_err(|e| Error::parse(path, e))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.yaml".into());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = private_file(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // Best effort: the temporary file holds credentials.
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// An API key as it may be shown: `mcp_<prefix>_…` (the prefix is not secret; the facade's
/// logs name keys by it), or `…` for anything that is not a key of that shape.
pub fn mask_key(key: &str) -> String {
    let mut parts = key.splitn(3, '_');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("mcp"), Some(prefix), Some(_))
            if prefix.len() == 8 && prefix.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            format!("mcp_{prefix}_…")
        }
        _ => "…".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(name: &str) -> Context {
        Context {
            name: name.into(),
            server: format!("http://{name}:8080"),
            api_key: Some("mcp_abcdefgh_secret".into()),
            ..Context::default()
        }
    }

    #[test]
    fn path_precedence() {
        type Vars = &'static [(&'static str, &'static str)];
        let cases: &[(Vars, Option<&str>)] = &[
            (
                &[
                    ("MCP_CLI_CONFIG", "/a.yaml"),
                    ("XDG_CONFIG_HOME", "/x"),
                    ("HOME", "/h"),
                ],
                Some("/a.yaml"),
            ),
            (
                &[
                    ("MCP_CLI_CONFIG", ""),
                    ("XDG_CONFIG_HOME", "/x"),
                    ("HOME", "/h"),
                ],
                Some("/x/mcp/config.yaml"),
            ),
            (&[("HOME", "/h")], Some("/h/.config/mcp/config.yaml")),
            (&[], None),
        ];
        for (vars, want) in cases {
            let env = |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            };
            let got = default_path(env).ok();
            assert_eq!(got.as_deref(), want.map(Path::new), "{vars:?}");
        }
    }

    #[test]
    fn contexts_upsert_select_remove() {
        let mut c = Config::default();
        c.upsert(ctx("a"));
        c.upsert(ctx("b"));
        assert_eq!(c.current_context.as_deref(), Some("b"));
        assert_eq!(c.context(None).map(|x| x.name.as_str()), Some("b"));
        assert_eq!(c.context(Some("a")).map(|x| x.name.as_str()), Some("a"));
        assert!(c.context(Some("zz")).is_none());
        let mut a2 = ctx("a");
        a2.tenant = Some("acme".into());
        c.upsert(a2);
        assert_eq!(c.contexts.len(), 2, "replaced, not added");
        assert_eq!(c.current_context.as_deref(), Some("a"));
        assert_eq!(c.remove(Some("b")).as_deref(), Some("b"));
        assert_eq!(
            c.current_context.as_deref(),
            Some("a"),
            "another context removed"
        );
        assert_eq!(c.remove(None).as_deref(), Some("a"));
        assert_eq!(c.current_context, None);
        assert_eq!(c.remove(None), None);
    }

    #[test]
    fn save_load_roundtrip_with_private_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("config.yaml");
        assert_eq!(load(&path).expect("missing is empty"), Config::default());
        let mut c = Config::default();
        c.upsert(ctx("a"));
        save(&path, &c).expect("save");
        save(&path, &c).expect("save over");
        assert_eq!(load(&path).expect("load"), c);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dmode = fs::metadata(path.parent().expect("dir"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(dmode & 0o777, 0o700);
        }
        let text = fs::read_to_string(&path).expect("read");
        assert!(text.contains("current-context: a"), "{text}");
        assert!(text.contains("api-key:"), "{text}");
        let leftovers = fs::read_dir(path.parent().expect("dir"))
            .expect("ls")
            .count();
        assert_eq!(leftovers, 1, "no temporary file left");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yaml");
        fs::write(&path, "contexts: []\nbogus: 1\n").expect("write");
        assert!(matches!(load(&path), Err(Error::Parse { .. })));
    }

    #[test]
    fn keys_are_masked() {
        let cases = [
            (
                "mcp_k0o4xcsx_2X3utG3rHEDCJzdErZj03F8kvTpRaVsBuZ0rLfchQ-_",
                "mcp_k0o4xcsx_…",
            ),
            ("mcp_short_x", "…"),
            ("eyJhbGciOi.x.y", "…"),
            ("", "…"),
        ];
        for (key, want) in cases {
            assert_eq!(mask_key(key), want, "{key}");
        }
    }
}
