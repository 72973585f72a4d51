//! `list`, `get`, `create`, `delete` and the actions of every collection.

use std::io::{BufRead, Write};
use std::path::Path;

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::cli::{ApiKeyCreate, MailboxCreate, Role, TenantCreate};
use crate::client::Body;
use crate::error::{Error, Result};
use crate::kinds::{API_VERSION, Resource};
use crate::manifest;
use crate::output::{self, Format};
use crate::session::Session;

/// Writes `text` to standard output (a closed pipe is not an error worth a message).
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The tenant of `resource`'s path, when it is tenant-scoped.
fn tenant_of(session: &Session, resource: Resource) -> Result<Option<String>> {
    Ok(if resource.tenant_scoped() {
        Some(session.tenant()?.to_owned())
    } else {
        None
    })
}

/// Every page of `resource`'s list, merged into the first page's answer.
///
/// # Errors
/// As [`crate::client::Client::send`].
pub fn fetch_all(
    session: &Session,
    resource: Resource,
    tenant: Option<&str>,
    mut query: Vec<(&'static str, String)>,
) -> Result<Value> {
    let path = resource.collection(tenant);
    let mut answer = session.client.get(&path, &query)?;
    loop {
        // Resource lists page with metadata.continue, the quarantine with next/cursor.
        let (param, token) = match resource {
            Resource::Quarantine => ("cursor", answer.get("next").and_then(Value::as_str)),
            _ => (
                "continue",
                answer.pointer("/metadata/continue").and_then(Value::as_str),
            ),
        };
        let Some(token) = token.filter(|t| !t.is_empty()).map(str::to_owned) else {
            break;
        };
        query.retain(|(k, _)| *k != param);
        query.push((param, token));
        let page = session.client.get(&path, &query)?;
        let more = page
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(Value::Array(items)) = answer.get_mut("items") {
            items.extend(more);
        }
        match resource {
            Resource::Quarantine => {
                answer["next"] = page.get("next").cloned().unwrap_or(Value::Null)
            }
            _ => answer["metadata"] = page.get("metadata").cloned().unwrap_or(json!({})),
        }
    }
    if let Some(m) = answer.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("continue");
    }
    if let Some(m) = answer.as_object_mut() {
        m.remove("next");
    }
    Ok(answer)
}

/// `<collection> list`.
///
/// # Errors
/// As [`fetch_all`].
pub fn list(
    session: &Session,
    resource: Resource,
    query: Vec<(&'static str, String)>,
) -> Result<()> {
    let tenant = tenant_of(session, resource)?;
    let answer = fetch_all(session, resource, tenant.as_deref(), query)?;
    let format = session.format.unwrap_or(Format::Table);
    if format == Format::Table && output::list_items(resource, &answer).is_empty() {
        match &tenant {
            Some(t) => eprintln!("No {} found in tenant {t}.", resource.segment()),
            None => eprintln!("No {} found.", resource.segment()),
        }
        return Ok(());
    }
    print(&output::list(resource, &answer, format, session.now));
    Ok(())
}

/// The id of API key `name_or_id`: itself when numeric, else the id of the key of that name.
fn api_key_id(session: &Session, name_or_id: &str) -> Result<String> {
    if !name_or_id.is_empty() && name_or_id.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(name_or_id.to_owned());
    }
    let list = session
        .client
        .get(&Resource::ApiKeys.collection(None), &[])?;
    list.get("items")
        .and_then(Value::as_array)
        .and_then(|items| {
            items
                .iter()
                .find(|k| k.get("name").and_then(Value::as_str) == Some(name_or_id))
        })
        .and_then(|k| k.get("id"))
        .map(|id| id.to_string())
        .ok_or_else(|| {
            Error::Problem(crate::error::Problem {
                status: 404,
                title: "Not Found".into(),
                detail: Some(format!("no API key named {name_or_id:?}")),
                errors: Vec::new(),
            })
        })
}

/// The path of object `name` of `resource`.
fn object_path(session: &Session, resource: Resource, name: &str) -> Result<Vec<String>> {
    let tenant = tenant_of(session, resource)?;
    let name = match resource {
        Resource::ApiKeys => api_key_id(session, name)?,
        _ => name.to_owned(),
    };
    Ok(resource.object(tenant.as_deref(), &name))
}

/// `<collection> get NAME`.
///
/// # Errors
/// As [`crate::client::Client::send`].
pub fn get(session: &Session, resource: Resource, name: &str) -> Result<()> {
    let path = object_path(session, resource, name)?;
    let obj = session.client.get(&path, &[])?;
    let format = session.format.unwrap_or(Format::Table);
    print(&output::object(resource, &obj, format, session.now));
    Ok(())
}

/// `<collection> delete NAME`.
///
/// # Errors
/// As [`crate::client::Client::send`].
pub fn delete(session: &Session, resource: Resource, name: &str) -> Result<()> {
    let path = object_path(session, resource, name)?;
    session
        .client
        .send(Method::DELETE, &path, &[], None, None)?;
    print(&format!("{}/{name} deleted\n", resource.type_name()));
    Ok(())
}

/// `plugins enable|disable NAME`, `quarantine release ID`: `POST .../{name}:{action}`.
///
/// # Errors
/// As [`crate::client::Client::send`].
pub fn action(session: &Session, resource: Resource, name: &str, action: &str) -> Result<()> {
    let tenant = tenant_of(session, resource)?;
    let path = resource.object(tenant.as_deref(), &format!("{name}:{action}"));
    let answer = session
        .client
        .send(Method::POST, &path, &[], None, None)?
        .body;
    match session.format {
        Some(Format::Json) => print(&output::json(&answer)),
        Some(Format::Yaml) => print(&output::yaml(&answer)),
        _ => {
            let done = match action {
                "enable" => "enabled".to_owned(),
                "disable" => "disabled".to_owned(),
                "release" => format!(
                    "released to {} ({})",
                    answer.get("mailbox").and_then(Value::as_str).unwrap_or("?"),
                    answer.get("folder").and_then(Value::as_str).unwrap_or("?")
                ),
                other => other.to_owned(),
            };
            print(&format!("{}/{name} {done}\n", resource.type_name()));
        }
    }
    Ok(())
}

/// `POST`s `body` to `resource`'s collection and prints the outcome.
///
/// # Errors
/// As [`crate::client::Client::send`].
pub fn create(session: &Session, resource: Resource, body: Value, dry_run: bool) -> Result<Value> {
    let tenant = tenant_of(session, resource)?;
    let query = if dry_run {
        vec![("dryRun", "true".to_owned())]
    } else {
        Vec::new()
    };
    let answer = session
        .client
        .send(
            Method::POST,
            &resource.collection(tenant.as_deref()),
            &query,
            Some(Body::Json(body)),
            None,
        )?
        .body;
    match session.format {
        Some(Format::Json) => print(&output::json(&answer)),
        Some(Format::Yaml) => print(&output::yaml(&answer)),
        Some(Format::Name) => print(&(output::qualified_name(resource, &answer) + "\n")),
        _ => {
            let suffix = if dry_run { " (server dry run)" } else { "" };
            print(&format!(
                "{} created{suffix}\n",
                output::qualified_name(resource, &answer)
            ));
        }
    }
    Ok(answer)
}

/// Reads a password: the first line of standard input or of `file`, without its line end.
///
/// # Errors
/// [`Error::Io`]; [`Error::Usage`] for an empty password.
pub fn read_password(stdin: bool, file: Option<&Path>) -> Result<Option<String>> {
    let mut line = String::new();
    match (stdin, file) {
        (true, _) => {
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::io("-", e))?;
        }
        (false, Some(f)) => {
            let text = std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?;
            line = text.lines().next().unwrap_or("").to_owned();
        }
        (false, None) => return Ok(None),
    }
    let pw = line.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        return Err(Error::Usage("the password is empty".into()));
    }
    Ok(Some(pw))
}

/// A Mailbox name from an address, as the facade derives one in a bulk import: lower-case,
/// `@` becomes `.`, other characters a DNS name cannot hold `-` (`alice@example.com` ->
/// `alice.example.com`).
pub fn name_from_address(address: &str) -> Option<String> {
    let name: String = address
        .to_lowercase()
        .chars()
        .map(|c| match c {
            '@' | '.' => '.',
            c if c.is_ascii_lowercase() || c.is_ascii_digit() => c,
            _ => '-',
        })
        .collect();
    let name = name
        .split('.')
        .map(|l| l.trim_matches('-'))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(".");
    (!name.is_empty() && name.len() <= 244).then_some(name)
}

/// The body of `tenants create` from its flags.
pub fn tenant_body(args: &TenantCreate) -> Result<Value> {
    if let Some(f) = &args.file {
        return manifest::read_one(f);
    }
    let name = args
        .name
        .clone()
        .ok_or_else(|| Error::Usage("tenants create needs NAME or -f FILE".into()))?;
    let mut spec = Map::new();
    spec.insert("domains".into(), json!(args.domains));
    if let Some(ns) = &args.namespace {
        spec.insert("namespace".into(), json!(ns));
    }
    Ok(
        json!({"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": name},
              "spec": spec}),
    )
}

/// The body of `mailboxes create` from its flags (`password` already read).
pub fn mailbox_body(args: &MailboxCreate, password: Option<String>) -> Result<Value> {
    let mut body = match &args.file {
        Some(f) => manifest::read_one(f)?,
        None => {
            let address = args
                .address
                .clone()
                .ok_or_else(|| Error::Usage("mailboxes create needs ADDRESS or -f FILE".into()))?;
            let name = match &args.name {
                Some(n) => n.clone(),
                None => name_from_address(&address).ok_or_else(|| {
                    Error::Usage(format!("no name can be made of {address:?}: give --name"))
                })?,
            };
            let mut spec = Map::new();
            spec.insert("address".into(), json!(address));
            if let Some(d) = &args.display_name {
                spec.insert("displayName".into(), json!(d));
            }
            if !args.aliases.is_empty() {
                spec.insert("aliases".into(), json!(args.aliases));
            }
            let mut quota = Map::new();
            if let Some(q) = &args.quota {
                quota.insert("storage".into(), json!(q));
            }
            if let Some(m) = args.quota_messages {
                quota.insert("messages".into(), json!(m));
            }
            if !quota.is_empty() {
                spec.insert("quota".into(), Value::Object(quota));
            }
            if let Some(s) = &args.state {
                spec.insert("state".into(), json!(s));
            }
            json!({"apiVersion": API_VERSION, "kind": "Mailbox", "metadata": {"name": name},
                   "spec": spec})
        }
    };
    if let (Some(pw), Some(m)) = (password, body.as_object_mut()) {
        m.insert("password".into(), Value::String(pw));
    }
    Ok(body)
}

/// The body of `apikeys create`; a tenant-admin key belongs to `tenant`.
pub fn api_key_body(args: &ApiKeyCreate, tenant: Option<&str>) -> Result<Value> {
    let role = match args.role {
        Role::Admin => "admin",
        Role::TenantAdmin => "tenant-admin",
        Role::Viewer => "viewer",
    };
    let mut body = json!({"name": args.name, "role": role});
    if args.role == Role::TenantAdmin {
        let t = tenant.ok_or_else(|| {
            Error::Usage("a tenant-admin key needs --tenant (or MCP_TENANT)".into())
        })?;
        body["tenant"] = json!(t);
    }
    if let Some(e) = &args.expires_at {
        body["expiresAt"] = json!(e);
    }
    Ok(body)
}

/// `apikeys create`: prints the new key once (to standard output, which the caller should
/// capture: it is not shown again).
///
/// # Errors
/// As [`crate::client::Client::send`].
pub fn create_api_key(session: &Session, body: Value) -> Result<()> {
    let answer = session
        .client
        .send(
            Method::POST,
            &Resource::ApiKeys.collection(None),
            &[],
            Some(Body::Json(body)),
            None,
        )?
        .body;
    match session.format {
        Some(Format::Json) => print(&output::json(&answer)),
        Some(Format::Yaml) => print(&output::yaml(&answer)),
        Some(Format::Name) => print(&format!(
            "{}\n",
            answer.get("key").and_then(Value::as_str).unwrap_or("")
        )),
        _ => {
            let key = answer.get("key").and_then(Value::as_str).unwrap_or("");
            print(&format!(
                "{} created (id {})\n{key}\n",
                output::qualified_name(Resource::ApiKeys, &answer),
                answer.get("id").map(|v| v.to_string()).unwrap_or_default()
            ));
            eprintln!("The key above is shown only now: store it (send it as X-API-Key).");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_addresses() {
        let cases = [
            ("alice@example.com", Some("alice.example.com")),
            ("Bob.Smith@Example.COM", Some("bob.smith.example.com")),
            ("o'neil+x@ex.org", Some("o-neil-x.ex.org")),
            ("@@", None),
        ];
        for (a, want) in cases {
            assert_eq!(name_from_address(a).as_deref(), want, "{a}");
        }
    }

    #[test]
    fn mailbox_bodies_from_flags() {
        let args = MailboxCreate {
            address: Some("alice@example.com".into()),
            name: None,
            display_name: Some("Alice".into()),
            aliases: vec!["a@example.com".into()],
            quota: Some("1G".into()),
            quota_messages: None,
            state: None,
            password_stdin: true,
            password_file: None,
            file: None,
            dry_run: false,
        };
        let body = mailbox_body(&args, Some("pw".into())).expect("body");
        assert_eq!(
            body,
            json!({"apiVersion": API_VERSION, "kind": "Mailbox",
                   "metadata": {"name": "alice.example.com"},
                   "spec": {"address": "alice@example.com", "displayName": "Alice",
                            "aliases": ["a@example.com"], "quota": {"storage": "1G"}},
                   "password": "pw"})
        );
    }

    #[test]
    fn api_key_bodies() {
        let args = |role| ApiKeyCreate {
            name: "ci".into(),
            role,
            expires_at: None,
        };
        assert_eq!(
            api_key_body(&args(Role::Viewer), Some("acme")).expect("viewer"),
            json!({"name": "ci", "role": "viewer"}),
            "the context's tenant does not leak into an admin or viewer key"
        );
        assert_eq!(
            api_key_body(&args(Role::TenantAdmin), Some("acme")).expect("ta"),
            json!({"name": "ci", "role": "tenant-admin", "tenant": "acme"})
        );
        assert!(matches!(
            api_key_body(&args(Role::TenantAdmin), None),
            Err(Error::Usage(_))
        ));
    }
}
