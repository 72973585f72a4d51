//! The resource store of `mcp standalone`: the [`Backend`] of the REST API (docs/rest-api.md,
//! "Standalone backend").
//!
//! Two directories hold the resources: `--resources DIR` (read-only over REST: a write
//! answers 409 naming the file) and `DATA/resources/`, which the REST API owns: one YAML file
//! per resource (`<kind>.<namespace>.<name>.yaml`, `_` for cluster-scoped kinds), written
//! atomically (temporary file, fsync, rename, fsync of the directory). Both are read
//! together at start-up ([`apply::read_dirs`]) and after every REST write the resulting set
//! is validated by the same code as the YAML directory ([`apply::desired_accounts`],
//! [`apply::tenant_quotas`], the pipeline compiler), so REST and YAML give the same verdicts.
//! A write that passes is written to disk and then applied to the metadata store at once
//! ([`apply::apply_one`]; deletes retain or delete the account per `spec.retention`), so an
//! IMAP LOGIN works as soon as the answer arrives; Pipelines and PluginDeployments are picked
//! up by the pipeline watcher within about a second.
//!
//! `metadata.resourceVersion` of a REST-written object is a counter of the store, persisted in
//! `DATA/resources/.resource-version`, that grows on every write; objects of `--resources`
//! have version `0` (they cannot be written through the API). MigrationJobs are kept apart in
//! `DATA/resources/migrationjobs/`: standalone mode has no migration worker, so they are only
//! stored (their status says so), and the YAML directory still refuses them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use futures::future::BoxFuture;
use mcp_api::backend::{
    Backend, BackendError, BuiltinPluginInfo, IfMatch, Kind, ListQuery, Outcome, Page, Versioned,
    Write, WriteMode, Written,
};
use mcp_api::problem::FieldError;
use mcp_crds::dataplane::{QuarantineEntry, QuarantineList, ReleaseOutcome};
use mcp_crds::mailbox::Retention;
use mcp_crds::{Resource, Tenant};
use serde_json::{Value, json};

use super::apply::{self, ApplyError, DesiredAccount, DigestKey, ResourceSet};
use crate::plugin_host::PluginHost;
use crate::store::{
    BlobStore, MetadataStore, Quarantine, QuarantineError, QuarantineId, QuarantineQuery,
    StoreError,
};

/// Name of the REST API's directory inside the data directory.
pub const REST_DIR: &str = "resources";
/// The counter file, inside [`REST_DIR`].
pub const COUNTER_FILE: &str = ".resource-version";
/// The MigrationJobs' directory, inside [`REST_DIR`].
pub const MIGRATION_DIR: &str = "migrationjobs";

/// (kind, namespace or `""`, name).
type Key = (Kind, String, String);

/// One resource and where it lives.
#[derive(Clone, Debug)]
struct Entry {
    /// Its file.
    path: PathBuf,
    /// From `--resources`: not writable over REST.
    read_only: bool,
    /// The typed resource.
    resource: Resource,
    /// As JSON (Secrets: as written, `stringData`); `metadata.resourceVersion` set.
    object: Value,
}

impl Entry {
    fn version(&self) -> String {
        self.object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("0")
            .to_owned()
    }

    fn labels(&self) -> BTreeMap<String, String> {
        self.object
            .pointer("/metadata/labels")
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, Default)]
struct State {
    entries: BTreeMap<Key, Entry>,
    counter: u64,
}

impl State {
    /// The Tenant named `name`.
    fn tenant(&self, name: &str) -> Option<&Tenant> {
        match &self
            .entries
            .get(&(Kind::Tenant, String::new(), name.to_owned()))?
            .resource
        {
            Resource::Tenant(t) => Some(t),
            _ => None,
        }
    }

    /// The tenant owning `namespace`.
    fn tenant_of_namespace(&self, namespace: &str) -> Option<String> {
        self.entries.values().find_map(|e| match &e.resource {
            Resource::Tenant(t) if apply::tenant_namespace(t) == namespace => {
                t.metadata.name.clone()
            }
            _ => None,
        })
    }

    /// The tenant an entry belongs to.
    fn tenant_of(&self, key: &Key, e: &Entry) -> Option<String> {
        match &e.resource {
            Resource::Tenant(_) => Some(key.2.clone()),
            Resource::Mailbox(m) => Some(m.spec.tenant.clone()),
            _ => self.tenant_of_namespace(&key.1),
        }
    }
}

fn kind_of(r: &Resource) -> Kind {
    match r {
        Resource::Tenant(_) => Kind::Tenant,
        Resource::Mailbox(_) => Kind::Mailbox,
        Resource::Secret(_) => Kind::Secret,
        Resource::Pipeline(_) => Kind::Pipeline,
        Resource::PluginDeployment(_) => Kind::PluginDeployment,
        Resource::MigrationJob(_) => Kind::MigrationJob,
    }
}

/// (namespace, name) of a resource as read.
fn ident(r: &Resource) -> (String, String) {
    let (ns, name) = match r {
        Resource::Tenant(t) => (None, t.metadata.name.clone()),
        Resource::Mailbox(m) => (m.metadata.namespace.clone(), m.metadata.name.clone()),
        Resource::Pipeline(p) => (p.metadata.namespace.clone(), p.metadata.name.clone()),
        Resource::PluginDeployment(p) => (p.metadata.namespace.clone(), p.metadata.name.clone()),
        Resource::MigrationJob(m) => (m.metadata.namespace.clone(), m.metadata.name.clone()),
        Resource::Secret(s) => (s.namespace.clone(), Some(s.name.clone())),
    };
    (ns.unwrap_or_default(), name.unwrap_or_default())
}

/// The JSON of a resource read from a file (Secrets: name, namespace and keys only).
fn object_of(r: &Resource) -> Value {
    let v = match r {
        Resource::Tenant(t) => serde_json::to_value(t),
        Resource::Mailbox(m) => serde_json::to_value(m),
        Resource::Pipeline(p) => serde_json::to_value(p),
        Resource::PluginDeployment(p) => serde_json::to_value(p),
        Resource::MigrationJob(m) => serde_json::to_value(m),
        Resource::Secret(s) => Ok(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": s.name, "namespace": s.namespace},
            "stringData": s.data,
        })),
    };
    v.unwrap_or(Value::Null)
}

/// A typed resource from its JSON (the parser of the YAML directory: JSON is YAML).
fn resource_of(object: &Value) -> Result<Resource, String> {
    let mut rs = Resource::parse_stream(&yaml_safe_json(object)).map_err(|e| e.to_string())?;
    match (rs.pop(), rs.is_empty()) {
        (Some(r), true) => Ok(r),
        _ => Err("not exactly one resource".into()),
    }
}

/// `object` as JSON text that a YAML parser reads back as the same value. serde_json leaves
/// DEL, the C1 controls, U+2028/U+2029 and U+FEFF/U+FFFE/U+FFFF raw in strings; YAML refuses
/// some of them unescaped and reads others as line breaks (NEL, LS, PS), so a valid JSON
/// string (a `displayName` with U+0085) would fail or change. They only occur inside JSON
/// strings, where `\uXXXX` means the same in JSON and in a YAML double-quoted scalar.
fn yaml_safe_json(object: &Value) -> String {
    let text = object.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
        ) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn file_name(kind: Kind, namespace: &str, name: &str) -> String {
    let ns = if namespace.is_empty() { "_" } else { namespace };
    format!("{}.{ns}.{name}.yaml", kind.name().to_lowercase())
}

fn unavailable(e: impl std::fmt::Display) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename), mode 0600.
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::tls::write_atomically(path, bytes, 0o600)
}

/// Writes the counter, then `files`, removes `removed`, and syncs the directories.
fn write_files(
    dir: &Path,
    counter: u64,
    files: &[(PathBuf, String)],
    removed: &[PathBuf],
) -> std::io::Result<()> {
    write_file(&dir.join(COUNTER_FILE), format!("{counter}\n").as_bytes())?;
    for (path, yaml) in files {
        write_file(path, yaml.as_bytes())?;
    }
    for path in removed {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    sync_dir(dir)?;
    sync_dir(&dir.join(MIGRATION_DIR))
}

/// Makes renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// What the standalone resource store needs from the server.
#[derive(Clone, Debug)]
pub struct Stores {
    /// The metadata store (accounts, quarantine).
    pub meta: MetadataStore,
    /// The blob store (quarantined messages).
    pub blobs: BlobStore,
    /// The plugin host (to plan PluginDeployments when validating Pipelines).
    pub plugins: Arc<PluginHost>,
}

/// The standalone [`Backend`]: `--resources` (read-only) plus `DATA/resources/`.
pub struct ResourceStore {
    rest_dir: PathBuf,
    key: DigestKey,
    stores: Stores,
    state: RwLock<State>,
    writer: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ResourceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceStore")
            .field("rest_dir", &self.rest_dir)
            .finish_non_exhaustive()
    }
}

/// Reads the resources of `resources` and of `DATA/resources/` (created if missing).
///
/// # Errors
/// [`ApplyError`] naming the file: unreadable, unparsable, a resource defined twice.
pub fn read_all(resources: &Path, data_dir: &Path) -> Result<(ResourceSet, Loaded), ApplyError> {
    let rest_dir = data_dir.join(REST_DIR);
    let migrations = rest_dir.join(MIGRATION_DIR);
    std::fs::create_dir_all(&migrations).map_err(|source| ApplyError::Read {
        path: migrations.clone(),
        source,
    })?;
    let mut state = State::default();
    let mut set = ResourceSet::default();
    let counter = match std::fs::read_to_string(rest_dir.join(COUNTER_FILE)) {
        Ok(t) => t.trim().parse::<u64>().unwrap_or(0),
        Err(_) => 0,
    };
    state.counter = counter;
    for (dir, read_only) in [(resources, true), (rest_dir.as_path(), false)] {
        for (path, r) in apply::read_files(dir)? {
            insert_read(&mut state, &path, read_only, r.clone())?;
            set.push(path, r)?;
        }
    }
    for (path, r) in apply::read_files(&migrations)? {
        if !matches!(r, Resource::MigrationJob(_)) {
            return Err(ApplyError::Unsupported {
                path,
                kind: r.kind(),
                name: ident(&r).1,
            });
        }
        insert_read(&mut state, &path, false, r)?;
    }
    Ok((set, Loaded { state, rest_dir }))
}

/// Adds a resource read from `path` to `state`.
fn insert_read(
    state: &mut State,
    path: &Path,
    read_only: bool,
    r: Resource,
) -> Result<(), ApplyError> {
    let kind = kind_of(&r);
    let (ns, name) = ident(&r);
    // A file the REST API wrote holds one resource, as the API wrote it: keep its JSON, so
    // fields the typed resource does not carry (yet) survive a restart.
    let raw = (!read_only)
        .then(|| std::fs::read_to_string(path).ok())
        .flatten()
        .and_then(|t| yaml_serde::from_str::<Value>(&t).ok())
        .filter(|v| v.get("metadata").is_some() && v.get("kind").is_some());
    let mut object = raw.unwrap_or_else(|| object_of(&r));
    if let Some(v) = object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.parse::<u64>().ok())
    {
        state.counter = state.counter.max(v);
    }
    if read_only && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String("0".into()));
    }
    let key = (kind, ns, name.clone());
    if let Some(prev) = state.entries.get(&key) {
        return Err(ApplyError::Invalid {
            path: path.to_owned(),
            kind: r.kind(),
            name,
            field: "metadata.name",
            message: format!("already defined in {}", prev.path.display()),
        });
    }
    state.entries.insert(
        key,
        Entry {
            path: path.to_owned(),
            read_only,
            resource: r,
            object,
        },
    );
    Ok(())
}

/// The resources read by [`read_all`], to open a [`ResourceStore`] with.
#[derive(Debug)]
pub struct Loaded {
    state: State,
    rest_dir: PathBuf,
}

impl ResourceStore {
    /// The store over `loaded`, applying to `stores` with digests keyed by `key`.
    pub fn new(loaded: Loaded, key: DigestKey, stores: Stores) -> Self {
        Self {
            rest_dir: loaded.rest_dir,
            key,
            stores,
            state: RwLock::new(loaded.state),
            writer: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self) -> State {
        match self.state.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        match self.state.read() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }

    fn replace(&self, state: State) {
        match self.state.write() {
            Ok(mut g) => *g = state,
            Err(p) => *p.into_inner() = state,
        }
    }

    /// The namespace of an object of `kind` in `tenant`, checking that the tenant exists.
    fn namespace(state: &State, kind: Kind, tenant: &str) -> Result<String, BackendError> {
        if kind == Kind::Tenant {
            return Ok(String::new());
        }
        state
            .tenant(tenant)
            .map(apply::tenant_namespace)
            .ok_or_else(|| BackendError::NotFound(format!("tenant {tenant:?} not found")))
    }

    /// Validates `entries` with the YAML directory's code; `focus` (the written objects) go
    /// last, so that a clash is reported on them. Returns the accounts the Mailboxes ask
    /// for.
    fn validate(
        &self,
        entries: &BTreeMap<Key, Entry>,
        focus: &[Key],
        pipelines: bool,
    ) -> Result<Vec<DesiredAccount>, Failure> {
        let mut set = ResourceSet::default();
        let mut ordered: Vec<(&Key, &Entry)> = entries
            .iter()
            .filter(|(k, _)| k.0 != Kind::MigrationJob && !focus.contains(k))
            .collect();
        ordered.sort_by(|a, b| (!a.1.read_only, &a.1.path).cmp(&(!b.1.read_only, &b.1.path)));
        ordered.extend(focus.iter().filter_map(|k| entries.get_key_value(k)));
        for (_, e) in &ordered {
            set.push(e.path.clone(), e.resource.clone())
                .map_err(|e| self.apply_error(e, focus))?;
        }
        let accounts =
            apply::desired_accounts(&set, &self.key).map_err(|e| self.apply_error(e, focus))?;
        apply::tenant_quotas(&set).map_err(|e| self.apply_error(e, focus))?;
        if pipelines {
            let plan = self
                .stores
                .plugins
                .plan(&set.plugin_deployments(), true)
                .map_err(|e| {
                    clash(
                        focus,
                        Kind::PluginDeployment,
                        &e.name,
                        "spec",
                        &e.message,
                        set.plugin_deployment_file(&e.namespace, &e.name),
                    )
                })?;
            crate::pipeline::compile::compile(&set.pipelines(), &|ns| set.tenant_of(ns), &plan)
                .map_err(|e| {
                    clash(
                        focus,
                        Kind::Pipeline,
                        &e.name,
                        &e.field,
                        &e.message,
                        set.pipeline_file(&e.namespace, &e.name),
                    )
                })?;
        }
        Ok(accounts)
    }

    fn apply_error(&self, e: ApplyError, focus: &[Key]) -> Failure {
        match e {
            ApplyError::Invalid {
                path,
                kind,
                name,
                field,
                message,
            } => {
                let kind = match kind {
                    "Tenant" => Kind::Tenant,
                    "Mailbox" => Kind::Mailbox,
                    "Secret" => Kind::Secret,
                    "Pipeline" => Kind::Pipeline,
                    _ => Kind::PluginDeployment,
                };
                clash(focus, kind, &name, field, &message, Some(&path))
            }
            e @ ApplyError::Unsupported { .. } => Failure {
                on: None,
                error: BackendError::invalid("kind", e.to_string()),
            },
            other => Failure {
                on: None,
                error: unavailable(other),
            },
        }
    }

    /// Writes the files of `changed` (upserts) and removes `removed`, after the counter, on
    /// a blocking thread (each file is fsynced).
    async fn persist(
        &self,
        counter: u64,
        changed: &[&Entry],
        removed: &[&Entry],
    ) -> Result<(), BackendError> {
        let mut files = Vec::with_capacity(changed.len());
        for e in changed {
            let yaml = yaml_serde::to_string(&e.object).map_err(unavailable)?;
            files.push((e.path.clone(), yaml));
        }
        let removed: Vec<PathBuf> = removed.iter().map(|e| e.path.clone()).collect();
        let dir = self.rest_dir.clone();
        tokio::task::spawn_blocking(move || write_files(&dir, counter, &files, &removed))
            .await
            .map_err(unavailable)?
            .map_err(unavailable)
    }

    /// Applies the accounts of `accounts` selected by `which` to the metadata store.
    async fn apply_accounts(
        &self,
        accounts: &[DesiredAccount],
        which: impl Fn(&DesiredAccount) -> bool,
    ) -> Result<(), BackendError> {
        for a in accounts.iter().filter(|a| which(a)) {
            apply::apply_one(&self.stores.meta, a)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// The entry to store for `object` (kind, namespace, name given), built on `old`.
    fn entry_for(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        mut object: Value,
        old: Option<&Entry>,
        version: u64,
    ) -> Result<Entry, BackendError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let old_meta = old.and_then(|o| o.object.get("metadata")).cloned();
        let old_spec = old.and_then(|o| o.object.get("spec")).cloned();
        let spec_changed = old_spec.as_ref() != object.get("spec");
        let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
            return Err(BackendError::invalid("metadata", "must be an object"));
        };
        if !namespace.is_empty() {
            meta.insert("namespace".into(), Value::String(namespace.to_owned()));
        }
        let old_field = |k: &str| old_meta.as_ref().and_then(|m| m.get(k)).cloned();
        if kind != Kind::Secret {
            let generation = old_field("generation")
                .and_then(|g| g.as_i64())
                .unwrap_or(0)
                + i64::from(spec_changed || old.is_none());
            meta.insert("generation".into(), json!(generation));
            meta.insert(
                "creationTimestamp".into(),
                old_field("creationTimestamp").unwrap_or(Value::String(now)),
            );
            meta.insert(
                "uid".into(),
                old_field("uid")
                    .unwrap_or_else(|| Value::String(format!("{:032x}", rand::random::<u128>()))),
            );
        }
        meta.insert("resourceVersion".into(), Value::String(version.to_string()));
        let resource = resource_of(&object).map_err(|m| BackendError::invalid("spec", m))?;
        let dir = if kind == Kind::MigrationJob {
            self.rest_dir.join(MIGRATION_DIR)
        } else {
            self.rest_dir.clone()
        };
        Ok(Entry {
            path: dir.join(file_name(kind, namespace, name)),
            read_only: false,
            resource,
            object,
        })
    }

    /// Checks `w` against `state` (tenant, existence, read-only, precondition, immutable
    /// fields) and builds its entries at `version`; `None` when it changes nothing.
    fn prepare(&self, state: &State, w: &Write, version: u64) -> Result<Prepared, BackendError> {
        if w.kind == Kind::Secret {
            return Err(BackendError::invalid(
                "kind",
                "Secrets are written with their Mailbox",
            ));
        }
        let namespace = Self::namespace(state, w.kind, &w.tenant)?;
        let name = w
            .object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let key: Key = (w.kind, namespace.clone(), name.clone());
        let old = state.entries.get(&key);
        if let Some(o) = old {
            if w.mode == WriteMode::Create {
                return Err(BackendError::Conflict(format!(
                    "{} {name:?} already exists{}",
                    w.kind.name(),
                    if o.read_only {
                        format!(" (defined in {})", o.path.display())
                    } else {
                        String::new()
                    }
                )));
            }
            if o.read_only {
                return Err(read_only(w.kind, &name, &o.path));
            }
        }
        if let WriteMode::Apply(Some(pre)) = &w.mode
            && !pre.holds(old.map(Entry::version).as_deref())
        {
            return Err(precondition(w.kind, &name, old));
        }
        if let Some(o) = old {
            immutable(w.kind, &o.object, &w.object)?;
        }
        let mut entries = Vec::new();
        for s in &w.secrets {
            let sname = s
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let skey: Key = (Kind::Secret, namespace.clone(), sname.clone());
            for k in [&skey, &(Kind::Secret, String::new(), sname.clone())] {
                if let Some(e) = state.entries.get(k)
                    && e.read_only
                {
                    return Err(read_only(Kind::Secret, &sname, &e.path));
                }
            }
            let old_secret = state.entries.get(&skey);
            if old_secret.is_some_and(|e| e.object.get("stringData") == s.get("stringData")) {
                continue;
            }
            let e = self.entry_for(
                Kind::Secret,
                &namespace,
                &sname,
                s.clone(),
                old_secret,
                version,
            )?;
            entries.push((skey, e));
        }
        if entries.is_empty()
            && let Some(o) = old.filter(|o| same_desired(&o.object, &w.object))
        {
            return Ok(Prepared {
                key: key.clone(),
                entries,
                outcome: Outcome::Unchanged,
                current: Some(self.versioned(state, &key, o)),
            });
        }
        let entry = self.entry_for(w.kind, &namespace, &name, w.object.clone(), old, version)?;
        entries.push((key.clone(), entry));
        Ok(Prepared {
            key,
            entries,
            outcome: if old.is_some() {
                Outcome::Updated
            } else {
                Outcome::Created
            },
            current: old.map(|o| self.versioned(state, &o_key(o, w.kind), o)),
        })
    }

    async fn do_write(&self, w: Write) -> Result<Written, BackendError> {
        let _guard = self.writer.lock().await;
        let mut state = self.snapshot();
        let next = state.counter + 1;
        let p = self.prepare(&state, &w, next)?;
        if p.outcome == Outcome::Unchanged {
            let object = p
                .current
                .ok_or_else(|| unavailable("unchanged without object"))?;
            return Ok(Written {
                outcome: Outcome::Unchanged,
                object,
            });
        }
        let focus: Vec<Key> = p.entries.iter().map(|(k, _)| k.clone()).collect();
        for (k, e) in &p.entries {
            state.entries.insert(k.clone(), e.clone());
        }
        let pipelines = matches!(
            w.kind,
            Kind::Pipeline | Kind::PluginDeployment | Kind::Tenant
        );
        let accounts = if w.kind == Kind::MigrationJob {
            Vec::new()
        } else {
            self.validate(&state.entries, &focus, pipelines)?
        };
        let entry = state
            .entries
            .get(&p.key)
            .cloned()
            .ok_or_else(|| unavailable("written entry missing"))?;
        if w.dry_run {
            let mut e = entry;
            if let Some(meta) = e.object.get_mut("metadata").and_then(Value::as_object_mut) {
                let v = p
                    .current
                    .as_ref()
                    .map_or_else(|| "0".to_owned(), |c| c.version.clone());
                meta.insert("resourceVersion".into(), Value::String(v));
            }
            return Ok(Written {
                outcome: p.outcome,
                object: self.versioned(&state, &p.key, &e),
            });
        }
        state.counter = next;
        let changed: Vec<&Entry> = focus.iter().filter_map(|k| state.entries.get(k)).collect();
        self.persist(next, &changed, &[]).await?;
        let answer = self.versioned(&state, &p.key, &entry);
        self.replace(state);
        match &entry.resource {
            Resource::Mailbox(m) => {
                let address = m.spec.address.to_lowercase();
                self.apply_accounts(&accounts, |a| a.address == address)
                    .await?;
            }
            Resource::Tenant(t) => {
                let quotas = apply::tenant_quotas(&single_tenant(t)).map_err(unavailable)?;
                apply::apply_tenant_quotas(&self.stores.meta, &quotas)
                    .await
                    .map_err(unavailable)?;
                self.apply_accounts(&accounts, |a| a.tenant == w.tenant)
                    .await?;
            }
            _ => {}
        }
        Ok(Written {
            outcome: p.outcome,
            object: answer,
        })
    }

    /// Many writes (bulk import): each checked alone, then all validated together; a write
    /// the validation names fails alone and the rest is validated again. Then one counter
    /// step per written object, the files, and the accounts (up to
    /// [`APPLY_CONCURRENCY`] password hashes at once).
    async fn do_write_batch(&self, writes: Vec<Write>) -> Vec<Result<Written, BackendError>> {
        let _guard = self.writer.lock().await;
        let mut state = self.snapshot();
        let base = state.clone();
        let n = writes.len();
        let mut results: Vec<Option<Result<Written, BackendError>>> =
            (0..n).map(|_| None).collect();
        let mut prepared: Vec<Option<Prepared>> = (0..n).map(|_| None).collect();
        let dry_run = writes.iter().any(|w| w.dry_run);
        // Addresses in use, for a cheap check before the full validation.
        let mut addresses: BTreeMap<String, String> = BTreeMap::new();
        let replaced: std::collections::BTreeSet<String> = writes
            .iter()
            .filter_map(|w| w.object.pointer("/metadata/name").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        for (k, e) in &state.entries {
            if let Resource::Mailbox(m) = &e.resource
                && (!replaced.contains(&k.2) || e.read_only)
            {
                for a in mailbox_addresses(m) {
                    addresses.insert(a, k.2.clone());
                }
            }
        }
        for (i, w) in writes.iter().enumerate() {
            let p = match self.prepare(&base, w, base.counter + 1) {
                Ok(p) => p,
                Err(e) => {
                    results[i] = Some(Err(e));
                    continue;
                }
            };
            if p.outcome == Outcome::Unchanged {
                results[i] = Some(p.current.ok_or_else(|| unavailable("unchanged")).map(
                    |object| Written {
                        outcome: Outcome::Unchanged,
                        object,
                    },
                ));
                // Its addresses stay in use.
                if let Some(Resource::Mailbox(m)) = base.entries.get(&p.key).map(|e| &e.resource) {
                    for a in mailbox_addresses(m) {
                        addresses.insert(a, p.key.2.clone());
                    }
                }
                continue;
            }
            if let Some((_, e)) = p.entries.iter().find(|(k, _)| *k == p.key)
                && let Resource::Mailbox(m) = &e.resource
            {
                let domains = base
                    .tenant(&m.spec.tenant)
                    .map(|t| t.spec.domains.clone())
                    .unwrap_or_default();
                if let Err(err) = apply::check_addresses(&m.spec, &domains) {
                    results[i] = Some(Err(BackendError::invalid(err.field, err.message)));
                    continue;
                }
                if let Err(err) = crate::quota::limits(m.spec.quota.as_ref()) {
                    results[i] = Some(Err(BackendError::invalid(err.field, err.message)));
                    continue;
                }
                let mine = mailbox_addresses(m);
                if let Some((a, other)) = mine
                    .iter()
                    .find_map(|a| addresses.get(a).filter(|o| **o != p.key.2).map(|o| (a, o)))
                {
                    let field = if *a == m.spec.address.to_lowercase() {
                        "spec.address"
                    } else {
                        "spec.aliases"
                    };
                    results[i] = Some(Err(BackendError::invalid(
                        field,
                        format!(
                            "{a:?} is already used by Mailbox {other:?} (as its address or an alias)"
                        ),
                    )));
                    continue;
                }
                for a in mine {
                    addresses.insert(a, p.key.2.clone());
                }
            }
            for (k, e) in &p.entries {
                state.entries.insert(k.clone(), e.clone());
            }
            prepared[i] = Some(p);
        }
        // The full validation; a failing write is taken out and the rest checked again.
        let accounts = loop {
            let focus: Vec<Key> = prepared
                .iter()
                .flatten()
                .flat_map(|p| p.entries.iter().map(|(k, _)| k.clone()))
                .collect();
            if focus.is_empty() {
                break Vec::new();
            }
            match self.validate(&state.entries, &focus, false) {
                Ok(a) => break a,
                Err(f) => {
                    let culprit = f.on.as_ref().and_then(|on| {
                        prepared.iter().position(|p| {
                            p.as_ref()
                                .is_some_and(|p| p.entries.iter().any(|(k, _)| k == on))
                        })
                    });
                    let Some(i) = culprit else {
                        let msg = f.error.to_string();
                        for (i, p) in prepared.iter_mut().enumerate() {
                            if p.take().is_some() {
                                results[i] = Some(Err(BackendError::Conflict(msg.clone())));
                            }
                        }
                        break Vec::new();
                    };
                    if let Some(p) = prepared[i].take() {
                        for (k, _) in &p.entries {
                            match base.entries.get(k) {
                                Some(e) => state.entries.insert(k.clone(), e.clone()),
                                None => state.entries.remove(k),
                            };
                        }
                    }
                    results[i] = Some(Err(f.error));
                }
            }
        };
        // Versions: one step per written object, in request order.
        let mut counter = state.counter;
        let mut changed: Vec<Key> = Vec::new();
        for p in prepared.iter().flatten() {
            for (k, _) in &p.entries {
                counter += 1;
                if let Some(e) = state.entries.get_mut(k) {
                    if dry_run {
                        let v = base
                            .entries
                            .get(k)
                            .map_or_else(|| "0".to_owned(), Entry::version);
                        set_version(e, &v);
                    } else {
                        set_version(e, &counter.to_string());
                    }
                }
                changed.push(k.clone());
            }
        }
        if !dry_run && !changed.is_empty() {
            state.counter = counter;
            let refs: Vec<&Entry> = changed
                .iter()
                .filter_map(|k| state.entries.get(k))
                .collect();
            if let Err(e) = self.persist(counter, &refs, &[]).await {
                let msg = e.to_string();
                for (i, p) in prepared.iter_mut().enumerate() {
                    if p.take().is_some() {
                        results[i] = Some(Err(BackendError::Unavailable(msg.clone())));
                    }
                }
                return results
                    .into_iter()
                    .map(|r| r.unwrap_or_else(|| Err(unavailable("lost"))))
                    .collect();
            }
            self.replace(state.clone());
        }
        // Accounts, a few at once.
        let by_address: BTreeMap<&str, &DesiredAccount> =
            accounts.iter().map(|a| (a.address.as_str(), a)).collect();
        let jobs: Vec<(usize, Option<DesiredAccount>)> = prepared
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let p = p.as_ref()?;
                let address = match state.entries.get(&p.key).map(|e| &e.resource) {
                    Some(Resource::Mailbox(m)) => m.spec.address.to_lowercase(),
                    _ => return Some((i, None)),
                };
                Some((i, by_address.get(address.as_str()).map(|a| (*a).clone())))
            })
            .collect();
        let meta = &self.stores.meta;
        let applied: Vec<(usize, Result<(), BackendError>)> = futures::stream::iter(jobs)
            .map(|(i, a)| async move {
                match a {
                    Some(a) if !dry_run => (
                        i,
                        apply::apply_one(meta, &a)
                            .await
                            .map(|_| ())
                            .map_err(unavailable),
                    ),
                    _ => (i, Ok(())),
                }
            })
            .buffer_unordered(APPLY_CONCURRENCY)
            .collect()
            .await;
        for (i, r) in applied {
            let Some(p) = prepared[i].take() else {
                continue;
            };
            results[i] = Some(r.and_then(|()| {
                let e = state
                    .entries
                    .get(&p.key)
                    .ok_or_else(|| unavailable("written entry missing"))?;
                Ok(Written {
                    outcome: p.outcome,
                    object: self.versioned(&state, &p.key, e),
                })
            }));
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(unavailable("no result"))))
            .collect()
    }

    /// The object as answered: Mailboxes get their namespace filled in, MigrationJobs their
    /// standalone status.
    fn versioned(&self, state: &State, key: &Key, e: &Entry) -> Versioned {
        let mut object = e.object.clone();
        if key.0 == Kind::Mailbox
            && object.pointer("/metadata/namespace").is_none()
            && let Resource::Mailbox(m) = &e.resource
            && let Some(t) = state.tenant(&m.spec.tenant)
            && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert(
                "namespace".into(),
                Value::String(apply::tenant_namespace(t)),
            );
        }
        if key.0 == Kind::MigrationJob
            && let Some(o) = object.as_object_mut()
        {
            o.insert(
                "status".into(),
                json!({
                    "phase": "Pending",
                    "conditions": [{
                        "type": "Ready",
                        "status": "False",
                        "reason": "NoMigrationWorker",
                        "message": "standalone mode has no migration worker: the job is stored, not run",
                        "lastTransitionTime": object_time(&e.object),
                    }],
                }),
            );
        }
        Versioned {
            version: e.version(),
            object,
        }
    }

    async fn do_delete(
        &self,
        kind: Kind,
        tenant: &str,
        name: &str,
        if_match: Option<IfMatch>,
    ) -> Result<(), BackendError> {
        let _guard = self.writer.lock().await;
        let mut state = self.snapshot();
        let namespace = Self::namespace(&state, kind, tenant)?;
        let key: Key = (kind, namespace.clone(), name.to_owned());
        let Some(old) = state.entries.get(&key).cloned() else {
            return Err(not_found(kind, name));
        };
        if old.read_only {
            return Err(read_only(kind, name, &old.path));
        }
        if let Some(pre) = &if_match
            && !pre.holds(Some(&old.version()))
        {
            return Err(precondition(kind, name, Some(&old)));
        }
        if kind == Kind::Tenant {
            let left: Vec<String> = state
                .entries
                .iter()
                .filter(|(k, e)| {
                    k.0 != Kind::Tenant && state.tenant_of(k, e).as_deref() == Some(tenant)
                })
                .take(5)
                .map(|(k, _)| format!("{} {:?}", k.0.name(), k.2))
                .collect();
            if !left.is_empty() {
                return Err(BackendError::Conflict(format!(
                    "tenant {tenant:?} still has resources ({}, ...): delete them first",
                    left.join(", ")
                )));
            }
        }
        let mut removed = vec![key.clone()];
        if let Resource::Mailbox(m) = &old.resource
            && let Some(r) = &m.spec.credentials.secret_ref
            && r.name == mcp_api::resources::mailboxes::password_secret(name)
        {
            let skey: Key = (Kind::Secret, namespace.clone(), r.name.clone());
            if state.entries.get(&skey).is_some_and(|e| !e.read_only) {
                removed.push(skey);
            }
        }
        let removed_entries: Vec<Entry> = removed
            .iter()
            .filter_map(|k| state.entries.remove(k))
            .collect();
        if kind != Kind::MigrationJob {
            self.validate(
                &state.entries,
                &[],
                matches!(kind, Kind::Pipeline | Kind::PluginDeployment | Kind::Tenant),
            )?;
        }
        state.counter += 1;
        let refs: Vec<&Entry> = removed_entries.iter().collect();
        self.persist(state.counter, &[], &refs).await?;
        self.replace(state);
        match &old.resource {
            Resource::Mailbox(m) => {
                let address = m.spec.address.to_lowercase();
                let meta = &self.stores.meta;
                if let Some(a) = meta
                    .account_by_address(&address)
                    .await
                    .map_err(unavailable)?
                {
                    match m.spec.retention {
                        Retention::Retain => {
                            meta.retain_account(a.id).await.map_err(unavailable)?;
                        }
                        Retention::Delete => {
                            meta.delete_account(a.id).await.map_err(unavailable)?
                        }
                    }
                    tracing::info!(%address, retention = ?m.spec.retention, "account removed (REST delete)");
                }
            }
            Resource::Tenant(_) => {
                self.stores
                    .meta
                    .set_tenant_quota(tenant, None)
                    .await
                    .map_err(unavailable)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn quarantine(&self) -> Quarantine {
        Quarantine::new(self.stores.meta.clone(), self.stores.blobs.clone())
    }

    /// The quarantined message `id` of `tenant`.
    async fn own_entry(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<(QuarantineId, crate::store::QuarantinedMessage), BackendError> {
        self.read(|s| Self::namespace(s, Kind::Mailbox, tenant))?;
        let missing = || BackendError::NotFound(format!("no quarantined message {id:?}"));
        let qid: QuarantineId = id.parse().map_err(|_| missing())?;
        let entry = self
            .quarantine()
            .get(&qid)
            .await
            .map_err(quarantine_error)?;
        if entry.tenant != tenant {
            return Err(missing());
        }
        Ok((qid, entry))
    }
}

/// Most accounts [`ResourceStore`] provisions at once in a bulk write: each may hash a
/// password with argon2id (19 MiB, tens of milliseconds of a CPU), like the admin API's
/// `MAX_CONCURRENT_PUTS`.
pub const APPLY_CONCURRENCY: usize = 4;

/// A write checked by [`ResourceStore::prepare`].
struct Prepared {
    /// The object's key.
    key: Key,
    /// The entries to store: its changed Secrets, then the object (empty when unchanged).
    entries: Vec<(Key, Entry)>,
    /// What the write does.
    outcome: Outcome,
    /// The object as it is now, if it exists.
    current: Option<Versioned>,
}

/// The key of an existing entry of `kind` (from its object).
fn o_key(e: &Entry, kind: Kind) -> Key {
    let (ns, name) = ident(&e.resource);
    (kind, ns, name)
}

/// A Mailbox's address and aliases, lower-case.
fn mailbox_addresses(m: &mcp_crds::Mailbox) -> Vec<String> {
    std::iter::once(m.spec.address.to_lowercase())
        .chain(m.spec.aliases.iter().map(|a| a.to_lowercase()))
        .collect()
}

fn set_version(e: &mut Entry, version: &str) {
    if let Some(meta) = e.object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(version.to_owned()));
    }
}

/// A set holding only `t`, for [`apply::tenant_quotas`].
fn single_tenant(t: &Tenant) -> ResourceSet {
    let mut set = ResourceSet::default();
    // Pushing a Tenant cannot fail.
    let _ = set.push(PathBuf::new(), Resource::Tenant(Box::new(t.clone())));
    set
}

fn object_time(object: &Value) -> Value {
    object
        .pointer("/metadata/creationTimestamp")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Whether `new` (a request) asks for what `old` (stored) is: same labels, annotations and
/// spec.
fn same_desired(old: &Value, new: &Value) -> bool {
    let pick = |v: &Value, p: &str| v.pointer(p).cloned().filter(|x| !x.is_null());
    ["/metadata/labels", "/metadata/annotations", "/spec"]
        .iter()
        .all(|p| pick(old, p) == pick(new, p))
}

/// The spec fields that may not change once set (the CRDs' `self == oldSelf` rules).
fn immutable(kind: Kind, old: &Value, new: &Value) -> Result<(), BackendError> {
    let fields: &[(&str, &str)] = match kind {
        Kind::Mailbox => &[
            ("/spec/tenant", "spec.tenant"),
            ("/spec/address", "spec.address"),
        ],
        Kind::Tenant => &[("/spec/namespace", "spec.namespace")],
        Kind::MigrationJob => &[("/spec/source", "spec.source")],
        _ => &[],
    };
    let mut errors = Vec::new();
    for (pointer, field) in fields {
        let norm = |v: &Value| match v.pointer(pointer) {
            Some(Value::String(s)) if *field == "spec.address" => Some(json!(s.to_lowercase())),
            // An absent namespace is the default one: spelling the default out is no change.
            None | Some(Value::Null) if *field == "spec.namespace" => v
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(|name| json!(apply::default_namespace(name))),
            other => other.cloned(),
        };
        if norm(old) != norm(new) {
            errors.push(FieldError {
                field: (*field).to_owned(),
                message: "is immutable: delete and re-create the resource".to_owned(),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(BackendError::Invalid(errors))
    }
}

/// A validation failure, and the written object it is about (if it is one of them).
#[derive(Debug)]
struct Failure {
    on: Option<Key>,
    error: BackendError,
}

impl From<Failure> for BackendError {
    fn from(f: Failure) -> Self {
        f.error
    }
}

/// The failure of a validation error about (`kind`, `name`): a 422 naming the field when
/// the object is one being written, else a 409 (the change would break another object).
fn clash(
    focus: &[Key],
    kind: Kind,
    name: &str,
    field: &str,
    message: &str,
    path: Option<&Path>,
) -> Failure {
    if let Some(k) = focus.iter().find(|k| k.0 == kind && k.2 == name) {
        let field = if kind == Kind::Secret && field.starts_with("metadata") {
            "password".to_owned()
        } else {
            field.to_owned()
        };
        Failure {
            on: Some(k.clone()),
            error: BackendError::Invalid(vec![FieldError {
                field,
                message: message.to_owned(),
            }]),
        }
    } else {
        let file = path
            .map(|p| format!(" ({})", p.display()))
            .unwrap_or_default();
        Failure {
            on: None,
            error: BackendError::Conflict(format!(
                "the change would make {} {name:?}{file} invalid: {field}: {message}",
                kind.name()
            )),
        }
    }
}

fn not_found(kind: Kind, name: &str) -> BackendError {
    BackendError::NotFound(format!("{} {name:?} not found", kind.name()))
}

fn read_only(kind: Kind, name: &str, path: &Path) -> BackendError {
    BackendError::Conflict(format!(
        "{} {name:?} is defined in {} (--resources), which the REST API does not change; \
         edit the file",
        kind.name(),
        path.display()
    ))
}

fn precondition(kind: Kind, name: &str, old: Option<&Entry>) -> BackendError {
    BackendError::PreconditionFailed(match old {
        Some(o) => format!(
            "If-Match: {} {name:?} is at resourceVersion {:?}",
            kind.name(),
            o.version()
        ),
        None => format!("If-Match: {} {name:?} does not exist", kind.name()),
    })
}

fn quarantine_error(e: QuarantineError) -> BackendError {
    match e {
        QuarantineError::NotFound(id) => {
            BackendError::NotFound(format!("no quarantined message {id}"))
        }
        e @ (QuarantineError::AccountGone { .. } | QuarantineError::NoFolder { .. }) => {
            BackendError::Conflict(e.to_string())
        }
        QuarantineError::Store(e @ StoreError::OverQuota(_)) => {
            BackendError::Conflict(e.to_string())
        }
        other => unavailable(other),
    }
}

/// The continue token of the entry after `key` (opaque to clients: base64url of
/// `namespace/name`).
fn token(key: &Key) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}/{}", key.1, key.2))
}

fn untoken(t: &str) -> Option<(String, String)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (ns, name) = text.split_once('/')?;
    Some((ns.to_owned(), name.to_owned()))
}

impl Backend for ResourceStore {
    fn list<'a>(
        &'a self,
        kind: Kind,
        query: ListQuery,
    ) -> BoxFuture<'a, Result<Page, BackendError>> {
        Box::pin(async move {
            let after = match &query.from {
                Some(t) => Some(untoken(t).ok_or_else(|| {
                    BackendError::BadRequest("continue: is not a token of this list".into())
                })?),
                None => None,
            };
            self.read(|state| {
                if kind != Kind::Tenant
                    && let Some(t) = &query.tenant
                {
                    Self::namespace(state, kind, t)?;
                }
                let mut items = Vec::new();
                let mut next = None;
                let start = (kind, String::new(), String::new());
                for (key, e) in state.entries.range(start..) {
                    if key.0 != kind {
                        break;
                    }
                    if let Some((ns, name)) = &after
                        && (&key.1, &key.2) <= (ns, name)
                    {
                        continue;
                    }
                    if let Some(t) = &query.tenant
                        && state.tenant_of(key, e).as_deref() != Some(t.as_str())
                    {
                        continue;
                    }
                    if !query.selector.matches(&e.labels()) {
                        continue;
                    }
                    if items.len() == query.limit as usize {
                        next = items.last().map(|(k, _): &(Key, Versioned)| token(k));
                        break;
                    }
                    items.push((key.clone(), self.versioned(state, key, e)));
                }
                Ok(Page {
                    items: items.into_iter().map(|(_, v)| v).collect(),
                    next,
                })
            })
        })
    }

    fn get<'a>(
        &'a self,
        kind: Kind,
        tenant: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Versioned, BackendError>> {
        Box::pin(async move {
            self.read(|state| {
                let namespace = Self::namespace(state, kind, tenant)?;
                let key: Key = (kind, namespace, name.to_owned());
                match state.entries.get(&key) {
                    Some(e) if kind != Kind::Secret => Ok(self.versioned(state, &key, e)),
                    _ => {
                        // A Mailbox of the YAML directory may leave out its namespace.
                        let loose: Key = (kind, String::new(), name.to_owned());
                        match state.entries.get(&loose) {
                            Some(e)
                                if kind == Kind::Mailbox
                                    && state.tenant_of(&loose, e).as_deref() == Some(tenant) =>
                            {
                                Ok(self.versioned(state, &loose, e))
                            }
                            _ => Err(not_found(kind, name)),
                        }
                    }
                }
            })
        })
    }

    fn write<'a>(&'a self, write: Write) -> BoxFuture<'a, Result<Written, BackendError>> {
        Box::pin(self.do_write(write))
    }

    fn write_batch<'a>(
        &'a self,
        writes: Vec<Write>,
    ) -> BoxFuture<'a, Vec<Result<Written, BackendError>>> {
        Box::pin(self.do_write_batch(writes))
    }

    fn delete<'a>(
        &'a self,
        kind: Kind,
        tenant: &'a str,
        name: &'a str,
        if_match: Option<IfMatch>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.do_delete(kind, tenant, name, if_match))
    }

    fn builtin_plugins(&self) -> Vec<BuiltinPluginInfo> {
        builtin_plugins()
    }

    fn quarantine_list<'a>(
        &'a self,
        tenant: &'a str,
        mailbox: Option<&'a str>,
        limit: u32,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<QuarantineList, BackendError>> {
        Box::pin(async move {
            self.read(|s| Self::namespace(s, Kind::Mailbox, tenant))?;
            let after = match after {
                Some(a) => Some(
                    a.parse::<QuarantineId>()
                        .map_err(|e| BackendError::BadRequest(format!("cursor: {e}")))?,
                ),
                None => None,
            };
            let account = match mailbox {
                Some(address) => {
                    let a = self
                        .stores
                        .meta
                        .account_by_recipient(&address.to_lowercase())
                        .await
                        .map_err(unavailable)?
                        .filter(|a| a.tenant == tenant);
                    match a {
                        Some(a) => Some(a.id),
                        None => return Ok(QuarantineList::default()),
                    }
                }
                None => None,
            };
            let query = QuarantineQuery {
                tenant: tenant.to_owned(),
                account,
                after,
                limit,
            };
            let items = self
                .quarantine()
                .list(&query)
                .await
                .map_err(quarantine_error)?;
            let next = (u32::try_from(items.len()) == Ok(limit))
                .then(|| items.last().map(|m| m.id.to_string()))
                .flatten();
            Ok(QuarantineList {
                items: items.iter().map(crate::admin::quarantine::entry).collect(),
                next,
            })
        })
    }

    fn quarantine_get<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<QuarantineEntry, BackendError>> {
        Box::pin(async move {
            let (_, entry) = self.own_entry(tenant, id).await?;
            Ok(crate::admin::quarantine::entry(&entry))
        })
    }

    fn quarantine_release<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<ReleaseOutcome, BackendError>> {
        Box::pin(async move {
            let (qid, entry) = self.own_entry(tenant, id).await?;
            let released = self
                .quarantine()
                .release(&qid)
                .await
                .map_err(quarantine_error)?;
            Ok(ReleaseOutcome {
                id: qid.to_string(),
                mailbox: entry.account_address.unwrap_or_default(),
                folder: released.folder,
                uid_validity: released.uid_validity.0,
                uid: released.uid.0,
            })
        })
    }

    fn quarantine_delete<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let (qid, _) = self.own_entry(tenant, id).await?;
            self.quarantine()
                .delete(&qid)
                .await
                .map_err(quarantine_error)
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            self.stores
                .meta
                .account_by_address("ready@invalid")
                .await
                .map(|_| ())
                .map_err(unavailable)
        })
    }
}

/// The built-in plugins, as the Kubernetes backend lists them too
/// ([`mcp_api::backend::builtin_plugins`]).
pub fn builtin_plugins() -> Vec<BuiltinPluginInfo> {
    mcp_api::backend::builtin_plugins()
}
