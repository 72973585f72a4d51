//! `login` and `logout`.

use std::io::BufRead;
use std::path::Path;

use crate::cli::{Global, LoginArgs};
use crate::client::{Client, Credential};
use crate::config::{self, Context};
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
