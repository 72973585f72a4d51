//! The MIME tree as the content plugins see it: the decoded text a message carries (Subject,
//! text parts, text-like attachments, anywhere including nested `message/rfc822`), and how to
//! write changed text back so the stored message decodes to it.
//!
//! mail-parser decodes transfer encodings (RFC 2045 §6) and charsets; it also gives the octet
//! offsets of every part and header field. An inline nested message (`message/rfc822` without
//! transfer encoding) shares its parent's offsets; an encoded one is parsed from its decoded
//! octets and starts a new coordinate space, a [`Layer`].

use std::borrow::Cow;

use base64::Engine as _;
use mail_parser::{Encoding, HeaderName, Message, MessagePart, MimeHeaders, PartType};
use mcp_plugin_api::Mutation;

/// Nested messages deeper than this are not descended into (hostile nesting would otherwise
/// exhaust the stack).
pub(crate) const MAX_NESTING: usize = 32;

/// A coordinate space: the raw octets offsets refer to.
pub(crate) struct Layer<'m> {
    raw: &'m [u8],
    /// For a nested encoded message: the parent layer and the part body it was decoded from.
    parent: Option<ParentLink>,
}

struct ParentLink {
    layer: usize,
    start: usize,
    end: usize,
    encoding: Encoding,
}

/// Where a piece of text lives, in its layer's coordinates.
#[derive(Clone, Debug)]
enum Target {
    /// A header field (`Subject`), `start..end` covering the whole field and its line break.
    Header {
        name: &'static str,
        start: usize,
        end: usize,
    },
    /// A part's body.
    Part {
        header_start: usize,
        body_start: usize,
        body_end: usize,
        charset: Option<String>,
        encoding: Encoding,
        /// The Content-Type field: its range and raw value.
        content_type: Option<(usize, usize, String)>,
        /// The Content-Transfer-Encoding field's range.
        cte: Option<(usize, usize)>,
    },
}

/// One piece of decoded text the message carries.
#[derive(Debug)]
pub(crate) struct TextUnit {
    /// The decoded text (possibly cut at the scan limit).
    pub text: String,
    /// Whether `text` was cut at the scan limit (then it cannot be rewritten).
    pub truncated: bool,
    layer: usize,
    target: Target,
}

/// Every text unit of a message, in document order, with the layers they refer to.
pub(crate) struct TextUnits<'m> {
    pub units: Vec<TextUnit>,
    layers: Vec<Layer<'m>>,
    /// End of the top-level header section (offset of the body).
    top_body: usize,
    /// Whether some text was left unscanned because of the limit.
    pub truncated: bool,
}

/// Whether a non-`text/*` part still carries text worth scanning: JSON, XML, CSV, YAML,
/// scripts, PEM files, or a generic type with a text-like file name.
pub(crate) fn is_text_like(part: &MessagePart<'_>) -> bool {
    let (ctype, subtype) = content_type(part);
    if ctype == "text" {
        return true;
    }
    if ctype == "application" {
        let s = subtype.as_str();
        if s.ends_with("+json") || s.ends_with("+xml") || s.ends_with("+yaml") {
            return true;
        }
        if matches!(
            s,
            "json"
                | "xml"
                | "csv"
                | "x-csv"
                | "yaml"
                | "x-yaml"
                | "toml"
                | "x-ndjson"
                | "javascript"
                | "x-javascript"
                | "ecmascript"
                | "x-sh"
                | "sql"
                | "x-sql"
                | "x-pem-file"
                | "pem-certificate-chain"
                | "x-x509-ca-cert"
                | "pgp-keys"
                | "rtf"
        ) {
            return true;
        }
    }
    if matches!(
        (ctype.as_str(), subtype.as_str()),
        ("application", "octet-stream") | ("message", "delivery-status")
    ) || ctype == "message" && subtype != "rfc822"
    {
        return part.attachment_name().is_some_and(|n| {
            let ext = extension(n).unwrap_or_default();
            matches!(
                ext.as_str(),
                "txt"
                    | "csv"
                    | "tsv"
                    | "json"
                    | "xml"
                    | "log"
                    | "env"
                    | "pem"
                    | "key"
                    | "yaml"
                    | "yml"
                    | "ini"
                    | "conf"
                    | "cfg"
                    | "sql"
                    | "md"
                    | "html"
                    | "htm"
            )
        }) || ctype == "message";
    }
    false
}

/// The part's media type and subtype, lower-case; `text/plain` when absent (RFC 2045 §5.2).
pub(crate) fn content_type(part: &MessagePart<'_>) -> (String, String) {
    match part.content_type() {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or_default().to_ascii_lowercase(),
        ),
        None => ("text".into(), "plain".into()),
    }
}

/// The extension of a file name: what follows its last dot, lower-case; `None` without a
/// dot or with nothing after it.
pub(crate) fn extension(file_name: &str) -> Option<String> {
    // Only the last path component: some clients send `C:\dir\x.exe`.
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let (_, ext) = base.rsplit_once('.')?;
    let ext = ext.trim();
    (!ext.is_empty()).then(|| ext.to_lowercase())
}

fn charset_of(part: &MessagePart<'_>) -> Option<String> {
    part.content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(str::to_string)
}

fn decode_bytes(bytes: &[u8], charset: Option<&str>) -> String {
    match charset.and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes())) {
        Some(enc) => enc.decode(bytes).0.into_owned(),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

impl<'m> TextUnits<'m> {
    /// Collects the text of `message` (parsed from `raw`), at most `max_bytes` octets of
    /// decoded text in all.
    pub(crate) fn collect(message: &'m Message<'m>, raw: &'m [u8], max_bytes: usize) -> Self {
        let mut this = Self {
            units: Vec::new(),
            layers: vec![Layer { raw, parent: None }],
            top_body: message
                .parts
                .first()
                .map_or(raw.len(), |p| p.offset_body as usize),
            truncated: false,
        };
        let mut budget = max_bytes;
        this.walk(message, 0, &mut budget, 0);
        this
    }

    fn push(&mut self, layer: usize, target: Target, text: Cow<'_, str>, budget: &mut usize) {
        if text.is_empty() {
            return;
        }
        if *budget == 0 {
            self.truncated = true;
            return;
        }
        let mut truncated = false;
        let text = if text.len() > *budget {
            let mut cut = *budget;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            truncated = true;
            self.truncated = true;
            // Nothing after a cut unit is scanned.
            *budget = cut;
            text[..cut].to_string()
        } else {
            text.into_owned()
        };
        *budget -= text.len();
        self.units.push(TextUnit {
            text,
            truncated,
            layer,
            target,
        });
    }

    fn walk(&mut self, message: &'m Message<'m>, layer: usize, budget: &mut usize, depth: usize) {
        if let Some(root) = message.parts.first()
            && let Some(h) = root.headers.iter().find(|h| h.name == HeaderName::Subject)
            && let Some(subject) = message.subject()
        {
            self.push(
                layer,
                Target::Header {
                    name: "Subject",
                    start: h.offset_field as usize,
                    end: h.offset_end as usize,
                },
                Cow::Borrowed(subject),
                budget,
            );
        }
        for part in &message.parts {
            let raw_body = self.layers[layer]
                .raw
                .get(part.offset_body as usize..part.offset_end as usize);
            let undecodable = part.is_encoding_problem
                && !matches!(part.body, PartType::Multipart(_) | PartType::Message(_));
            let text: Option<Cow<'_, str>> = match &part.body {
                // mail-parser could not decode it: scan (and rewrite) the octets as they are.
                _ if undecodable => raw_body.map(String::from_utf8_lossy),
                PartType::Text(t) | PartType::Html(t) => Some(Cow::Borrowed(t.as_ref())),
                PartType::Binary(b) | PartType::InlineBinary(b) if is_text_like(part) => {
                    Some(Cow::Owned(decode_bytes(b, charset_of(part).as_deref())))
                }
                PartType::Message(_) if depth >= MAX_NESTING => {
                    self.truncated = true;
                    None
                }
                PartType::Message(nested) => {
                    if part.encoding == Encoding::None {
                        self.walk(nested, layer, budget, depth + 1);
                    } else {
                        self.layers.push(Layer {
                            raw: nested.raw_message(),
                            parent: Some(ParentLink {
                                layer,
                                start: part.offset_body as usize,
                                end: part.offset_end as usize,
                                encoding: part.encoding,
                            }),
                        });
                        let id = self.layers.len() - 1;
                        self.walk(nested, id, budget, depth + 1);
                    }
                    None
                }
                _ => None,
            };
            let Some(text) = text else { continue };
            let find = |name: HeaderName<'_>| part.headers.iter().find(|h| h.name == name);
            let raw = self.layers[layer].raw;
            let content_type = find(HeaderName::ContentType).map(|h| {
                let value = raw
                    .get(h.offset_start as usize..h.offset_end as usize)
                    .map(|v| String::from_utf8_lossy(v).trim().to_string())
                    .unwrap_or_default();
                (h.offset_field as usize, h.offset_end as usize, value)
            });
            let cte = find(HeaderName::ContentTransferEncoding)
                .map(|h| (h.offset_field as usize, h.offset_end as usize));
            self.push(
                layer,
                Target::Part {
                    header_start: part.offset_header as usize,
                    body_start: part.offset_body as usize,
                    body_end: part.offset_end as usize,
                    charset: if undecodable { None } else { charset_of(part) },
                    encoding: if undecodable {
                        Encoding::None
                    } else {
                        part.encoding
                    },
                    content_type,
                    cte,
                },
                text,
                budget,
            );
        }
    }

    /// Writes `replacements` (unit index → new text) back into the message.
    ///
    /// Only the changed parts are re-encoded (same charset and transfer encoding where the
    /// new text allows, else UTF-8 in base64 with the part's header fields changed); the
    /// other octets stay as they were. Returns the top-level header changes (`ChangeHeader`)
    /// and the new body (`ReplaceBody`), when changed.
    ///
    /// # Errors
    /// A description when a replaced unit was truncated or edits overlap (malformed offsets).
    pub(crate) fn rewrite(&self, replacements: &[(usize, String)]) -> Result<Rewrite, String> {
        let eol: &[u8] = if self.layers[0].raw.windows(2).any(|w| w == b"\r\n")
            || !self.layers[0].raw.contains(&b'\n')
        {
            b"\r\n"
        } else {
            b"\n"
        };
        let mut edits: Vec<Vec<Edit>> = self.layers.iter().map(|_| Vec::new()).collect();
        for (index, text) in replacements {
            let unit = self
                .units
                .get(*index)
                .ok_or_else(|| format!("no text unit {index}"))?;
            if unit.truncated {
                return Err("text past the scan limit cannot be rewritten".into());
            }
            let raw = self.layers[unit.layer].raw;
            let layer_edits = &mut edits[unit.layer];
            match &unit.target {
                Target::Header { name, start, end } => {
                    let value = encode_header_text(text);
                    layer_edits.push(Edit::header(*start, *end, name, value, eol));
                }
                Target::Part {
                    header_start,
                    body_start,
                    body_end,
                    charset,
                    encoding,
                    content_type,
                    cte,
                } => {
                    let original = raw.get(*body_start..*body_end).unwrap_or_default();
                    let (bytes, utf8) = encode_text(text, charset.as_deref());
                    let encoding = if utf8 { Encoding::Base64 } else { *encoding };
                    layer_edits.push(Edit {
                        start: *body_start,
                        end: *body_end,
                        bytes: encode_body(&bytes, encoding, original, eol),
                        header: None,
                    });
                    if utf8 {
                        let ct = match content_type {
                            Some((s, e, value)) => (*s, *e, with_utf8_charset(value)),
                            None => (
                                *header_start,
                                *header_start,
                                "text/plain; charset=utf-8".into(),
                            ),
                        };
                        layer_edits.push(Edit::header(ct.0, ct.1, "Content-Type", ct.2, eol));
                        let (s, e) = cte.unwrap_or((*header_start, *header_start));
                        layer_edits.push(Edit::header(
                            s,
                            e,
                            "Content-Transfer-Encoding",
                            "base64".into(),
                            eol,
                        ));
                    }
                }
            }
        }
        // Innermost layers first: a changed encoded message becomes an edit of its parent.
        for id in (1..self.layers.len()).rev() {
            if edits[id].is_empty() {
                continue;
            }
            let layer = &self.layers[id];
            let new = splice(layer.raw, 0, &mut edits[id])?;
            if let Some(link) = &layer.parent {
                let original = self.layers[link.layer]
                    .raw
                    .get(link.start..link.end)
                    .unwrap_or_default();
                let bytes = encode_body(&new, link.encoding, original, eol);
                edits[link.layer].push(Edit {
                    start: link.start,
                    end: link.end,
                    bytes,
                    header: None,
                });
            }
        }
        let mut out = Rewrite::default();
        let top = std::mem::take(&mut edits[0]);
        let (header_edits, mut body_edits): (Vec<Edit>, Vec<Edit>) =
            top.into_iter().partition(|e| e.start < self.top_body);
        for e in header_edits {
            let Some((name, value)) = e.header else {
                return Err("a body edit reaches into the header section".into());
            };
            out.header_mutations
                .push(Mutation::change_header(name, value).map_err(|e| e.to_string())?);
        }
        if !body_edits.is_empty() {
            let raw = self.layers[0].raw;
            out.body = Some(splice(
                raw.get(self.top_body..).unwrap_or_default(),
                self.top_body,
                &mut body_edits,
            )?);
        }
        Ok(out)
    }
}

/// What [`TextUnits::rewrite`] changes at the top level.
#[derive(Debug, Default)]
pub(crate) struct Rewrite {
    /// `ChangeHeader` mutations for top-level fields (Subject, a single part's MIME fields).
    pub header_mutations: Vec<Mutation>,
    /// The new body, when a part changed.
    pub body: Option<Vec<u8>>,
}

/// A replacement of `start..end` in a layer's octets.
struct Edit {
    start: usize,
    end: usize,
    bytes: Vec<u8>,
    /// For a header field edit: its name and new value (at the top level these become
    /// `ChangeHeader` mutations).
    header: Option<(&'static str, String)>,
}

impl Edit {
    fn header(start: usize, end: usize, name: &'static str, value: String, eol: &[u8]) -> Self {
        let mut bytes = format!("{name}: {value}").into_bytes();
        bytes.extend_from_slice(eol);
        Self {
            start,
            end,
            bytes,
            header: Some((name, value)),
        }
    }
}

/// `raw` (which starts at offset `base` of its layer) with `edits` applied.
fn splice(raw: &[u8], base: usize, edits: &mut [Edit]) -> Result<Vec<u8>, String> {
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = Vec::with_capacity(raw.len());
    let mut at = base;
    for e in edits.iter() {
        if e.start < at || e.end < e.start || e.end > base + raw.len() {
            return Err("overlapping or out-of-range MIME edits".into());
        }
        out.extend_from_slice(&raw[at - base..e.start - base]);
        out.extend_from_slice(&e.bytes);
        at = e.end;
    }
    out.extend_from_slice(&raw[at - base..]);
    Ok(out)
}

/// `text` in `charset` when that charset can encode it (and is ASCII-compatible, so the rest
/// of the part stays readable), else UTF-8; the flag says UTF-8 was forced.
fn encode_text(text: &str, charset: Option<&str>) -> (Vec<u8>, bool) {
    let Some(label) = charset else {
        return (text.as_bytes().to_vec(), false);
    };
    match encoding_rs::Encoding::for_label(label.as_bytes()) {
        Some(enc) if enc == encoding_rs::UTF_8 => (text.as_bytes().to_vec(), false),
        Some(enc) if enc.output_encoding() == enc && !text.contains('\u{FFFD}') => {
            let (bytes, _, unmappable) = enc.encode(text);
            if unmappable {
                (text.as_bytes().to_vec(), true)
            } else {
                (bytes.into_owned(), false)
            }
        }
        _ => (text.as_bytes().to_vec(), true),
    }
}

/// `bytes` in transfer encoding `encoding`, ending with a line break when `original` did.
fn encode_body(bytes: &[u8], encoding: Encoding, original: &[u8], eol: &[u8]) -> Vec<u8> {
    let ends_with_eol = original.ends_with(b"\n");
    let mut out = match encoding {
        Encoding::Base64 => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            let mut out = Vec::with_capacity(b64.len() + b64.len() / 38 + 2);
            for (i, line) in b64.as_bytes().chunks(76).enumerate() {
                if i > 0 {
                    out.extend_from_slice(eol);
                }
                out.extend_from_slice(line);
            }
            out
        }
        Encoding::QuotedPrintable => {
            // Text mode treats only CRLF as a line break (RFC 2045 §6.7 rule 4): make every
            // line break one, so none is encoded as =0A.
            let mut qp = quoted_printable::encode(lf_to_crlf(bytes));
            if eol == b"\n" {
                qp = crlf_to_lf(&qp);
            }
            qp
        }
        Encoding::None => bytes.to_vec(),
    };
    let has_eol = out.ends_with(b"\n");
    if ends_with_eol && !has_eol {
        out.extend_from_slice(eol);
    } else if !ends_with_eol && has_eol && encoding != Encoding::None {
        // The original ended right before the boundary's line break; keep it that way.
        while out.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            out.pop();
        }
    }
    out
}

fn lf_to_crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// A Content-Type value with its `charset` parameter set to `utf-8` (added when absent).
fn with_utf8_charset(value: &str) -> String {
    let re = charset_param();
    if re.is_match(value) {
        re.replace(value, "${1}utf-8").into_owned()
    } else {
        format!("{value}; charset=utf-8")
    }
}

fn charset_param() -> &'static regex::Regex {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"(?i)(charset\s*=\s*)("[^"]*"|[^;\s]*)"#).expect("constant regex")
    });
    &RE
}

/// Header text as RFC 2047 encoded words when it is not plain printable ASCII, on one line.
pub(crate) fn encode_header_text(text: &str) -> String {
    let plain = text.chars().all(|c| c == ' ' || c.is_ascii_graphic()) && !text.contains("=?");
    if plain {
        return text.to_string();
    }
    // RFC 2047 §2: an encoded word is at most 75 characters; 45 octets of UTF-8 give 60
    // base64 characters plus the 12 of `=?utf-8?b??=`. Words split on character boundaries.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars().filter(|c| !c.is_control()) {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?utf-8?b?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;
    use mcp_plugin_api::mutation::apply_to_message;

    fn texts(raw: &[u8]) -> Vec<String> {
        let msg = MessageParser::default().parse(raw).expect("parses");
        TextUnits::collect(&msg, raw, usize::MAX)
            .units
            .into_iter()
            .map(|u| u.text)
            .collect()
    }

    /// Replaces `from` with `to` in every unit, applies the rewrite, and returns the new
    /// message's texts.
    fn rewrite_roundtrip(raw: &[u8], from: &str, to: &str) -> (Vec<u8>, Vec<String>) {
        let msg = MessageParser::default().parse(raw).expect("parses");
        let units = TextUnits::collect(&msg, raw, usize::MAX);
        let repl: Vec<(usize, String)> = units
            .units
            .iter()
            .enumerate()
            .filter(|(_, u)| u.text.contains(from))
            .map(|(i, u)| (i, u.text.replace(from, to)))
            .collect();
        let rw = units.rewrite(&repl).expect("rewrite");
        let mut ms = rw.header_mutations;
        if let Some(body) = rw.body {
            ms.push(Mutation::ReplaceBody { body: body.into() });
        }
        let out = apply_to_message(raw, &ms).to_vec();
        let t = texts(&out);
        (out, t)
    }

    const NESTED: &[u8] = b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain SECRET\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 SECRET\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner SECRET\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naW5uZXIgU0VDUkVU\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--b\r\nContent-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n//5TAEUAQwBSAEUAVAA=\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogZW5jb2RlZAoKZW5jIFNFQ1JFVAo=\r\n--b\r\nContent-Type: application/json; name=data.json\r\n\r\n{\"k\": \"SECRET\"}\r\n--b--\r\n";

    #[test]
    fn text_is_collected_from_every_part_decoded() {
        assert_eq!(
            texts(NESTED),
            vec![
                "outer",
                "plain SECRET",
                "caf\u{e9} SECRET",
                "inner SECRET",
                "inner SECRET",
                "SECRET",
                "encoded",
                "enc SECRET\n",
                "{\"k\": \"SECRET\"}",
            ]
        );
    }

    #[test]
    fn rewrite_changes_only_the_matching_parts() {
        let (out, t) = rewrite_roundtrip(NESTED, "SECRET", "******");
        assert_eq!(
            t,
            vec![
                "outer",
                "plain ******",
                "caf\u{e9} ******",
                "inner ******",
                "inner ******",
                "******",
                "encoded",
                "enc ******\n",
                "{\"k\": \"******\"}",
            ]
        );
        let out = String::from_utf8_lossy(&out);
        // Untouched parts are byte-identical; charsets kept where they can encode the text.
        assert!(out.contains("Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--b"));
        assert!(out.contains("caf=E9 ******\r\n--b"), "{out}");
        // UTF-16 cannot be written back by encoding_rs: the part becomes UTF-8.
        assert!(out.contains("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nKioqKioq\r\n--b"), "{out}");
        assert!(out.starts_with("Subject: outer\r\n"));
    }

    #[test]
    fn single_part_and_subject_rewrite_use_header_mutations() {
        let raw = b"Subject: SECRET \xe2\x82\xac\r\nContent-Type: text/plain; charset=utf-16; format=flowed\r\nContent-Transfer-Encoding: base64\r\n\r\n//5TAEUAQwBSAEUAVAA=\r\n";
        let (out, t) = rewrite_roundtrip(raw, "SECRET", "xx");
        assert_eq!(t, vec!["xx \u{20ac}", "xx"]);
        let out = String::from_utf8_lossy(&out);
        assert!(out.contains("charset=utf-8; format=flowed"), "{out}");
    }

    #[test]
    fn bare_lf_messages_keep_bare_lf() {
        let raw = b"Subject: a\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nline one SECRET\nline two\n";
        let (out, t) = rewrite_roundtrip(raw, "SECRET", "******");
        assert_eq!(t, vec!["a", "line one ******\nline two\n"]);
        assert!(!out.contains(&b'\r'));
    }

    #[test]
    fn scan_limit_truncates_on_a_character_boundary() {
        let raw = "Subject: \u{e9}\u{e9}\u{e9}\r\n\r\nbody\r\n".as_bytes();
        let msg = MessageParser::default().parse(raw).expect("parses");
        let units = TextUnits::collect(&msg, raw, 3);
        assert!(units.truncated);
        assert_eq!(units.units.len(), 1);
        assert_eq!(units.units[0].text, "\u{e9}");
        assert!(units.rewrite(&[(0, "x".into())]).is_err());
    }

    #[test]
    fn extensions_and_header_encoding() {
        for (name, want) in [
            ("a.EXE", Some("exe")),
            ("archive.tar.gz", Some("gz")),
            ("noext", None),
            ("trailing.", None),
            ("C:\\dir.d\\x.js", Some("js")),
            ("dir.d/readme", None),
        ] {
            assert_eq!(extension(name).as_deref(), want, "{name}");
        }
        assert_eq!(encode_header_text("plain"), "plain");
        let enc = encode_header_text(&"\u{e9}".repeat(40));
        assert!(enc.split(' ').all(|w| w.len() <= 75), "{enc}");
        let raw = format!("Subject: {enc}\r\n\r\n");
        let msg = MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parses");
        assert_eq!(msg.subject(), Some("\u{e9}".repeat(40).as_str()));
    }
}
