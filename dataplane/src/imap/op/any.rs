//! Commands valid in any state: CAPABILITY, NOOP/CHECK, LOGOUT, ID (RFC 2971), and ENABLE
//! (RFC 5161).

use imap_codec::imap_types::core::{IString, NString};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;

use crate::imap::session::{Completion, OpResult, Session};
use crate::imap::wire::out;

/// CAPABILITY (RFC 9051 §6.1.1).
pub(super) fn capability(s: &mut Session) -> OpResult {
    let caps = s.capabilities();
    s.untagged(format!("CAPABILITY {caps}"));
    Ok(Completion::ok("Capability completed."))
}

/// NOOP and CHECK (RFC 9051 §6.1.2): a chance to report mailbox changes.
pub(super) async fn noop(s: &mut Session) -> OpResult {
    s.sync_selected(true, false).await?;
    Ok(Completion::ok("NOOP completed."))
}

/// LOGOUT (RFC 9051 §6.1.3).
pub(super) fn logout(s: &mut Session) -> OpResult {
    s.untagged("BYE Logging out");
    Ok(Completion::ok("Logout completed."))
}

/// ID (RFC 2971): the client's parameters are only logged.
pub(super) fn id(s: &mut Session, params: Option<&[(IString<'_>, NString<'_>)]>) -> OpResult {
    if let Some(params) = params {
        let pairs: Vec<String> = params
            .iter()
            .take(30)
            .map(|(k, v)| {
                let key = String::from_utf8_lossy(k.as_ref());
                let val =
                    v.0.as_ref()
                        .map(|v| String::from_utf8_lossy(v.as_ref()).into_owned());
                format!("{key}={}", val.unwrap_or_else(|| "NIL".into()))
            })
            .collect();
        tracing::info!(peer = %s.peer, client_id = %pairs.join(", "), "ID");
    }
    let mut line = b"ID (".to_vec();
    let fields = [
        ("name", "MCP"),
        ("vendor", "MCP"),
        ("version", env!("CARGO_PKG_VERSION")),
    ];
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            line.push(b' ');
        }
        out::string(&mut line, k.as_bytes());
        line.push(b' ');
        out::string(&mut line, v.as_bytes());
    }
    line.push(b')');
    s.untagged(line);
    Ok(Completion::ok("ID completed."))
}

/// ENABLE (RFC 5161): IMAP4rev2, UTF8=ACCEPT, CONDSTORE and QRESYNC (RFC 7162 §3.1, §3.2.3;
/// QRESYNC implies CONDSTORE); others are ignored as the RFC requires. `ENABLED` lists what
/// this command newly enabled, in the order asked.
pub(super) fn enable(s: &mut Session, caps: &[CapabilityEnable<'_>]) -> OpResult {
    let mut enabled = Vec::new();
    let condstore_before = s.condstore;
    for cap in caps {
        let name = cap.to_string().to_ascii_uppercase();
        match name.as_str() {
            "CONDSTORE" if !condstore_before && !enabled.contains(&"CONDSTORE") => {
                s.enable_condstore();
                enabled.push("CONDSTORE");
            }
            "QRESYNC" if !s.qresync => {
                s.qresync = true;
                s.enable_condstore();
                enabled.push("QRESYNC");
            }
            "IMAP4REV2" if !s.rev2 => {
                s.rev2 = true;
                enabled.push("IMAP4rev2");
            }
            "UTF8=ACCEPT" if !s.utf8 => {
                s.utf8 = true;
                enabled.push("UTF8=ACCEPT");
            }
            _ => {}
        }
    }
    s.untagged(format!("ENABLED {}", enabled.join(" ")).trim_end());
    Ok(Completion::ok("Enabled."))
}
