//! In-process change notification (DESIGN.md §3: standalone uses a broadcast; Kubernetes mode
//! will add PostgreSQL LISTEN/NOTIFY).

use tokio::sync::broadcast;

use super::types::MailboxId;

/// Broadcasts the id of every mailbox that a committed transaction changed.
#[derive(Clone, Debug)]
pub struct ChangeBus {
    tx: broadcast::Sender<MailboxId>,
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
    /// Announces a change; never blocks, no-op without receivers.
    pub fn publish(&self, mailbox: MailboxId) {
        let _ = self.tx.send(mailbox);
    }
    /// A receiver of future announcements.
    pub fn subscribe(&self) -> broadcast::Receiver<MailboxId> {
        self.tx.subscribe()
    }
}
