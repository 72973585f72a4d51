//! `apply -f` and `delete -f`: the objects of YAML/JSON files, written like `kubectl`
//! (docs/cli.md, "apply").
//!
//! - Order: Tenants, PluginDeployments, Pipelines, Mailboxes, MigrationJobs (file order
//!   within a kind), so that what an object references exists before it; `delete -f` runs
//!   the other way.
//! - The tenant of a namespaced object: a Mailbox's `spec.tenant`; else the Tenant whose
//!   namespace (`spec.namespace`, default `mcp-<tenant>`) is the object's
//!   `metadata.namespace`, among the server's Tenants and those in the files; else
//!   `--tenant`/`MCP_TENANT`/the context's tenant. `--tenant` naming another tenant than
//!   the object does is an error.
//! - A `v1` Secret holding the password a Mailbox of the same files references
//!   (`spec.credentials.secretRef`, key `password` by default) becomes that Mailbox's
//!   write-only `password` (the facade stores it as `<mailbox>-password`); other Secrets are
//!   skipped with a note (the facade manages no Secrets).
//! - Each object is `PUT` (server-side apply): 201 `created`; 200 `configured`, or
//!   `unchanged` when its `resourceVersion` did not move. A MigrationJob, which the facade
//!   does not replace, is created when absent and `unchanged` when its spec holds the file's.
//! - `--dry-run` sends `?dryRun=true` (the facade validates and writes nothing).

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::Body;
use crate::commands::resources::{fetch_all, print};
use crate::error::{Error, Result};
use crate::kinds::{Kind, Resource, tenant_namespace};
use crate::manifest::Document;
use crate::output::{self, Format};
use crate::session::Session;

/// An object ready to be written.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// Its kind.
    pub kind: Kind,
    /// `metadata.name`.
    pub name: String,
    /// Its tenant (a Tenant: itself).
    pub tenant: String,
    /// The request body.
    pub body: Value,
    /// Where it was read.
    pub source: String,
}

impl Planned {
    /// `mailbox.mcp.dev/alice`.
    pub fn display(&self) -> String {
        format!("{}/{}", self.kind.type_name(), self.name)
    }

    /// Its path.
    pub fn path(&self) -> Vec<String> {
        self.kind.resource().object(Some(&self.tenant), &self.name)
    }
}

/// What planning found.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// The objects to write, in order.
    pub objects: Vec<Planned>,
    /// Documents skipped, with why (printed to stderr).
    pub notes: Vec<String>,
    /// Documents in error, with why.
    pub errors: Vec<String>,
}

/// A Secret of the files: its namespace (if given) and name.
type SecretId = (Option<String>, String);

/// Tenant names by namespace.
pub type Namespaces = HashMap<String, String>;

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The passwords of the `v1` Secrets in `docs`, by (namespace, name), key by key
/// (`stringData`, and `data` base64-decoded).
fn secrets(docs: &[Document]) -> HashMap<SecretId, (String, BTreeMap<String, String>)> {
    let mut out = HashMap::new();
    for d in docs {
        let v = &d.value;
        if v.get("apiVersion").and_then(Value::as_str) != Some("v1")
            || v.get("kind").and_then(Value::as_str) != Some("Secret")
        {
            continue;
        }
        let Some(name) = str_at(v, "/metadata/name") else {
            continue;
        };
        let ns = str_at(v, "/metadata/namespace").map(str::to_owned);
        let mut keys = BTreeMap::new();
        if let Some(m) = v.get("data").and_then(Value::as_object) {
            for (k, b64) in m {
                if let Some(text) = b64
                    .as_str()
                    .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                    .and_then(|b| String::from_utf8(b).ok())
                {
                    keys.insert(k.clone(), text);
                }
            }
        }
        if let Some(m) = v.get("stringData").and_then(Value::as_object) {
            for (k, s) in m {
                if let Some(s) = s.as_str() {
                    keys.insert(k.clone(), s.to_owned());
                }
            }
        }
        out.insert((ns, name.to_owned()), (d.source.clone(), keys));
    }
    out
}

/// Plans `docs` (see the module documentation). `namespaces` maps the server's Tenants'
/// namespaces to their names; `tenant` is the `--tenant` of the command line (or the
/// environment), `fallback` the context's.
pub fn plan(
    docs: &[Document],
    namespaces: &Namespaces,
    tenant: Option<&str>,
    fallback: Option<&str>,
) -> Plan {
    let mut plan = Plan::default();
    let mut namespaces = namespaces.clone();
    for d in docs {
        if Kind::of(&d.value) == Some(Kind::Tenant)
            && let (Some(ns), Some(name)) = (
                tenant_namespace(&d.value),
                str_at(&d.value, "/metadata/name"),
            )
        {
            namespaces.insert(ns, name.to_owned());
        }
    }
    let secrets = secrets(docs);
    let mut used = std::collections::HashSet::new();

    for d in docs {
        let v = &d.value;
        let Some(kind) = Kind::of(v) else {
            let kind = v.get("kind").and_then(Value::as_str).unwrap_or("?");
            let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("?");
            if api == "v1" && kind == "Secret" {
                continue; // folded below, or noted as skipped
            }
            plan.errors.push(format!(
                "{}: kind {kind:?} of apiVersion {api:?} is not managed by the REST API \
                 (Tenant, Mailbox, Pipeline, PluginDeployment, MigrationJob of mcp.dev)",
                d.source
            ));
            continue;
        };
        let Some(name) = str_at(v, "/metadata/name").map(str::to_owned) else {
            plan.errors
                .push(format!("{}: {kind:?} without metadata.name", d.source));
            continue;
        };
        let display = format!("{}/{name}", kind.type_name());
        let namespace = str_at(v, "/metadata/namespace");
        let tenant_of = if kind == Kind::Tenant {
            Ok(name.clone())
        } else {
            resolve_tenant(v, kind, namespace, &namespaces, tenant, fallback)
        };
        let t = match tenant_of {
            Ok(t) => t,
            Err(why) => {
                plan.errors.push(format!("{display} ({}): {why}", d.source));
                continue;
            }
        };
        let mut body = v.clone();
        if kind == Kind::Mailbox
            && let Some(secret) = str_at(v, "/spec/credentials/secretRef/name")
        {
            let key = str_at(v, "/spec/credentials/secretRef/key").unwrap_or("password");
            let id = (namespace.map(str::to_owned), secret.to_owned());
            if let Some(pw) = secrets.get(&id).and_then(|(_, keys)| keys.get(key)) {
                if let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("credentials");
                }
                body["password"] = Value::String(pw.clone());
                used.insert(id);
            }
        }
        plan.objects.push(Planned {
            kind,
            name,
            tenant: t,
            body,
            source: d.source.clone(),
        });
    }
    plan.objects.sort_by_key(|o| o.kind.apply_rank());
    let mut skipped: Vec<_> = secrets
        .iter()
        .filter(|(id, _)| !used.contains(*id))
        .map(|((_, name), (source, _))| {
            format!(
                "secret/{name} ({source}) skipped: the REST API stores a Secret only as the \
                 password of a Mailbox of the same files that references it"
            )
        })
        .collect();
    skipped.sort();
    plan.notes = skipped;
    plan
}

/// The tenant of a namespaced object (see the module documentation).
fn resolve_tenant(
    v: &Value,
    kind: Kind,
    namespace: Option<&str>,
    namespaces: &Namespaces,
    flag: Option<&str>,
    fallback: Option<&str>,
) -> std::result::Result<String, String> {
    let from_spec = (kind == Kind::Mailbox)
        .then(|| str_at(v, "/spec/tenant"))
        .flatten();
    let from_ns = match namespace {
        Some(ns) => match namespaces.get(ns) {
            Some(t) => Some(t.as_str()),
            None if from_spec.is_some() => None,
            None => {
                return Err(format!(
                    "namespace {ns:?} belongs to no Tenant (a Tenant's namespace is its \
                     spec.namespace, default mcp-<tenant>)"
                ));
            }
        },
        None => None,
    };
    if let (Some(a), Some(b)) = (from_spec, from_ns)
        && a != b
    {
        return Err(format!(
            "spec.tenant {a:?} but metadata.namespace {:?} is tenant {b:?}",
            namespace.unwrap_or_default()
        ));
    }
    match (from_spec.or(from_ns), flag) {
        (Some(t), Some(f)) if t != f => {
            Err(format!("the object is in tenant {t:?}, not --tenant {f:?}"))
        }
        (Some(t), _) => Ok(t.to_owned()),
        (None, Some(f)) => Ok(f.to_owned()),
        (None, None) => fallback
            .map(str::to_owned)
            .ok_or_else(|| "no tenant: set metadata.namespace, or give --tenant".to_owned()),
    }
}

/// Whether `want` is contained in `have`: every field of an object `want` sets has the same
/// (contained) value in `have`; arrays element by element; other values equal.
pub fn contained(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| contained(wv, hv)) || wv.is_null()),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| contained(a, b))
        }
        (w, h) => w == h,
    }
}

/// What the user declares of an object: its labels, annotations and spec.
fn desired(obj: &Value) -> Value {
    json!({
        "labels": obj.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
        "annotations": obj.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
        "spec": obj.get("spec").cloned().unwrap_or(Value::Null),
    })
}

/// The outcome word of one write.
fn outcome(created: bool, prior: Option<&Value>, after: &Value, dry_run: bool) -> &'static str {
    let Some(prior) = prior else {
        return "created";
    };
    if created {
        return "created";
    }
    let same = if dry_run {
        desired(prior) == desired(after)
    } else {
        prior.pointer("/metadata/resourceVersion") == after.pointer("/metadata/resourceVersion")
    };
    if same { "unchanged" } else { "configured" }
}

/// The Tenants' namespaces of the server (fetched when some object names a namespace).
fn server_namespaces(session: &Session, docs: &[Document]) -> Result<Namespaces> {
    let needed = docs.iter().any(|d| {
        Kind::of(&d.value).is_some_and(|k| k != Kind::Tenant)
            && str_at(&d.value, "/metadata/namespace").is_some()
    });
    let mut out = Namespaces::new();
    if !needed {
        return Ok(out);
    }
    let list = fetch_all(session, Resource::Tenants, None, Vec::new())?;
    for t in output::list_items(Resource::Tenants, &list) {
        if let (Some(ns), Some(name)) = (tenant_namespace(&t), str_at(&t, "/metadata/name")) {
            out.insert(ns, name.to_owned());
        }
    }
    Ok(out)
}

/// Writes one object; its outcome and the object as the server answered.
fn apply_one(session: &Session, o: &Planned, dry_run: bool) -> Result<(&'static str, Value)> {
    let query = if dry_run {
        vec![("dryRun", "true".to_owned())]
    } else {
        Vec::new()
    };
    let prior = session.client.get_opt(&o.path())?;
    if !o.kind.applies_with_put() {
        if let Some(p) = prior {
            let want = o.body.get("spec").cloned().unwrap_or(Value::Null);
            let have = p.get("spec").cloned().unwrap_or(Value::Null);
            if contained(&want, &have) {
                return Ok(("unchanged", p));
            }
            return Err(Error::Usage(format!(
                "a {:?}'s spec cannot be changed; delete it first (mcp-cli delete -f)",
                o.kind
            )));
        }
        let a = session.client.send(
            Method::POST,
            &o.kind.resource().collection(Some(&o.tenant)),
            &query,
            Some(Body::Json(o.body.clone())),
            None,
        )?;
        return Ok(("created", a.body));
    }
    let a = session.client.send(
        Method::PUT,
        &o.path(),
        &query,
        Some(Body::Json(o.body.clone())),
        None,
    )?;
    Ok((
        outcome(a.status == 201, prior.as_ref(), &a.body, dry_run),
        a.body,
    ))
}

/// Prints the notes and planning errors of `plan`; the number of errors.
fn report_plan(plan: &Plan) -> usize {
    for n in &plan.notes {
        eprintln!("note: {n}");
    }
    for e in &plan.errors {
        eprintln!("error: {e}");
    }
    plan.errors.len()
}

/// Prints the objects `results` in `format` as one `List`.
fn print_objects(format: Format, results: Vec<Value>) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": results});
    match format {
        Format::Json => print(&output::json(&list)),
        Format::Yaml => print(&output::yaml(&list)),
        _ => {}
    }
}

/// The failure of a run with `failed` of `total` objects in error.
fn partial(failed: usize, total: usize) -> Result<()> {
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::Partial(format!(
            "{failed} of {total} objects failed"
        )))
    }
}

/// `apply -f`.
///
/// # Errors
/// [`Error::Partial`] when some object failed (each is reported on stderr); the first
/// error when the Tenants cannot be listed.
pub fn apply(
    session: &Session,
    docs: &[Document],
    flag_tenant: Option<&str>,
    fallback: Option<&str>,
    dry_run: bool,
) -> Result<()> {
    let namespaces = server_namespaces(session, docs)?;
    let plan = plan(docs, &namespaces, flag_tenant, fallback);
    let mut failed = report_plan(&plan);
    let total = plan.objects.len() + plan.errors.len();
    let mut results = Vec::new();
    let suffix = if dry_run { " (server dry run)" } else { "" };
    // Tenants a dry run "creates": the objects in them cannot be checked by the server yet.
    let mut dry_tenants = std::collections::HashSet::new();
    for o in &plan.objects {
        if dry_run && o.kind != Kind::Tenant && dry_tenants.contains(&o.tenant) {
            eprintln!(
                "note: {} ({}) not checked: its Tenant {:?} is created by this apply \
                 (dry run)",
                o.display(),
                o.source,
                o.tenant
            );
            continue;
        }
        match apply_one(session, o, dry_run) {
            Ok((word, obj)) => {
                if dry_run && o.kind == Kind::Tenant && word == "created" {
                    dry_tenants.insert(o.tenant.clone());
                }
                match session.format {
                    Some(Format::Json | Format::Yaml) => results.push(obj),
                    Some(Format::Name) => print(&format!("{}\n", o.display())),
                    _ => print(&format!("{} {word}{suffix}\n", o.display())),
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {} ({}): {e}", o.display(), o.source);
            }
        }
    }
    if let Some(f) = session.format {
        print_objects(f, results);
    }
    partial(failed, total)
}

/// `delete -f`.
///
/// # Errors
/// As [`apply`]; an object that does not exist is an error unless `ignore_not_found`.
pub fn delete(
    session: &Session,
    docs: &[Document],
    flag_tenant: Option<&str>,
    fallback: Option<&str>,
    dry_run: bool,
    ignore_not_found: bool,
) -> Result<()> {
    let namespaces = server_namespaces(session, docs)?;
    let mut plan = plan(docs, &namespaces, flag_tenant, fallback);
    // Secrets are not written, so not deleted either: no note needed.
    plan.notes.clear();
    let mut failed = report_plan(&plan);
    let total = plan.objects.len() + plan.errors.len();
    plan.objects.reverse();
    for o in &plan.objects {
        let result = if dry_run {
            session.client.get_opt(&o.path()).and_then(|found| {
                found.map(|_| ()).ok_or_else(|| {
                    Error::Problem(crate::error::Problem {
                        status: 404,
                        title: "Not Found".into(),
                        detail: Some(format!("{} not found", o.display())),
                        errors: Vec::new(),
                    })
                })
            })
        } else {
            session
                .client
                .send(Method::DELETE, &o.path(), &[], None, None)
                .map(|_| ())
        };
        match result {
            Ok(()) => {
                let suffix = if dry_run { " (dry run)" } else { "" };
                match session.format {
                    Some(Format::Name) => print(&format!("{}\n", o.display())),
                    _ => print(&format!("{} deleted{suffix}\n", o.display())),
                }
            }
            Err(Error::Problem(p)) if p.status == 404 && ignore_not_found => {}
            Err(e) => {
                failed += 1;
                eprintln!("error: {} ({}): {e}", o.display(), o.source);
            }
        }
    }
    partial(failed, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(v: Value) -> Document {
        Document {
            source: "f.yaml".into(),
            value: v,
        }
    }

    fn mailbox(name: &str, ns: Option<&str>, tenant: Option<&str>) -> Value {
        let mut m = json!({"apiVersion": "mcp.dev/v1alpha1", "kind": "Mailbox",
            "metadata": {"name": name}, "spec": {"address": format!("{name}@x")}});
        if let Some(ns) = ns {
            m["metadata"]["namespace"] = json!(ns);
        }
        if let Some(t) = tenant {
            m["spec"]["tenant"] = json!(t);
        }
        m
    }

    /// (object, --tenant, context tenant, the tenant or a part of the error).
    type TenantCase = (
        Value,
        Option<&'static str>,
        Option<&'static str>,
        std::result::Result<&'static str, &'static str>,
    );

    #[test]
    fn tenants_of_objects() {
        let server: Namespaces = [
            ("mcp-acme".to_owned(), "acme".to_owned()),
            ("mail".to_owned(), "globex".to_owned()),
        ]
        .into();
        // (object, --tenant, context tenant) -> tenant or error
        let cases: Vec<TenantCase> = vec![
            (mailbox("a", Some("mcp-acme"), None), None, None, Ok("acme")),
            (mailbox("a", Some("mail"), None), None, None, Ok("globex")),
            (mailbox("a", None, Some("acme")), None, None, Ok("acme")),
            (mailbox("a", None, None), Some("acme"), None, Ok("acme")),
            (mailbox("a", None, None), None, Some("ctx"), Ok("ctx")),
            (
                mailbox("a", Some("mcp-acme"), None),
                None,
                Some("ctx"),
                Ok("acme"),
            ),
            (mailbox("a", None, None), None, None, Err("no tenant")),
            (
                mailbox("a", Some("nowhere"), None),
                None,
                None,
                Err("belongs to no Tenant"),
            ),
            (
                mailbox("a", Some("mcp-acme"), None),
                Some("globex"),
                None,
                Err("not --tenant"),
            ),
            (
                mailbox("a", Some("mail"), Some("acme")),
                None,
                None,
                Err("spec.tenant"),
            ),
            // A namespace in the same files.
            (mailbox("a", Some("mcp-new"), None), None, None, Ok("new")),
        ];
        for (obj, flag, ctx, want) in cases {
            let docs = vec![
                doc(obj.clone()),
                doc(json!({"apiVersion": "mcp.dev/v1alpha1", "kind": "Tenant",
                    "metadata": {"name": "new"}, "spec": {"domains": ["new.example"]}})),
            ];
            let p = plan(&docs, &server, flag, ctx);
            let got = p
                .objects
                .iter()
                .find(|o| o.kind == Kind::Mailbox)
                .map(|o| o.tenant.clone())
                .ok_or_else(|| p.errors.join("; "));
            match (got, want) {
                (Ok(t), Ok(w)) => assert_eq!(t, w, "{obj}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{obj}: {e}"),
                (got, want) => panic!("{obj} {flag:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn order_kinds_and_errors() {
        let docs: Vec<Document> = [
            json!({"apiVersion": "mcp.dev/v1alpha1", "kind": "MigrationJob", "metadata": {"name": "m"}, "spec": {}}),
            mailbox("a", None, Some("t")),
            json!({"apiVersion": "mcp.dev/v1alpha1", "kind": "Pipeline", "metadata": {"name": "p"}, "spec": {}}),
            json!({"apiVersion": "mcp.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": "t"}, "spec": {}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}),
            json!({"apiVersion": "mcp.dev/v1alpha1", "kind": "Pipeline", "spec": {}}),
        ]
        .into_iter()
        .map(doc)
        .collect();
        let p = plan(&docs, &Namespaces::new(), Some("t"), None);
        let got: Vec<String> = p.objects.iter().map(Planned::display).collect();
        assert_eq!(
            got,
            [
                "tenant.mcp.dev/t",
                "pipeline.mcp.dev/p",
                "mailbox.mcp.dev/a",
                "migrationjob.mcp.dev/m"
            ]
        );
        assert_eq!(p.errors.len(), 2, "{:?}", p.errors);
        assert!(p.errors[0].contains("Deployment"));
        assert!(p.errors[1].contains("metadata.name"));
        assert_eq!(
            p.objects[0].path(),
            ["tenants", "t"],
            "a Tenant is written at /tenants/{{name}}"
        );
        assert_eq!(p.objects[2].path(), ["tenants", "t", "mailboxes", "a"]);
    }

    #[test]
    fn secrets_become_mailbox_passwords() {
        let mut m = mailbox("alice", Some("mcp-acme"), None);
        m["spec"]["credentials"] =
            json!({"secretRef": {"name": "alice-credentials", "key": "password"}});
        let mut b = mailbox("bob", Some("mcp-acme"), None);
        b["spec"]["credentials"] = json!({"secretRef": {"name": "bob-credentials"}});
        let docs: Vec<Document> = [
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "alice-credentials", "namespace": "mcp-acme"},
                "stringData": {"password": "alice-pw"}}),
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "bob-credentials", "namespace": "mcp-acme"},
                "data": {"password": "Ym9iLXB3"}}),
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "unrelated", "namespace": "mcp-acme"},
                "stringData": {"password": "x"}}),
            m,
            b,
        ]
        .into_iter()
        .map(doc)
        .collect();
        let ns: Namespaces = [("mcp-acme".to_owned(), "acme".to_owned())].into();
        let p = plan(&docs, &ns, None, None);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.objects.len(), 2);
        assert_eq!(p.objects[0].body["password"], "alice-pw");
        assert!(p.objects[0].body["spec"].get("credentials").is_none());
        assert_eq!(p.objects[1].body["password"], "bob-pw", "data is base64");
        assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
        assert!(p.notes[0].starts_with("secret/unrelated"));
    }

    #[test]
    fn outcomes() {
        let obj = |rv: &str, spec: Value| json!({"metadata": {"name": "a", "resourceVersion": rv}, "spec": spec});
        let a = obj("1", json!({"x": 1}));
        let cases = [
            (true, None, obj("1", json!({})), false, "created"),
            (
                false,
                Some(a.clone()),
                obj("1", json!({"x": 1})),
                false,
                "unchanged",
            ),
            (
                false,
                Some(a.clone()),
                obj("2", json!({"x": 1})),
                false,
                "configured",
            ),
            (
                false,
                Some(a.clone()),
                obj("1", json!({"x": 1})),
                true,
                "unchanged",
            ),
            (
                false,
                Some(a.clone()),
                obj("1", json!({"x": 2})),
                true,
                "configured",
            ),
            (false, None, obj("1", json!({})), true, "created"),
        ];
        for (created, prior, after, dry, want) in cases {
            assert_eq!(
                outcome(created, prior.as_ref(), &after, dry),
                want,
                "{after} dry={dry}"
            );
        }
    }

    #[test]
    fn containment() {
        let cases = [
            (json!({"a": 1}), json!({"a": 1, "b": 2}), true),
            (
                json!({"a": {"b": [1, {"c": 2}]}}),
                json!({"a": {"b": [1, {"c": 2, "d": 3}]}}),
                true,
            ),
            (json!({"a": 1}), json!({"a": 2}), false),
            (json!({"a": [1]}), json!({"a": [1, 2]}), false),
            (json!({"a": null}), json!({}), true),
            (json!({"a": 1}), json!({}), false),
        ];
        for (want, have, ok) in cases {
            assert_eq!(contained(&want, &have), ok, "{want} in {have}");
        }
    }
}
