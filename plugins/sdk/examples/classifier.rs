//! Example MCP plugin: a keyword classifier. A message containing one of `words` (ASCII
//! case-insensitive, anywhere in what the host sends: header section, and the body in
//! `buffered` or `streamed` mode) is filed into `folder` and gets `keyword`; one containing a
//! `reject` word is refused with 5.7.1. The Python example `plugins/examples/python-classifier`
//! does exactly the same; the contract tests (`e2e/plugins_contract`) run one table against
//! both.
//!
//! Config: `{"words": ["unsubscribe", "newsletter"], "folder": "Newsletters",
//! "keyword": "$Newsletter", "reject": []}` (all optional, those are the defaults). The body
//! mode declared is `MCP_CLASSIFIER_BODY_MODE` (`none`, `headers`, `buffered`, `streamed`;
//! default `streamed`).
use futures::future::BoxFuture;
use mcp_plugin_sdk::api::{
    Capabilities, Capability, MessageContext, Mutation, Plugin, PluginError, Stage, StepOutput,
    Verdict,
};
use mcp_plugin_sdk::{BodyMode, ConfigError, PluginInfo};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    words: Vec<String>,
    folder: String,
    keyword: String,
    reject: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        let words = vec!["unsubscribe".into(), "newsletter".into()];
        Self {
            words,
            folder: "Newsletters".into(),
            keyword: "$Newsletter".into(),
            reject: vec![],
        }
    }
}

struct Classifier {
    words: Vec<Vec<u8>>,
    reject: Vec<Vec<u8>>,
    file: Vec<Mutation>,
}

fn contains(haystack: &[u8], word: &[u8]) -> bool {
    haystack.windows(word.len()).any(|w| w == word)
}

impl Plugin for Classifier {
    fn capabilities(&self) -> Capabilities {
        [Capability::FileInto, Capability::AddKeyword]
            .into_iter()
            .collect()
    }

    fn process<'a>(
        &'a self,
        message: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
        Box::pin(async move {
            let text = message.message.to_ascii_lowercase();
            if self.reject.iter().any(|w| contains(&text, w)) {
                return Ok(StepOutput::verdict(Verdict::reject(
                    "refused by the classifier",
                )));
            }
            if self.words.iter().any(|w| contains(&text, w)) {
                return Ok(StepOutput::mutate(self.file.clone()));
            }
            Ok(StepOutput::pass())
        })
    }
}

fn build(c: Config) -> Result<Classifier, ConfigError> {
    let lower = |field: &str, words: Vec<String>| {
        if words.iter().any(String::is_empty) {
            return Err(ConfigError::field(field, "words must not be empty"));
        }
        Ok(words
            .into_iter()
            .map(|w| w.to_ascii_lowercase().into_bytes())
            .collect())
    };
    let file = vec![
        Mutation::FileInto { folder: c.folder },
        Mutation::AddKeyword { keyword: c.keyword },
    ];
    for (m, field) in file.iter().zip(["$.folder", "$.keyword"]) {
        m.validate()
            .map_err(|e| ConfigError::field(field, e.to_string()))?;
    }
    Ok(Classifier {
        words: lower("$.words", c.words)?,
        reject: lower("$.reject", c.reject)?,
        file,
    })
}

#[tokio::main]
async fn main() -> Result<(), mcp_plugin_sdk::ServeError> {
    let mode = match std::env::var("MCP_CLASSIFIER_BODY_MODE").as_deref() {
        Ok("none") => BodyMode::None,
        Ok("headers") => BodyMode::Headers,
        Ok("buffered") => BodyMode::Buffered,
        _ => BodyMode::Streamed,
    };
    let info = PluginInfo::new("classifier", env!("CARGO_PKG_VERSION"))
        .stages([Stage::Deliver, Stage::Append])
        .capabilities([Capability::FileInto, Capability::AddKeyword])
        .body_mode(mode);
    mcp_plugin_sdk::serve_configured(info, build).await
}
