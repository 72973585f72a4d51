//! Decoded views for SEARCH (RFC 9051 §6.4.4), built with `mail-parser`: RFC 2047 header
//! decoding, transfer decoding and charset conversion of text parts, lenient RFC 5322 dates.

use chrono::{DateTime, FixedOffset, NaiveDate};
use mail_parser::{HeaderValue, Message, MessageParser, MessagePart, PartType};

/// Owned decoded data extracted once per message.
#[derive(Clone, Debug, Default)]
pub(crate) struct Decoded {
    /// (lower-case name, decoded unfolded value) of every top-level header field, in order.
    pub headers: Vec<(String, String)>,
    /// Decoded text of all text parts, separated by newlines.
    pub body: String,
    /// The parsed Date header.
    pub date: Option<DateTime<FixedOffset>>,
}

/// Decodes an unstructured header value: RFC 2047 words decoded, folding removed.
fn decode_value(raw: &[u8]) -> String {
    let mut buf = raw.to_vec();
    buf.extend_from_slice(b"\r\n");
    match mail_parser::parsers::MessageStream::new(&buf).parse_unstructured() {
        HeaderValue::Text(t) => t.into_owned(),
        HeaderValue::TextList(l) => l.join(" "),
        _ => String::new(),
    }
}

fn to_chrono(d: &mail_parser::DateTime) -> Option<DateTime<FixedOffset>> {
    let secs = (i32::from(d.tz_hour) * 3600 + i32::from(d.tz_minute) * 60)
        * if d.tz_before_gmt { -1 } else { 1 };
    let offset = FixedOffset::east_opt(secs)?;
    let naive = NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))?
        .and_hms_opt(u32::from(d.hour), u32::from(d.minute), u32::from(d.second))?;
    naive.and_local_timezone(offset).single()
}

fn collect_text(msg: &Message<'_>, out: &mut String, depth: usize) {
    if depth > 16 {
        return;
    }
    for part in &msg.parts {
        push_part(part, out, depth);
    }
}

fn push_part(part: &MessagePart<'_>, out: &mut String, depth: usize) {
    let text = match &part.body {
        PartType::Text(t) => t.to_string(),
        PartType::Html(h) => mail_parser::decoders::html::html_to_text(h),
        PartType::Message(m) => {
            collect_text(m, out, depth + 1);
            return;
        }
        _ => return,
    };
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&text);
}

/// Parses `raw` for searching.
pub(crate) fn decode(raw: &[u8]) -> Decoded {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Decoded::default();
    };
    let headers = msg
        .root_part()
        .headers()
        .iter()
        .map(|h| {
            let value = raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            (h.name.as_str().to_ascii_lowercase(), decode_value(value))
        })
        .collect();
    let mut body = String::new();
    collect_text(&msg, &mut body, 0);
    let date = msg.date().and_then(to_chrono);
    Decoded {
        headers,
        body,
        date,
    }
}
