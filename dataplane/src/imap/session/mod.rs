//! One IMAP session: the state machine of RFC 9051 §3 (not authenticated, authenticated,
//! selected, logout) driving the command handlers in [`super::op`].

pub(crate) mod selected;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::ImapContext;
use super::conn::IoStream;
use super::wire::framing::{Frame, Framer};
use super::wire::parse::{Parsed, parse};
use crate::store::{AccountRecord, Change, StoreError, Uid};

pub(crate) use selected::Selected;

/// Completion status of a command (RFC 9051 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    No,
    Bad,
}

/// The tagged response that ends a command.
#[derive(Debug)]
pub(crate) struct Completion {
    pub status: Status,
    pub code: Option<Cow<'static, str>>,
    pub text: Cow<'static, str>,
}

impl Completion {
    pub fn ok(text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: Status::Ok,
            code: None,
            text: text.into(),
        }
    }
    pub fn ok_code(code: impl Into<Cow<'static, str>>, text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: Status::Ok,
            code: Some(code.into()),
            text: text.into(),
        }
    }
    pub fn no(text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: Status::No,
            code: None,
            text: text.into(),
        }
    }
    pub fn no_code(code: impl Into<Cow<'static, str>>, text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: Status::No,
            code: Some(code.into()),
            text: text.into(),
        }
    }
    pub fn bad(text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: Status::Bad,
            code: None,
            text: text.into(),
        }
    }
}

/// Errors that end a command abnormally.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpError {
    /// The store failed: answered `NO [UNAVAILABLE]`, the session goes on.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A blob could not be read or written: answered `NO [UNAVAILABLE]`.
    #[error("blob store: {0}")]
    Blob(#[from] crate::store::BlobError),
    /// The connection failed; the session ends.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The client is gone or the session must end now (LOGOUT, shutdown, fatal framing).
    #[error("session closed")]
    Closed,
    /// STARTTLS completed: its tagged response was already written before the handshake.
    #[error("TLS started")]
    TlsStarted,
}

pub(crate) type OpResult = Result<Completion, OpError>;

/// Protocol state (RFC 9051 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    NotAuthenticated,
    Authenticated,
    Selected,
}

/// A client session.
pub(crate) struct Session {
    pub ctx: Arc<ImapContext>,
    pub io: Option<IoStream>,
    pub framer: Framer,
    /// Responses not yet written to the client.
    pub out: Vec<u8>,
    pub account: Option<AccountRecord>,
    pub selected: Option<Selected>,
    /// ENABLE UTF8=ACCEPT was given (RFC 6855/9051 §6.3.1).
    pub utf8: bool,
    /// ENABLE IMAP4rev2 was given (RFC 9051 §6.3.1).
    pub rev2: bool,
    pub changes: broadcast::Receiver<Change>,
    pub shutdown: CancellationToken,
    pub peer: String,
    /// The SEARCHRES saved result (RFC 5182), as UIDs.
    pub saved_result: Vec<Uid>,
    /// Whether the current command may announce expunges (RFC 9051 §7.5.1).
    pub uid_command: bool,
}

impl Session {
    /// A session over `io` (already TLS for implicit TLS).
    pub fn new(
        ctx: Arc<ImapContext>,
        io: IoStream,
        peer: String,
        shutdown: CancellationToken,
    ) -> Self {
        let framer = Framer::new(ctx.limits.max_line, ctx.limits.max_literal);
        let changes = ctx.store.bus().subscribe();
        Self {
            ctx,
            io: Some(io),
            framer,
            out: Vec::new(),
            account: None,
            selected: None,
            utf8: false,
            rev2: false,
            changes,
            shutdown,
            peer,
            saved_result: Vec::new(),
            uid_command: false,
        }
    }

    pub fn state(&self) -> State {
        match (&self.account, &self.selected) {
            (None, _) => State::NotAuthenticated,
            (Some(_), None) => State::Authenticated,
            (Some(_), Some(_)) => State::Selected,
        }
    }

    /// Appends an untagged response line `* <line>\r\n`.
    pub fn untagged(&mut self, line: impl AsRef<[u8]>) {
        self.out.extend_from_slice(b"* ");
        self.out.extend_from_slice(line.as_ref());
        self.out.extend_from_slice(b"\r\n");
    }

    fn tagged(&mut self, tag: &str, c: &Completion) {
        let status = match c.status {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        };
        self.out.extend_from_slice(tag.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(status.as_bytes());
        self.out.push(b' ');
        if let Some(code) = &c.code {
            self.out.push(b'[');
            self.out.extend_from_slice(code.as_bytes());
            self.out.extend_from_slice(b"] ");
        }
        self.out.extend_from_slice(c.text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Writes buffered responses to the client.
    pub async fn flush(&mut self) -> Result<(), OpError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let io = self.io.as_mut().ok_or(OpError::Closed)?;
        // A client that stops reading must not hold the session (and its buffers) forever.
        let write = async {
            io.write_all(&self.out).await?;
            io.flush().await
        };
        match tokio::time::timeout(
            Duration::from_secs(self.ctx.limits.idle_timeout_secs),
            write,
        )
        .await
        {
            Ok(r) => r?,
            Err(_) => return Err(OpError::Closed),
        }
        self.out.clear();
        if self.out.capacity() > 256 * 1024 {
            // Do not keep a large FETCH's buffer for the rest of the session.
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Reads more bytes into the framer. `Ok(false)` on EOF.
    pub async fn read_more(&mut self, timeout: Duration) -> Result<bool, OpError> {
        // On the heap and sized to the moment: an idle session waits in this read, and a
        // stack buffer would stay in its task for as long as it idles.
        let size = if self.framer.in_literal() {
            64 * 1024
        } else {
            4 * 1024
        };
        let mut buf = vec![0u8; size];
        let io = self.io.as_mut().ok_or(OpError::Closed)?;
        let n = tokio::select! {
            r = tokio::time::timeout(timeout, io.read(&mut buf)) => match r {
                Ok(r) => r?,
                Err(_) => {
                    self.untagged("BYE Autologout; idle for too long");
                    return Err(OpError::Closed);
                }
            },
            () = self.shutdown.cancelled() => {
                self.untagged("BYE Server shutting down");
                return Err(OpError::Closed);
            }
        };
        if n == 0 {
            return Ok(false);
        }
        self.framer.push(&buf[..n]);
        Ok(true)
    }

    fn read_timeout(&self) -> Duration {
        let secs = if self.account.is_some() {
            self.ctx.limits.idle_timeout_secs
        } else {
            self.ctx.limits.login_timeout_secs
        };
        Duration::from_secs(secs)
    }

    /// Runs the session to its end. Never panics on client input.
    pub async fn run(mut self) {
        self.ctx.metrics.connection_opened();
        let greeting = format!("OK [CAPABILITY {}] MCP IMAP ready.", self.capabilities());
        self.untagged(greeting);
        let result = self.main_loop().await;
        if let Err(e) = &result {
            match e {
                OpError::Closed => {}
                other => tracing::debug!(peer = %self.peer, error = %other, "session ended"),
            }
        }
        // Best effort: deliver a pending BYE.
        let _ = self.flush().await;
        if let Some(mut io) = self.io.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), io.shutdown()).await;
        }
        self.ctx.metrics.connection_closed();
    }

    async fn main_loop(&mut self) -> Result<(), OpError> {
        loop {
            match self.framer.advance() {
                Frame::NeedMore => {
                    self.flush().await?;
                    let timeout = self.read_timeout();
                    if !self.read_more(timeout).await? {
                        return Ok(());
                    }
                }
                Frame::NeedContinuation => {
                    self.out.extend_from_slice(b"+ Ready for literal data\r\n");
                    self.flush().await?;
                }
                Frame::LiteralTooBig { tag, size } => {
                    let c = Completion::no_code(
                        "TOOBIG",
                        format!(
                            "Literal of {size} octets exceeds the limit of {}",
                            self.ctx.limits.max_literal
                        ),
                    );
                    match tag {
                        Some(tag) => self.tagged(&tag, &c),
                        None => self.untagged("BAD Literal too large"),
                    }
                }
                Frame::Fatal(reason) => {
                    self.untagged(format!("BYE {reason}"));
                    return Err(OpError::Closed);
                }
                Frame::Message => {
                    let msg = self.framer.message().to_vec();
                    match parse(&msg, self.utf8) {
                        None => self.untagged("BAD Missing or invalid tag"),
                        Some(parsed) => {
                            if self.execute(parsed).await? {
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
    }

    /// Runs one command; `Ok(true)` when the session must end (LOGOUT).
    async fn execute(&mut self, parsed: Parsed) -> Result<bool, OpError> {
        let Parsed { tag, request } = parsed;
        let started = Instant::now();
        let request = match request {
            Ok(r) => r,
            Err(reason) => {
                self.tagged(&tag, &Completion::bad(reason));
                self.ctx
                    .metrics
                    .command("INVALID", "BAD", started.elapsed().as_secs_f64());
                return Ok(false);
            }
        };
        let name = super::op::command_name(&request);
        let result = super::op::dispatch(self, &tag, request).await;
        let completion = match result {
            Ok(c) => c,
            // APPEND, COPY, MOVE: the store refused the write whole (RFC 9208 §4.3).
            Err(OpError::Store(StoreError::OverQuota(q))) => Completion::no_code(
                "OVERQUOTA",
                format!("Quota exceeded: the message would exceed {q}."),
            ),
            Err(OpError::Store(e)) => {
                tracing::warn!(peer = %self.peer, command = name, error = %e, "store failure");
                Completion::no_code("UNAVAILABLE", "Temporary server failure, try again")
            }
            Err(OpError::Blob(e)) => {
                tracing::warn!(peer = %self.peer, command = name, error = %e, "blob failure");
                Completion::no_code("UNAVAILABLE", "Temporary server failure, try again")
            }
            Err(OpError::TlsStarted) => {
                self.ctx
                    .metrics
                    .command(name, "OK", started.elapsed().as_secs_f64());
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let status = match completion.status {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        };
        self.tagged(&tag, &completion);
        self.ctx
            .metrics
            .command(name, status, started.elapsed().as_secs_f64());
        if name == "LOGOUT" && completion.status == Status::Ok {
            return Ok(true);
        }
        Ok(false)
    }

    /// The CAPABILITY list for the current state (RFC 9051 §6.1.1).
    pub fn capabilities(&self) -> String {
        let mut caps = vec![
            "IMAP4rev1",
            "IMAP4rev2",
            "LITERAL+",
            "SASL-IR",
            "ID",
            "ENABLE",
            "IDLE",
        ];
        if self.account.is_none() {
            let tls = self.io.as_ref().is_some_and(IoStream::is_tls);
            if !tls && self.ctx.tls.is_some() {
                caps.push("STARTTLS");
            }
            caps.push("AUTH=PLAIN");
        } else {
            caps.extend([
                "NAMESPACE",
                "UIDPLUS",
                "MOVE",
                "UNSELECT",
                "CHILDREN",
                "LIST-EXTENDED",
                "LIST-STATUS",
                "SPECIAL-USE",
                "ESEARCH",
                "SEARCHRES",
                "STATUS=SIZE",
                "BINARY",
                "UTF8=ACCEPT",
                "QUOTA",
                "QUOTA=RES-STORAGE",
                "QUOTA=RES-MESSAGE",
            ]);
        }
        let mut caps = caps.join(" ");
        if self.account.is_some() {
            // RFC 7889: one limit for every mailbox, the largest literal the framer takes.
            caps.push_str(&format!(" APPENDLIMIT={}", self.ctx.limits.max_literal));
        }
        caps
    }

    /// Drains change notifications; when the selected mailbox changed, reports the changes
    /// (RFC 9051 §7: untagged EXISTS, EXPUNGE, FETCH). `allow_expunge` is false during FETCH,
    /// STORE and SEARCH (RFC 9051 §7.5.1).
    pub async fn sync_selected(&mut self, allow_expunge: bool, force: bool) -> Result<(), OpError> {
        let Some(sel) = &self.selected else {
            // Keep the queue short while nothing is selected.
            while self.changes.try_recv().is_ok() {}
            return Ok(());
        };
        let mut changed = force || sel.has_pending_expunges();
        loop {
            match self.changes.try_recv() {
                Ok(c) if c.affects(sel.mailbox.id) => changed = true,
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Lagged(_)) => changed = true,
                Err(_) => break,
            }
        }
        if !changed {
            return Ok(());
        }
        let (id, since) = (sel.mailbox.id, sel.known_modseq);
        let changes = self.ctx.store.changes_since(id, since).await?;
        let uid_cmd = self.uid_command;
        if let Some(sel) = self.selected.as_mut() {
            sel.apply_changes(changes, allow_expunge, uid_cmd, &mut self.out);
        }
        Ok(())
    }
}
