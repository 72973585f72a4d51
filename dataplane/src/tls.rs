//! TLS for IMAPS and STARTTLS with rustls.
//!
//! CONTRACT STUB: being implemented (standalone work item): loading PEM files, or generating
//! and persisting a self-signed certificate (rcgen) when none is configured.
