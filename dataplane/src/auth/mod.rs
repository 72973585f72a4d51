//! Credential checks: argon2id password hashes of accounts that come from the resources.
//!
//! Passwords are stored only as argon2id PHC strings ([`hash_password`]); the clear text is
//! never logged and never stored. [`Authenticator::verify`] does the same argon2 work for an
//! unknown login as for a known one, so response time does not reveal which addresses exist.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

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

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// argon2 rejected the input (e.g. a password longer than 2^32 - 1 octets).
    #[error("argon2 hashing failed: {0}")]
    Argon2(argon2::password_hash::Error),
}

/// A valid argon2id PHC string with the same parameters as [`hash_password`] produces (the
/// crate defaults: m=19456 KiB, t=2, p=1), of a password nobody knows. Unknown logins are
/// verified against it so that they cost as much as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$bWNwLWR1bW15LXNhbHQ$2Wx0Q3MdNQ+1bHqmOYAdnH3f5idjAs41Es/IHdGGRrc";

/// Hashes `password` with argon2id (default parameters: 19 MiB memory, 2 passes, 1 lane)
/// and a fresh random 16-octet salt, returning the PHC string (`$argon2id$v=19$...`).
///
/// CPU-bound (tens of milliseconds): call it from `tokio::task::spawn_blocking` on an async
/// runtime.
///
/// # Errors
/// [`HashError::Argon2`] when argon2 rejects the input.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(HashError::Argon2)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(HashError::Argon2)
}

/// Checks `password` against the PHC string `phc`. A malformed `phc` never matches.
/// CPU-bound, like [`hash_password`].
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Verifies login names and passwords against the store.
#[derive(Clone)]
pub struct Authenticator {
    store: MetadataStore,
    checks: CheckPool,
}

/// A password check waiting for a thread: password, PHC string, where to send the verdict.
type Check = (String, String, tokio::sync::oneshot::Sender<bool>);

/// A fixed set of threads that run argon2 checks, one per CPU core (at least 2).
///
/// Each check needs its memory cost (19 MiB with the default parameters). On tokio's
/// blocking pool a burst of logins (a thousand clients reconnecting) would run on hundreds
/// of threads, and the allocator keeps each thread's 19 MiB long after; on a fixed pool the
/// memory held is bounded by the number of threads, and more parallel checks than cores gain
/// no throughput anyway. The threads end when the last [`Authenticator`] clone is dropped.
#[derive(Clone)]
struct CheckPool {
    queue: std::sync::mpsc::Sender<Check>,
}

impl CheckPool {
    fn new() -> Self {
        let (queue, jobs) = std::sync::mpsc::channel::<Check>();
        let jobs = std::sync::Arc::new(std::sync::Mutex::new(jobs));
        let threads = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        for i in 0..threads.max(2) {
            let jobs = jobs.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("mcp-argon2-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match jobs.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok((password, phc, reply)) = job else {
                            return;
                        };
                        let _ = reply.send(verify_password(&password, &phc));
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-check thread");
            }
        }
        Self { queue }
    }

    async fn verify(&self, password: String, phc: String) -> Result<bool, AuthError> {
        let (reply, verdict) = tokio::sync::oneshot::channel();
        self.queue
            .send((password, phc, reply))
            .map_err(|_| AuthError::Unavailable("password-check threads are gone".into()))?;
        verdict
            .await
            .map_err(|_| AuthError::Unavailable("password check aborted".into()))
    }
}

impl Authenticator {
    /// An authenticator over `store`, with its own password-check threads.
    pub fn new(store: MetadataStore) -> Self {
        Self {
            store,
            checks: CheckPool::new(),
        }
    }

    /// Checks `password` for `login` (an address, case-insensitive). The argon2 work runs off
    /// the async runtime; an unknown user costs as much as a wrong password.
    ///
    /// The suspended state is only revealed to a caller who knows the password.
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`] for an unknown login, a wrong password or an account
    /// without a password; [`AuthError::Suspended`] for a correct password of a suspended
    /// account; [`AuthError::Unavailable`] when the store fails.
    pub async fn verify(&self, login: &str, password: &str) -> Result<AccountRecord, AuthError> {
        let account = self
            .store
            .account_by_address(login)
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let phc = match &account {
            Some(a) if !a.password_hash.is_empty() => a.password_hash.clone(),
            _ => DUMMY_HASH.to_owned(),
        };
        let matches = self.checks.verify(password.to_owned(), phc).await?;
        match account {
            Some(a) if matches && !a.password_hash.is_empty() => {
                if a.active {
                    tracing::debug!(login = %a.address, "authenticated");
                    Ok(a)
                } else {
                    tracing::info!(login = %a.address, "login refused: account suspended");
                    Err(AuthError::Suspended)
                }
            }
            _ => {
                tracing::info!(login = %login, "authentication failed");
                Err(AuthError::InvalidCredentials)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AccountUpsert;

    #[test]
    fn hash_is_argon2id_phc_and_verifies_only_the_right_password() {
        let phc = hash_password("alice-demo").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(verify_password("alice-demo", &phc));
        assert!(!verify_password("alice-demo ", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn same_password_gets_a_fresh_salt_each_time() {
        let a = hash_password("pw").expect("hash");
        let b = hash_password("pw").expect("hash");
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_hash_never_matches() {
        for phc in [
            "",
            "plain",
            "$argon2id$v=19$m=1",
            "$2b$12$abcdefghijklmnopqrstuv",
        ] {
            assert!(!verify_password("plain", phc), "{phc:?}");
        }
    }

    /// The dummy hash must cost the same as a real one, so it needs the same parameters.
    #[test]
    fn dummy_hash_is_valid_and_has_the_real_parameters() {
        let real = hash_password("x").expect("hash");
        let real = PasswordHash::new(&real).expect("parse real");
        let dummy = PasswordHash::new(DUMMY_HASH).expect("parse dummy");
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(
            dummy.hash.map(|h| h.len()),
            real.hash.map(|h| h.len()),
            "output length"
        );
    }

    /// Needs the SQLite [`MetadataStore`].
    #[tokio::test]
    async fn verify_distinguishes_wrong_password_suspended_and_success() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("meta.sqlite").display());
        let store = MetadataStore::connect(&url).await.expect("connect");
        for (address, active) in [("Alice@Example.com", true), ("carol@example.com", false)] {
            store
                .upsert_account(&AccountUpsert {
                    tenant: "example".into(),
                    address: address.into(),
                    password_hash: hash_password("secret").expect("hash"),
                    active,
                    spec_digest: "d".into(),
                    quota_storage: None,
                    quota_messages: None,
                    ..Default::default()
                })
                .await
                .expect("upsert");
        }
        let auth = Authenticator::new(store);

        let ok = auth
            .verify("ALICE@example.com", "secret")
            .await
            .expect("login");
        assert_eq!(ok.address, "alice@example.com");
        assert!(matches!(
            auth.verify("alice@example.com", "wrong").await,
            Err(AuthError::InvalidCredentials)
        ));
        assert!(matches!(
            auth.verify("nobody@example.com", "secret").await,
            Err(AuthError::InvalidCredentials)
        ));
        assert!(matches!(
            auth.verify("carol@example.com", "wrong").await,
            Err(AuthError::InvalidCredentials)
        ));
        assert!(matches!(
            auth.verify("carol@example.com", "secret").await,
            Err(AuthError::Suspended)
        ));
    }
}
