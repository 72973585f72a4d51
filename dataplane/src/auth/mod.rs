//! Credential checks: argon2id password hashes of accounts that come from the resources.
//!
//! CONTRACT STUB: being implemented (standalone work item).

use crate::store::{AccountRecord, MetadataStore};

/// Why authentication failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user or wrong password (indistinguishable on purpose): `NO [AUTHENTICATIONFAILED]`.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The account is suspended: `NO [UNAVAILABLE]`.
    #[error("account suspended")]
    Suspended,
    /// The store failed: `NO [UNAVAILABLE]`.
    #[error("authentication backend unavailable: {0}")]
    Unavailable(String),
}

/// Verifies login names and passwords against the store.
#[derive(Clone)]
pub struct Authenticator {
    store: MetadataStore,
}

impl Authenticator {
    /// An authenticator over `store`.
    pub fn new(store: MetadataStore) -> Self {
        Self { store }
    }

    /// Checks `password` for `login` (an address, case-insensitive). The argon2 work runs off
    /// the async runtime; an unknown user costs as much as a wrong password.
    #[allow(clippy::unused_async, unused_variables)]
    pub async fn verify(&self, login: &str, password: &str) -> Result<AccountRecord, AuthError> {
        let _ = &self.store;
        todo!()
    }
}
