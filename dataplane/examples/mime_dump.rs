//! Prints ENVELOPE, BODY and BODYSTRUCTURE of each given message file as one JSON object
//! per line: `{"file": .., "envelope": .., "body": .., "bodystructure": ..}`. A value is a
//! JSON string when the IMAP bytes are valid UTF-8, else `{"base64": ".."}`.
//!
//! Used by `e2e/differential/test_mime_vs_dovecot.py`:
//! `cargo run -p mcp-dataplane --example mime_dump -- FILES...`

use base64::Engine as _;
use serde_json::{Value, json};

fn field(bytes: Vec<u8>) -> Value {
    match String::from_utf8(bytes) {
        Ok(s) => Value::String(s),
        Err(e) => json!({
            "base64": base64::engine::general_purpose::STANDARD.encode(e.into_bytes())
        }),
    }
}

fn main() -> anyhow::Result<()> {
    for path in std::env::args().skip(1) {
        let raw = std::fs::read(&path)?;
        let cache = mcp_dataplane::mime::analyze(&raw);
        let doc = json!({
            "file": path,
            "envelope": field(cache.envelope),
            "body": field(cache.body),
            "bodystructure": field(cache.bodystructure),
        });
        println!("{doc}");
    }
    Ok(())
}
