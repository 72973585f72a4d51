//! What a step sees of a message.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::Stage;
use crate::mutation::body_offset;

/// The SMTP/LMTP envelope (RFC 5321 §2.3.1), or its APPEND equivalent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path of `MAIL FROM`; empty for the null path `<>` and for IMAP APPEND.
    pub mail_from: String,
    /// The recipient this run is for (LMTP runs once per recipient; APPEND uses the
    /// account's address).
    pub rcpt_to: String,
}

/// A message on its way through a pipeline, as one step sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageContext {
    /// The stage running.
    pub stage: Stage,
    /// The tenant's name.
    pub tenant: String,
    /// The mailbox (account) address, lower-case.
    pub mailbox: String,
    /// Where the message goes so far: `INBOX` for delivery, the APPEND target, or the folder
    /// an earlier step chose with `FileInto`.
    pub folder: String,
    /// Sender and recipient.
    pub envelope: Envelope,
    /// The raw message (RFC 5322), with the earlier steps' header and body mutations applied.
    pub message: Bytes,
    /// Flags and keywords the message will be stored with so far.
    pub flags: Vec<String>,
    /// Metadata set by the client or earlier steps.
    pub metadata: BTreeMap<String, String>,
}

impl MessageContext {
    /// The header section, including the empty line that ends it.
    pub fn header_section(&self) -> &[u8] {
        &self.message[..body_offset(&self.message)]
    }

    /// The body: everything after the header section.
    pub fn body(&self) -> &[u8] {
        &self.message[body_offset(&self.message)..]
    }

    /// RFC822.SIZE of the message as it stands, in octets.
    pub fn size(&self) -> usize {
        self.message.len()
    }
}
