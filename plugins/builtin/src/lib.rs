//! Built-in plugins, run in-process by the dataplane's pipeline engine (DESIGN.md §4).
//!
//! [`instantiate`] turns a Pipeline step's `plugin.builtin` and `config` into a ready
//! [`Plugin`]; the same function validates a step's config for the operator, so a config the
//! operator accepts is one the dataplane runs.
//!
//! | plugin | module | what it does |
//! | --- | --- | --- |
//! | `dlp` | [`dlp`] | finds card numbers, IBANs, SSNs, cloud keys, custom patterns; redacts, quarantines, rejects, tags or alerts |
//! | `header-tagger` | [`header_tagger`] | adds, sets or removes header fields |
//! | `size-limit` | [`size_limit`] | refuses, defers or quarantines large messages |
//! | `attachment-policy` | [`attachment_policy`] | acts on attachment types, extensions and sizes anywhere in the MIME tree |
//! | `clamav` | [`clamav`] | scans with clamd (`INSTREAM`); quarantines, rejects or tags what it finds |
//! | `rspamd` | [`rspamd`] | asks rspamd (`/checkv2`); maps its action to a verdict and its header changes to mutations |
//!
//! Each plugin has a typed config (`deny_unknown_fields`, camelCase field names) and a public
//! `capabilities()` that is exactly the set of mutations it may return for that config. Config
//! errors name the offending field (`detectors[1].pattern`).

#![warn(missing_docs)]

pub mod attachment_policy;
pub mod clamav;
pub mod config;
pub mod dlp;
pub mod header_tagger;
pub(crate) mod mime;
pub mod rspamd;
pub mod size_limit;

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
/// wrong type, invalid regex, ...). Nothing is contacted: the scanner bridges connect per
/// message.
pub fn instantiate(
    plugin: BuiltinPlugin,
    config: Option<&serde_json::Value>,
) -> Result<Arc<dyn Plugin>, ConfigError> {
    Ok(match plugin {
        BuiltinPlugin::Dlp => Arc::new(dlp::Dlp::from_config(config)?),
        BuiltinPlugin::HeaderTagger => Arc::new(header_tagger::HeaderTagger::from_config(config)?),
        BuiltinPlugin::SizeLimit => Arc::new(size_limit::SizeLimit::from_config(config)?),
        BuiltinPlugin::AttachmentPolicy => {
            Arc::new(attachment_policy::AttachmentPolicy::from_config(config)?)
        }
        BuiltinPlugin::Clamav => Arc::new(clamav::Clamav::from_config(config)?),
        BuiltinPlugin::Rspamd => Arc::new(rspamd::Rspamd::from_config(config)?),
    })
}

/// Messages larger than this (octets) are scanned on a blocking thread
/// (`tokio::task::spawn_blocking`) instead of the async runtime.
pub const BLOCKING_THRESHOLD: usize = 64 << 10;

/// Runs `work` inline for a small message, on a blocking thread for a large one.
pub(crate) async fn run_scan<T, F>(size: usize, work: F) -> Result<T, mcp_plugin_api::PluginError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if size <= BLOCKING_THRESHOLD {
        return Ok(work());
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| mcp_plugin_api::PluginError::Failed(format!("scan task failed: {e}")))
}

#[cfg(test)]
pub(crate) mod testutil {
    use bytes::Bytes;
    use mcp_plugin_api::{Envelope, MessageContext, Stage};

    /// A delivery context for `acme`'s `user@example.com`, INBOX.
    pub fn context(raw: &[u8]) -> MessageContext {
        MessageContext {
            stage: Stage::Deliver,
            tenant: "acme".into(),
            mailbox: "user@example.com".into(),
            folder: "INBOX".into(),
            envelope: Envelope {
                mail_from: "sender@example.net".into(),
                rcpt_to: "user@example.com".into(),
            },
            message: Bytes::copy_from_slice(raw),
            flags: Vec::new(),
            metadata: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scanner_bridges_need_their_address() {
        for (p, field) in [
            (BuiltinPlugin::Rspamd, "url"),
            (BuiltinPlugin::Clamav, "address"),
        ] {
            let err = instantiate(p, None).err().expect("address required");
            assert!(err.message.contains(field), "{err}");
        }
        assert!(
            instantiate(
                BuiltinPlugin::Clamav,
                Some(&json!({"address": "tcp://127.0.0.1:3310"}))
            )
            .is_ok()
        );
        assert!(
            instantiate(
                BuiltinPlugin::Rspamd,
                Some(&json!({"url": "http://127.0.0.1:11333"}))
            )
            .is_ok()
        );
    }

    #[test]
    fn absent_config_means_empty_object() {
        assert!(instantiate(BuiltinPlugin::Dlp, None).is_ok());
        let err = instantiate(BuiltinPlugin::SizeLimit, None)
            .err()
            .expect("maxSize required");
        assert!(err.message.contains("maxSize"), "{err}");
        let err = instantiate(
            BuiltinPlugin::HeaderTagger,
            Some(&json!({"headers": [], "x": 1})),
        )
        .err()
        .expect("unknown field");
        assert_eq!(
            err.to_string(),
            "header-tagger config x: unknown field `x`, expected `headers`"
        );
    }
}
