//! `login` and `logout`.

use std::io::BufRead;
use std::path::Path;

use crate::cli::{Global, LoginArgs};
use crate::client::{Client, Credential};
use crate::config::{self, Config, Context};
use crate::error::{Error, Result};
use crate::kinds::Resource;
use crate::session;

/// Name of the context `login` writes when `--context` is not given.
pub const DEFAULT_CONTEXT: &str = "default";

/// Whether the server accepts `client`'s credential: a cheap authenticated request (the
/// first Tenant). A 403 is a valid credential whose role may not list Tenants.
///
/// # Errors
/// The problem of a 401 (or any other failure).
pub fn check(client: &Client) -> Result<()> {
    match client.get(
        &Resource::Tenants.collection(None),
        &[("limit", "1".to_owned())],
    ) {
        Ok(_) => Ok(()),
        Err(Error::Problem(p)) if p.status == 403 => Ok(()),
        Err(e) => Err(e),
    }
}

/// `login`: checks the credential and saves it as a context of the config file at `path`,
/// made current.
///
/// # Errors
/// [`Error::Usage`] without a server or credential; the server's problem for a refused one.
pub fn login(global: &Global, args: &LoginArgs, path: &Path) -> Result<()> {
    let mut cfg = config::load(path)?;
    let name = global
        .context
        .as_deref()
        .unwrap_or(DEFAULT_CONTEXT)
        .to_owned();
    let existing = cfg.context(Some(&name)).cloned();
    let server = global
        .server
        .clone()
        .or_else(|| existing.as_ref().map(|c| c.server.clone()))
        .ok_or_else(|| Error::Usage("login needs --server URL (or MCP_SERVER)".into()))?;
    let credential = if args.api_key_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::io("-", e))?;
        let key = line.trim().to_owned();
        if key.is_empty() {
            return Err(Error::Usage("no API key on standard input".into()));
        }
        Credential::ApiKey(key)
    } else {
        session::flag_credential(global).ok_or_else(|| {
            Error::Usage(
                "login needs a credential: --api-key-stdin, --api-key/MCP_API_KEY or \
                 --token/MCP_TOKEN"
                    .into(),
            )
        })?
    };
    let ca_file = global
        .ca_file
        .clone()
        .or_else(|| existing.as_ref().and_then(|c| c.ca_file.clone()));
    let ca_file = ca_file
        .map(|p| std::path::absolute(&p).map_err(|e| Error::io(p, e)))
        .transpose()?;
    let client = Client::new(&server, Some(credential.clone()), ca_file.as_deref())?;
    check(&client)?;
    let (api_key, token) = match &credential {
        Credential::ApiKey(k) => (Some(k.clone()), None),
        Credential::Token(t) => (None, Some(t.clone())),
    };
    cfg.upsert(Context {
        name: name.clone(),
        server: server.clone(),
        api_key,
        token,
        tenant: global
            .tenant
            .clone()
            .or_else(|| existing.and_then(|c| c.tenant)),
        ca_file,
    });
    config::save(path, &cfg)?;
    println!(
        "Logged in to {} with {} (context {name:?}, saved in {})",
        client.base(),
        credential.describe(),
        path.display()
    );
    Ok(())
}

/// `logout`: removes the context (`--context`, else the current one) from the config file.
///
/// # Errors
/// [`Error::Usage`] when there is no such context.
pub fn logout(global: &Global, path: &Path) -> Result<()> {
    let mut cfg = config::load(path)?;
    let removed = cfg.remove(global.context.as_deref()).ok_or_else(|| {
        Error::Usage(match &global.context {
            Some(n) => format!("no context {n:?} in {}", path.display()),
            None => format!("not logged in (no current context in {})", path.display()),
        })
    })?;
    config::save(path, &cfg)?;
    println!(
        "Logged out: context {removed:?} removed from {}",
        path.display()
    );
    Ok(())
}

/// The contexts of `cfg` as a table: CURRENT (`*`), NAME, SERVER, CREDENTIAL (a key masked
/// as `mcp_<prefix>_…`, or `bearer token`), TENANT.
pub fn contexts_table(cfg: &Config) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(vec!["CURRENT", "NAME", "SERVER", "CREDENTIAL", "TENANT"]);
    for c in &cfg.contexts {
        let current = if cfg.current_context.as_deref() == Some(c.name.as_str()) {
            "*"
        } else {
            ""
        };
        let credential =
            session::context_credential(c).map_or_else(|| "-".to_owned(), |cr| cr.describe());
        t.add_row(vec![
            current.to_owned(),
            c.name.clone(),
            c.server.clone(),
            credential,
            c.tenant.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    for col in t.column_iter_mut() {
        col.set_padding((0, 3));
    }
    t.lines().map(|l| l.trim_end().to_owned() + "\n").collect()
}

/// `use-context NAME`.
///
/// # Errors
/// [`Error::Usage`] when there is no such context.
pub fn use_context(name: &str, path: &Path) -> Result<()> {
    let mut cfg = config::load(path)?;
    if cfg.context(Some(name)).is_none() {
        return Err(Error::Usage(format!(
            "no context {name:?} in {}",
            path.display()
        )));
    }
    cfg.current_context = Some(name.to_owned());
    config::save(path, &cfg)?;
    println!("Switched to context {name:?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_table_masks_credentials() {
        let mut cfg = Config::default();
        cfg.upsert(Context {
            name: "prod".into(),
            server: "https://mcp.example.com".into(),
            token: Some("eyJ.secret.sig".into()),
            ..Context::default()
        });
        cfg.upsert(Context {
            name: "local".into(),
            server: "http://127.0.0.1:8080".into(),
            api_key: Some("mcp_abcdefgh_0123456789012345678901234567890123456789012".into()),
            tenant: Some("acme".into()),
            ..Context::default()
        });
        let table = contexts_table(&cfg);
        let lines: Vec<Vec<&str>> = table
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            ["CURRENT", "NAME", "SERVER", "CREDENTIAL", "TENANT"]
        );
        assert_eq!(
            lines[1],
            ["prod", "https://mcp.example.com", "bearer", "token", "-"]
        );
        assert_eq!(
            lines[2],
            [
                "*",
                "local",
                "http://127.0.0.1:8080",
                "API",
                "key",
                "mcp_abcdefgh_…",
                "acme"
            ]
        );
        assert!(
            !table.contains("secret") && !table.contains("0123456789"),
            "{table}"
        );
    }
}
