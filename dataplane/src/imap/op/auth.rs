//! Authentication: STARTTLS (RFC 9051 §6.2.1), AUTHENTICATE PLAIN with SASL-IR (RFC 4616,
//! RFC 4959) and LOGIN (RFC 9051 §6.2.3).

use std::time::Duration;

use imap_codec::AuthenticateDataCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};

use crate::auth::AuthError;
use crate::imap::conn::IoStream;
use crate::imap::session::{Completion, OpError, OpResult, Session};
use crate::imap::wire::framing::Frame;

/// STARTTLS: answers OK, discards anything the client pipelined, then handshakes.
pub(super) async fn starttls(s: &mut Session, tag: &str) -> OpResult {
    let Some(acceptor) = s.ctx.tls.clone() else {
        return Ok(Completion::bad("STARTTLS is not available"));
    };
    if s.io.as_ref().is_some_and(IoStream::is_tls) {
        return Ok(Completion::bad("TLS is already active"));
    }
    s.out
        .extend_from_slice(format!("{tag} OK Begin TLS negotiation now.\r\n").as_bytes());
    s.flush().await?;
    // Bytes pipelined after STARTTLS arrived in clear text and must not be executed.
    s.framer.discard_buffered();
    let Some(IoStream::Plain(tcp)) = s.io.take() else {
        return Err(OpError::Closed);
    };
    match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => {
            s.io = Some(IoStream::Tls(Box::new(tls)));
            // The tagged OK went out before the handshake; nothing more to write.
            Err(OpError::TlsStarted)
        }
        Ok(Err(e)) => {
            tracing::debug!(peer = %s.peer, error = %e, "STARTTLS handshake failed");
            Err(OpError::Closed)
        }
        Err(_) => Err(OpError::Closed),
    }
}

/// LOGIN.
pub(super) async fn login(s: &mut Session, user: &[u8], pass: &[u8]) -> OpResult {
    if s.account.is_some() {
        return Ok(Completion::bad("Already authenticated"));
    }
    let (Ok(user), Ok(pass)) = (std::str::from_utf8(user), std::str::from_utf8(pass)) else {
        return Ok(Completion::no_code(
            "AUTHENTICATIONFAILED",
            "Authentication failed.",
        ));
    };
    finish_login(s, user, pass).await
}

async fn finish_login(s: &mut Session, user: &str, pass: &str) -> OpResult {
    match s.ctx.auth.verify(user, pass).await {
        Ok(account) => {
            tracing::info!(peer = %s.peer, user = %account.address, "login");
            s.account = Some(account);
            let caps = s.capabilities();
            Ok(Completion::ok_code(
                format!("CAPABILITY {caps}"),
                "Logged in",
            ))
        }
        Err(AuthError::InvalidCredentials) => {
            tracing::info!(peer = %s.peer, "authentication failed");
            Ok(Completion::no_code(
                "AUTHENTICATIONFAILED",
                "Authentication failed.",
            ))
        }
        Err(AuthError::Suspended) => Ok(Completion::no_code("UNAVAILABLE", "Account suspended.")),
        Err(AuthError::Unavailable(e)) => {
            tracing::warn!(peer = %s.peer, error = %e, "authentication backend failure");
            Ok(Completion::no_code(
                "UNAVAILABLE",
                "Temporary authentication failure.",
            ))
        }
    }
}

/// AUTHENTICATE PLAIN, with the initial response inline (SASL-IR) or after a `+`.
pub(super) async fn authenticate(
    s: &mut Session,
    mechanism: &AuthMechanism<'_>,
    initial: Option<&[u8]>,
) -> OpResult {
    if s.account.is_some() {
        return Ok(Completion::bad("Already authenticated"));
    }
    if !matches!(mechanism, AuthMechanism::Plain) {
        return Ok(Completion::no_code(
            "CANNOT",
            "Unsupported authentication mechanism",
        ));
    }
    let response = match initial {
        Some(r) => r.to_vec(),
        None => {
            s.out.extend_from_slice(b"+ \r\n");
            s.flush().await?;
            loop {
                match s.framer.advance() {
                    Frame::Message => break,
                    Frame::NeedMore => {
                        if !s
                            .read_more(Duration::from_secs(s.ctx.limits.login_timeout_secs))
                            .await?
                        {
                            return Err(OpError::Closed);
                        }
                    }
                    _ => return Ok(Completion::bad("Invalid SASL response")),
                }
            }
            match AuthenticateDataCodec::default().decode(s.framer.message()) {
                Ok((_, AuthenticateData::Continue(data))) => data.declassify().to_vec(),
                Ok((_, AuthenticateData::Cancel)) => {
                    return Ok(Completion::bad("Authentication cancelled"));
                }
                Err(_) => return Ok(Completion::bad("Invalid base64 in SASL response")),
            }
        }
    };
    let mut parts = response.split(|&b| b == 0);
    let (Some(authz), Some(authc), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(Completion::bad("Malformed PLAIN response"));
    };
    let (Ok(authz), Ok(authc), Ok(pass)) = (
        std::str::from_utf8(authz),
        std::str::from_utf8(authc),
        std::str::from_utf8(pass),
    ) else {
        return Ok(Completion::no_code(
            "AUTHENTICATIONFAILED",
            "Authentication failed.",
        ));
    };
    if !authz.is_empty() && !authz.eq_ignore_ascii_case(authc) {
        return Ok(Completion::no_code(
            "AUTHORIZATIONFAILED",
            "Proxy authorization is not supported.",
        ));
    }
    finish_login(s, authc, pass).await
}
