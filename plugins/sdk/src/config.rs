//! Step configs: how a plugin is built from the JSON config of a pipeline step, and the cache
//! of built plugins keyed by `config_id` (`StepConfig.config_id`, the SHA-256 of the config).
//!
//! A plugin with no config implements [`mcp_plugin_api::Plugin`] and is served with
//! [`Fixed`]. A plugin with a config is a function from a deserialised config type to a
//! plugin ([`FromConfig`]): the SDK calls it for every step config at `Initialize` (refusals
//! fill `InitializeResponse.config_errors`) and for a config first seen in `ProcessMessage`,
//! and keeps the result per `config_id`.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use mcp_plugin_api::Plugin;
use serde::de::DeserializeOwned;

/// A step config the plugin cannot use: sent in `InitializeResponse.config_errors`, or as an
/// `INVALID_ARGUMENT` status when first seen in `ProcessMessage`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct ConfigError {
    /// JSON path of the offending field (`$.keyword`), or empty for the whole config.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error about the whole config.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            field: String::new(),
            message: message.into(),
        }
    }

    /// An error about the field at JSON path `field` (`$.threshold`).
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Builds the plugin for one step config.
pub trait Configure: Send + Sync + 'static {
    /// The plugin for `config` (a JSON object: the step's `config` merged over the
    /// PluginDeployment's `defaultConfig`).
    ///
    /// # Errors
    /// [`ConfigError`] when the config is unusable.
    fn configure(&self, config: serde_json::Value) -> Result<Arc<dyn Plugin>, ConfigError>;
}

/// One plugin for every config: the config is not read.
pub struct Fixed(Arc<dyn Plugin>);

impl Fixed {
    /// Serves `plugin` whatever the step config says.
    pub fn new(plugin: impl Plugin) -> Self {
        Self(Arc::new(plugin))
    }
}

impl Configure for Fixed {
    fn configure(&self, _config: serde_json::Value) -> Result<Arc<dyn Plugin>, ConfigError> {
        Ok(Arc::clone(&self.0))
    }
}

/// A plugin built by `F` from the config deserialised into `C` (serde). A config that does
/// not deserialise is refused with the JSON path of the offending field (`$.words[2]`).
pub struct FromConfig<C, F> {
    build: F,
    config: PhantomData<fn(C)>,
}

impl<C, F> FromConfig<C, F> {
    /// Builds plugins with `build`.
    pub fn new(build: F) -> Self {
        Self {
            build,
            config: PhantomData,
        }
    }
}

impl<C, P, F> Configure for FromConfig<C, F>
where
    C: DeserializeOwned + 'static,
    P: Plugin,
    F: Fn(C) -> Result<P, ConfigError> + Send + Sync + 'static,
{
    fn configure(&self, config: serde_json::Value) -> Result<Arc<dyn Plugin>, ConfigError> {
        let config: C = serde_path_to_error::deserialize(config).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                String::new()
            } else {
                format!("$.{path}")
            };
            ConfigError::field(field, e.into_inner().to_string())
        })?;
        Ok(Arc::new((self.build)(config)?))
    }
}

/// Most configs kept; beyond, the cache starts over (configs change rarely: on a Pipeline
/// edit).
const CACHE_ENTRIES: usize = 1024;

/// The plugins built so far, keyed by `config_id`.
pub(crate) struct ConfigCache {
    configure: Arc<dyn Configure>,
    built: Mutex<HashMap<String, Arc<dyn Plugin>>>,
}

impl ConfigCache {
    pub(crate) fn new(configure: Arc<dyn Configure>) -> Self {
        Self {
            configure,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The plugin for config `config_json` identified by `config_id`, built on first use. An
    /// empty `config_json` is the empty object.
    pub(crate) fn get(
        &self,
        config_id: &str,
        config_json: &str,
    ) -> Result<Arc<dyn Plugin>, ConfigError> {
        if let Some(p) = self.lock().get(config_id) {
            return Ok(Arc::clone(p));
        }
        let value = parse(config_json)?;
        let plugin = self.configure.configure(value)?;
        let mut built = self.lock();
        if built.len() >= CACHE_ENTRIES {
            built.clear();
        }
        built.insert(config_id.to_owned(), Arc::clone(&plugin));
        Ok(plugin)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn Plugin>>> {
        // A panic while holding the lock cannot leave the map half-updated (insert/clear).
        self.built.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The config object of `json`; empty means `{}`.
fn parse(json: &str) -> Result<serde_json::Value, ConfigError> {
    if json.trim().is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| ConfigError::new(format!("the config is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ConfigError::new("the config must be a JSON object"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use mcp_plugin_api::{Capabilities, MessageContext, PluginError, StepOutput};
    use serde::Deserialize;

    struct Tag;
    impl Plugin for Tag {
        fn capabilities(&self) -> Capabilities {
            Capabilities::none()
        }
        fn process<'a>(
            &'a self,
            _m: &'a MessageContext,
        ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
            Box::pin(async { Ok(StepOutput::pass()) })
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        words: Vec<String>,
    }

    fn cache() -> ConfigCache {
        ConfigCache::new(Arc::new(FromConfig::new(|c: Cfg| {
            if c.words.iter().any(String::is_empty) {
                return Err(ConfigError::field("$.words", "empty word"));
            }
            Ok(Tag)
        })))
    }

    #[test]
    fn configs_are_checked_with_the_path_of_the_bad_field() {
        for (json, want) in [
            (r#"{"words": ["a"]}"#, None),
            (r#"{"words": "a"}"#, Some("$.words")),
            (r#"{"words": ["a", 3]}"#, Some("$.words[1]")),
            (r#"{"words": [""]}"#, Some("$.words")),
            (r#"{"word": []}"#, Some("$.word")),
            ("", Some("")),
            ("[]", Some("")),
            ("{", Some("")),
        ] {
            let got = cache().get("id", json).err().map(|e| e.field);
            assert_eq!(got.as_deref(), want, "{json}");
        }
    }

    #[test]
    fn a_built_plugin_is_reused_per_config_id() {
        let c = cache();
        let a = c.get("id1", r#"{"words": ["a"]}"#).expect("valid");
        let b = c.get("id1", "not even JSON: cached").expect("cached");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(c.get("id2", "{").is_err(), "another id is built anew");
    }
}
