//! Output formats (`-o table|json|yaml|name`) and the table columns of each collection
//! (docs/cli.md, "Output").
//!
//! Every function returns the text to print, so that the formats are tested without a
//! terminal.

use chrono::{DateTime, Utc};
use clap::ValueEnum;
use comfy_table::{Table, presets};
use serde_json::Value;

use crate::kinds::{Resource, tenant_namespace};

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns (the default of list and get).
    Table,
    /// The objects as the server sent them, pretty-printed JSON.
    Json,
    /// The same as YAML.
    Yaml,
    /// `<type>/<name>` per object (`mailbox.mcp.dev/alice`).
    Name,
}

/// `value` as pretty JSON, with a final newline.
pub fn json(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

/// `value` as a YAML document.
pub fn yaml(value: &Value) -> String {
    yaml_serde::to_string(value).unwrap_or_else(|e| format!("# not representable as YAML: {e}\n"))
}

/// The name of an object of `resource`: `metadata.name`, a policy's or API key's `name`,
/// a quarantine entry's `id`.
pub fn object_name(resource: Resource, obj: &Value) -> String {
    let found = match resource {
        Resource::Policies | Resource::ApiKeys => obj.get("name"),
        Resource::Quarantine => obj.get("id"),
        Resource::Plugins if obj.get("metadata").is_none() => obj.get("name"),
        _ => obj.pointer("/metadata/name"),
    };
    found.map(text).unwrap_or_default()
}

/// `<type>/<name>` of an object.
pub fn qualified_name(resource: Resource, obj: &Value) -> String {
    let ty = match resource {
        // A built-in plugin is not a PluginDeployment.
        Resource::Plugins if obj.get("metadata").is_none() => "plugin",
        r => r.type_name(),
    };
    format!("{ty}/{}", object_name(resource, obj))
}

/// A JSON value as a table cell: strings bare, arrays comma-joined, absent as `-`.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn at(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer).map_or_else(|| "-".into(), text)
}

fn count(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map_or_else(|| "0".into(), |a| a.len().to_string())
}

/// The age of an RFC 3339 time at `now`, as `kubectl` shows it (`45s`, `12m`, `5h`, `3d`,
/// `2y`); `-` when absent or unreadable.
pub fn age(time: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(t) = time.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) else {
        return "-".into();
    };
    let s = (now - t.with_timezone(&Utc)).num_seconds().max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 120 * 60 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s if s < 2 * 365 * 86400 => format!("{}d", s / 86400),
        s => format!("{}y", s / (365 * 86400)),
    }
}

/// The header of `resource`'s table.
pub fn columns(resource: Resource) -> &'static [&'static str] {
    match resource {
        Resource::Tenants => &["NAME", "DOMAINS", "NAMESPACE", "AGE"],
        Resource::Mailboxes => &["NAME", "ADDRESS", "STATE", "QUOTA", "AGE"],
        Resource::Pipelines => &["NAME", "SCOPE", "STAGES", "STEPS", "AGE"],
        Resource::Plugins => &["NAME", "TYPE", "STAGES", "STATE", "AGE"],
        Resource::Policies => &["NAME", "SCOPE", "STAGES", "RULES", "DRY-RUN"],
        Resource::ApiKeys => &[
            "ID",
            "NAME",
            "PREFIX",
            "ROLE",
            "TENANT",
            "ACTIVE",
            "EXPIRES",
            "LAST-USED",
            "AGE",
        ],
        Resource::Quarantine => &["ID", "MAILBOX", "REASON", "STAGE", "SIZE", "AGE"],
        Resource::MigrationJobs => &["NAME", "SOURCE", "USERS", "PHASE", "AGE"],
    }
}

/// The cells of one object in `resource`'s table.
pub fn row(resource: Resource, obj: &Value, now: DateTime<Utc>) -> Vec<String> {
    let created = |p: &str| age(obj.pointer(p).and_then(Value::as_str), now);
    let name = object_name(resource, obj);
    match resource {
        Resource::Tenants => vec![
            name,
            at(obj, "/spec/domains"),
            tenant_namespace(obj).unwrap_or_else(|| "-".into()),
            created("/metadata/creationTimestamp"),
        ],
        Resource::Mailboxes => vec![
            name,
            at(obj, "/spec/address"),
            obj.pointer("/spec/state")
                .map_or_else(|| "Active".into(), text),
            at(obj, "/spec/quota/storage"),
            created("/metadata/creationTimestamp"),
        ],
        Resource::Pipelines => vec![
            name,
            at(obj, "/spec/scope/type"),
            at(obj, "/spec/stages"),
            count(obj, "/spec/steps"),
            created("/metadata/creationTimestamp"),
        ],
        Resource::Plugins if obj.get("metadata").is_none() => vec![
            name,
            "builtin".into(),
            at(obj, "/stages"),
            "Enabled".into(),
            "-".into(),
        ],
        Resource::Plugins => vec![
            name,
            "deployment".into(),
            at(obj, "/spec/stages"),
            if obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                "Suspended".into()
            } else {
                "Enabled".into()
            },
            created("/metadata/creationTimestamp"),
        ],
        Resource::Policies => vec![
            name,
            at(obj, "/scope/type"),
            at(obj, "/stages"),
            count(obj, "/rules"),
            at(obj, "/dryRun"),
        ],
        Resource::ApiKeys => vec![
            at(obj, "/id"),
            name,
            obj.get("prefix")
                .and_then(Value::as_str)
                .map_or_else(|| "-".into(), |p| format!("mcp_{p}_…")),
            at(obj, "/role"),
            at(obj, "/tenant"),
            at(obj, "/active"),
            at(obj, "/expiresAt"),
            at(obj, "/lastUsedAt"),
            created("/createdAt"),
        ],
        Resource::Quarantine => vec![
            name,
            obj.get("mailbox")
                .filter(|m| !m.is_null())
                .or_else(|| obj.get("recipient"))
                .map_or_else(|| "-".into(), text),
            at(obj, "/reason"),
            at(obj, "/stage"),
            at(obj, "/size"),
            created("/createdAt"),
        ],
        Resource::MigrationJobs => vec![
            name,
            at(obj, "/spec/source/host"),
            count(obj, "/spec/users"),
            at(obj, "/status/phase"),
            created("/metadata/creationTimestamp"),
        ],
    }
}

/// The rows of a list answer of `resource`: its `items` (for plugins, the built-in plugins
/// first).
pub fn list_items(resource: Resource, list: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    if resource == Resource::Plugins
        && let Some(b) = list.get("builtin").and_then(Value::as_array)
    {
        out.extend(b.iter().cloned());
    }
    if let Some(items) = list.get("items").and_then(Value::as_array) {
        out.extend(items.iter().cloned());
    }
    out
}

/// `objects` as a `kubectl`-style table: upper-case header, columns three spaces apart, no
/// borders, no trailing blanks.
pub fn table(resource: Resource, objects: &[Value], now: DateTime<Utc>) -> String {
    let mut t = Table::new();
    t.load_style(presets::NOTHING);
    t.set_header(columns(resource).to_vec());
    for obj in objects {
        t.add_row(row(resource, obj, now));
    }
    for c in t.column_iter_mut() {
        c.set_padding((0, 3));
    }
    let mut s = t
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    s.push('\n');
    s
}

/// A list answer of `resource` in `format`. JSON and YAML show the answer as the server
/// sent it (pages merged).
pub fn list(resource: Resource, answer: &Value, format: Format, now: DateTime<Utc>) -> String {
    let items = list_items(resource, answer);
    match format {
        Format::Json => json(answer),
        Format::Yaml => yaml(answer),
        Format::Name => items
            .iter()
            .map(|o| qualified_name(resource, o) + "\n")
            .collect(),
        Format::Table => table(resource, &items, now),
    }
}

/// One object of `resource` in `format`.
pub fn object(resource: Resource, obj: &Value, format: Format, now: DateTime<Utc>) -> String {
    match format {
        Format::Json => json(obj),
        Format::Yaml => yaml(obj),
        Format::Name => qualified_name(resource, obj) + "\n",
        Format::Table => table(resource, std::slice::from_ref(obj), now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn ages_as_kubectl() {
        let cases = [
            (Some("2026-11-30T11:59:15Z"), "45s"),
            (Some("2026-11-30T11:00:00Z"), "60m"),
            (Some("2026-11-30T02:00:00Z"), "10h"),
            (Some("2026-11-27T12:00:00Z"), "3d"),
            (Some("2023-11-30T12:00:00Z"), "3y"),
            (Some("2026-11-30T12:00:10Z"), "0s"),
            (Some("yesterday"), "-"),
            (None, "-"),
        ];
        for (t, want) in cases {
            assert_eq!(age(t, now()), want, "{t:?}");
        }
    }

    #[test]
    fn rows_per_collection() {
        let ts = "2026-11-30T11:00:00Z";
        let cases: Vec<(Resource, Value, Vec<&str>)> = vec![
            (
                Resource::Mailboxes,
                json!({"metadata": {"name": "alice", "creationTimestamp": ts},
                       "spec": {"address": "alice@example.com", "quota": {"storage": "1G"}}}),
                vec!["alice", "alice@example.com", "Active", "1G", "60m"],
            ),
            (
                Resource::Mailboxes,
                json!({"metadata": {"name": "bob"}, "spec": {"address": "b@x", "state": "Suspended"}}),
                vec!["bob", "b@x", "Suspended", "-", "-"],
            ),
            (
                Resource::Tenants,
                json!({"metadata": {"name": "acme"}, "spec": {"domains": ["a.example", "b.example"]}}),
                vec!["acme", "a.example,b.example", "mcp-acme", "-"],
            ),
            (
                Resource::Pipelines,
                json!({"metadata": {"name": "p"}, "spec": {"scope": {"type": "TenantDefault"},
                       "stages": ["deliver"], "steps": [{}, {}]}}),
                vec!["p", "TenantDefault", "deliver", "2", "-"],
            ),
            (
                Resource::Plugins,
                json!({"name": "dlp", "stages": ["deliver", "append"], "capabilities": []}),
                vec!["dlp", "builtin", "deliver,append", "Enabled", "-"],
            ),
            (
                Resource::Plugins,
                json!({"metadata": {"name": "tagger"}, "spec": {"stages": ["deliver"], "suspend": true}}),
                vec!["tagger", "deployment", "deliver", "Suspended", "-"],
            ),
            (
                Resource::Policies,
                json!({"name": "cards", "scope": {"type": "TenantDefault"}, "stages": ["deliver"],
                       "dryRun": false, "rules": [{}]}),
                vec!["cards", "TenantDefault", "deliver", "1", "false"],
            ),
            (
                Resource::ApiKeys,
                json!({"id": 3, "name": "ci", "prefix": "abcdefgh", "role": "viewer",
                       "active": true, "createdAt": ts}),
                vec![
                    "3",
                    "ci",
                    "mcp_abcdefgh_…",
                    "viewer",
                    "-",
                    "true",
                    "-",
                    "-",
                    "60m",
                ],
            ),
            (
                Resource::Quarantine,
                json!({"id": "00ab", "mailbox": null, "recipient": "a@x", "reason": "dlp",
                       "stage": "deliver", "size": 120, "createdAt": ts}),
                vec!["00ab", "a@x", "dlp", "deliver", "120", "60m"],
            ),
            (
                Resource::MigrationJobs,
                json!({"metadata": {"name": "m"}, "spec": {"source": {"host": "imap.x"},
                       "users": [{}, {}, {}]}, "status": {"phase": "Pending"}}),
                vec!["m", "imap.x", "3", "Pending", "-"],
            ),
        ];
        for (resource, obj, want) in cases {
            assert_eq!(row(resource, &obj, now()), want, "{resource:?} {obj}");
            assert_eq!(
                columns(resource).len(),
                want.len(),
                "{resource:?}: header and row widths"
            );
        }
    }

    #[test]
    fn every_collection_has_a_row_as_wide_as_its_header() {
        for r in Resource::ALL {
            assert_eq!(row(r, &json!({}), now()).len(), columns(r).len(), "{r:?}");
        }
    }

    #[test]
    fn formats_of_a_list() {
        let answer = json!({"items": [
            {"metadata": {"name": "alice"}, "spec": {"address": "alice@example.com"}},
            {"metadata": {"name": "bob"}, "spec": {"address": "bob@example.com"}}],
            "metadata": {}});
        let table = list(Resource::Mailboxes, &answer, Format::Table, now());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("NAME    ADDRESS"), "{table}");
        assert!(
            lines[1].starts_with("alice   alice@example.com   Active"),
            "{table}"
        );
        assert!(
            lines.iter().all(|l| l == &l.trim_end()),
            "no trailing blanks"
        );

        let name = list(Resource::Mailboxes, &answer, Format::Name, now());
        assert_eq!(name, "mailbox.mcp.dev/alice\nmailbox.mcp.dev/bob\n");

        let j: Value =
            serde_json::from_str(&list(Resource::Mailboxes, &answer, Format::Json, now()))
                .expect("json");
        assert_eq!(j, answer);
        let y: Value =
            yaml_serde::from_str(&list(Resource::Mailboxes, &answer, Format::Yaml, now()))
                .expect("yaml");
        assert_eq!(y, answer);
    }

    #[test]
    fn plugin_lists_show_builtins_first() {
        let answer = json!({"builtin": [{"name": "dlp", "stages": ["deliver"]}],
            "items": [{"metadata": {"name": "tagger"}, "spec": {}}], "metadata": {}});
        assert_eq!(
            list(Resource::Plugins, &answer, Format::Name, now()),
            "plugin/dlp\nplugindeployment.mcp.dev/tagger\n"
        );
    }
}
