//! TODO: filled in by the imap work.
