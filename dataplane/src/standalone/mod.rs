//! TODO: filled in by the standalone work.
