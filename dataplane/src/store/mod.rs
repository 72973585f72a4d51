//! Storage: mail metadata in SQL ([`MetadataStore`]: SQLite by default, or PostgreSQL) and
//! message bodies as content-addressed blobs ([`BlobStore`]) (DESIGN.md §3).
//!
//! Invariants every backend keeps:
//! - UIDs are strictly ascending per mailbox and never reused under one UIDVALIDITY, also
//!   under concurrent APPEND/COPY/MOVE from many connections or processes (allocation happens
//!   inside the write transaction that inserts the message).
//! - Every change to a message (append, flag change, expunge) gets a MODSEQ greater than any
//!   before it in that mailbox; expunged UIDs stay as tombstones with their MODSEQ.
//! - A blob is written (and fsynced) before the metadata transaction that references it
//!   commits, so an acknowledged message survives `kill -9`.
//! - A quarantined message ([`quarantine`]) keeps its blob referenced until it is released
//!   (same blob, now referenced by the message) or deleted.
//! - A body that nothing refers to (its writer was killed before the metadata commit, or
//!   the write was refused) is deleted by [`gc`] once older than a grace period.
//! - After each committed change the mailbox id is published on the [`ChangeBus`], so that
//!   other sessions (IDLE, NOOP) learn about it.

pub mod blob;
pub mod gc;
pub mod metadata;
pub mod notify;
pub mod quarantine;
pub mod types;

pub use blob::{
    BlobError, BlobId, BlobLocation, BlobStore, DEFAULT_CACHE_BYTES, S3Settings, S3SettingsError,
};
pub use metadata::MetadataStore;
pub use notify::{Change, ChangeBus};
pub use quarantine::{
    HeldMessage, Quarantine, QuarantineError, QuarantineId, QuarantineQuery, QuarantinedMessage,
    Released,
};
pub use types::*;
