//! Change notification (DESIGN.md §3): every committed change to a mailbox is announced, so
//! that sessions with it selected (IDLE, NOOP, the next command) report it.
//!
//! - In one process, [`ChangeBus`] is a broadcast: the store publishes the mailbox id after
//!   each commit.
//! - Across processes (several dataplane replicas on one PostgreSQL database), a trigger on
//!   the `mailboxes` row (migration `0004_change_notify.sql`) sends
//!   `NOTIFY mcp_mailbox_changes, '<origin> <mailbox id>'` inside the very transaction that
//!   changed it, so the notification leaves exactly when the change commits (never for a
//!   rolled-back change, never lost to a crash between commit and announce). [`listen`]
//!   receives them (`LISTEN`) and republishes on the local bus those whose origin is another
//!   process. When the listening connection is lost, everything is announced as changed
//!   once it is back ([`Change::All`]), since notifications sent meanwhile are lost.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::types::MailboxId;

/// The PostgreSQL notification channel of mailbox changes.
pub const CHANNEL: &str = "mcp_mailbox_changes";

/// The session setting (`SET mcp.origin`) naming the process that made a change; the
/// trigger puts it in the payload so a process can skip its own changes.
pub const ORIGIN_SETTING: &str = "mcp.origin";

/// One announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// This mailbox changed.
    Mailbox(MailboxId),
    /// Any mailbox may have changed (notifications were missed): resynchronise.
    All,
}

impl Change {
    /// Whether a session with `mailbox` selected must look for changes.
    pub fn affects(self, mailbox: MailboxId) -> bool {
        match self {
            Self::Mailbox(id) => id == mailbox,
            Self::All => true,
        }
    }
}

/// Broadcasts the id of every mailbox that a committed transaction changed.
#[derive(Clone, Debug)]
pub struct ChangeBus {
    tx: broadcast::Sender<Change>,
}

impl Default for ChangeBus {
    fn default() -> Self {
        Self::new()
    }
}

impl ChangeBus {
    /// A bus with room for 1024 unread notifications per receiver; a lagging receiver
    /// gets `RecvError::Lagged` and must resynchronise all its mailboxes.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self { tx }
    }
    /// Announces a change to `mailbox`; never blocks, no-op without receivers.
    pub fn publish(&self, mailbox: MailboxId) {
        let _ = self.tx.send(Change::Mailbox(mailbox));
    }
    /// Announces that any mailbox may have changed.
    pub fn publish_all(&self) {
        let _ = self.tx.send(Change::All);
    }
    /// A receiver of future announcements.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }
}

/// Parses a notification payload, `<origin> <mailbox id>`: the mailbox, unless the change
/// came from `own` (already announced locally) or the payload is not of that shape.
pub fn parse_payload(payload: &str, own: &str) -> Option<MailboxId> {
    let (origin, id) = payload.rsplit_once(' ')?;
    if origin == own {
        return None;
    }
    id.parse().ok().map(MailboxId)
}

/// First delay before listening again after the connection failed; doubles up to
/// [`RETRY_MAX`].
const RETRY_BASE: Duration = Duration::from_millis(200);
/// Longest delay between attempts to listen again.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Listens on [`CHANNEL`] of the PostgreSQL database at `url` until `cancel`, and publishes
/// on `bus` every change whose origin is not `own`. Connection failures are logged and
/// retried with backoff; after each reconnection [`Change::All`] is published.
pub async fn listen(url: String, own: String, bus: ChangeBus, cancel: CancellationToken) {
    let mut delay = RETRY_BASE;
    let mut reconnecting = false;
    loop {
        let connected = tokio::select! {
            () = cancel.cancelled() => return,
            r = connect(&url) => r,
        };
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, retry_ms = delay.as_millis(), "cannot LISTEN for changes of other replicas; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(RETRY_MAX);
                reconnecting = true;
                continue;
            }
        };
        if reconnecting {
            tracing::info!("listening for changes of other replicas again; resynchronising");
            bus.publish_all();
        }
        delay = RETRY_BASE;
        reconnecting = true;
        loop {
            let next = tokio::select! {
                () = cancel.cancelled() => return,
                n = listener.try_recv() => n,
            };
            match next {
                Ok(Some(n)) => {
                    if let Some(id) = parse_payload(n.payload(), &own) {
                        bus.publish(id);
                    }
                }
                Ok(None) => {
                    // Lost and (eagerly) re-established, LISTEN included: what was sent in
                    // between is gone.
                    tracing::warn!(
                        "connection for changes of other replicas lost; resynchronising"
                    );
                    bus.publish_all();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for changes of other replicas failed");
                    break;
                }
            }
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_from_other_origins_name_a_mailbox() {
        for (payload, expected) in [
            ("b 42", Some(MailboxId(42))),
            (" 7", Some(MailboxId(7))),
            ("a 42", None),
            ("b", None),
            ("b x", None),
            ("b 99999999999999999999", None),
            ("", None),
        ] {
            assert_eq!(parse_payload(payload, "a"), expected, "{payload:?}");
        }
    }

    #[test]
    fn all_affects_every_mailbox() {
        assert!(Change::All.affects(MailboxId(1)));
        assert!(Change::Mailbox(MailboxId(1)).affects(MailboxId(1)));
        assert!(!Change::Mailbox(MailboxId(2)).affects(MailboxId(1)));
    }
}
