//! What a command runs with: the server, the credential and the tenant, from the flags,
//! the environment and the config file (docs/cli.md, "Configuration").
//!
//! Precedence: `--server`/`MCP_SERVER`, `--api-key`/`MCP_API_KEY`, `--token`/`MCP_TOKEN`,
//! `--tenant`/`MCP_TENANT` over the context (`--context`, else `current-context`). The
//! context's credential is sent only to the context's own server: with `--server` naming
//! another one, a credential must be given too.

use chrono::{DateTime, Utc};

use crate::cli::Global;
use crate::client::{Client, Credential};
use crate::config::{Config, Context};
use crate::error::{Error, Result};
use crate::output::Format;

/// The resolved target of a command.
#[derive(Debug)]
pub struct Session {
    /// The client of the server.
    pub client: Client,
    /// The tenant of tenant-scoped commands, if any.
    pub tenant: Option<String>,
    /// The `-o` flag.
    pub format: Option<Format>,
    /// The time ages are shown against.
    pub now: DateTime<Utc>,
}

/// Server, credential and tenant after precedence (no client yet).
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// Base URL of the server.
    pub server: String,
    /// The credential, if any.
    pub credential: Option<Credential>,
    /// The tenant, if any.
    pub tenant: Option<String>,
    /// Extra CA certificates, if any.
    pub ca_file: Option<std::path::PathBuf>,
}

/// The credential the flags give, if any.
pub fn flag_credential(global: &Global) -> Option<Credential> {
    match (&global.api_key, &global.token) {
        (Some(k), _) => Some(Credential::ApiKey(k.clone())),
        (None, Some(t)) => Some(Credential::Token(t.clone())),
        (None, None) => None,
    }
}

/// The context's credential, if any.
pub fn context_credential(ctx: &Context) -> Option<Credential> {
    match (&ctx.api_key, &ctx.token) {
        (Some(k), _) => Some(Credential::ApiKey(k.clone())),
        (None, Some(t)) => Some(Credential::Token(t.clone())),
        (None, None) => None,
    }
}

/// Resolves the target from `global` and `config`.
///
/// # Errors
/// [`Error::Usage`] when `--context` names no context, or no server is known.
pub fn resolve(global: &Global, config: &Config) -> Result<Target> {
    let ctx = match &global.context {
        Some(name) => Some(config.context(Some(name)).ok_or_else(|| {
            Error::Usage(format!(
                "no context {name:?} in the config file (mcp-cli login --context {name} ...)"
            ))
        })?),
        None => config.context(None),
    };
    let server = match (&global.server, ctx) {
        (Some(s), _) => s.clone(),
        (None, Some(c)) => c.server.clone(),
        (None, None) => {
            return Err(Error::Usage(
                "no server: run `mcp-cli login --server URL --api-key-stdin` or set MCP_SERVER"
                    .into(),
            ));
        }
    };
    let same_server = ctx.is_some_and(|c| same_url(&c.server, &server));
    let credential = flag_credential(global)
        .or_else(|| ctx.filter(|_| same_server).and_then(context_credential));
    let tenant = global
        .tenant
        .clone()
        .or_else(|| ctx.and_then(|c| c.tenant.clone()));
    let ca_file = global
        .ca_file
        .clone()
        .or_else(|| ctx.filter(|_| same_server).and_then(|c| c.ca_file.clone()));
    Ok(Target {
        server,
        credential,
        tenant,
        ca_file,
    })
}

/// Whether two server URLs name the same facade (trailing `/` and `/api/v1` aside).
fn same_url(a: &str, b: &str) -> bool {
    match (crate::client::base_url(a), crate::client::base_url(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

impl Session {
    /// A session of `target`.
    ///
    /// # Errors
    /// As [`Client::new`].
    pub fn new(target: Target, format: Option<Format>) -> Result<Self> {
        Ok(Self {
            client: Client::new(&target.server, target.credential, target.ca_file.as_deref())?,
            tenant: target.tenant,
            format,
            now: Utc::now(),
        })
    }

    /// The tenant of a tenant-scoped command.
    ///
    /// # Errors
    /// [`Error::Usage`] when none is given.
    pub fn tenant(&self) -> Result<&str> {
        self.tenant.as_deref().ok_or_else(|| {
            Error::Usage(
                "this command needs a tenant: --tenant/-t, MCP_TENANT, or the context's \
                 tenant (mcp-cli login --tenant T)"
                    .into(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global() -> Global {
        Global {
            server: None,
            api_key: None,
            token: None,
            ca_file: None,
            context: None,
            tenant: None,
            output: None,
        }
    }

    fn config() -> Config {
        let mut c = Config::default();
        c.upsert(Context {
            name: "other".into(),
            server: "http://other:8080".into(),
            token: Some("jwt".into()),
            ..Context::default()
        });
        c.upsert(Context {
            name: "main".into(),
            server: "http://main:8080".into(),
            api_key: Some("mcp_abcdefgh_k".into()),
            tenant: Some("acme".into()),
            ..Context::default()
        });
        c
    }

    #[test]
    fn precedence_of_flags_env_and_context() {
        let key = |k: &str| Some(Credential::ApiKey(k.into()));
        let cases: Vec<(&str, Global, Option<Target>)> = vec![
            (
                "the current context",
                global(),
                Some(Target {
                    server: "http://main:8080".into(),
                    credential: key("mcp_abcdefgh_k"),
                    tenant: Some("acme".into()),
                    ca_file: None,
                }),
            ),
            (
                "flags override",
                Global {
                    api_key: Some("flag".into()),
                    tenant: Some("t2".into()),
                    ..global()
                },
                Some(Target {
                    server: "http://main:8080".into(),
                    credential: key("flag"),
                    tenant: Some("t2".into()),
                    ca_file: None,
                }),
            ),
            (
                "another context",
                Global {
                    context: Some("other".into()),
                    ..global()
                },
                Some(Target {
                    server: "http://other:8080".into(),
                    credential: Some(Credential::Token("jwt".into())),
                    tenant: None,
                    ca_file: None,
                }),
            ),
            (
                "the context's key stays with its server",
                Global {
                    server: Some("http://elsewhere".into()),
                    ..global()
                },
                Some(Target {
                    server: "http://elsewhere".into(),
                    credential: None,
                    tenant: Some("acme".into()),
                    ca_file: None,
                }),
            ),
            (
                "the same server spelled differently keeps it",
                Global {
                    server: Some("http://main:8080/api/v1/".into()),
                    ..global()
                },
                Some(Target {
                    server: "http://main:8080/api/v1/".into(),
                    credential: key("mcp_abcdefgh_k"),
                    tenant: Some("acme".into()),
                    ca_file: None,
                }),
            ),
            (
                "unknown context",
                Global {
                    context: Some("nope".into()),
                    ..global()
                },
                None,
            ),
        ];
        for (what, g, want) in cases {
            assert_eq!(resolve(&g, &config()).ok(), want, "{what}");
        }
        assert!(matches!(
            resolve(&global(), &Config::default()),
            Err(Error::Usage(_))
        ));
    }
}
