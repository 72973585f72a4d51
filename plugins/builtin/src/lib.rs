//! Built-in plugins, run in-process by the dataplane's pipeline engine (DESIGN.md §4).
//!
//! [`instantiate`] turns a Pipeline step's `plugin.builtin` and `config` into a ready
//! [`Plugin`]; the same function validates a step's config for the operator, so a config the
//! operator accepts is one the dataplane runs.

use std::sync::Arc;

use mcp_crds::pipeline::BuiltinPlugin;
use mcp_plugin_api::Plugin;

/// A step's `config` that the plugin cannot use. `field` is a path inside the config
/// (`rules[2].pattern`), empty for the config as a whole.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{plugin} config{}{field}: {message}", if field.is_empty() { "" } else { " " })]
pub struct ConfigError {
    /// The plugin, as written in the Pipeline (`dlp`).
    pub plugin: &'static str,
    /// Path of the offending field inside the step's config; empty for the whole config.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The name of `plugin` as written in a Pipeline (`header-tagger`).
pub fn name(plugin: BuiltinPlugin) -> &'static str {
    match plugin {
        BuiltinPlugin::Dlp => "dlp",
        BuiltinPlugin::HeaderTagger => "header-tagger",
        BuiltinPlugin::SizeLimit => "size-limit",
        BuiltinPlugin::AttachmentPolicy => "attachment-policy",
        BuiltinPlugin::Rspamd => "rspamd",
        BuiltinPlugin::Clamav => "clamav",
    }
}

/// Builds the plugin a step runs from its typed, validated `config` (absent means `{}`).
///
/// # Errors
/// [`ConfigError`] naming the field, for a config the plugin cannot use (unknown field,
/// wrong type, invalid regex, ...), or for a plugin this build does not provide.
pub fn instantiate(
    plugin: BuiltinPlugin,
    config: Option<&serde_json::Value>,
) -> Result<Arc<dyn Plugin>, ConfigError> {
    let _ = config;
    Err(ConfigError {
        plugin: name(plugin),
        field: String::new(),
        message: "not available in this build".into(),
    })
}
