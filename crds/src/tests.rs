//! Crate-level tests: the committed manifests, the schema conventions, the CEL rules
//! (compiled and evaluated with kube-cel, as the API server would) and the samples.

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::cel::{Validator, compile_schema};
use serde::Deserialize;
use serde_json::Value;

use crate::manifests::{self, COMMITTED_DIRS, REGENERATE};
use crate::resource::Resource;
use crate::schema::structural_violations;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn schema_of(crd: &CustomResourceDefinition) -> Value {
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("every CRD has an openAPIV3Schema");
    serde_json::to_value(schema).expect("schema serialises")
}

fn crd_for(kind: &str) -> CustomResourceDefinition {
    manifests::all()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD of kind {kind}"))
}

/// The schema node at a dotted path of property names (`spec.dataplane.storage`); `[]`
/// steps into array items.
fn node<'a>(schema: &'a Value, path: &str) -> &'a Value {
    let mut at = schema;
    for part in path.split('.') {
        let (name, items) = match part.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (part, false),
        };
        at = at
            .get("properties")
            .and_then(|p| p.get(name))
            .unwrap_or_else(|| panic!("no property {path}"));
        if items {
            at = at
                .get("items")
                .unwrap_or_else(|| panic!("{path} is no array"));
        }
    }
    at
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("sample readable");
    yaml_serde::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("sample is YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn cel_check(doc: &Value, old: Option<&Value>) -> Result<(), String> {
    let kind = doc["kind"].as_str().expect("kind");
    let schema = schema_of(&crd_for(kind));
    Validator::new()
        .validate(&schema, doc, old)
        .map_err(|e| e.to_string())
}

/// Every folder of `COMMITTED_DIRS` (the API's and the Helm chart's) holds exactly the
/// rendered manifests, byte for byte, and nothing else.
#[test]
fn committed_manifests_match_the_types() {
    let rendered = manifests::rendered().expect("CRDs render");
    let names: Vec<&str> = rendered.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "tenants.mcp.dev.yaml",
            "mailboxes.mcp.dev.yaml",
            "pipelines.mcp.dev.yaml",
            "plugindeployments.mcp.dev.yaml",
            "migrationjobs.mcp.dev.yaml",
        ]
    );
    for committed in COMMITTED_DIRS {
        assert!(
            REGENERATE.contains(&format!("--out {committed}")),
            "`{REGENERATE}` does not write {committed}"
        );
        let dir = repo_root().join(committed);
        for (name, want) in &rendered {
            let have = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            assert!(
                have == *want,
                "{committed}/{name} is missing or differs from the Rust types; regenerate it with `{REGENERATE}`"
            );
        }
        for path in yaml_files(&dir) {
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            assert!(
                names.contains(&file),
                "{committed}/{file} belongs to no kind; delete it and run `{REGENERATE}`"
            );
        }
    }
}

#[test]
fn every_crd_schema_is_structural() {
    for crd in manifests::all() {
        let v = structural_violations(&schema_of(&crd));
        assert!(v.is_empty(), "{}: {v:#?}", manifests::file_name(&crd));
    }
}

#[test]
fn every_crd_follows_the_api_conventions() {
    for crd in manifests::all() {
        let name = manifests::file_name(&crd);
        let names = &crd.spec.names;
        assert_eq!(crd.spec.group, crate::GROUP, "{name}");
        assert_eq!(crd.spec.versions.len(), 1, "{name}");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, crate::VERSION, "{name}");
        assert!(version.served && version.storage, "{name}");
        assert_eq!(
            names.categories.as_deref(),
            Some(&["mcp".to_owned()][..]),
            "{name}"
        );
        assert!(
            names.short_names.as_ref().is_some_and(|s| !s.is_empty()),
            "{name}: short name"
        );
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name}: status subresource"
        );
        let expected_scope = if names.kind == "Tenant" {
            "Cluster"
        } else {
            "Namespaced"
        };
        assert_eq!(crd.spec.scope, expected_scope, "{name}");

        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            columns.contains(&"Ready") && columns.last() == Some(&"Age"),
            "{name}: {columns:?}"
        );
        assert!(
            columns.len() >= 3,
            "{name}: a useful column besides Ready and Age"
        );

        let schema = schema_of(&crd);
        let conditions = node(&schema, "status.conditions");
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{name}");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"]),
            "{name}"
        );
        let required = &conditions["items"]["required"];
        for field in ["type", "status", "lastTransitionTime", "reason"] {
            assert!(
                required
                    .as_array()
                    .is_some_and(|r| r.iter().any(|x| x == field)),
                "{name}: condition.{field} required"
            );
        }
        assert_eq!(
            node(&schema, "status.conditions[].status")["enum"],
            serde_json::json!(["True", "False", "Unknown"]),
            "{name}"
        );
        assert_eq!(
            node(&schema, "status.observedGeneration")["type"],
            "integer",
            "{name}"
        );
        assert!(
            node(&schema, "spec").get("description").is_some(),
            "{name}: spec documented"
        );
    }
}

/// Every property of every schema carries a description, so `kubectl explain` documents it.
#[test]
fn every_field_is_documented() {
    fn walk(node: &Value, path: &str, missing: &mut Vec<String>) {
        if let Some(Value::Object(props)) = node.get("properties") {
            for (k, child) in props {
                let p = format!("{path}.{k}");
                let top = matches!(k.as_str(), "apiVersion" | "kind" | "metadata");
                if !top && child.get("description").is_none() {
                    missing.push(p.clone());
                }
                walk(child, &p, missing);
            }
        }
        if let Some(items) = node.get("items") {
            walk(items, &format!("{path}[]"), missing);
        }
    }
    for crd in manifests::all() {
        let mut missing = Vec::new();
        walk(&schema_of(&crd), "", &mut missing);
        assert!(
            missing.is_empty(),
            "{}: undocumented {missing:#?}",
            manifests::file_name(&crd)
        );
    }
}

/// Each cross-field rule sits on the node it constrains.
#[test]
fn cel_rules_are_present_where_expected() {
    let expected = [
        ("Tenant", "spec.namespace", "namespace is immutable"),
        (
            "Tenant",
            "spec.auth",
            "at least one authentication provider",
        ),
        (
            "Tenant",
            "spec.auth.ldap",
            "bindDn and bindPasswordSecretRef",
        ),
        ("Tenant", "spec.auth.ldap", "startTls applies to ldap://"),
        ("Tenant", "spec.dataplane", "more than one replica needs"),
        (
            "Tenant",
            "spec.dataplane.storage",
            "requires both postgres.secretRef and s3.secretRef",
        ),
        (
            "Tenant",
            "spec.dataplane.storage",
            "only allowed with backend Postgres",
        ),
        ("Tenant", "spec.dataplane.storage", "backend is immutable"),
        ("Mailbox", "spec.address", "exactly one '@'"),
        ("Mailbox", "spec.address", "address is immutable"),
        ("Mailbox", "spec.tenant", "tenant is immutable"),
        ("Mailbox", "spec.aliases", "every alias"),
        (
            "Mailbox",
            "spec.credentials",
            "exactly one of secretRef and external",
        ),
        (
            "Pipeline",
            "spec",
            "every step timeout must be at most spec.deadline",
        ),
        ("Pipeline", "spec.scope", "mailboxSelector is required"),
        ("Pipeline", "spec.steps[]", "retry is only allowed"),
        (
            "Pipeline",
            "spec.steps[].plugin",
            "exactly one of builtin and name",
        ),
        ("PluginDeployment", "spec", "tls (mTLS"),
        ("PluginDeployment", "spec", "replicas is only allowed"),
        ("PluginDeployment", "spec", "maxBodySize is only allowed"),
        ("PluginDeployment", "spec", "transport unix is only allowed"),
        (
            "PluginDeployment",
            "spec",
            "image is required in Kubernetes",
        ),
        (
            "PluginDeployment",
            "spec.protocol",
            "protocol.min must not exceed",
        ),
        ("MigrationJob", "spec.source", "source is immutable"),
        ("MigrationJob", "spec.source", "allowPlaintext"),
        ("MigrationJob", "spec.source", "adminUser"),
        (
            "MigrationJob",
            "spec.options",
            "cutover cannot be requested in a dry run",
        ),
        (
            "MigrationJob",
            "spec.options.cutover",
            "cutover cannot be withdrawn",
        ),
    ];
    for (kind, path, message) in expected {
        let schema = schema_of(&crd_for(kind));
        let rules = node(&schema, path)
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{kind} {path}: no x-kubernetes-validations"));
        assert!(
            rules
                .iter()
                .any(|r| r["message"].as_str().is_some_and(|m| m.contains(message))),
            "{kind} {path}: no rule with message containing {message:?}: {rules:#?}"
        );
    }
}

#[test]
fn every_cel_rule_compiles() {
    for crd in manifests::all() {
        let compiled = compile_schema(&schema_of(&crd));
        let errors: Vec<String> = compiled
            .compilation_errors()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{}: {errors:#?}",
            manifests::file_name(&crd)
        );
    }
}

#[test]
fn valid_samples_deserialize_and_pass_the_cel_rules() {
    let mut kinds = std::collections::BTreeSet::new();
    for sub in ["k8s", "standalone"] {
        for path in yaml_files(&repo_root().join("config/samples").join(sub)) {
            let text = std::fs::read_to_string(&path).expect("readable");
            let parsed =
                Resource::parse_stream(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            kinds.extend(parsed.iter().map(Resource::kind));
            for doc in documents(&path) {
                if doc["apiVersion"] == "mcp.dev/v1alpha1" {
                    cel_check(&doc, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                }
            }
        }
    }
    for kind in [
        "Tenant",
        "Mailbox",
        "Pipeline",
        "PluginDeployment",
        "MigrationJob",
    ] {
        assert!(kinds.contains(kind), "no sample of {kind}");
    }
}

/// Each file under `config/samples/invalid/` names, in a `# rule:` comment, the message of
/// the rule it breaks; the rule must reject it with that message.
#[test]
fn invalid_samples_are_rejected_by_the_rule_they_name() {
    let files = yaml_files(&repo_root().join("config/samples/invalid"));
    assert!(files.len() >= 10, "{} invalid samples", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let rule = text
            .lines()
            .find_map(|l| l.strip_prefix("# rule: "))
            .unwrap_or_else(|| panic!("{}: no `# rule:` comment", path.display()));
        let docs = documents(&path);
        assert_eq!(docs.len(), 1, "{}", path.display());
        let err = cel_check(&docs[0], None).expect_err(&format!("{} was accepted", path.display()));
        assert!(
            err.contains(rule),
            "{}: rejected with {err:?}, not {rule:?}",
            path.display()
        );
    }
}

#[test]
fn transition_rules_reject_changes_to_immutable_fields() {
    let old = serde_json::json!({
        "apiVersion": "mcp.dev/v1alpha1", "kind": "Mailbox",
        "metadata": {"name": "a", "namespace": "mcp-acme"},
        "spec": {"tenant": "acme", "address": "a@acme.example",
                 "credentials": {"secretRef": {"name": "a"}}}
    });
    let mut new = old.clone();
    new["spec"]["address"] = "b@acme.example".into();
    let err = cel_check(&new, Some(&old)).expect_err("address change accepted");
    assert!(err.contains("address is immutable"), "{err}");
    new["spec"]["address"] = "a@acme.example".into();
    new["spec"]["state"] = "Suspended".into();
    cel_check(&new, Some(&old)).expect("state may change");

    let old = serde_json::json!({
        "apiVersion": "mcp.dev/v1alpha1", "kind": "MigrationJob",
        "metadata": {"name": "m", "namespace": "mcp-acme"},
        "spec": {"source": {"host": "imap.example", "credentialsSecretRef": {"name": "s"}},
                 "users": [{"source": "a", "target": "a@acme.example"}],
                 "options": {"cutover": true}}
    });
    let mut new = old.clone();
    new["spec"]["options"]["cutover"] = false.into();
    let err = cel_check(&new, Some(&old)).expect_err("cutover withdrawal accepted");
    assert!(err.contains("cutover cannot be withdrawn"), "{err}");
}

#[test]
fn defaults_fill_in_what_the_manual_promises() {
    let yaml = "apiVersion: mcp.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: p, namespace: n}\nspec:\n  scope: {type: TenantDefault}\n  stages: [deliver]\n  steps: [{name: s, plugin: {builtin: dlp}}]\n";
    let Resource::Pipeline(p) = Resource::parse_stream(yaml).expect("valid").remove(0) else {
        panic!("not a Pipeline");
    };
    assert_eq!(p.spec.deadline.as_str(), "30s");
    assert_eq!(p.spec.steps[0].timeout.as_str(), "5s");
    assert_eq!(
        p.spec.steps[0].on_error,
        crate::pipeline::OnError::FailClosed
    );
    assert!(!p.spec.dry_run);
    let schema = schema_of(&crd_for("Pipeline"));
    assert_eq!(node(&schema, "spec.deadline")["default"], "30s");
    assert_eq!(node(&schema, "spec.steps[].timeout")["default"], "5s");
    assert_eq!(
        node(&schema, "spec.steps[].onError")["default"],
        "failClosed"
    );
}

/// `spec.suspend` is a boolean, `false` by default, in the schema and in the Rust types;
/// anything else (YAML 1.1's `yes`, a quoted `"true"`, a number) is refused with an error
/// naming the field, as the API server's schema refuses it.
#[test]
fn plugin_suspend_is_a_strict_boolean() {
    let schema = schema_of(&crd_for("PluginDeployment"));
    let suspend = node(&schema, "spec.suspend");
    assert_eq!(suspend["type"], "boolean");
    assert_eq!(suspend["default"], false);
    let doc = |value: &str| {
        let line = if value.is_empty() {
            String::new()
        } else {
            format!("\n  suspend: {value}")
        };
        format!(
            "apiVersion: mcp.dev/v1alpha1\nkind: PluginDeployment\nmetadata: {{name: p, namespace: n}}\n\
             spec:\n  image: reg/p:1\n  protocol: {{min: 1, max: 1}}\n  stages: [deliver]{line}\n"
        )
    };
    let accepted = [("", false), ("false", false), ("true", true)];
    for (value, want) in accepted {
        let Resource::PluginDeployment(p) = Resource::parse_stream(&doc(value))
            .unwrap_or_else(|e| panic!("suspend: {value:?}: {e}"))
            .remove(0)
        else {
            panic!("not a PluginDeployment");
        };
        assert_eq!(p.spec.suspend, want, "suspend: {value:?}");
    }
    let refused = [
        "yes", "\"yes\"", "\"true\"", "on", "1", "0", "[true]", "{a: b}", "null",
    ];
    for value in refused {
        let err = Resource::parse_stream(&doc(value))
            .err()
            .unwrap_or_else(|| panic!("suspend: {value} accepted"))
            .to_string();
        assert!(
            err.contains("document 0 (PluginDeployment): spec.suspend: invalid type")
                && err.contains("expected a boolean"),
            "suspend: {value}: {err}"
        );
    }
}
