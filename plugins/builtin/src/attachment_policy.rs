//! `attachment-policy`: rejects, quarantines or tags messages by the type, file extension or
//! size of any part, anywhere in the MIME tree (nested `message/rfc822` included).

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use mcp_crds::plugin::Capability;
use mcp_plugin_api::{
    Capabilities, MessageContext, Mutation, Plugin, PluginError, StepOutput, Verdict,
};
use serde::Deserialize;

use crate::config::{Size, invalid, parse};
use crate::mime::{content_type, extension};
use crate::{ConfigError, run_scan};

const NAME: &str = "attachment-policy";

/// The header `tag` sets unless `tagHeader` says otherwise.
pub const DEFAULT_TAG_HEADER: &str = "X-MCP-Attachment-Policy";

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttachmentAction {
    /// Refuse the message permanently (5.7.1).
    Reject,
    /// Hold the message in the tenant's quarantine.
    Quarantine,
    /// Let it through with a header naming the rule and the file.
    Tag,
}

/// One rule. A part matches when every criterion given matches; at least one is required.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachmentRule {
    /// Rule name, 1 to 64 of `[A-Za-z0-9._-]`, unique; shown in the verdict and the tag.
    pub name: String,
    /// Media types (`application/x-msdownload`) or type wildcards (`application/*`),
    /// case-insensitive; a part without Content-Type is `text/plain` (RFC 2045 §5.2).
    #[serde(default)]
    pub content_types: Option<Vec<String>>,
    /// File extensions without the dot (`exe`, `js`), case-insensitive; the extension is what
    /// follows the last dot of the file name (Content-Disposition `filename`, else
    /// Content-Type `name`; RFC 2231 and RFC 2047 forms decoded).
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
    /// Smallest decoded part size that matches, octets or a quantity (`"5Mi"`).
    #[serde(default)]
    pub min_size: Option<Size>,
    /// What happens when this rule is the first to match.
    pub action: AttachmentAction,
}

/// `attachment-policy` config.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachmentPolicyConfig {
    /// Rules in priority order: the first rule that matches any part decides; at least one.
    pub rules: Vec<AttachmentRule>,
    /// Header set by `tag` (replacing any present); default `X-MCP-Attachment-Policy`.
    #[serde(default)]
    pub tag_header: Option<String>,
}

#[derive(Clone, Debug)]
enum TypePattern {
    Exact(String, String),
    AnySubtype(String),
}

#[derive(Clone, Debug)]
struct Rule {
    name: String,
    types: Option<Vec<TypePattern>>,
    extensions: Option<HashSet<String>>,
    min_size: Option<u64>,
    action: AttachmentAction,
}

/// One leaf part as the rules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartInfo {
    /// Media type, lower-case.
    pub ctype: String,
    /// Subtype, lower-case.
    pub subtype: String,
    /// Decoded file name, if any.
    pub file_name: Option<String>,
    /// Decoded size in octets.
    pub size: u64,
}

impl Rule {
    fn matches(&self, part: &PartInfo) -> bool {
        let type_ok = self.types.as_ref().is_none_or(|ts| {
            ts.iter().any(|t| match t {
                TypePattern::Exact(c, s) => *c == part.ctype && *s == part.subtype,
                TypePattern::AnySubtype(c) => *c == part.ctype,
            })
        });
        let ext_ok = self.extensions.as_ref().is_none_or(|exts| {
            part.file_name
                .as_deref()
                .and_then(extension)
                .is_some_and(|e| exts.contains(&e))
        });
        let size_ok = self.min_size.is_none_or(|m| part.size >= m);
        type_ok && ext_ok && size_ok
    }
}

/// The `attachment-policy` plugin.
#[derive(Debug)]
pub struct AttachmentPolicy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    rules: Vec<Rule>,
    tag_header: String,
}

fn valid_rule_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn token_ok(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
}

fn parse_type(pattern: &str) -> Result<TypePattern, String> {
    let p = pattern.trim().to_ascii_lowercase();
    let bad = || format!("{pattern:?} is not a media type like application/pdf or application/*");
    let (c, s) = p.split_once('/').ok_or_else(bad)?;
    if !token_ok(c) {
        return Err(bad());
    }
    if s == "*" {
        Ok(TypePattern::AnySubtype(c.into()))
    } else if token_ok(s) {
        Ok(TypePattern::Exact(c.into(), s.into()))
    } else {
        Err(bad())
    }
}

/// Printable ASCII for verdict texts and header values: other characters become `?`,
/// quotes and backslashes `_`, at most `max` characters.
pub(crate) fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| match c {
            '"' | '\\' => '_',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

/// Every part of `message` (nested messages included, and the nested message part itself).
pub fn parts(message: &Message<'_>) -> Vec<PartInfo> {
    let mut out = Vec::new();
    collect(message, &mut out, 0);
    out
}

fn collect(message: &Message<'_>, out: &mut Vec<PartInfo>, depth: usize) {
    for part in &message.parts {
        let size = match &part.body {
            PartType::Multipart(_) => continue,
            PartType::Message(m) => {
                if part.encoding == mail_parser::Encoding::None {
                    u64::from(part.offset_end.saturating_sub(part.offset_body))
                } else {
                    m.raw_message().len() as u64
                }
            }
            other => match other {
                PartType::Text(t) | PartType::Html(t) => t.len() as u64,
                PartType::Binary(b) | PartType::InlineBinary(b) => b.len() as u64,
                _ => 0,
            },
        };
        let (ctype, subtype) = content_type(part);
        out.push(PartInfo {
            ctype,
            subtype,
            file_name: part.attachment_name().map(str::to_string),
            size,
        });
        if let PartType::Message(m) = &part.body
            && depth < crate::mime::MAX_NESTING
        {
            collect(m, out, depth + 1);
        }
    }
}

impl AttachmentPolicy {
    /// Parses and validates `config`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field: no rules, a rule without criteria, an empty list, a
    /// malformed media type or extension, a duplicate or malformed rule name, a bad header.
    pub fn from_config(config: Option<&serde_json::Value>) -> Result<Self, ConfigError> {
        let config: AttachmentPolicyConfig = parse(NAME, config)?;
        if config.rules.is_empty() {
            return Err(invalid(NAME, "rules", "must list at least one rule"));
        }
        let tag_header = config
            .tag_header
            .unwrap_or_else(|| DEFAULT_TAG_HEADER.into());
        Mutation::change_header(tag_header.clone(), "x")
            .map_err(|e| invalid(NAME, "tagHeader", e.0))?;
        let mut names = HashSet::new();
        let mut rules = Vec::with_capacity(config.rules.len());
        for (i, r) in config.rules.into_iter().enumerate() {
            let field = |f: &str| format!("rules[{i}].{f}");
            if !valid_rule_name(&r.name) {
                return Err(invalid(
                    NAME,
                    field("name"),
                    "must be 1 to 64 of [A-Za-z0-9._-]",
                ));
            }
            if !names.insert(r.name.clone()) {
                return Err(invalid(
                    NAME,
                    field("name"),
                    format!("duplicate rule {:?}", r.name),
                ));
            }
            if r.content_types.is_none() && r.extensions.is_none() && r.min_size.is_none() {
                return Err(invalid(
                    NAME,
                    format!("rules[{i}]"),
                    "needs at least one of contentTypes, extensions, minSize",
                ));
            }
            let types = match r.content_types {
                None => None,
                Some(ts) if ts.is_empty() => {
                    return Err(invalid(NAME, field("contentTypes"), "must not be empty"));
                }
                Some(ts) => Some(
                    ts.iter()
                        .enumerate()
                        .map(|(j, t)| {
                            parse_type(t).map_err(|e| {
                                invalid(NAME, format!("rules[{i}].contentTypes[{j}]"), e)
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let extensions = match r.extensions {
                None => None,
                Some(es) if es.is_empty() => {
                    return Err(invalid(NAME, field("extensions"), "must not be empty"));
                }
                Some(es) => {
                    let mut set = HashSet::new();
                    for (j, e) in es.iter().enumerate() {
                        let e = e.trim().trim_start_matches('.').to_lowercase();
                        if e.is_empty()
                            || e.contains(['.', '/', '\\'])
                            || e.chars().any(char::is_whitespace)
                        {
                            return Err(invalid(
                                NAME,
                                format!("rules[{i}].extensions[{j}]"),
                                "must be one extension without dots, like exe (the extension is what follows the last dot)",
                            ));
                        }
                        set.insert(e);
                    }
                    Some(set)
                }
            };
            rules.push(Rule {
                name: r.name,
                types,
                extensions,
                min_size: r.min_size.map(Size::octets),
                action: r.action,
            });
        }
        Ok(Self {
            inner: Arc::new(Inner { rules, tag_header }),
        })
    }

    /// `ChangeHeader` when a rule tags, else none.
    pub fn capabilities(&self) -> Capabilities {
        self.inner
            .rules
            .iter()
            .filter(|r| r.action == AttachmentAction::Tag)
            .map(|_| Capability::ChangeHeader)
            .collect()
    }

    /// The step output for the raw message `raw`.
    pub fn evaluate(&self, raw: &[u8]) -> StepOutput {
        self.inner.evaluate(raw)
    }
}

impl Inner {
    fn evaluate(&self, raw: &[u8]) -> StepOutput {
        let Some(message) = MessageParser::default().parse(raw) else {
            return StepOutput::pass();
        };
        let parts = parts(&message);
        for rule in &self.rules {
            let Some(part) = parts.iter().find(|p| rule.matches(p)) else {
                continue;
            };
            let what = match &part.file_name {
                Some(f) => format!("file \"{}\"", sanitize(f, 80)),
                None => format!(
                    "part {}/{}",
                    sanitize(&part.ctype, 40),
                    sanitize(&part.subtype, 40)
                ),
            };
            tracing::debug!(rule = %rule.name, "attachment policy matched");
            return match rule.action {
                AttachmentAction::Reject => StepOutput::verdict(Verdict::reject(format!(
                    "Attachment refused by policy rule {}: {what}",
                    rule.name
                ))),
                AttachmentAction::Quarantine => StepOutput::verdict(Verdict::quarantine(format!(
                    "attachment policy rule {}: {what}",
                    rule.name
                ))),
                AttachmentAction::Tag => {
                    let mut value = format!(
                        "rule={}; type={}/{}",
                        rule.name,
                        sanitize(&part.ctype, 60),
                        sanitize(&part.subtype, 60)
                    );
                    if let Some(f) = &part.file_name {
                        value.push_str(&format!("; file=\"{}\"", sanitize(f, 200)));
                    }
                    match Mutation::change_header(self.tag_header.clone(), value) {
                        Ok(m) => StepOutput::mutate(vec![m]),
                        // Unreachable: name checked at config time, value sanitized.
                        Err(_) => StepOutput::pass(),
                    }
                }
            };
        }
        StepOutput::pass()
    }
}

impl Plugin for AttachmentPolicy {
    fn capabilities(&self) -> Capabilities {
        AttachmentPolicy::capabilities(self)
    }

    fn process<'a>(
        &'a self,
        message: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
        let inner = Arc::clone(&self.inner);
        let raw = message.message.clone();
        Box::pin(run_scan(raw.len(), move || inner.evaluate(&raw)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::context;
    use mcp_plugin_api::mutation::apply_to_message;
    use serde_json::json;

    fn policy(rules: serde_json::Value) -> AttachmentPolicy {
        AttachmentPolicy::from_config(Some(&json!({ "rules": rules }))).expect("valid config")
    }

    fn mixed(parts: &str) -> Vec<u8> {
        format!(
            "Subject: t\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n{parts}--b1--\r\n"
        )
        .into_bytes()
    }

    const EXE: &str = "--b1\r\nContent-Type: application/x-msdownload\r\nContent-Disposition: attachment; filename=\"Setup.EXE\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n";
    const RFC2231: &str = "--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.js\r\n\r\nalert(1)\r\n";
    const RFC2047: &str = "--b1\r\nContent-Type: application/octet-stream; name=\"=?utf-8?b?ZmFjdHVyZS5qcw==?=\"\r\n\r\nalert(1)\r\n";
    const NESTED_EXE: &str = "--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: fwd\r\nContent-Type: multipart/mixed; boundary=\"b2\"\r\n\r\n--b2\r\nContent-Type: text/plain\r\n\r\ninner\r\n--b2\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=payload.exe\r\n\r\nPK\r\n--b2--\r\n\r\n";
    const PDF: &str = "--b1\r\nContent-Type: application/pdf; name=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==\r\n";

    #[test]
    fn rules_match_anywhere_in_the_mime_tree() {
        let p = policy(json!([
            {"name": "executables", "extensions": ["exe", ".JS"], "action": "reject"},
            {"name": "big-pdf", "contentTypes": ["application/pdf"], "minSize": 40, "action": "quarantine"},
            {"name": "any-app", "contentTypes": ["application/*"], "action": "tag"},
        ]));
        let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
            ("plain text only", mixed(""), "continue", ""),
            (
                "exe by extension, case-insensitive",
                mixed(EXE),
                "reject",
                "Setup.EXE",
            ),
            ("RFC 2231 file name", mixed(RFC2231), "reject", "r?sum?.js"),
            ("RFC 2047 file name", mixed(RFC2047), "reject", "facture.js"),
            (
                "exe inside a forwarded message",
                mixed(NESTED_EXE),
                "reject",
                "payload.exe",
            ),
            ("pdf above minSize", mixed(PDF), "quarantine", "report.pdf"),
            (
                "first matching rule decides",
                mixed(&format!("{PDF}{EXE}")),
                "reject",
                "Setup.EXE",
            ),
        ];
        for (what, raw, verdict, needle) in cases {
            let out = p.evaluate(&raw);
            assert_eq!(out.verdict.name(), verdict, "{what}");
            assert!(out.verdict.validate().is_ok(), "{what}: {:?}", out.verdict);
            let text = match &out.verdict {
                Verdict::Reject { text, .. } => text.clone(),
                Verdict::Quarantine { reason } => reason.clone(),
                _ => String::new(),
            };
            assert!(text.contains(needle), "{what}: {text}");
        }
    }

    #[test]
    fn small_pdf_is_tagged_not_quarantined() {
        let p = policy(json!([
            {"name": "big-pdf", "contentTypes": ["application/pdf"], "minSize": "1Ki", "action": "quarantine"},
            {"name": "any-app", "contentTypes": ["Application/*"], "action": "tag"},
        ]));
        let raw = mixed(PDF);
        let out = p.evaluate(&raw);
        assert_eq!(out.verdict, Verdict::Continue);
        assert_eq!(p.capabilities().first_undeclared(&out.mutations), None);
        let tagged = apply_to_message(&raw, &out.mutations);
        assert!(tagged.starts_with(
            b"X-MCP-Attachment-Policy: rule=any-app; type=application/pdf; file=\"report.pdf\"\r\n"
        ));
    }

    #[test]
    fn size_is_decoded_size() {
        // The part's 72 base64 characters decode to 52 octets.
        let p = policy(
            json!([{"name": "n", "contentTypes": ["application/pdf"], "minSize": 53, "action": "reject"}]),
        );
        assert_eq!(p.evaluate(&mixed(PDF)).verdict, Verdict::Continue);
        let p = policy(
            json!([{"name": "n", "contentTypes": ["application/pdf"], "minSize": 52, "action": "reject"}]),
        );
        assert_eq!(p.evaluate(&mixed(PDF)).verdict.name(), "reject");
    }

    #[test]
    fn config_errors_name_the_field() {
        let cases = [
            (json!({}), "", "missing field `rules`"),
            (json!({"rules": []}), "rules", "at least one"),
            (
                json!({"rules": [{"name": "a", "action": "reject"}]}),
                "rules[0]",
                "at least one of",
            ),
            (
                json!({"rules": [{"name": "a", "extensions": [], "action": "reject"}]}),
                "rules[0].extensions",
                "empty",
            ),
            (
                json!({"rules": [{"name": "a", "extensions": ["tar.gz"], "action": "reject"}]}),
                "rules[0].extensions[0]",
                "without dots",
            ),
            (
                json!({"rules": [{"name": "a", "contentTypes": ["pdf"], "action": "reject"}]}),
                "rules[0].contentTypes[0]",
                "not a media type",
            ),
            (
                json!({"rules": [{"name": "a", "minSize": "1XB", "action": "reject"}]}),
                "rules[0].minSize",
                "not a size",
            ),
            (
                json!({"rules": [{"name": "a", "minSize": 1, "action": "drop"}]}),
                "rules[0].action",
                "unknown variant",
            ),
            (
                json!({"rules": [{"name": "a b", "minSize": 1, "action": "tag"}]}),
                "rules[0].name",
                "[A-Za-z0-9._-]",
            ),
            (
                json!({"rules": [{"name": "a", "minSize": 1, "action": "tag"}, {"name": "a", "minSize": 1, "action": "tag"}]}),
                "rules[1].name",
                "duplicate",
            ),
            (
                json!({"rules": [{"name": "a", "minSize": 1, "action": "tag"}], "tagHeader": "X Bad"}),
                "tagHeader",
                "ftext",
            ),
            (
                json!({"rules": [{"name": "a", "minSize": 1, "action": "tag", "maxSize": 3}]}),
                "rules[0].maxSize",
                "unknown field",
            ),
        ];
        for (config, field, msg) in cases {
            let err = AttachmentPolicy::from_config(Some(&config)).expect_err("invalid");
            assert_eq!(err.field, field, "{config}");
            assert!(err.message.contains(msg), "{config}: {}", err.message);
        }
    }

    #[test]
    fn capabilities_follow_the_actions() {
        assert_eq!(
            policy(json!([{"name": "a", "minSize": 1, "action": "reject"}])).capabilities(),
            Capabilities::none()
        );
        assert!(
            policy(json!([{"name": "a", "minSize": 1, "action": "tag"}]))
                .capabilities()
                .allows(Capability::ChangeHeader)
        );
    }

    fn deep_nesting(depth: usize) -> Vec<u8> {
        let mut raw = "Content-Type: message/rfc822\r\n\r\n"
            .repeat(depth)
            .into_bytes();
        raw.extend_from_slice(b"Content-Type: application/x-msdownload; name=a.exe\r\n\r\nMZ\r\n");
        raw
    }

    #[test]
    fn nesting_is_followed_to_a_bound() {
        let p = policy(json!([{"name": "a", "extensions": ["exe"], "action": "reject"}]));
        assert_eq!(p.evaluate(&deep_nesting(5)).verdict.name(), "reject");
    }

    #[tokio::test]
    async fn hostile_input_passes_without_panicking() {
        let p = policy(json!([{"name": "a", "extensions": ["exe"], "action": "reject"}]));
        for raw in [
            &b""[..],
            b"\r\n\r\n",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x\r\n--x",
            b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n",
            &[0xff, 0xfe, 0x00, 0x0d, 0x0a][..],
            deep_nesting(2000).as_slice(),
        ] {
            let out = p.process(&context(raw)).await.expect("no error");
            assert!(out.verdict.validate().is_ok());
        }
    }
}
