//! `rspamd`: asks an rspamd worker about each message over its HTTP protocol (`POST
//! /checkv2`), maps rspamd's action to a verdict and its milter header changes to mutations.
//!
//! The request carries the raw message as its body and the envelope in rspamd's request
//! headers: `From` (MAIL FROM; left out for the null sender `<>`), `Rcpt` (the recipient of
//! this run), `Deliver-To` (the mailbox), `User` (the account, on the `append` stage only: the
//! client authenticated over IMAP) and `Password` when configured. The message's client IP is
//! not known to a pipeline step, so no `IP` header is sent.
//!
//! The reply is JSON: `action`, `score`, `required_score`, `symbols`, `subject` (the
//! rewritten subject, with `rewrite subject`), `messages.smtp_message` and `milter`
//! (`add_headers`, `remove_headers`). Any other status than 2xx, another content type than
//! `application/json`, a body over [`MAX_REPLY`], JSON that does not parse or an action this
//! bridge does not know is a [`PluginError`] for the step's `onError`: never a clean result.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use mcp_crds::Duration;
use mcp_crds::plugin::Capability;
use mcp_plugin_api::{
    Capabilities, HeaderName, MessageContext, Mutation, Plugin, PluginError, Stage, StepOutput,
    Verdict,
};
use serde::Deserialize;

use crate::ConfigError;
use crate::config::{invalid, parse};
use crate::mime::encode_header_text;

const NAME: &str = "rspamd";

/// Largest reply body read from rspamd, in octets; a longer one is a protocol violation.
pub const MAX_REPLY: usize = 1 << 20;
/// Most header fields one reply may ask to add, and (separately) to remove.
pub const MAX_MILTER_HEADERS: usize = 64;
/// The header set to `Yes` on messages the `tag` and `rewriteSubject` actions let through.
pub const SPAM_HEADER: &str = "X-Spam";
/// The summary header of `tag` and `rewriteSubject`, unless rspamd's milter block sets it.
pub const RESULT_HEADER: &str = "X-Spamd-Result";

/// An action rspamd returns (rspamd's `actions` configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RspamdAction {
    /// `reject`.
    Reject,
    /// `soft reject`.
    SoftReject,
    /// `rewrite subject`.
    RewriteSubject,
    /// `add header`.
    AddHeader,
    /// `greylist`.
    Greylist,
    /// `no action`.
    NoAction,
    /// `discard`.
    Discard,
    /// `quarantine`.
    Quarantine,
}

impl RspamdAction {
    /// Every action, in the order of the docs.
    pub const ALL: [RspamdAction; 8] = [
        RspamdAction::Reject,
        RspamdAction::SoftReject,
        RspamdAction::RewriteSubject,
        RspamdAction::AddHeader,
        RspamdAction::Greylist,
        RspamdAction::NoAction,
        RspamdAction::Discard,
        RspamdAction::Quarantine,
    ];

    /// The action as rspamd writes it (`soft reject`).
    pub fn as_str(self) -> &'static str {
        match self {
            RspamdAction::Reject => "reject",
            RspamdAction::SoftReject => "soft reject",
            RspamdAction::RewriteSubject => "rewrite subject",
            RspamdAction::AddHeader => "add header",
            RspamdAction::Greylist => "greylist",
            RspamdAction::NoAction => "no action",
            RspamdAction::Discard => "discard",
            RspamdAction::Quarantine => "quarantine",
        }
    }

    /// Parses rspamd's spelling; `None` for an action this bridge does not know.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// What the action does unless `actions` says otherwise.
    pub fn default_mapping(self) -> SpamAction {
        match self {
            RspamdAction::Reject => SpamAction::Reject,
            RspamdAction::SoftReject | RspamdAction::Greylist => SpamAction::Tempfail,
            RspamdAction::RewriteSubject => SpamAction::RewriteSubject,
            RspamdAction::AddHeader => SpamAction::Tag,
            RspamdAction::NoAction => SpamAction::Pass,
            RspamdAction::Discard => SpamAction::Discard,
            RspamdAction::Quarantine => SpamAction::Quarantine,
        }
    }
}

impl fmt::Display for RspamdAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What MCP does with a message, for one rspamd action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SpamAction {
    /// `Reject` 5.7.1.
    Reject,
    /// `TempFail` 4.7.1: the sender retries.
    Tempfail,
    /// Hold it in the tenant's quarantine.
    Quarantine,
    /// Accept and drop it (what rspamd's `discard` asks for).
    Discard,
    /// Deliver it with rspamd's milter headers, `X-Spam: Yes` and an `X-Spamd-Result`
    /// summary.
    Tag,
    /// As `tag`, and the Subject replaced by rspamd's rewritten subject; only for
    /// `rewrite subject`, the one action rspamd sends a subject with.
    RewriteSubject,
    /// Deliver it with rspamd's milter headers only.
    Pass,
}

/// Per-action overrides of the default mapping; keys are rspamd's action names.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionOverrides {
    /// `reject` (default `reject`).
    #[serde(default)]
    pub reject: Option<SpamAction>,
    /// `soft reject` (default `tempfail`).
    #[serde(default, rename = "soft reject")]
    pub soft_reject: Option<SpamAction>,
    /// `rewrite subject` (default `rewriteSubject`).
    #[serde(default, rename = "rewrite subject")]
    pub rewrite_subject: Option<SpamAction>,
    /// `add header` (default `tag`).
    #[serde(default, rename = "add header")]
    pub add_header: Option<SpamAction>,
    /// `greylist` (default `tempfail`).
    #[serde(default)]
    pub greylist: Option<SpamAction>,
    /// `no action` (default `pass`).
    #[serde(default, rename = "no action")]
    pub no_action: Option<SpamAction>,
    /// `discard` (default `discard`).
    #[serde(default)]
    pub discard: Option<SpamAction>,
    /// `quarantine` (default `quarantine`).
    #[serde(default)]
    pub quarantine: Option<SpamAction>,
}

impl ActionOverrides {
    fn get(&self, a: RspamdAction) -> Option<SpamAction> {
        match a {
            RspamdAction::Reject => self.reject,
            RspamdAction::SoftReject => self.soft_reject,
            RspamdAction::RewriteSubject => self.rewrite_subject,
            RspamdAction::AddHeader => self.add_header,
            RspamdAction::Greylist => self.greylist,
            RspamdAction::NoAction => self.no_action,
            RspamdAction::Discard => self.discard,
            RspamdAction::Quarantine => self.quarantine,
        }
    }
}

/// rspamd's `Password` header value; shown as `***` by `Debug`, never logged.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `rspamd` config.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RspamdConfig {
    /// Base URL of an rspamd normal worker (or proxy), `http://host:port` with an optional
    /// path prefix; the bridge appends `/checkv2`. Plain HTTP only. Required.
    pub url: String,
    /// Bound on one whole request (connect, send, reply); default `10s`. The step's own
    /// `timeout` still applies on top.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Sent as rspamd's `Password` header (a worker or proxy with `password` set); 1 to 256
    /// printable ASCII characters. Never logged.
    #[serde(default)]
    pub password: Option<Password>,
    /// Overrides of the action mapping, keyed by rspamd's action name (`"add header":
    /// quarantine`).
    #[serde(default)]
    pub actions: ActionOverrides,
}

/// One symbol of a reply.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Symbol {
    /// Its contribution to the score.
    #[serde(default)]
    pub score: f64,
}

/// The parts of a `/checkv2` reply the bridge uses.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CheckReply {
    /// rspamd's action, e.g. `add header`.
    pub action: String,
    /// The message's score.
    pub score: f64,
    /// The score of the `reject` action.
    pub required_score: f64,
    /// Symbols that matched, by name.
    #[serde(default)]
    pub symbols: BTreeMap<String, Symbol>,
    /// The rewritten subject (`rewrite subject` only).
    #[serde(default)]
    pub subject: Option<String>,
    /// Texts for the sender: `smtp_message`.
    #[serde(default)]
    pub messages: BTreeMap<String, serde_json::Value>,
    /// Header changes (rspamd's `milter_headers` module): `add_headers`, `remove_headers`.
    #[serde(default)]
    pub milter: Option<serde_json::Value>,
}

/// Parses a `/checkv2` reply body.
///
/// # Errors
/// A description when the body is not JSON, is an rspamd `{"error": ...}` object, or lacks
/// `action`, `score` or `required_score`.
pub fn parse_reply(body: &[u8]) -> Result<CheckReply, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("a reply that is not JSON: {e}"))?;
    if let Some(error) = value.get("error") {
        return Err(format!("an error: {}", printable(&json_text(error), 150)));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        format!(
            "a reply without the expected fields ({}: {})",
            e.path(),
            e.inner()
        )
    })
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `text` cut to `max` characters of printable ASCII (others become `?`).
fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

/// Unfolds a header value (RFC 5322 §2.2.3: a line break followed by white space is folding)
/// and cuts it to the contract's 900 octets.
///
/// # Errors
/// When a line break is not followed by white space or the value has a NUL: both would
/// inject header fields.
fn header_value(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => {
                while chars.peek().is_some_and(|c| matches!(c, '\r' | '\n')) {
                    chars.next();
                }
                if !chars.peek().is_some_and(|c| matches!(c, ' ' | '\t')) {
                    return Err("a line break that is not folding".into());
                }
                while chars.peek().is_some_and(|c| matches!(c, ' ' | '\t')) {
                    chars.next();
                }
                out.push(' ');
            }
            '\0' => return Err("a NUL".into()),
            c => out.push(c),
        }
    }
    Ok(truncate(out, 900))
}

/// `s` cut to at most `max` octets on a character boundary.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The header changes of a reply's `milter` block, as mutations: every removal, then every
/// addition. `remove_headers` maps a name to an occurrence index; every index removes all
/// fields of that name (the contract has no per-occurrence removal, and rspamd re-adds
/// what it keeps). `add_headers` maps a name to a value, a `{value, order}` object, or a
/// list of either.
///
/// # Errors
/// A description for a block of another shape, a bad header name or value, or more than
/// [`MAX_MILTER_HEADERS`] additions or removals.
pub fn milter_mutations(milter: &serde_json::Value) -> Result<Vec<Mutation>, String> {
    let serde_json::Value::Object(block) = milter else {
        return Err("a milter block that is not an object".into());
    };
    let name = |n: &str| {
        HeaderName::new(n).map_err(|e| format!("milter header {:?}: {e}", printable(n, 80)))
    };
    let mut removals = Vec::new();
    if let Some(remove) = block.get("remove_headers") {
        let serde_json::Value::Object(remove) = remove else {
            return Err("milter.remove_headers is not an object".into());
        };
        if remove.len() > MAX_MILTER_HEADERS {
            return Err(format!(
                "milter.remove_headers has over {MAX_MILTER_HEADERS} fields"
            ));
        }
        for (n, index) in remove {
            if !index.is_i64() {
                return Err(format!(
                    "milter.remove_headers.{}: not an integer",
                    printable(n, 80)
                ));
            }
            removals.push(Mutation::RemoveHeader { name: name(n)? });
        }
    }
    let mut additions = Vec::new();
    if let Some(add) = block.get("add_headers") {
        let serde_json::Value::Object(add) = add else {
            return Err("milter.add_headers is not an object".into());
        };
        for (n, spec) in add {
            let header = name(n)?;
            let values = match spec {
                serde_json::Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            for v in values {
                let raw = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Object(o) => match o.get("value") {
                        Some(serde_json::Value::String(s)) => s,
                        _ => {
                            return Err(format!(
                                "milter.add_headers.{}: an object without a string value",
                                header
                            ));
                        }
                    },
                    _ => {
                        return Err(format!(
                            "milter.add_headers.{header}: neither a string nor {{value, order}}"
                        ));
                    }
                };
                let value = header_value(raw)
                    .map_err(|e| format!("milter.add_headers.{header}: value with {e}"))?;
                additions.push(Mutation::AddHeader {
                    name: header.clone(),
                    value,
                });
                if additions.len() > MAX_MILTER_HEADERS {
                    return Err(format!(
                        "milter.add_headers has over {MAX_MILTER_HEADERS} fields"
                    ));
                }
            }
        }
    }
    removals.extend(additions);
    Ok(removals)
}

/// The `rspamd` plugin.
pub struct Rspamd {
    config: RspamdConfig,
    endpoint: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    password: Option<HeaderValue>,
}

impl fmt::Debug for Rspamd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rspamd")
            .field("config", &self.config)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Rspamd {
    /// Parses and validates `config` and builds the HTTP client; does not connect.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field: a `url` that is not a plain `http://` base URL, a
    /// zero `timeout`, a `password` that cannot be a header value, an unknown action key
    /// or a `rewriteSubject` for another action than `rewrite subject`.
    pub fn from_config(config: Option<&serde_json::Value>) -> Result<Self, ConfigError> {
        let config: RspamdConfig = parse(NAME, config)?;
        let endpoint = endpoint(&config.url).map_err(|e| invalid(NAME, "url", e))?;
        if config.timeout.get().is_zero() {
            return Err(invalid(NAME, "timeout", "must be more than 0"));
        }
        let password = match &config.password {
            None => None,
            Some(Password(p)) => {
                let ok = !p.is_empty() && p.len() <= 256 && p.chars().all(|c| c.is_ascii_graphic());
                let mut value = HeaderValue::from_str(p)
                    .ok()
                    .filter(|_| ok)
                    .ok_or_else(|| {
                        invalid(
                            NAME,
                            "password",
                            "must be 1 to 256 printable ASCII characters without spaces",
                        )
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        for a in RspamdAction::ALL {
            if a != RspamdAction::RewriteSubject
                && config.actions.get(a) == Some(SpamAction::RewriteSubject)
            {
                return Err(invalid(
                    NAME,
                    format!("actions.{a}"),
                    "rewriteSubject needs rspamd's rewritten subject, which comes only with the action \"rewrite subject\"",
                ));
            }
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(
            config.timeout.get().min(std::time::Duration::from_secs(2)),
        ));
        connector.set_nodelay(true);
        // No proxy from the environment and no redirect following: hyper does neither, so a
        // 3xx is an error like any other non-2xx.
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            config,
            endpoint,
            client,
            password,
        })
    }

    /// What `action` does with this config.
    pub fn mapping(&self, action: RspamdAction) -> SpamAction {
        self.config
            .actions
            .get(action)
            .unwrap_or_else(|| action.default_mapping())
    }

    /// `AddHeader` and `RemoveHeader` (rspamd's milter headers, on any message let through);
    /// `ChangeHeader` when an action maps to `tag` or `rewriteSubject`.
    pub fn capabilities(&self) -> Capabilities {
        let mut caps = vec![Capability::AddHeader, Capability::RemoveHeader];
        if RspamdAction::ALL.into_iter().any(|a| {
            matches!(
                self.mapping(a),
                SpamAction::Tag | SpamAction::RewriteSubject
            )
        }) {
            caps.push(Capability::ChangeHeader);
        }
        caps.into_iter().collect()
    }

    /// The step output for a parsed reply.
    ///
    /// # Errors
    /// [`PluginError::Protocol`] for an unknown action, a bad milter block, or a `rewrite
    /// subject` without a subject.
    pub fn decide(&self, reply: &CheckReply) -> Result<StepOutput, PluginError> {
        let protocol = |e: String| PluginError::Protocol(format!("rspamd sent {e}"));
        let action = RspamdAction::parse(&reply.action).ok_or_else(|| {
            protocol(format!(
                "the unknown action {:?}",
                printable(&reply.action, 40)
            ))
        })?;
        let smtp_message = reply
            .messages
            .get("smtp_message")
            .and_then(serde_json::Value::as_str)
            .filter(|m| {
                !m.is_empty() && m.len() <= 120 && m.chars().all(|c| (' '..='~').contains(&c))
            });
        let with_message = |base: &str| match smtp_message {
            Some(m) => format!("{base}: {m}"),
            None => base.to_owned(),
        };
        let mutations = |own: bool| -> Result<Vec<Mutation>, PluginError> {
            let mut out = match &reply.milter {
                Some(m) => milter_mutations(m).map_err(protocol)?,
                None => Vec::new(),
            };
            if own {
                let rspamd_sets = |name: &str| {
                    out.iter().any(|m| {
                        matches!(m, Mutation::AddHeader { name: n, .. } if n.as_str().eq_ignore_ascii_case(name))
                    })
                };
                let mut own_headers = Vec::new();
                if !rspamd_sets(SPAM_HEADER) {
                    own_headers.push((SPAM_HEADER, "Yes".to_owned()));
                }
                if !rspamd_sets(RESULT_HEADER) {
                    own_headers.push((RESULT_HEADER, summary(reply)));
                }
                for (name, value) in own_headers {
                    out.push(
                        Mutation::change_header(name, value)
                            .map_err(|e| PluginError::Failed(e.to_string()))?,
                    );
                }
            }
            Ok(out)
        };
        let output = match self.mapping(action) {
            SpamAction::Reject => {
                StepOutput::verdict(Verdict::reject(with_message("Spam message rejected")))
            }
            SpamAction::Tempfail => {
                StepOutput::verdict(Verdict::temp_fail(if action == RspamdAction::Greylist {
                    with_message("Greylisted, try again later")
                } else {
                    with_message("Message deferred by the spam filter, try again later")
                }))
            }
            SpamAction::Quarantine => StepOutput::verdict(Verdict::quarantine(reason(reply))),
            SpamAction::Discard => StepOutput::verdict(Verdict::Discard),
            SpamAction::Tag => StepOutput::mutate(mutations(true)?),
            SpamAction::RewriteSubject => {
                let Some(subject) = &reply.subject else {
                    return Err(protocol(
                        "the action \"rewrite subject\" without a subject".into(),
                    ));
                };
                let mut out = mutations(true)?;
                out.push(
                    Mutation::change_header("Subject", subject_value(subject))
                        .map_err(|e| PluginError::Failed(e.to_string()))?,
                );
                StepOutput::mutate(out)
            }
            SpamAction::Pass => StepOutput::mutate(mutations(false)?),
        };
        output
            .verdict
            .validate()
            .map_err(|e| PluginError::Failed(e.to_string()))?;
        Ok(output)
    }

    /// The request for `message`.
    fn request(&self, message: &MessageContext) -> Result<Request<Full<Bytes>>, PluginError> {
        let value = |what: &str, v: &str| {
            HeaderValue::from_str(v).map_err(|_| {
                PluginError::Failed(format!(
                    "the {what} cannot be sent to rspamd: it is not a valid HTTP header value"
                ))
            })
        };
        let mut request = Request::post(self.endpoint.clone())
            .header(
                "User-Agent",
                concat!("mcp-rspamd-bridge/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(message.message.clone()))
            .map_err(|e| PluginError::Failed(format!("cannot build the request: {e}")))?;
        let headers = request.headers_mut();
        if !message.envelope.mail_from.is_empty() {
            headers.insert("From", value("sender", &message.envelope.mail_from)?);
        }
        if !message.envelope.rcpt_to.is_empty() {
            headers.insert("Rcpt", value("recipient", &message.envelope.rcpt_to)?);
        }
        if !message.mailbox.is_empty() {
            headers.insert("Deliver-To", value("mailbox", &message.mailbox)?);
            if message.stage == Stage::Append {
                headers.insert("User", value("mailbox", &message.mailbox)?);
            }
        }
        if let Some(p) = &self.password {
            headers.insert("Password", p.clone());
        }
        Ok(request)
    }

    /// Sends `message` and returns the reply body, within `timeout`.
    async fn check(&self, message: &MessageContext) -> Result<Bytes, PluginError> {
        let request = self.request(message)?;
        tokio::time::timeout(self.config.timeout.get(), self.exchange(request))
            .await
            .map_err(|_| {
                PluginError::Unavailable(format!(
                    "rspamd at {} did not answer within {}",
                    self.endpoint, self.config.timeout
                ))
            })?
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Bytes, PluginError> {
        let at = &self.endpoint;
        let response = self.client.request(request).await.map_err(|e| {
            if e.is_connect() {
                PluginError::Unavailable(format!(
                    "cannot connect to rspamd at {at}: {}",
                    mcp_plugin_api::error_chain(&e)
                ))
            } else {
                PluginError::Unavailable(format!(
                    "rspamd at {at}: {}",
                    mcp_plugin_api::error_chain(&e)
                ))
            }
        })?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let limit = if status.is_success() { MAX_REPLY } else { 4096 };
        let body = match Limited::new(response.into_body(), limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                if status.is_success() {
                    return Err(PluginError::Protocol(format!(
                        "rspamd at {at} sent a reply over {MAX_REPLY} octets"
                    )));
                }
                Bytes::new()
            }
            Err(e) => {
                return Err(PluginError::Unavailable(format!(
                    "rspamd at {at}: the reply broke off: {}",
                    mcp_plugin_api::error_chain(e.as_ref())
                )));
            }
        };
        if !status.is_success() {
            let detail = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").map(json_text))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            let hint = if matches!(status.as_u16(), 401 | 403) {
                " (check password)"
            } else {
                ""
            };
            return Err(PluginError::Failed(format!(
                "rspamd at {at} answered HTTP {}{hint}: {}",
                status.as_u16(),
                printable(detail.trim(), 150)
            )));
        }
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media_type != "application/json" {
            return Err(PluginError::Protocol(format!(
                "rspamd at {at} sent {:?} instead of application/json",
                printable(&content_type, 60)
            )));
        }
        Ok(body)
    }
}

/// The `/checkv2` URL under the base `url`.
fn endpoint(url: &str) -> Result<Uri, String> {
    let u: Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match u.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(
                "https is not supported: reach rspamd over plain http next to the dataplane".into(),
            );
        }
        Some(other) => return Err(format!("scheme {other:?}: use http://host:port")),
        None => return Err(format!("{url:?}: use http://host:port")),
    }
    let Some(authority) = u.authority() else {
        return Err(format!("{url:?} has no host"));
    };
    if authority.as_str().contains('@') {
        return Err("credentials in the URL are not allowed: use password".into());
    }
    if authority.host().is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    let a = authority.as_str();
    let after_host = match a.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
        None => a.split_once(':').map_or("", |(_, rest)| rest),
    };
    let port = after_host.strip_prefix(':').unwrap_or(after_host);
    let port_ok = port.is_empty() && !a.ends_with(':')
        || port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|n| n > 0);
    if !port_ok {
        return Err(format!("{url:?} is not a URL: the port must be 1 to 65535"));
    }
    if u.query().is_some() || url.contains('#') {
        return Err(format!("{url:?}: no query or fragment allowed"));
    }
    let base = u.path().trim_end_matches('/');
    if base.ends_with("/checkv2") || base.ends_with("/checkv1") || base.ends_with("/check") {
        return Err(format!(
            "{url:?}: give the base URL, the bridge appends /checkv2"
        ));
    }
    Uri::builder()
        .scheme("http")
        .authority(authority.clone())
        .path_and_query(format!("{base}/checkv2"))
        .build()
        .map_err(|e| format!("{url:?}: {e}"))
}

/// The symbols of `reply`, strongest first (by absolute score, then name).
fn ranked(reply: &CheckReply) -> Vec<(&str, f64)> {
    let mut symbols: Vec<(&str, f64)> = reply
        .symbols
        .iter()
        .map(|(n, s)| (n.as_str(), s.score))
        .collect();
    symbols.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(b.0)));
    symbols
}

/// The `X-Spamd-Result` summary, close to rspamd's own form but naming the action:
/// `add header [6.00 / 15.00]; GTUBE(0.00); ...`, strongest symbols first, as many as fit
/// in 900 octets.
fn summary(reply: &CheckReply) -> String {
    let mut out = format!(
        "{} [{:.2} / {:.2}]",
        printable(&reply.action, 20),
        reply.score,
        reply.required_score
    );
    for (name, score) in ranked(reply) {
        let item = format!("; {}({score:.2})", printable(name, 80));
        if out.len() + item.len() > 900 {
            break;
        }
        out.push_str(&item);
    }
    out
}

/// The quarantine reason: `rspamd: add header [6.00 / 15.00] SYM1, SYM2`, within 200
/// characters.
fn reason(reply: &CheckReply) -> String {
    let mut out = format!(
        "rspamd: {} [{:.2} / {:.2}]",
        printable(&reply.action, 20),
        reply.score,
        reply.required_score
    );
    let mut sep = " ";
    for (name, _) in ranked(reply) {
        let item = format!("{sep}{}", printable(name, 60));
        if out.len() + item.len() > 200 {
            break;
        }
        out.push_str(&item);
        sep = ", ";
    }
    out
}

/// rspamd's rewritten subject (decoded text) as a header value: unfolded, RFC 2047 encoded
/// words when not plain ASCII, within 900 octets.
fn subject_value(subject: &str) -> String {
    let mut text: String = subject
        .split(['\r', '\n'])
        .map(str::trim_start)
        .collect::<Vec<_>>()
        .join(" ");
    loop {
        let encoded = encode_header_text(&text);
        if encoded.len() <= 900 || text.is_empty() {
            return encoded;
        }
        let keep = text.chars().count() * 9 / 10;
        text = text.chars().take(keep).collect();
    }
}

impl Plugin for Rspamd {
    fn capabilities(&self) -> Capabilities {
        Rspamd::capabilities(self)
    }

    fn process<'a>(
        &'a self,
        message: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
        Box::pin(async move {
            let body = self.check(message).await?;
            let reply = parse_reply(&body).map_err(|e| {
                PluginError::Protocol(format!("rspamd at {} sent {e}", self.endpoint))
            })?;
            tracing::debug!(
                plugin = NAME,
                action = %printable(&reply.action, 40),
                score = reply.score,
                "rspamd answered"
            );
            self.decide(&reply)
        })
    }
}

#[cfg(test)]
mod tests;
