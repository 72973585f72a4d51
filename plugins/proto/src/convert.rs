//! Mapping between the wire messages of `mcp.plugin.v1` and the in-process plugin API
//! (`mcp_plugin_api`).
//!
//! `*_to_proto` functions cannot fail: the API types are valid by construction. `*_from_proto`
//! functions check what a peer sent (unknown enum values, unset `oneof`s, bad status codes,
//! header names, texts) and return [`ProtocolError`] naming the field; the host turns that into
//! a plugin failure, so a broken reply is never taken for a clean verdict.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use mcp_crds::plugin::BodyMode;
use mcp_plugin_api::mutation::body_offset;
use mcp_plugin_api::{
    Capability, EnhancedStatus, Envelope, HeaderName, MessageContext, Mutation, PluginError, Stage,
    StepOutput, SystemFlag, Verdict,
};

use crate::v1;

/// A message that breaks the contract: names the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("plugin protocol violation: {0}")]
pub struct ProtocolError(pub String);

impl From<ProtocolError> for PluginError {
    fn from(e: ProtocolError) -> Self {
        PluginError::Protocol(e.0)
    }
}

fn bad(field: &str, what: impl std::fmt::Display) -> ProtocolError {
    ProtocolError(format!("{field}: {what}"))
}

/// The wire value of `stage`.
pub fn stage_to_proto(stage: Stage) -> v1::Stage {
    match stage {
        Stage::Deliver => v1::Stage::Deliver,
        Stage::Append => v1::Stage::Append,
        Stage::PostStore => v1::Stage::PostStore,
    }
}

/// The stage of wire value `value` (field `field`).
///
/// # Errors
/// [`ProtocolError`] for `STAGE_UNSPECIFIED` or an unknown value.
pub fn stage_from_proto(field: &str, value: i32) -> Result<Stage, ProtocolError> {
    match v1::Stage::try_from(value) {
        Ok(v1::Stage::Deliver) => Ok(Stage::Deliver),
        Ok(v1::Stage::Append) => Ok(Stage::Append),
        Ok(v1::Stage::PostStore) => Ok(Stage::PostStore),
        _ => Err(bad(field, format!("unknown stage {value}"))),
    }
}

/// The wire value of `capability`.
pub fn capability_to_proto(capability: Capability) -> v1::Capability {
    match capability {
        Capability::AddHeader => v1::Capability::AddHeader,
        Capability::ChangeHeader => v1::Capability::ChangeHeader,
        Capability::RemoveHeader => v1::Capability::RemoveHeader,
        Capability::ReplaceBody => v1::Capability::ReplaceBody,
        Capability::AddKeyword => v1::Capability::AddKeyword,
        Capability::AddFlag => v1::Capability::AddFlag,
        Capability::FileInto => v1::Capability::FileInto,
        Capability::SetMetadata => v1::Capability::SetMetadata,
    }
}

/// The capability of wire value `value` (field `field`).
///
/// # Errors
/// [`ProtocolError`] for `CAPABILITY_UNSPECIFIED` or an unknown value.
pub fn capability_from_proto(field: &str, value: i32) -> Result<Capability, ProtocolError> {
    Ok(match v1::Capability::try_from(value) {
        Ok(v1::Capability::AddHeader) => Capability::AddHeader,
        Ok(v1::Capability::ChangeHeader) => Capability::ChangeHeader,
        Ok(v1::Capability::RemoveHeader) => Capability::RemoveHeader,
        Ok(v1::Capability::ReplaceBody) => Capability::ReplaceBody,
        Ok(v1::Capability::AddKeyword) => Capability::AddKeyword,
        Ok(v1::Capability::AddFlag) => Capability::AddFlag,
        Ok(v1::Capability::FileInto) => Capability::FileInto,
        Ok(v1::Capability::SetMetadata) => Capability::SetMetadata,
        _ => return Err(bad(field, format!("unknown capability {value}"))),
    })
}

/// The wire value of `mode`.
pub fn body_mode_to_proto(mode: BodyMode) -> v1::BodyMode {
    match mode {
        BodyMode::None => v1::BodyMode::None,
        BodyMode::Headers => v1::BodyMode::Headers,
        BodyMode::Buffered => v1::BodyMode::Buffered,
        BodyMode::Streamed => v1::BodyMode::Streamed,
    }
}

/// The body mode of wire value `value` (field `field`).
///
/// # Errors
/// [`ProtocolError`] for `BODY_MODE_UNSPECIFIED` or an unknown value.
pub fn body_mode_from_proto(field: &str, value: i32) -> Result<BodyMode, ProtocolError> {
    match v1::BodyMode::try_from(value) {
        Ok(v1::BodyMode::None) => Ok(BodyMode::None),
        Ok(v1::BodyMode::Headers) => Ok(BodyMode::Headers),
        Ok(v1::BodyMode::Buffered) => Ok(BodyMode::Buffered),
        Ok(v1::BodyMode::Streamed) => Ok(BodyMode::Streamed),
        _ => Err(bad(field, format!("unknown body mode {value}"))),
    }
}

/// The wire form of `verdict`.
pub fn verdict_to_proto(verdict: &Verdict) -> v1::Verdict {
    use v1::verdict::Kind;
    let kind = match verdict {
        Verdict::Continue => Kind::Continue(v1::Continue {}),
        Verdict::Accept => Kind::Accept(v1::Accept {}),
        Verdict::Reject { status, text } => Kind::Reject(v1::Reject {
            enhanced_status: status.to_string(),
            text: text.clone(),
        }),
        Verdict::TempFail { status, text } => Kind::TempFail(v1::TempFail {
            enhanced_status: status.to_string(),
            text: text.clone(),
        }),
        Verdict::Discard => Kind::Discard(v1::Discard {}),
        Verdict::Quarantine { reason } => Kind::Quarantine(v1::Quarantine {
            reason: reason.clone(),
        }),
    };
    v1::Verdict { kind: Some(kind) }
}

/// The verdict of a reply, checked ([`Verdict::validate`]). An empty enhanced status means
/// `5.7.1` for `Reject` and `4.7.1` for `TempFail`.
///
/// # Errors
/// [`ProtocolError`] when the verdict or its kind is missing, a status code does not parse or
/// has the wrong class, or a text is empty, too long or not printable ASCII.
pub fn verdict_from_proto(verdict: Option<v1::Verdict>) -> Result<Verdict, ProtocolError> {
    use v1::verdict::Kind;
    let kind = verdict.and_then(|v| v.kind).ok_or_else(|| {
        bad(
            "verdict",
            "missing (a reply must carry exactly one verdict)",
        )
    })?;
    let status = |field: &str, s: &str, default: EnhancedStatus| {
        if s.is_empty() {
            Ok(default)
        } else {
            s.parse::<EnhancedStatus>().map_err(|e| bad(field, e))
        }
    };
    let v = match kind {
        Kind::Continue(_) => Verdict::Continue,
        Kind::Accept(_) => Verdict::Accept,
        Kind::Reject(r) => Verdict::Reject {
            status: status(
                "verdict.reject.enhanced_status",
                &r.enhanced_status,
                EnhancedStatus::new(5, 7, 1),
            )?,
            text: r.text,
        },
        Kind::TempFail(t) => Verdict::TempFail {
            status: status(
                "verdict.temp_fail.enhanced_status",
                &t.enhanced_status,
                EnhancedStatus::new(4, 7, 1),
            )?,
            text: t.text,
        },
        Kind::Discard(_) => Verdict::Discard,
        Kind::Quarantine(q) => Verdict::Quarantine { reason: q.reason },
    };
    v.validate().map_err(|e| bad("verdict", e))?;
    Ok(v)
}

fn flag_to_proto(flag: SystemFlag) -> v1::SystemFlag {
    match flag {
        SystemFlag::Seen => v1::SystemFlag::Seen,
        SystemFlag::Answered => v1::SystemFlag::Answered,
        SystemFlag::Flagged => v1::SystemFlag::Flagged,
        SystemFlag::Deleted => v1::SystemFlag::Deleted,
        SystemFlag::Draft => v1::SystemFlag::Draft,
    }
}

/// The wire form of `mutation`.
pub fn mutation_to_proto(mutation: &Mutation) -> v1::Mutation {
    use v1::mutation::Kind;
    let kind = match mutation {
        Mutation::AddHeader { name, value } => Kind::AddHeader(v1::AddHeader {
            name: name.to_string(),
            value: value.clone(),
        }),
        Mutation::ChangeHeader { name, value } => Kind::ChangeHeader(v1::ChangeHeader {
            name: name.to_string(),
            value: value.clone(),
        }),
        Mutation::RemoveHeader { name } => Kind::RemoveHeader(v1::RemoveHeader {
            name: name.to_string(),
        }),
        Mutation::ReplaceBody { body } => Kind::ReplaceBody(v1::ReplaceBody { body: body.clone() }),
        Mutation::AddKeyword { keyword } => Kind::AddKeyword(v1::AddKeyword {
            keyword: keyword.clone(),
        }),
        Mutation::AddFlag { flag } => Kind::AddFlag(v1::AddFlag {
            flag: flag_to_proto(*flag).into(),
        }),
        Mutation::FileInto { folder } => Kind::FileInto(v1::FileInto {
            folder: folder.clone(),
        }),
        Mutation::SetMetadata { key, value } => Kind::SetMetadata(v1::SetMetadata {
            key: key.clone(),
            value: value.clone(),
        }),
    };
    v1::Mutation { kind: Some(kind) }
}

/// The mutation `mutation` (the `index`th of a reply), checked ([`Mutation::validate`]).
///
/// # Errors
/// [`ProtocolError`] naming `mutations[index]` for an unset kind, an unknown flag, a bad
/// header name or any value [`Mutation::validate`] refuses.
pub fn mutation_from_proto(
    index: usize,
    mutation: v1::Mutation,
) -> Result<Mutation, ProtocolError> {
    use v1::mutation::Kind;
    let field = format!("mutations[{index}]");
    let kind = mutation
        .kind
        .ok_or_else(|| bad(&field, "kind is not set"))?;
    let name = |n: String| HeaderName::new(n).map_err(|e| bad(&field, e));
    let m = match kind {
        Kind::AddHeader(h) => Mutation::AddHeader {
            name: name(h.name)?,
            value: h.value,
        },
        Kind::ChangeHeader(h) => Mutation::ChangeHeader {
            name: name(h.name)?,
            value: h.value,
        },
        Kind::RemoveHeader(h) => Mutation::RemoveHeader {
            name: name(h.name)?,
        },
        Kind::ReplaceBody(b) => Mutation::ReplaceBody { body: b.body },
        Kind::AddKeyword(k) => Mutation::AddKeyword { keyword: k.keyword },
        Kind::AddFlag(f) => Mutation::AddFlag {
            flag: match v1::SystemFlag::try_from(f.flag) {
                Ok(v1::SystemFlag::Seen) => SystemFlag::Seen,
                Ok(v1::SystemFlag::Answered) => SystemFlag::Answered,
                Ok(v1::SystemFlag::Flagged) => SystemFlag::Flagged,
                Ok(v1::SystemFlag::Deleted) => SystemFlag::Deleted,
                Ok(v1::SystemFlag::Draft) => SystemFlag::Draft,
                _ => return Err(bad(&field, format!("unknown system flag {}", f.flag))),
            },
        },
        Kind::FileInto(f) => Mutation::FileInto { folder: f.folder },
        Kind::SetMetadata(s) => Mutation::SetMetadata {
            key: s.key,
            value: s.value,
        },
    };
    m.validate().map_err(|e| bad(&field, e))?;
    Ok(m)
}

/// The wire form of a step's result.
pub fn output_to_proto(output: &StepOutput) -> v1::ProcessMessageResponse {
    v1::ProcessMessageResponse {
        verdict: Some(verdict_to_proto(&output.verdict)),
        mutations: output.mutations.iter().map(mutation_to_proto).collect(),
    }
}

/// A reply, checked: one valid verdict and valid mutations. Whether the mutations were
/// declared is the host's check (it knows the granted capabilities).
///
/// # Errors
/// The first [`ProtocolError`] of [`verdict_from_proto`] and [`mutation_from_proto`].
pub fn output_from_proto(reply: v1::ProcessMessageResponse) -> Result<StepOutput, ProtocolError> {
    let verdict = verdict_from_proto(reply.verdict)?;
    let mutations = reply
        .mutations
        .into_iter()
        .enumerate()
        .map(|(i, m)| mutation_from_proto(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StepOutput { verdict, mutations })
}

/// The header fields of `section` (a header section, as [`MessageContext::header_section`]
/// returns it) in order, values unfolded (RFC 5322 §2.2.3: each CRLF followed by WSP removed)
/// and without the leading whitespace. Lines that are not fields (no colon) are skipped;
/// non-UTF-8 octets are replaced (U+FFFD): the raw bytes are in `header_section`.
pub fn header_fields(section: &[u8]) -> Vec<v1::Header> {
    let mut out: Vec<v1::Header> = Vec::new();
    let mut current: Option<(String, Vec<u8>)> = None;
    let flush = |current: &mut Option<(String, Vec<u8>)>, out: &mut Vec<v1::Header>| {
        if let Some((name, value)) = current.take() {
            let value = String::from_utf8_lossy(&value);
            out.push(v1::Header {
                name,
                value: value.trim_matches([' ', '\t']).to_owned(),
            });
        }
    };
    for line in section.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some((_, value)) = current.as_mut() {
                value.extend_from_slice(line);
            }
            continue;
        }
        flush(&mut current, &mut out);
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&line[..colon])
                .trim_end()
                .to_owned();
            current = Some((name, line[colon + 1..].to_vec()));
        }
    }
    flush(&mut current, &mut out);
    out
}

/// Identifies one call of a pipeline step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallInfo {
    /// Unique per call, for correlating logs.
    pub call_id: String,
    /// `namespace/pipeline`.
    pub pipeline: String,
    /// The step's name.
    pub step: String,
    /// Lower-case hex SHA-256 of `config_json`.
    pub config_id: String,
    /// The step's merged config, a JSON object.
    pub config_json: String,
}

/// A context ready to send: the first request of `ProcessMessage`, and the body to send
/// after it in chunks (`BODY_MODE_STREAMED`).
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The `context` request.
    pub context: v1::MessageContext,
    /// With `BODY_MODE_STREAMED` and a message within the limit: the body to stream.
    pub stream_body: Option<Bytes>,
}

/// Builds what the host sends for `ctx` with body mode `mode`: the header section from
/// `Headers` up, the body with `Buffered` (in `body`) or `Streamed` (in
/// [`Outgoing::stream_body`]) when the whole message is at most `max_size` octets. A larger
/// message is sent with its header section only and `body_withheld` set, so the plugin knows
/// the body was not seen.
pub fn context_to_proto(
    ctx: &MessageContext,
    call: CallInfo,
    mode: BodyMode,
    max_size: u64,
) -> Outgoing {
    let size = ctx.message.len() as u64;
    let offset = body_offset(&ctx.message);
    let header_section = ctx.message.slice(..offset);
    let body = ctx.message.slice(offset..);
    let wants_body = matches!(mode, BodyMode::Buffered | BodyMode::Streamed);
    let withheld = wants_body && size > max_size;
    let mut out = v1::MessageContext {
        call_id: call.call_id,
        stage: stage_to_proto(ctx.stage).into(),
        tenant: ctx.tenant.clone(),
        mailbox: ctx.mailbox.clone(),
        folder: ctx.folder.clone(),
        envelope: Some(v1::Envelope {
            mail_from: ctx.envelope.mail_from.clone(),
            rcpt_to: ctx.envelope.rcpt_to.clone(),
        }),
        pipeline: call.pipeline,
        step: call.step,
        config_id: call.config_id,
        config_json: call.config_json,
        body_mode: body_mode_to_proto(mode).into(),
        size,
        headers: Vec::new(),
        header_section: Bytes::new(),
        body: Bytes::new(),
        body_withheld: withheld,
        flags: ctx.flags.clone(),
        custom_metadata: ctx
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    if mode != BodyMode::None {
        out.headers = header_fields(&header_section);
        out.header_section = header_section;
    }
    let mut stream_body = None;
    if wants_body && !withheld {
        if mode == BodyMode::Buffered {
            out.body = body;
        } else {
            stream_body = Some(body);
        }
    }
    Outgoing {
        context: out,
        stream_body,
    }
}

/// What the plugin side learns about a call besides its [`MessageContext`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallMeta {
    /// The call's identity and config.
    pub call: CallInfo,
    /// What the host sent.
    pub body_mode: BodyMode,
    /// The body was asked for but not sent: the message is larger than the limit.
    pub body_withheld: bool,
    /// RFC822.SIZE of the whole message, octets (also when not all of it was sent).
    pub size: u64,
}

/// Rebuilds the [`MessageContext`] a plugin processes from the `context` request and, with
/// `BODY_MODE_STREAMED`, the concatenated chunks. `MessageContext::message` holds what was
/// sent: nothing (`None`), the header section (`Headers`, or a withheld body), or the whole
/// message.
///
/// # Errors
/// [`ProtocolError`] for an unknown stage or body mode, a missing envelope, a body sent in a
/// mode that does not carry one, or streamed chunks in another mode.
pub fn context_from_proto(
    ctx: v1::MessageContext,
    streamed: Option<Bytes>,
) -> Result<(MessageContext, CallMeta), ProtocolError> {
    let stage = stage_from_proto("context.stage", ctx.stage)?;
    let mode = body_mode_from_proto("context.body_mode", ctx.body_mode)?;
    let envelope = ctx
        .envelope
        .ok_or_else(|| bad("context.envelope", "missing"))?;
    if !ctx.body.is_empty() && (mode != BodyMode::Buffered || ctx.body_withheld) {
        return Err(bad(
            "context.body",
            "set although the body mode is not buffered or the body is withheld",
        ));
    }
    if streamed.as_ref().is_some_and(|b| !b.is_empty())
        && (mode != BodyMode::Streamed || ctx.body_withheld)
    {
        return Err(bad(
            "chunk",
            "body chunks sent although the body mode is not streamed or the body is withheld",
        ));
    }
    let message = match mode {
        BodyMode::None => Bytes::new(),
        BodyMode::Headers => ctx.header_section,
        BodyMode::Buffered | BodyMode::Streamed => {
            let body = if mode == BodyMode::Buffered {
                ctx.body
            } else {
                streamed.unwrap_or_default()
            };
            if body.is_empty() {
                ctx.header_section
            } else {
                let mut whole = BytesMut::with_capacity(ctx.header_section.len() + body.len());
                whole.extend_from_slice(&ctx.header_section);
                whole.extend_from_slice(&body);
                whole.freeze()
            }
        }
    };
    let metadata: BTreeMap<String, String> = ctx.custom_metadata.into_iter().collect();
    Ok((
        MessageContext {
            stage,
            tenant: ctx.tenant,
            mailbox: ctx.mailbox,
            folder: ctx.folder,
            envelope: Envelope {
                mail_from: envelope.mail_from,
                rcpt_to: envelope.rcpt_to,
            },
            message,
            flags: ctx.flags,
            metadata,
        },
        CallMeta {
            call: CallInfo {
                call_id: ctx.call_id,
                pipeline: ctx.pipeline,
                step: ctx.step,
                config_id: ctx.config_id,
                config_json: ctx.config_json,
            },
            body_mode: mode,
            body_withheld: ctx.body_withheld,
            size: ctx.size,
        },
    ))
}

#[cfg(test)]
mod tests;
