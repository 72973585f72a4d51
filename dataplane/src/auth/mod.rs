//! TODO: filled in by the auth work.
