//! One LMTP connection: the command state machine of RFC 2033 over the receivers of
//! `smtp-proto` (command lines, DATA dot-unstuffing, BDAT chunks).
//!
//! Input is processed as it arrives and replies are buffered until all buffered input is
//! consumed, then flushed before the next read: pipelined commands (RFC 2920) get their
//! replies in order, in as few writes as the input came in.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use smtp_proto::request::receiver::{
    BdatReceiver, DataReceiver, DummyDataReceiver, DummyLineReceiver, RequestReceiver,
};
use smtp_proto::{Error as ProtoError, MailFrom, RcptTo, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::LmtpContext;
use super::deliver::Recipient;
use super::metrics::Stage;
use super::reply::Reply;
use super::trace::{Trace, crlf};

/// MAIL FROM flags this server advertises (LHLO): BODY=7BIT, BODY=8BITMIME, SMTPUTF8.
const MAIL_FLAGS: u64 =
    smtp_proto::MAIL_BODY_7BIT | smtp_proto::MAIL_BODY_8BITMIME | smtp_proto::MAIL_SMTPUTF8;

/// Octets read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// What the next input octets are.
enum Input {
    /// Command lines.
    Command(RequestReceiver),
    /// DATA content up to `<CRLF>.<CRLF>`, into [`Session::body`].
    Data(DataReceiver),
    /// A BDAT chunk, into [`Session::body`].
    Bdat(BdatReceiver),
    /// Content to skip (a message over the limit, a refused BDAT chunk), then `then`.
    Discard(DummyDataReceiver, AfterDiscard),
    /// The rest of a command line over the length limit.
    LongLine(DummyLineReceiver),
}

/// What to answer once skipped content is consumed.
enum AfterDiscard {
    /// DATA over the size limit: `552 5.3.4` for every recipient.
    DataTooBig,
    /// A BDAT chunk that was refused with this reply; `last` when it was `BDAT ... LAST`.
    Bdat(Reply, bool),
}

/// A mail transaction (after MAIL FROM).
struct Transaction {
    /// Reverse-path; empty for `<>`.
    mail_from: String,
    /// SMTPUTF8 was given.
    utf8: bool,
    /// Accepted recipients, in RCPT order.
    recipients: Vec<Recipient>,
    /// BDAT was used (DATA is then out of sequence).
    bdat: bool,
    /// A BDAT chunk failed: later chunks of the transaction are discarded with this reply
    /// (RFC 3030 §2), and `BDAT ... LAST` ends the transaction with it for every recipient.
    failed: Option<Reply>,
}

/// One connection's state.
pub(super) struct Session<S> {
    ctx: Arc<LmtpContext>,
    io: S,
    peer_ip: String,
    shutdown: CancellationToken,
    /// The LHLO argument, once greeted.
    lhlo: Option<String>,
    txn: Option<Transaction>,
    /// Message content received so far in the transaction.
    body: Vec<u8>,
    input: Input,
    /// Replies not yet written.
    out: Vec<u8>,
    quit: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// A session on `io` for a client at `peer_ip`; `shutdown` ends it with `421`.
    pub(super) fn new(
        ctx: Arc<LmtpContext>,
        io: S,
        peer_ip: String,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            ctx,
            io,
            peer_ip,
            shutdown,
            lhlo: None,
            txn: None,
            body: Vec::new(),
            input: Input::Command(RequestReceiver::default()),
            out: Vec::new(),
            quit: false,
        }
    }

    /// Greets, then serves commands until QUIT, end of input, an I/O error, the idle
    /// timeout (`421 4.4.2`) or shutdown (`421 4.3.2`). A transaction cut off before its
    /// end stores nothing.
    pub(super) async fn run(mut self) {
        let metrics = self.ctx.metrics.lmtp.clone();
        metrics.session_opened();
        self.serve().await;
        metrics.session_closed();
    }

    async fn serve(&mut self) {
        let host = self.ctx.hostname.clone();
        self.reply(&Reply::plain(220, format!("{host} LMTP MCP ready")));
        let idle = Duration::from_secs(self.ctx.limits.idle_timeout_secs);
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            if self.flush().await.is_err() || self.quit {
                return;
            }
            let read = tokio::select! {
                () = self.shutdown.cancelled() => {
                    self.reply(&Reply::code(421, 4, 3, 2, &format!("{host} Service shutting down")));
                    let _ = self.flush().await;
                    return;
                }
                r = tokio::time::timeout(idle, self.io.read(&mut buf)) => r,
            };
            match read {
                Err(_) => {
                    self.reply(&Reply::code(
                        421,
                        4,
                        4,
                        2,
                        &format!("{host} Idle timeout, closing connection"),
                    ));
                    let _ = self.flush().await;
                    return;
                }
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => self.feed(&buf[..n]).await,
            }
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.io.write_all(&self.out).await?;
            self.out.clear();
        }
        self.io.flush().await
    }

    fn reply(&mut self, reply: &Reply) {
        self.out.extend_from_slice(&reply.to_bytes());
    }

    /// Consumes `chunk` completely (unless QUIT comes first).
    async fn feed(&mut self, chunk: &[u8]) {
        let mut bytes = chunk.iter();
        while !self.quit {
            match &mut self.input {
                Input::Command(receiver) => {
                    match receiver.ingest(&mut bytes).map(Request::into_owned) {
                        Ok(request) => self.command(request).await,
                        Err(ProtoError::NeedsMoreData { .. }) => return,
                        Err(ProtoError::ResponseTooLong) => {
                            self.input = Input::LongLine(DummyLineReceiver::default());
                        }
                        Err(e) => self.reply(&syntax_error(e)),
                    }
                }
                Input::Data(receiver) => {
                    let done = receiver.ingest(&mut bytes, &mut self.body);
                    if done {
                        self.input = Input::Command(RequestReceiver::default());
                        self.end_of_message().await;
                    } else if self.body.len() > self.ctx.limits.max_message_size {
                        let skip = DummyDataReceiver::new_data(receiver);
                        self.body = Vec::new();
                        self.input = Input::Discard(skip, AfterDiscard::DataTooBig);
                    } else {
                        return;
                    }
                }
                Input::Bdat(receiver) => {
                    if !receiver.ingest(&mut bytes, &mut self.body) {
                        return;
                    }
                    let last = receiver.is_last;
                    self.input = Input::Command(RequestReceiver::default());
                    self.end_of_chunk(last).await;
                }
                Input::Discard(receiver, _) => {
                    if !receiver.ingest(&mut bytes) {
                        return;
                    }
                    let Input::Discard(_, then) = std::mem::replace(
                        &mut self.input,
                        Input::Command(RequestReceiver::default()),
                    ) else {
                        return;
                    };
                    self.after_discard(then);
                }
                Input::LongLine(receiver) => {
                    if !receiver.ingest(&mut bytes) {
                        return;
                    }
                    self.input = Input::Command(RequestReceiver::default());
                    self.reply(&Reply::code(500, 5, 5, 2, "Line too long"));
                }
            }
        }
    }

    async fn command(&mut self, request: Request<String>) {
        let reply = match request {
            Request::Lhlo { host } => self.lhlo(host),
            Request::Ehlo { .. } | Request::Helo { .. } => Reply::code(
                500,
                5,
                5,
                1,
                "This is an LMTP server: use LHLO (RFC 2033 section 4.1)",
            ),
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to).await,
            Request::Data => self.data(),
            Request::Bdat {
                chunk_size,
                is_last,
            } => match self.bdat(chunk_size, is_last).await {
                Some(reply) => reply,
                None => return,
            },
            Request::Rset => {
                self.reset();
                Reply::ok()
            }
            Request::Noop { .. } => Reply::ok(),
            Request::Quit => {
                self.quit = true;
                Reply::code(
                    221,
                    2,
                    0,
                    0,
                    &format!("{} closing connection", self.ctx.hostname),
                )
            }
            Request::Vrfy { .. } => Reply::code(
                252,
                2,
                5,
                0,
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Request::Auth { .. }
            | Request::StartTls
            | Request::Expn { .. }
            | Request::Help { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => Reply::code(502, 5, 5, 1, "Command not implemented"),
        };
        self.reply(&reply);
    }

    fn reset(&mut self) {
        self.txn = None;
        self.body = Vec::new();
    }

    /// LHLO (RFC 2033 §4.1): like EHLO, resets any transaction.
    fn lhlo(&mut self, host: String) -> Reply {
        self.reset();
        self.lhlo = Some(host);
        let lines = vec![
            self.ctx.hostname.clone(),
            "PIPELINING".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
            "8BITMIME".to_owned(),
            "SMTPUTF8".to_owned(),
            format!("SIZE {}", self.ctx.limits.max_message_size),
            "CHUNKING".to_owned(),
        ];
        Reply {
            code: 250,
            status: None,
            lines,
        }
    }

    /// MAIL FROM (RFC 5321 §4.1.1.2) with SIZE (RFC 1870), BODY (RFC 6152) and SMTPUTF8
    /// (RFC 6531); other parameters were not advertised and are refused.
    fn mail(&mut self, from: MailFrom<String>) -> Reply {
        if self.lhlo.is_none() {
            return Reply::bad_sequence("Send LHLO first");
        }
        if self.txn.as_ref().is_some_and(|t| t.failed.is_none()) {
            return Reply::bad_sequence("Nested MAIL command");
        }
        if !only_advertised(&from) {
            return Reply::code(555, 5, 5, 4, "Unsupported MAIL FROM parameter");
        }
        if from.size > self.ctx.limits.max_message_size {
            return Reply::too_big(self.ctx.limits.max_message_size);
        }
        let utf8 = from.flags & smtp_proto::MAIL_SMTPUTF8 != 0;
        if !utf8 && !from.address.is_ascii() {
            return Reply::code(553, 5, 6, 7, "Non-ASCII address requires SMTPUTF8");
        }
        self.body = Vec::new();
        self.txn = Some(Transaction {
            mail_from: from.address,
            utf8,
            recipients: Vec::new(),
            bdat: false,
            failed: None,
        });
        Reply::sender_ok()
    }

    /// RCPT TO (RFC 5321 §4.1.1.3): the recipient is checked now, so that each accepted one
    /// gets exactly one reply after the data (RFC 2033 §4.2).
    async fn rcpt(&mut self, to: RcptTo<String>) -> Reply {
        let reply = self.check_rcpt(to).await;
        self.ctx
            .metrics
            .lmtp
            .recipient_reply(Stage::Rcpt, reply.code);
        reply
    }

    async fn check_rcpt(&mut self, to: RcptTo<String>) -> Reply {
        let Some(txn) = &self.txn else {
            return Reply::bad_sequence("Need MAIL before RCPT");
        };
        if txn.bdat {
            return Reply::bad_sequence("RCPT after BDAT");
        }
        if to.flags != 0 || to.orcpt.is_some() || to.rrvs != 0 {
            return Reply::code(555, 5, 5, 4, "Unsupported RCPT TO parameter");
        }
        if !txn.utf8 && !to.address.is_ascii() {
            return Reply::code(553, 5, 6, 7, "Non-ASCII address requires SMTPUTF8");
        }
        if txn.recipients.len() >= self.ctx.limits.max_recipients {
            return Reply::code(452, 4, 5, 3, "Too many recipients");
        }
        match self.ctx.deliverer.lookup(&to.address).await {
            Ok(recipient) => {
                if let Some(txn) = &mut self.txn {
                    txn.recipients.push(recipient);
                }
                Reply::recipient_ok()
            }
            Err(reply) => reply,
        }
    }

    /// DATA (RFC 5321 §4.1.1.4): needs at least one accepted recipient (RFC 2033 §4.2).
    fn data(&mut self) -> Reply {
        let Some(txn) = &self.txn else {
            return Reply::bad_sequence("Need MAIL command");
        };
        if txn.bdat {
            return Reply::bad_sequence("DATA after BDAT");
        }
        if txn.recipients.is_empty() {
            return Reply::bad_sequence("No valid recipients");
        }
        self.body = Vec::new();
        self.input = Input::Data(DataReceiver::new());
        Reply::plain(354, "Start mail input; end with <CRLF>.<CRLF>")
    }

    /// BDAT (RFC 3030 §2). The chunk is always consumed, also when refused, so its content
    /// is never read as commands. Returns the reply to send now, or `None` when it comes
    /// after the chunk.
    async fn bdat(&mut self, size: usize, last: bool) -> Option<Reply> {
        let max = self.ctx.limits.max_message_size;
        let refusal = match &mut self.txn {
            None => Some(Reply::bad_sequence("Need MAIL command")),
            Some(txn) if txn.recipients.is_empty() => {
                Some(Reply::bad_sequence("No valid recipients"))
            }
            Some(txn) => {
                txn.bdat = true;
                if let Some(failed) = &txn.failed {
                    Some(failed.clone())
                } else if self.body.len().saturating_add(size) > max {
                    let reply = Reply::too_big(max);
                    txn.failed = Some(reply.clone());
                    self.body = Vec::new();
                    Some(reply)
                } else {
                    None
                }
            }
        };
        match refusal {
            Some(reply) if size == 0 => {
                self.after_discard(AfterDiscard::Bdat(reply, last));
                None
            }
            Some(reply) => {
                self.input = Input::Discard(
                    DummyDataReceiver::new_bdat(size),
                    AfterDiscard::Bdat(reply, last),
                );
                None
            }
            None if size == 0 => {
                self.end_of_chunk(last).await;
                None
            }
            None => {
                self.input = Input::Bdat(BdatReceiver::new(size, last));
                None
            }
        }
    }

    async fn end_of_chunk(&mut self, last: bool) {
        if last {
            self.end_of_message().await;
        } else {
            let total = self.body.len();
            self.reply(&Reply::code(
                250,
                2,
                0,
                0,
                &format!("{total} octets received"),
            ));
        }
    }

    fn after_discard(&mut self, then: AfterDiscard) {
        match then {
            AfterDiscard::DataTooBig => {
                let reply = Reply::too_big(self.ctx.limits.max_message_size);
                self.fail_transaction(&reply);
            }
            AfterDiscard::Bdat(reply, true)
                if self.txn.as_ref().is_some_and(|t| !t.recipients.is_empty()) =>
            {
                self.fail_transaction(&reply);
            }
            AfterDiscard::Bdat(reply, _) => self.reply(&reply),
        }
    }

    /// Ends the transaction with `reply` for every recipient.
    fn fail_transaction(&mut self, reply: &Reply) {
        let Some(txn) = self.txn.take() else {
            return;
        };
        self.body = Vec::new();
        for _ in &txn.recipients {
            self.ctx
                .metrics
                .lmtp
                .recipient_reply(Stage::Data, reply.code);
            self.reply(reply);
        }
    }

    /// The message is complete: one reply per accepted recipient, in RCPT order.
    async fn end_of_message(&mut self) {
        let Some(txn) = self.txn.take() else {
            return;
        };
        let body = std::mem::take(&mut self.body);
        self.ctx.metrics.lmtp.transaction(body.len());
        let max = self.ctx.limits.max_message_size;
        let replies = if body.len() > max {
            vec![Reply::too_big(max); txn.recipients.len()]
        } else if body.contains(&0) {
            let reply = Reply::code(554, 5, 6, 0, "Message contains NUL octets");
            vec![reply; txn.recipients.len()]
        } else {
            let message = self.message(&txn, &body);
            let mut replies = self
                .ctx
                .deliverer
                .deliver(&txn.mail_from, &txn.recipients, message)
                .await;
            // A deliverer breaking its contract must not make a recipient look delivered.
            replies.resize_with(txn.recipients.len(), || {
                Reply::local_error("Delivery status unknown, try again later")
            });
            replies
        };
        for reply in &replies {
            self.ctx
                .metrics
                .lmtp
                .recipient_reply(Stage::Data, reply.code);
            self.reply(reply);
        }
    }

    /// Trace fields + content with CRLF line endings.
    fn message(&self, txn: &Transaction, body: &[u8]) -> Bytes {
        let id = format!("{:016x}", rand::random::<u64>());
        let single_rcpt = match txn.recipients.as_slice() {
            [one] => Some(one.rcpt.as_str()),
            _ => None,
        };
        let trace = Trace {
            mail_from: &txn.mail_from,
            lhlo: self.lhlo.as_deref().unwrap_or(""),
            peer_ip: &self.peer_ip,
            hostname: &self.ctx.hostname,
            id: &id,
            single_rcpt,
            utf8: txn.utf8,
            date: chrono::Local::now().fixed_offset(),
        };
        let mut message = trace.header();
        message.extend_from_slice(&crlf(body));
        Bytes::from(message)
    }
}

/// Only the MAIL FROM parameters that LHLO advertises.
fn only_advertised(from: &MailFrom<String>) -> bool {
    from.flags & !MAIL_FLAGS == 0
        && from.trans_id.is_none()
        && from.by == 0
        && from.env_id.is_none()
        && from.solicit.is_none()
        && from.mtrk.is_none()
        && from.auth.is_none()
        && from.hold_for == 0
        && from.hold_until == 0
        && from.mt_priority == 0
}

/// The reply to a command line `smtp-proto` could not parse.
fn syntax_error(e: ProtoError) -> Reply {
    match e {
        ProtoError::UnknownCommand | ProtoError::InvalidResponse { .. } => {
            Reply::code(500, 5, 5, 2, "Command unrecognized")
        }
        ProtoError::InvalidSenderAddress => Reply::code(501, 5, 1, 7, "Bad sender address syntax"),
        ProtoError::InvalidRecipientAddress => {
            Reply::code(501, 5, 1, 3, "Bad recipient address syntax")
        }
        ProtoError::SyntaxError { syntax } => {
            Reply::code(501, 5, 5, 2, &format!("Syntax error, expected: {syntax}"))
        }
        ProtoError::InvalidParameter { param } => {
            Reply::code(501, 5, 5, 4, &format!("Invalid {param} parameter"))
        }
        ProtoError::UnsupportedParameter { .. } => {
            Reply::code(555, 5, 5, 4, "Unsupported parameter")
        }
        ProtoError::NeedsMoreData { .. } | ProtoError::ResponseTooLong => {
            Reply::code(500, 5, 5, 2, "Line too long")
        }
    }
}
