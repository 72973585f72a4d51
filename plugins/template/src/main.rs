//! Template MCP plugin: adds a header and an IMAP keyword, both from the step config, to every
//! message. Copy this crate to start a plugin (README.md).
use futures::future::BoxFuture;
use mcp_plugin_sdk::api::{
    Capabilities, Capability, MessageContext, Mutation, Plugin, PluginError, StepOutput,
};
use mcp_plugin_sdk::{ConfigError, PluginInfo};

/// The step config: `{"keyword": "$Tagged", "header": "X-Tagged", "value": "yes"}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    keyword: String,
    #[serde(default = "default_header")]
    header: String,
    #[serde(default)]
    value: String,
}

fn default_header() -> String {
    "X-MCP-Template".into()
}

/// The mutations of one config, checked once when the config is first seen.
struct Tagger(Vec<Mutation>);

impl Plugin for Tagger {
    fn capabilities(&self) -> Capabilities {
        [Capability::AddHeader, Capability::AddKeyword]
            .into_iter()
            .collect()
    }

    fn process<'a>(
        &'a self,
        _message: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
        Box::pin(async move { Ok(StepOutput::mutate(self.0.clone())) })
    }
}

#[tokio::main]
async fn main() -> Result<(), mcp_plugin_sdk::ServeError> {
    let info = PluginInfo::new("template", env!("CARGO_PKG_VERSION"))
        .capabilities([Capability::AddHeader, Capability::AddKeyword]);
    mcp_plugin_sdk::serve_configured(info, |c: Config| {
        let header = Mutation::add_header(c.header, c.value)
            .map_err(|e| ConfigError::field("$.header", e.to_string()))?;
        let keyword = Mutation::AddKeyword { keyword: c.keyword };
        keyword
            .validate()
            .map_err(|e| ConfigError::field("$.keyword", e.to_string()))?;
        Ok(Tagger(vec![header, keyword]))
    })
    .await
}
