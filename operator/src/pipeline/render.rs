//! Rendering a tenant's Pipelines into `pipelines.yaml`, the file the dataplane loads
//! (`DataplaneConfig.pipelines`): a pure function of the Pipelines and of the previous
//! rendering.
//!
//! The file is a YAML stream of the PluginDeployments the rendered Pipelines name (of the
//! tenant namespace, by name; [`PluginDocument`]), then the valid `Global` Pipelines of the
//! platform namespace ([`PLATFORM_NAMESPACE`]) followed by the tenant namespace's valid
//! Pipelines, each group sorted by name ([`Key`]), each document with `apiVersion`, `kind`,
//! `metadata` (`name`, `namespace`, and a Pipeline's `labels`) and `spec`: no status, no
//! managed fields, nothing that changes when only status does.
//!
//! **Last good.** A Pipeline that is invalid now keeps the document rendered for it before,
//! read back from the previous file (the current ConfigMap), so a broken edit never takes a
//! working pipeline away from the dataplane; one that was never valid is not rendered. A
//! deleted Pipeline disappears.

use std::collections::BTreeMap;

use kube::ResourceExt;
use mcp_crds::pipeline::PLATFORM_NAMESPACE;
use mcp_crds::{Pipeline, PipelineSpec, PluginDeployment, PluginDeploymentSpec};
use serde::{Deserialize, Serialize};

/// Key of the rendered Pipelines in the dataplane ConfigMap, and its file name next to
/// `config.yaml` (`DataplaneConfig.pipelines`).
pub const PIPELINES_KEY: &str = "pipelines.yaml";

/// One document of `pipelines.yaml`: a Pipeline without status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// `mcp.dev/v1alpha1`.
    pub api_version: String,
    /// `Pipeline`.
    pub kind: String,
    /// Name, namespace and labels.
    pub metadata: Metadata,
    /// The spec as validated.
    pub spec: PipelineSpec,
}

/// The metadata a rendered Pipeline keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.labels`; omitted when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Document {
    /// The document of `pipeline`.
    pub fn of(pipeline: &Pipeline) -> Self {
        Self {
            api_version: "mcp.dev/v1alpha1".to_owned(),
            kind: "Pipeline".to_owned(),
            metadata: Metadata {
                name: pipeline.name_any(),
                namespace: pipeline.namespace().unwrap_or_default(),
                labels: pipeline.labels().clone(),
            },
            spec: pipeline.spec.clone(),
        }
    }
}

/// One PluginDeployment document of `pipelines.yaml`: what the dataplane needs to reach the
/// plugin (mode, transport, port, ...) and to check its replies (stages, capabilities).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginDocument {
    /// `mcp.dev/v1alpha1`.
    pub api_version: String,
    /// `PluginDeployment`.
    pub kind: String,
    /// Name and namespace (no labels).
    pub metadata: Metadata,
    /// The spec as stored.
    pub spec: PluginDeploymentSpec,
}

impl PluginDocument {
    /// The document of `plugin`.
    pub fn of(plugin: &PluginDeployment) -> Self {
        Self {
            api_version: "mcp.dev/v1alpha1".to_owned(),
            kind: "PluginDeployment".to_owned(),
            metadata: Metadata {
                name: plugin.name_any(),
                namespace: plugin.namespace().unwrap_or_default(),
                labels: BTreeMap::new(),
            },
            spec: plugin.spec.clone(),
        }
    }
}

/// Where a document goes in the file, and what identifies it: platform namespace first
/// (`false` sorts first), then namespace, then name.
pub type Key = (bool, String, String);

fn key(namespace: &str, name: &str) -> Key {
    (
        namespace != PLATFORM_NAMESPACE,
        namespace.to_owned(),
        name.to_owned(),
    )
}

impl Document {
    /// Its place in the file ([`Key`]).
    pub fn key(&self) -> Key {
        key(&self.metadata.namespace, &self.metadata.name)
    }
}

/// A Pipeline to render, as the render sees it.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    /// Valid: rendered as it is.
    Valid(&'a Pipeline),
    /// Invalid: its previous document (same namespace and name) is kept, if there is one.
    Invalid(&'a Pipeline),
}

impl Entry<'_> {
    fn key(&self) -> Key {
        let (Entry::Valid(p) | Entry::Invalid(p)) = self;
        key(&p.namespace().unwrap_or_default(), &p.name_any())
    }
}

/// Why a rendering failed.
#[derive(Debug, thiserror::Error)]
#[error("rendering pipelines.yaml: {0}")]
pub struct RenderError(#[from] pub yaml_serde::Error);

/// The Pipeline documents of a previous `pipelines.yaml`, by [`Key`]. Other kinds
/// (PluginDeployments) are passed over; Pipeline documents that cannot be read (an edit by
/// hand) are skipped: they are not a last good one.
pub fn parse(text: &str) -> BTreeMap<Key, Document> {
    let mut out = BTreeMap::new();
    for doc in yaml_serde::Deserializer::from_str(text) {
        let value = match yaml_serde::Value::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "a document of the previous pipelines.yaml is unreadable; skipped");
                continue;
            }
        };
        if value.get("kind").and_then(|k| k.as_str()) == Some("PluginDeployment") {
            continue;
        }
        match yaml_serde::from_value::<Document>(value) {
            Ok(d) => {
                out.insert(d.key(), d);
            }
            Err(e) => {
                tracing::warn!(error = %e, "a document of the previous pipelines.yaml is unreadable; skipped")
            }
        }
    }
    out
}

/// `pipelines.yaml` for `tenant`: the PluginDeployments among `plugins` that the rendered
/// Pipelines name (same namespace, by name), then the valid entries and the previous
/// documents (from `previous`, the current file) of the invalid ones, in [`Key`] order: the
/// platform's `Global` Pipelines first, then the tenant's, each by name.
///
/// # Errors
/// [`RenderError`] if serialization fails.
pub fn render(
    tenant: &str,
    entries: &[Entry<'_>],
    plugins: &[&PluginDeployment],
    previous: Option<&str>,
) -> Result<String, RenderError> {
    let old = match previous {
        Some(text) if entries.iter().any(|e| matches!(e, Entry::Invalid(_))) => parse(text),
        _ => BTreeMap::new(),
    };
    let mut docs: BTreeMap<Key, Document> = BTreeMap::new();
    for entry in entries {
        match entry {
            Entry::Valid(p) => {
                docs.insert(entry.key(), Document::of(p));
            }
            Entry::Invalid(_) => {
                let k = entry.key();
                if let Some(d) = old.get(&k) {
                    docs.insert(k, d.clone());
                }
            }
        }
    }
    // The PluginDeployments the rendered Pipelines name, by (namespace, name).
    let named: std::collections::BTreeSet<(&str, &str)> = docs
        .values()
        .flat_map(|d| {
            d.spec.steps.iter().filter_map(|s| {
                s.plugin
                    .name
                    .as_deref()
                    .map(|n| (d.metadata.namespace.as_str(), n))
            })
        })
        .collect();
    let mut used: BTreeMap<(String, String), PluginDocument> = BTreeMap::new();
    for p in plugins {
        let doc = PluginDocument::of(p);
        if named.contains(&(doc.metadata.namespace.as_str(), doc.metadata.name.as_str())) {
            used.insert(
                (doc.metadata.namespace.clone(), doc.metadata.name.clone()),
                doc,
            );
        }
    }
    let mut out = format!(
        "# Pipelines of Tenant {tenant:?}, rendered by {}: the PluginDeployments they name, the\n\
         # valid Pipelines, and the last good version of those that are invalid now. Edits are\n\
         # overwritten: change the Pipelines and PluginDeployments.\n",
        crate::tenant::labels::MANAGER
    );
    for doc in used.values() {
        out.push_str("---\n");
        out.push_str(&yaml_serde::to_string(doc)?);
    }
    for doc in docs.values() {
        out.push_str("---\n");
        out.push_str(&yaml_serde::to_string(doc)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(name: &str, max_size: &str) -> Pipeline {
        let mut p: Pipeline = yaml_serde::from_str(&format!(
            "apiVersion: mcp.dev/v1alpha1\nkind: Pipeline\n\
             metadata: {{name: {name}, namespace: mcp-acme, uid: u-{name}, resourceVersion: \"7\", \
             generation: 3, labels: {{team: mail}}, annotations: {{a: b}}, \
             managedFields: [{{manager: kubectl, operation: Apply}}]}}\n\
             spec: {{scope: {{type: TenantDefault}}, stages: [deliver], deadline: 20s, steps: [\
             {{name: tag, plugin: {{builtin: header-tagger}}, config: {{headers: [{{name: X-Tag, value: v, action: add}}]}}}}, \
             {{name: limit, plugin: {{builtin: size-limit}}, config: {{maxSize: {max_size}}}, onError: failOpen}}]}}\n\
             status: {{validated: true, compiledRevision: abc}}"
        ))
        .expect("pipeline");
        p.metadata.name = Some(name.to_owned());
        p
    }

    fn global(name: &str) -> Pipeline {
        let mut p = pipeline(name, "5Mi");
        p.metadata.namespace = Some(PLATFORM_NAMESPACE.to_owned());
        p.spec.scope.type_ = mcp_crds::pipeline::ScopeType::Global;
        p
    }

    /// The documents of `text` by name (names are unique in these tests).
    fn named(text: &str) -> BTreeMap<String, Document> {
        parse(text)
            .into_values()
            .map(|d| (d.metadata.name.clone(), d))
            .collect()
    }

    #[test]
    fn renders_valid_pipelines_sorted_without_status_or_server_fields() {
        let (b, a) = (pipeline("b", "10Mi"), pipeline("a", "1Mi"));
        let text =
            render("acme", &[Entry::Valid(&b), Entry::Valid(&a)], &[], None).expect("render");
        let docs = named(&text);
        assert_eq!(docs.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert!(text.find("name: a").expect("a") < text.find("name: b").expect("b"));
        for banned in [
            "status",
            "managedFields",
            "resourceVersion",
            "uid",
            "generation",
            "annotations",
            "compiledRevision",
        ] {
            assert!(!text.contains(banned), "{banned} in\n{text}");
        }
        assert_eq!(docs["a"].spec, a.spec);
        assert_eq!(docs["a"].metadata.labels["team"], "mail");
        assert_eq!(docs["a"].metadata.namespace, "mcp-acme");
        // The documents read back as Pipelines, with the same revision.
        for doc in yaml_serde::Deserializer::from_str(&text) {
            let p = Pipeline::deserialize(doc).expect("a Pipeline");
            assert_eq!(p.spec.revision(), docs[&p.name_any()].spec.revision());
        }
        assert_eq!(
            render("acme", &[], &[], None)
                .expect("empty")
                .matches("---")
                .count(),
            0
        );
    }

    #[test]
    fn rendering_is_stable() {
        let (a, b) = (pipeline("a", "1Mi"), pipeline("b", "10Mi"));
        let once =
            render("acme", &[Entry::Valid(&a), Entry::Valid(&b)], &[], None).expect("render");
        let twice = render(
            "acme",
            &[Entry::Valid(&b), Entry::Valid(&a)],
            &[],
            Some(&once),
        )
        .expect("render");
        assert_eq!(once, twice);
        // Kept documents round-trip byte for byte.
        let kept = render(
            "acme",
            &[Entry::Invalid(&a), Entry::Invalid(&b)],
            &[],
            Some(&once),
        )
        .expect("render");
        assert_eq!(kept, once);
    }

    #[test]
    fn an_invalid_pipeline_keeps_its_last_good_document_and_a_deleted_one_goes() {
        let good = pipeline("a", "1Mi");
        let other = pipeline("b", "10Mi");
        let before = render(
            "acme",
            &[Entry::Valid(&good), Entry::Valid(&other)],
            &[],
            None,
        )
        .expect("render");
        // "a" turns invalid, "b" is deleted, "c" was never valid.
        let (broken, never) = (pipeline("a", "9Mi"), pipeline("c", "1Mi"));
        let after = render(
            "acme",
            &[Entry::Invalid(&broken), Entry::Invalid(&never)],
            &[],
            Some(&before),
        )
        .expect("render");
        let docs = named(&after);
        assert_eq!(docs.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(docs["a"].spec, good.spec, "the last good spec");
        // Without a previous file there is nothing to keep.
        let fresh = render("acme", &[Entry::Invalid(&broken)], &[], None).expect("render");
        assert!(parse(&fresh).is_empty());
        // A hand-edited, unreadable previous document is not a last good one.
        let edited = format!("{before}---\n{{not: a pipeline}}\n");
        assert_eq!(parse(&edited).len(), 2);
    }

    #[test]
    fn revision_is_a_pure_function_of_the_spec() {
        let (a, mut a2) = (pipeline("a", "1Mi"), pipeline("a", "1Mi"));
        a2.metadata.labels = None;
        a2.metadata.resource_version = Some("99".into());
        a2.status = None;
        assert_eq!(a.spec.revision(), a2.spec.revision());
        assert_eq!(a.spec.revision().len(), 16);
        assert_ne!(a.spec.revision(), pipeline("a", "2Mi").spec.revision());
        let mut dry = a.clone();
        dry.spec.dry_run = true;
        assert_ne!(a.spec.revision(), dry.spec.revision());
        // Through the rendered file and back.
        let text = render("acme", &[Entry::Valid(&a)], &[], None).expect("render");
        assert_eq!(named(&text)["a"].spec.revision(), a.spec.revision());
    }

    #[test]
    fn global_pipelines_come_first_and_a_same_name_does_not_collide() {
        let (tenant_a, platform_a, platform_z) = (pipeline("a", "1Mi"), global("a"), global("z"));
        let text = render(
            "acme",
            &[
                Entry::Valid(&tenant_a),
                Entry::Valid(&platform_z),
                Entry::Valid(&platform_a),
            ],
            &[],
            None,
        )
        .expect("render");
        let order: Vec<(String, String)> = parse(&text)
            .into_values()
            .map(|d| (d.metadata.namespace, d.metadata.name))
            .collect();
        assert_eq!(
            order,
            [
                (PLATFORM_NAMESPACE.to_owned(), "a".to_owned()),
                (PLATFORM_NAMESPACE.to_owned(), "z".to_owned()),
                ("mcp-acme".to_owned(), "a".to_owned()),
            ]
        );
        let platform = text.find("namespace: mcp-system").expect("global");
        assert!(platform < text.find("namespace: mcp-acme").expect("tenant"));
        // An invalid Global keeps its own last good document, not the tenant's namesake.
        let kept = render(
            "acme",
            &[Entry::Invalid(&global("a")), Entry::Valid(&tenant_a)],
            &[],
            Some(&text),
        )
        .expect("render");
        let docs = parse(&kept);
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[&(false, PLATFORM_NAMESPACE.to_owned(), "a".to_owned())].spec,
            platform_a.spec
        );
    }

    fn plugin_deployment(name: &str, namespace: &str) -> PluginDeployment {
        yaml_serde::from_str(&format!(
            "apiVersion: mcp.dev/v1alpha1\nkind: PluginDeployment\n\
             metadata: {{name: {name}, namespace: {namespace}, uid: u, resourceVersion: \"3\", labels: {{a: b}}}}\n\
             spec: {{image: reg/p:1, protocol: {{min: 1, max: 1}}, stages: [deliver], transport: unix}}\n\
             status: {{readyEndpoints: 1, negotiatedVersion: 1}}"
        ))
        .expect("plugin")
    }

    #[test]
    fn the_plugin_deployments_the_pipelines_name_come_first_without_status() {
        let mut uses = pipeline("uses", "1Mi");
        uses.spec.steps[0].plugin = yaml_serde::from_str("{name: scanner}").expect("ref");
        let (scanner, unused) = (
            plugin_deployment("scanner", "mcp-acme"),
            plugin_deployment("unused", "mcp-acme"),
        );
        let elsewhere = plugin_deployment("scanner", "mcp-other");
        let plugins = [&unused, &elsewhere, &scanner];
        let text = render("acme", &[Entry::Valid(&uses)], &plugins, None).expect("render");
        let docs: Vec<yaml_serde::Value> = yaml_serde::Deserializer::from_str(&text)
            .map(|d| yaml_serde::Value::deserialize(d).expect("doc"))
            .collect();
        let kinds: Vec<(&str, &str, &str)> = docs
            .iter()
            .map(|d| {
                (
                    d["kind"].as_str().expect("kind"),
                    d["metadata"]["namespace"].as_str().expect("ns"),
                    d["metadata"]["name"].as_str().expect("name"),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("PluginDeployment", "mcp-acme", "scanner"),
                ("Pipeline", "mcp-acme", "uses")
            ]
        );
        for banned in [
            "status",
            "readyEndpoints",
            "resourceVersion",
            "uid",
            "labels: {a",
        ] {
            assert!(!text.contains(banned), "{banned} in\n{text}");
        }
        // The document reads back as the PluginDeployment's spec.
        let doc: PluginDocument = yaml_serde::from_value(docs[0].clone()).expect("plugin doc");
        assert_eq!(doc.spec, scanner.spec);
        assert_eq!(doc.api_version, "mcp.dev/v1alpha1");
        // The last-good parse passes over PluginDeployment documents.
        assert_eq!(parse(&text).len(), 1);
        let mut broken = uses.clone();
        broken.spec.dry_run = !broken.spec.dry_run;
        let kept =
            render("acme", &[Entry::Invalid(&broken)], &plugins, Some(&text)).expect("render");
        assert_eq!(kept, text, "the kept Pipeline still names the plugin");
        // A plugin no Pipeline names is not rendered.
        let none = render("acme", &[], &plugins, None).expect("render");
        assert!(!none.contains("kind: PluginDeployment"), "{none}");
    }
}
