//! The OpenAPI schemas of the five resource kinds (documentation types, never built): each
//! kind's object (`Tenant`, `Mailbox`, `Pipeline`, `PluginDeployment`, `MigrationJob`) and
//! its list, whose `spec` and `status` refer to the components `<Kind>Spec` and
//! `<Kind>Status`. Those are not written here: [`crate::openapi::crd_schemas`] takes them from
//! the kind's CustomResourceDefinition (`mcp_crds::manifests::all()`, the schema the API
//! server validates against and `kubectl explain` shows), so the CRD types stay the one
//! source of truth.
//!
//! An object refuses other top-level members (`additionalProperties: false`, as the
//! facade's 422 does); so does its `metadata` ([`crate::openapi::close_object_meta`]).

use serde::Deserialize;
use utoipa::ToSchema;
use utoipa::openapi::Ref;

use super::{ListMeta, ObjectMeta};

macro_rules! kind_schemas {
    (
        $module:ident, $name:ident, $kind:literal, $pattern:literal, $object:ident, $list:ident, $doc:literal, $list_doc:literal
        $(, example: $example:expr)?
        $(, extra: { $($extra:tt)* })?
    ) => {
        mod $module {
            use super::Ref;
            pub(super) fn spec() -> Ref {
                Ref::from_schema_name(concat!($kind, "Spec"))
            }
            pub(super) fn status() -> Ref {
                Ref::from_schema_name(concat!($kind, "Status"))
            }
        }

        #[doc = $doc]
        #[derive(Deserialize, ToSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        #[schema(as = $name $(, example = $example)?)]
        pub struct $object {
            /// `mcp.dev/v1alpha1` (optional in requests).
            #[schema(pattern = "^mcp\\.dev/v1alpha1$", nullable = false)]
            pub api_version: Option<String>,
            /// The kind (optional in requests; must be the endpoint's).
            #[schema(pattern = $pattern, nullable = false)]
            pub kind: Option<String>,
            /// Metadata; in a request only `name`, `labels` and `annotations` count.
            pub metadata: ObjectMeta,
            /// The desired state: the `spec` of the kind's CRD (`kubectl explain`).
            #[schema(schema_with = $module::spec)]
            pub spec: serde_json::Value,
            /// The observed state (server-set): the `status` of the kind's CRD.
            #[schema(schema_with = $module::status)]
            pub status: Option<serde_json::Value>,
            $($($extra)*)?
        }

        #[doc = $list_doc]
        #[derive(ToSchema)]
                pub struct $list {
            /// The objects, by name.
            pub items: Vec<$object>,
            /// Paging.
            pub metadata: ListMeta,
        }
    };
}

kind_schemas!(
    tenant,
    Tenant,
    "Tenant",
    "^Tenant$",
    TenantObject,
    TenantList,
    "A `Tenant` (`mcp.dev/v1alpha1`, cluster-scoped) as `kubectl get -o json` shows it: its domains, quotas, authentication and dataplane. In a request, `status` and the server-set metadata are ignored, and unknown fields are refused (422).",
    "A page of `Tenant` objects.",
    example: json!({"apiVersion": "mcp.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": "acme"}, "spec": {"domains": ["acme.example"]}})
);
kind_schemas!(
    mailbox,
    Mailbox,
    "Mailbox",
    "^Mailbox$",
    MailboxObject,
    MailboxList,
    "A `Mailbox` (`mcp.dev/v1alpha1`) as `kubectl get -o json` shows it: a mail account of a tenant. A request may also hold `password` (write-only). In a request, `status` and the server-set metadata are ignored, and unknown fields are refused (422).",
    "A page of `Mailbox` objects.",
    example: json!({"apiVersion": "mcp.dev/v1alpha1", "kind": "Mailbox",
        "metadata": {"name": "carol"},
        "spec": {"address": "carol@example.com", "displayName": "Carol"},
        "password": "correct horse battery staple"}),
    extra: {
        /// Write-only, never returned: becomes the Secret `<name>-password` that
        /// `spec.credentials` references. 1 to 1024 octets.
        #[schema(write_only, min_length = 1, max_length = 1024)]
        pub password: Option<String>,
    }
);
kind_schemas!(
    pipeline,
    Pipeline,
    "Pipeline",
    "^Pipeline$",
    PipelineObject,
    PipelineList,
    "A `Pipeline` (`mcp.dev/v1alpha1`) as `kubectl get -o json` shows it: the ordered steps run on a tenant's messages. In a request, `status` and the server-set metadata are ignored, and unknown fields are refused (422).",
    "A page of `Pipeline` objects.",
    example: json!({"apiVersion": "mcp.dev/v1alpha1", "kind": "Pipeline",
        "metadata": {"name": "tagging"},
        "spec": {"scope": {"type": "TenantDefault"}, "stages": ["deliver"],
            "steps": [{"name": "tag", "plugin": {"builtin": "header-tagger"},
                "config": {"headers": [{"name": "X-Scanned", "value": "yes", "action": "set"}]},
                "timeout": "1s", "onError": "failOpen"}]}})
);
kind_schemas!(
    plugin,
    PluginDeployment,
    "PluginDeployment",
    "^PluginDeployment$",
    PluginDeploymentObject,
    PluginDeploymentList,
    "A `PluginDeployment` (`mcp.dev/v1alpha1`) as `kubectl get -o json` shows it: a plugin process a tenant's Pipelines call. In a request, `status` and the server-set metadata are ignored, and unknown fields are refused (422).",
    "A page of `PluginDeployment` objects."
);
kind_schemas!(
    migration,
    MigrationJob,
    "MigrationJob",
    "^MigrationJob$",
    MigrationJobObject,
    MigrationJobList,
    "A `MigrationJob` (`mcp.dev/v1alpha1`) as `kubectl get -o json` shows it: a copy of mailboxes from another IMAP server. In a request, `status` and the server-set metadata are ignored, and unknown fields are refused (422).",
    "A page of `MigrationJob` objects."
);
