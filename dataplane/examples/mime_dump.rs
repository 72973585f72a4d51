//! Prints ENVELOPE, BODY and BODYSTRUCTURE of each given message file as one JSON object
//! per line: `{"file": .., "envelope": .., "body": .., "bodystructure": ..}`. A value is a
//! JSON string when the IMAP bytes are valid UTF-8, else `{"base64": ".."}`.
//!
//! With `--section SPEC` (repeatable, e.g. `--section 1.MIME --section "HEADER.FIELDS (FROM)"`)
//! the object also has `"sections": {SPEC: {"base64": ..}}` with the `BODY[SPEC]` octets.
//!
//! Used by `e2e/differential/test_mime_vs_dovecot.py`:
//! `cargo run -p mcp-dataplane --example mime_dump -- [--section SPEC]... FILES...`

use base64::Engine as _;
use mcp_dataplane::mime::{SectionSpec, SectionText};
use serde_json::{Map, Value, json};

fn b64(bytes: &[u8]) -> Value {
    json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) })
}

fn field(bytes: Vec<u8>) -> Value {
    match String::from_utf8(bytes) {
        Ok(s) => Value::String(s),
        Err(e) => b64(e.as_bytes()),
    }
}

/// Parses `1.2.HEADER.FIELDS (A B)`-style section text (upper or lower case).
fn parse_spec(s: &str) -> anyhow::Result<SectionSpec> {
    let (head, names) = match s.split_once('(') {
        Some((h, rest)) => (
            h.trim(),
            rest.trim_end_matches(')')
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        ),
        None => (s.trim(), Vec::new()),
    };
    let mut spec = SectionSpec::default();
    let mut rest = head;
    while let Some((num, tail)) = rest.split_once('.').or(Some((rest, ""))) {
        match num.parse::<u32>() {
            Ok(n) => {
                spec.part.push(n);
                rest = tail;
                if rest.is_empty() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    spec.text = match rest.to_ascii_uppercase().as_str() {
        "" => None,
        "HEADER" => Some(SectionText::Header),
        "TEXT" => Some(SectionText::Text),
        "MIME" => Some(SectionText::Mime),
        "HEADER.FIELDS" => Some(SectionText::HeaderFields { names, not: false }),
        "HEADER.FIELDS.NOT" => Some(SectionText::HeaderFields { names, not: true }),
        other => anyhow::bail!("bad section text {other:?}"),
    };
    Ok(spec)
}

fn main() -> anyhow::Result<()> {
    let mut sections = Vec::new();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--section" {
            let s = args
                .next()
                .ok_or_else(|| anyhow::anyhow!("--section needs a value"))?;
            sections.push((s.clone(), parse_spec(&s)?));
        } else {
            files.push(arg);
        }
    }
    for path in files {
        let raw = std::fs::read(&path)?;
        let cache = mcp_dataplane::mime::analyze(&raw);
        let mut doc = json!({
            "file": path,
            "envelope": field(cache.envelope),
            "body": field(cache.body),
            "bodystructure": field(cache.bodystructure),
        });
        if !sections.is_empty() {
            let mut map = Map::new();
            for (name, spec) in &sections {
                map.insert(name.clone(), b64(&mcp_dataplane::mime::section(&raw, spec)));
            }
            doc["sections"] = Value::Object(map);
        }
        println!("{doc}");
    }
    Ok(())
}
