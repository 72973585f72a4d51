//! `header-tagger`: adds, sets or removes header fields, with values that may name the tenant,
//! mailbox, stage and folder.

use futures::future::BoxFuture;
use mcp_crds::plugin::Capability;
use mcp_plugin_api::{
    Capabilities, HeaderName, MessageContext, Mutation, Plugin, PluginError, Stage, StepOutput,
};
use serde::Deserialize;

use crate::ConfigError;
use crate::config::{invalid, parse};

const NAME: &str = "header-tagger";

/// What one header operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HeaderAction {
    /// Adds a field at the top of the header section, keeping existing ones (`AddHeader`).
    Add,
    /// Replaces every field of that name with one field, or adds it (`ChangeHeader`).
    Set,
    /// Removes every field of that name (`RemoveHeader`); takes no `value`.
    Remove,
}

/// One header operation.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderOp {
    /// Field name, 1 to 76 printable ASCII characters without `:` (RFC 5322 §2.2).
    pub name: String,
    /// Field value; required for `add` and `set`, refused for `remove`. May use the
    /// placeholders `${tenant}`, `${mailbox}`, `${stage}` (`deliver`, `append`,
    /// `post-store`) and `${folder}`. At most 900 octets after substitution, no CR or LF.
    #[serde(default)]
    pub value: Option<String>,
    /// `add`, `set` or `remove`.
    pub action: HeaderAction,
}

/// `header-tagger` config.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderTaggerConfig {
    /// Operations, applied in order; at least one.
    pub headers: Vec<HeaderOp>,
}

/// A piece of a value template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Tenant,
    Mailbox,
    Stage,
    Folder,
}

#[derive(Clone, Debug)]
struct Op {
    name: HeaderName,
    template: Vec<Piece>,
    action: HeaderAction,
}

/// The `header-tagger` plugin: returns the configured header mutations for every message,
/// verdict `Continue`.
#[derive(Debug)]
pub struct HeaderTagger {
    ops: Vec<Op>,
}

fn parse_template(value: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = value;
    let mut literal = String::new();
    while let Some(start) = rest.find("${") {
        literal.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unterminated placeholder in {value:?}"));
        };
        let piece = match &after[..end] {
            "tenant" => Piece::Tenant,
            "mailbox" => Piece::Mailbox,
            "stage" => Piece::Stage,
            "folder" => Piece::Folder,
            other => {
                return Err(format!(
                    "unknown placeholder ${{{other}}}: use ${{tenant}}, ${{mailbox}}, ${{stage}} or ${{folder}}"
                ));
            }
        };
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(piece);
        rest = &after[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

/// The name a stage has in a Pipeline (`post-store`).
pub(crate) fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Deliver => "deliver",
        Stage::Append => "append",
        Stage::PostStore => "post-store",
    }
}

fn render(template: &[Piece], tenant: &str, mailbox: &str, stage: Stage, folder: &str) -> String {
    let mut out = String::new();
    for p in template {
        out.push_str(match p {
            Piece::Literal(s) => s,
            Piece::Tenant => tenant,
            Piece::Mailbox => mailbox,
            Piece::Stage => stage_name(stage),
            Piece::Folder => folder,
        });
    }
    out
}

impl Op {
    fn mutation(
        &self,
        tenant: &str,
        mailbox: &str,
        stage: Stage,
        folder: &str,
    ) -> Result<Mutation, String> {
        let value = render(&self.template, tenant, mailbox, stage, folder);
        let m = match self.action {
            HeaderAction::Add => Mutation::AddHeader {
                name: self.name.clone(),
                value,
            },
            HeaderAction::Set => Mutation::ChangeHeader {
                name: self.name.clone(),
                value,
            },
            HeaderAction::Remove => Mutation::RemoveHeader {
                name: self.name.clone(),
            },
        };
        m.validate().map_err(|e| e.to_string())?;
        Ok(m)
    }
}

impl HeaderTagger {
    /// Parses and validates `config`: names and values are checked with the mutation
    /// constructors, placeholders substituted by representative values.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field (`headers[1].value` for an unknown placeholder, ...).
    pub fn from_config(config: Option<&serde_json::Value>) -> Result<Self, ConfigError> {
        let config: HeaderTaggerConfig = parse(NAME, config)?;
        if config.headers.is_empty() {
            return Err(invalid(NAME, "headers", "must list at least one operation"));
        }
        let mut ops = Vec::with_capacity(config.headers.len());
        for (i, h) in config.headers.iter().enumerate() {
            let name = HeaderName::new(h.name.clone())
                .map_err(|e| invalid(NAME, format!("headers[{i}].name"), e.0))?;
            let value_field = format!("headers[{i}].value");
            let template = match (h.action, &h.value) {
                (HeaderAction::Remove, Some(_)) => {
                    return Err(invalid(NAME, value_field, "not allowed with action remove"));
                }
                (HeaderAction::Remove, None) => Vec::new(),
                (_, None) => {
                    return Err(invalid(
                        NAME,
                        value_field,
                        "required with action add or set",
                    ));
                }
                (_, Some(v)) => parse_template(v).map_err(|e| invalid(NAME, &value_field, e))?,
            };
            let op = Op {
                name,
                template,
                action: h.action,
            };
            // Representative values: a long tenant, address and folder to catch the 900
            // octet limit early; real values are checked again per message.
            op.mutation("tenant", "user@example.com", Stage::PostStore, "INBOX")
                .map_err(|e| invalid(NAME, &value_field, e))?;
            ops.push(op);
        }
        Ok(Self { ops })
    }

    /// `AddHeader`, `ChangeHeader` and `RemoveHeader`, each only when an operation uses it.
    pub fn capabilities(&self) -> Capabilities {
        self.ops
            .iter()
            .map(|op| match op.action {
                HeaderAction::Add => Capability::AddHeader,
                HeaderAction::Set => Capability::ChangeHeader,
                HeaderAction::Remove => Capability::RemoveHeader,
            })
            .collect()
    }

    /// The mutations for `message`.
    ///
    /// # Errors
    /// [`PluginError::Failed`] when a substituted value breaks the header rules (a folder
    /// name that makes the value longer than 900 octets).
    pub fn mutations(&self, message: &MessageContext) -> Result<Vec<Mutation>, PluginError> {
        self.ops
            .iter()
            .map(|op| {
                op.mutation(
                    &message.tenant,
                    &message.mailbox,
                    message.stage,
                    &message.folder,
                )
                .map_err(|e| PluginError::Failed(format!("header {}: {e}", op.name)))
            })
            .collect()
    }
}

impl Plugin for HeaderTagger {
    fn capabilities(&self) -> Capabilities {
        HeaderTagger::capabilities(self)
    }

    fn process<'a>(
        &'a self,
        message: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
        Box::pin(async move { Ok(StepOutput::mutate(self.mutations(message)?)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::context;
    use mcp_plugin_api::mutation::apply_to_message;
    use serde_json::json;

    #[test]
    fn operations_render_placeholders_and_apply_in_order() {
        let p = HeaderTagger::from_config(Some(&json!({"headers": [
            {"name": "X-Tenant", "value": "${tenant}/${mailbox} at ${stage} into ${folder}", "action": "add"},
            {"name": "X-Spam", "value": "no", "action": "set"},
            {"name": "X-Internal", "action": "remove"},
            {"name": "X-Dollar", "value": "costs $5 {not a placeholder}", "action": "add"},
        ]})))
        .expect("valid");
        let ctx = context(b"X-Spam: yes\r\nX-Internal: secret\r\nSubject: hi\r\n\r\nbody\r\n");
        let ms = p.mutations(&ctx).expect("mutations");
        let out = String::from_utf8(apply_to_message(&ctx.message, &ms).to_vec()).expect("utf-8");
        assert_eq!(
            out,
            "X-Dollar: costs $5 {not a placeholder}\r\nX-Tenant: acme/user@example.com at deliver into INBOX\r\nX-Spam: no\r\nSubject: hi\r\n\r\nbody\r\n"
        );
        let caps = p.capabilities();
        assert!(caps.allows(Capability::AddHeader));
        assert!(caps.allows(Capability::ChangeHeader));
        assert!(caps.allows(Capability::RemoveHeader));
        assert!(!caps.allows(Capability::ReplaceBody));
        assert_eq!(caps.first_undeclared(&ms), None);
    }

    #[test]
    fn capabilities_are_exactly_the_actions_used() {
        let p = HeaderTagger::from_config(Some(
            &json!({"headers": [{"name": "X-A", "value": "1", "action": "add"}]}),
        ))
        .expect("valid");
        let want: Capabilities = [Capability::AddHeader].into_iter().collect();
        assert_eq!(p.capabilities(), want);
    }

    #[test]
    fn config_errors_name_the_field() {
        let cases = [
            (json!({}), "", "missing field `headers`"),
            (json!({"headers": []}), "headers", "at least one"),
            (
                json!({"headers": [{"name": "X", "value": "${user}", "action": "add"}]}),
                "headers[0].value",
                "unknown placeholder ${user}",
            ),
            (
                json!({"headers": [{"name": "X", "value": "${tenant", "action": "add"}]}),
                "headers[0].value",
                "unterminated",
            ),
            (
                json!({"headers": [{"name": "X", "value": "a", "action": "add"}, {"name": "Bad Name", "value": "a", "action": "set"}]}),
                "headers[1].name",
                "ftext",
            ),
            (
                json!({"headers": [{"name": "X", "value": "a\r\nBcc: x", "action": "add"}]}),
                "headers[0].value",
                "CR, LF",
            ),
            (
                json!({"headers": [{"name": "X", "value": "a".repeat(901), "action": "add"}]}),
                "headers[0].value",
                "over 900",
            ),
            (
                json!({"headers": [{"name": "X", "action": "set"}]}),
                "headers[0].value",
                "required",
            ),
            (
                json!({"headers": [{"name": "X", "value": "v", "action": "remove"}]}),
                "headers[0].value",
                "not allowed",
            ),
            (
                json!({"headers": [{"name": "X", "value": "v", "action": "prepend"}]}),
                "headers[0].action",
                "unknown variant",
            ),
            (
                json!({"headers": [{"name": "X", "value": "v", "action": "add", "where": "top"}]}),
                "headers[0].where",
                "unknown field",
            ),
        ];
        for (config, field, msg) in cases {
            let err = HeaderTagger::from_config(Some(&config)).expect_err("invalid");
            assert_eq!(err.field, field, "{config}");
            assert!(err.message.contains(msg), "{config}: {}", err.message);
        }
    }

    #[test]
    fn hostile_runtime_values_fail_instead_of_injecting() {
        let p = HeaderTagger::from_config(Some(
            &json!({"headers": [{"name": "X-Folder", "value": "${folder}", "action": "add"}]}),
        ))
        .expect("valid");
        let mut ctx = context(b"Subject: a\r\n\r\nb\r\n");
        ctx.folder = "a\r\nBcc: evil".into();
        assert!(matches!(p.mutations(&ctx), Err(PluginError::Failed(_))));
    }
}
