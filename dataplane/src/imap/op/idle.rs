//! IDLE (RFC 2177, RFC 9051 §6.3.13): push mailbox changes until the client sends `DONE`.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::broadcast::error::RecvError;

use crate::imap::session::{Completion, OpError, OpResult, Session};
use crate::imap::wire::framing::Frame;

enum Event {
    Read(usize),
    Changed,
    Keepalive,
}

/// IDLE. Sends `* OK Still here` every `idle_keepalive_secs` (at most 5 minutes) so that
/// NAT boxes keep the connection; ends on `DONE`, on shutdown (BYE), or after the idle
/// timeout.
pub(super) async fn idle(s: &mut Session) -> OpResult {
    s.out.extend_from_slice(b"+ idling\r\n");
    s.sync_selected(true, false).await?;
    s.flush().await?;
    let keepalive = Duration::from_secs(s.ctx.limits.idle_keepalive_secs.clamp(1, 300));
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(s.ctx.limits.idle_timeout_secs);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    let selected_id = s.selected.as_ref().map(|sel| sel.mailbox.id);
    let mut buf = vec![0u8; 4096];
    loop {
        // `DONE` may already be buffered, pipelined with the next command (RFC 2177 §3).
        match s.framer.advance() {
            Frame::Message => {
                let line = s.framer.message();
                let word = line
                    .strip_suffix(b"\r\n")
                    .or_else(|| line.strip_suffix(b"\n"))
                    .unwrap_or(line);
                return Ok(if word.eq_ignore_ascii_case(b"DONE") {
                    Completion::ok("Idle completed.")
                } else {
                    Completion::bad("Expected DONE.")
                });
            }
            Frame::NeedMore => {}
            Frame::Fatal(reason) => {
                s.untagged(format!("BYE {reason}"));
                return Err(OpError::Closed);
            }
            Frame::NeedContinuation | Frame::LiteralTooBig { .. } => {
                s.untagged("BYE Expected DONE");
                return Err(OpError::Closed);
            }
        }
        let event = {
            let Some(io) = s.io.as_mut() else {
                return Err(OpError::Closed);
            };
            let changes = &mut s.changes;
            tokio::select! {
                r = io.read(&mut buf) => Event::Read(r?),
                r = changes.recv() => match r {
                    Ok(c) if selected_id.is_some_and(|id| c.affects(id)) => Event::Changed,
                    Err(RecvError::Lagged(_)) => Event::Changed,
                    Ok(_) => continue,
                    Err(RecvError::Closed) => Event::Keepalive,
                },
                _ = ticker.tick() => Event::Keepalive,
                () = tokio::time::sleep_until(deadline) => {
                    s.untagged("BYE Autologout; idle for too long");
                    return Err(OpError::Closed);
                }
                () = s.shutdown.cancelled() => {
                    s.untagged("BYE Server shutting down");
                    return Err(OpError::Closed);
                }
            }
        };
        match event {
            Event::Read(0) => return Err(OpError::Closed),
            Event::Read(n) => s.framer.push(&buf[..n]),
            Event::Changed => {
                s.sync_selected(true, true).await?;
                s.flush().await?;
            }
            Event::Keepalive => {
                s.untagged("OK Still here");
                s.flush().await?;
            }
        }
    }
}
