//! Session tests over an in-memory pipe with an in-memory [`Deliverer`]: one behaviour each,
//! hostile input included. The store-backed deliverer is tested in `tests/lmtp.rs`.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::session::Session;
use super::*;
use crate::store::{AccountId, AccountRecord};

/// One delivery the deliverer saw.
#[derive(Clone, Debug)]
struct Delivery {
    mail_from: String,
    rcpts: Vec<String>,
    message: Bytes,
}

/// Knows `alice`, `bob` (active), `carol` (disabled) of example.com; deliveries to `bob`
/// fail when `fail_bob`.
#[derive(Default)]
struct Memory {
    fail_bob: bool,
    delivered: Mutex<Vec<Delivery>>,
}

impl Deliverer for Memory {
    fn lookup<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Result<Recipient, Reply>> {
        Box::pin(async move {
            let lower = address.to_lowercase();
            match lower.as_str() {
                "alice@example.com" | "bob@example.com" => Ok(Recipient {
                    rcpt: address.to_owned(),
                    account: AccountRecord {
                        id: AccountId(if lower.starts_with('a') { 1 } else { 2 }),
                        tenant: "example".into(),
                        address: lower,
                        password_hash: String::new(),
                        active: true,
                        spec_digest: String::new(),
                        quota_storage: None,
                        quota_messages: None,
                        labels: Default::default(),
                        pipeline_ref: None,
                    },
                }),
                "carol@example.com" => Err(Reply::mailbox_disabled(address)),
                _ => Err(Reply::no_such_user(address)),
            }
        })
    }

    fn deliver<'a>(
        &'a self,
        mail_from: &'a str,
        recipients: &'a [Recipient],
        message: Bytes,
    ) -> BoxFuture<'a, Vec<Reply>> {
        Box::pin(async move {
            let mut replies = Vec::new();
            let mut rcpts = Vec::new();
            for r in recipients {
                if self.fail_bob && r.account.address.starts_with("bob") {
                    replies.push(Reply::local_error("disk on fire"));
                } else {
                    rcpts.push(r.account.address.clone());
                    replies.push(Reply::code(
                        250,
                        2,
                        0,
                        0,
                        &format!("<{}> delivered", r.rcpt),
                    ));
                }
            }
            if let Ok(mut d) = self.delivered.lock() {
                d.push(Delivery {
                    mail_from: mail_from.to_owned(),
                    rcpts,
                    message,
                });
            }
            replies
        })
    }
}

struct Harness {
    memory: Arc<Memory>,
    ctx: Arc<LmtpContext>,
}

impl Harness {
    fn new() -> Self {
        Self::with(LmtpLimits::default(), Memory::default())
    }

    fn with(limits: LmtpLimits, memory: Memory) -> Self {
        let memory = Arc::new(memory);
        let ctx = Arc::new(LmtpContext {
            deliverer: Arc::clone(&memory) as Arc<dyn Deliverer>,
            hostname: "mcp.test".into(),
            limits,
            metrics: Arc::new(Metrics::default()),
        });
        Self { memory, ctx }
    }

    fn limit(max_message_size: usize, max_recipients: usize) -> Self {
        Self::with(
            LmtpLimits {
                max_message_size,
                max_recipients,
                ..LmtpLimits::default()
            },
            Memory::default(),
        )
    }

    /// Writes `chunks` (each its own write), closes the client's sending side and returns
    /// every reply line the server sent, without CRLF, greeting included.
    async fn talk(&self, chunks: &[&[u8]]) -> Vec<String> {
        let (client, server) = tokio::io::duplex(4 << 20);
        let session = Session::new(
            Arc::clone(&self.ctx),
            server,
            "192.0.2.1".into(),
            CancellationToken::new(),
        );
        let task = tokio::spawn(session.run());
        let (mut rd, mut wr) = tokio::io::split(client);
        for chunk in chunks {
            // The server may have closed (QUIT) before the last chunk: ignore write errors.
            let _ = wr.write_all(chunk).await;
        }
        let _ = wr.shutdown().await;
        let mut out = Vec::new();
        rd.read_to_end(&mut out).await.expect("read replies");
        task.await.expect("session ends");
        String::from_utf8(out)
            .expect("replies are ASCII")
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn delivered(&self) -> Vec<Delivery> {
        self.memory.delivered.lock().expect("lock").clone()
    }
}

/// The reply lines after the greeting and the LHLO reply, each cut to `code status`.
fn codes(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !l.starts_with("220 ") && !l.starts_with("250-") && !is_lhlo_last(l))
        .map(|l| l.splitn(3, ' ').take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

fn is_lhlo_last(line: &str) -> bool {
    line == "250 CHUNKING"
}

const LHLO: &[u8] = b"LHLO mx.example.net\r\n";

fn script(parts: &[&str]) -> Vec<u8> {
    let mut v = LHLO.to_vec();
    for p in parts {
        v.extend_from_slice(p.as_bytes());
    }
    v
}

#[tokio::test]
async fn greeting_and_lhlo_advertise_the_extensions() {
    let h = Harness::new();
    let lines = h.talk(&[LHLO]).await;
    assert_eq!(
        lines,
        [
            "220 mcp.test LMTP MCP ready",
            "250-mcp.test",
            "250-PIPELINING",
            "250-ENHANCEDSTATUSCODES",
            "250-8BITMIME",
            "250-SMTPUTF8",
            "250-SIZE 67108864",
            "250 CHUNKING",
        ]
    );
}

#[tokio::test]
async fn pipelined_transaction_gets_one_reply_per_recipient_in_rcpt_order() {
    let h = Harness::new();
    let input = script(&[
        "MAIL FROM:<sender@example.net> BODY=8BITMIME SIZE=40\r\n",
        "RCPT TO:<alice@example.com>\r\n",
        "RCPT TO:<nobody@example.com>\r\n",
        "RCPT TO:<Bob@Example.com>\r\n",
        "DATA\r\n",
        "Subject: hi\r\n\r\nline one\r\n..dot stuffed\r\n.\r\n",
        "QUIT\r\n",
    ]);
    let lines = h.talk(&[&input]).await;
    assert_eq!(
        codes(&lines),
        [
            "250 2.1.0",
            "250 2.1.5",
            "550 5.1.1",
            "250 2.1.5",
            "354 Start",
            "250 2.0.0",
            "250 2.0.0",
            "221 2.0.0",
        ],
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("<alice@example.com> delivered"))
    );
    let last_two: Vec<_> = lines.iter().rev().skip(1).take(2).rev().collect();
    assert!(
        last_two[0].contains("alice") && last_two[1].contains("Bob"),
        "{lines:#?}"
    );

    let d = h.delivered();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].mail_from, "sender@example.net");
    assert_eq!(d[0].rcpts, ["alice@example.com", "bob@example.com"]);
    let text = String::from_utf8(d[0].message.to_vec()).expect("utf8");
    assert!(text.starts_with("Return-Path: <sender@example.net>\r\nReceived: from mx.example.net (192.0.2.1)\r\n\tby mcp.test (MCP) with LMTP id "), "{text}");
    assert!(
        !text.contains("\tfor <"),
        "two recipients: no for clause: {text}"
    );
    assert!(
        text.ends_with("\r\nSubject: hi\r\n\r\nline one\r\n.dot stuffed\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_failed_copy_gets_4xx_and_the_others_250() {
    let h = Harness::with(
        LmtpLimits::default(),
        Memory {
            fail_bob: true,
            ..Memory::default()
        },
    );
    let input = script(&[
        "MAIL FROM:<>\r\nRCPT TO:<bob@example.com>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n",
        "x\r\n.\r\n",
    ]);
    let lines = h.talk(&[&input]).await;
    assert_eq!(
        codes(&lines)[3..],
        ["354 Start", "451 4.3.0", "250 2.0.0"],
        "{lines:#?}"
    );
}

#[tokio::test]
async fn null_reverse_path_and_single_recipient_trace() {
    let h = Harness::new();
    let input = script(&["MAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nbody\r\n.\r\n"]);
    h.talk(&[&input]).await;
    let d = h.delivered();
    let text = String::from_utf8(d[0].message.to_vec()).expect("utf8");
    assert!(text.starts_with("Return-Path: <>\r\n"), "{text}");
    assert!(text.contains("\r\n\tfor <alice@example.com>; "), "{text}");
}

#[tokio::test]
async fn commands_out_of_sequence_get_503() {
    let cases: [(&[u8], &str); 8] = [
        (b"MAIL FROM:<a@b.c>\r\n", "503 5.5.1"),
        (b"LHLO x\r\nRCPT TO:<alice@example.com>\r\n", "503 5.5.1"),
        (b"LHLO x\r\nDATA\r\n", "503 5.5.1"),
        (b"LHLO x\r\nMAIL FROM:<a@b.c>\r\nDATA\r\n", "503 5.5.1"),
        (
            b"LHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\n",
            "503 5.5.1",
        ),
        (
            b"LHLO x\r\nMAIL FROM:<a@b.c>\r\nMAIL FROM:<a@b.c>\r\n",
            "503 5.5.1",
        ),
        (
            b"LHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nRSET\r\nDATA\r\n",
            "503 5.5.1",
        ),
        (
            b"LHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nBDAT 1\r\nxDATA\r\n",
            "503 5.5.1",
        ),
    ];
    for (input, want) in cases {
        let h = Harness::new();
        let lines = h.talk(&[input]).await;
        let last = codes(&lines).pop().unwrap_or_default();
        assert_eq!(
            last,
            want,
            "{:?}: {lines:#?}",
            String::from_utf8_lossy(input)
        );
        assert!(h.delivered().is_empty());
    }
}

#[tokio::test]
async fn bad_commands_get_clear_errors_and_the_session_goes_on() {
    let cases: [(&str, &str); 14] = [
        ("EHLO x", "500 5.5.1"),
        ("HELO x", "500 5.5.1"),
        ("FOO bar", "500 5.5.2"),
        ("MAIL FROM:alice@example.com", "501 5.5.2"),
        ("MAIL FROM:<not an address>", "501 5.1.7"),
        ("MAIL FROM:<a@b.c> RET=FULL", "555 5.5.4"),
        ("MAIL FROM:<a@b.c> BODY=BINARYMIME", "555 5.5.4"),
        ("MAIL FROM:<a@b.c> SIZE=abc", "501 5.5.4"),
        ("MAIL FROM:<a@b.c> SIZE=999999999999", "552 5.3.4"),
        ("MAIL FROM:<\u{fc}@b.c>", "553 5.6.7"),
        ("VRFY alice", "252 2.5.0"),
        ("EXPN list", "502 5.5.1"),
        ("STARTTLS", "502 5.5.1"),
        ("NO\0OP", "500 5.5.2"),
    ];
    for (command, want) in cases {
        let h = Harness::new();
        let input = script(&[command, "\r\nNOOP\r\n"]);
        let lines = h.talk(&[&input]).await;
        assert_eq!(
            codes(&lines),
            [want, "250 2.0.0"],
            "{command:?}: {lines:#?}"
        );
    }
}

#[tokio::test]
async fn rcpt_errors_are_per_recipient() {
    let cases: [(&str, &str); 5] = [
        ("RCPT TO:<nobody@example.com>", "550 5.1.1"),
        ("RCPT TO:<alice@elsewhere.org>", "550 5.1.1"),
        ("RCPT TO:<carol@example.com>", "550 5.2.1"),
        ("RCPT TO:<alice@example.com> NOTIFY=NEVER", "555 5.5.4"),
        ("RCPT TO:<\u{fc}@example.com>", "553 5.6.7"),
    ];
    for (command, want) in cases {
        let h = Harness::new();
        let input = script(&["MAIL FROM:<a@b.c>\r\n", command, "\r\n"]);
        let lines = h.talk(&[&input]).await;
        assert_eq!(
            codes(&lines),
            ["250 2.1.0", want],
            "{command:?}: {lines:#?}"
        );
    }
}

#[tokio::test]
async fn smtputf8_transaction_is_accepted_and_traced_as_utf8lmtp() {
    let h = Harness::new();
    let input = script(&[
        "MAIL FROM:<j\u{f6}rg@b\u{fc}cher.example> SMTPUTF8 BODY=8BITMIME\r\n",
        "RCPT TO:<alice@example.com>\r\nDATA\r\n",
        "Subject: gr\u{fc}\u{df}e\r\n\r\n\u{e9}t\u{e9}\r\n.\r\n",
    ]);
    let lines = h.talk(&[&input]).await;
    assert_eq!(codes(&lines).last().map(String::as_str), Some("250 2.0.0"));
    let text = String::from_utf8(h.delivered()[0].message.to_vec()).expect("utf8");
    assert!(
        text.starts_with("Return-Path: <j\u{f6}rg@b\u{fc}cher.example>\r\n"),
        "{text}"
    );
    assert!(text.contains("with UTF8LMTP"), "{text}");
    assert!(text.contains("Subject: gr\u{fc}\u{df}e\r\n"), "{text}");
}

#[tokio::test]
async fn message_over_the_limit_fails_every_recipient_and_the_connection_stays_usable() {
    let h = Harness::limit(100, 10);
    let big = "x".repeat(70) + "\r\n";
    let mut input = script(&[
        "MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n",
    ]);
    let body = big.repeat(50) + ".\r\n";
    let lines = h
        .talk(&[
            &input,
            body.as_bytes(),
            b"MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nsmall\r\n.\r\n",
        ])
        .await;
    input.clear();
    assert_eq!(
        codes(&lines),
        [
            "250 2.1.0",
            "250 2.1.5",
            "250 2.1.5",
            "354 Start",
            "552 5.3.4",
            "552 5.3.4",
            "250 2.1.0",
            "250 2.1.5",
            "354 Start",
            "250 2.0.0",
        ],
        "{lines:#?}"
    );
    let d = h.delivered();
    assert_eq!(d.len(), 1, "only the small message");
    assert!(d[0].message.ends_with(b"\r\nsmall\r\n"));
}

#[tokio::test]
async fn message_over_the_limit_in_one_write_is_refused_too() {
    let h = Harness::limit(10, 10);
    let input = script(&[
        "MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n",
        "0123456789abcdef\r\n.\r\nNOOP\r\n",
    ]);
    let lines = h.talk(&[&input]).await;
    assert_eq!(codes(&lines)[3..], ["552 5.3.4", "250 2.0.0"], "{lines:#?}");
    assert!(h.delivered().is_empty());
}

#[tokio::test]
async fn too_many_recipients_get_452() {
    let h = Harness::limit(1000, 2);
    let input = script(&[
        "MAIL FROM:<a@b.c>\r\n",
        "RCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\n",
        "RCPT TO:<bob@example.com>\r\nRCPT TO:<alice@example.com>\r\n",
        "DATA\r\nx\r\n.\r\n",
    ]);
    let lines = h.talk(&[&input]).await;
    assert_eq!(
        codes(&lines),
        [
            "250 2.1.0",
            "250 2.1.5",
            "550 5.1.1",
            "250 2.1.5",
            "452 4.5.3",
            "354 Start",
            "250 2.0.0",
            "250 2.0.0",
        ],
        "{lines:#?}"
    );
}

#[tokio::test]
async fn very_long_line_is_refused_and_skipped() {
    let h = Harness::new();
    let long = format!("NOOP {}\r\n", "a".repeat(100_000));
    // Split so that the line spans several reads, as from a real socket.
    let (a, b) = long.as_bytes().split_at(3000);
    let lines = h.talk(&[LHLO, a, b, b"NOOP\r\n"]).await;
    assert_eq!(codes(&lines), ["500 5.5.2", "250 2.0.0"], "{lines:#?}");
}

#[tokio::test]
async fn bdat_chunks_with_last_get_per_recipient_replies() {
    let h = Harness::new();
    let input = script(&[
        "MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\n",
        "BDAT 14\r\nSubject: x\r\n\r\n",
        "BDAT 5\r\nbody\n",
        "BDAT 0 LAST\r\n",
        "NOOP\r\n",
    ]);
    let lines = h.talk(&[&input]).await;
    assert_eq!(
        codes(&lines),
        [
            "250 2.1.0",
            "250 2.1.5",
            "250 2.1.5",
            "250 2.0.0",
            "250 2.0.0",
            "250 2.0.0",
            "250 2.0.0",
            "250 2.0.0",
        ],
        "{lines:#?}"
    );
    assert!(
        lines[lines.len() - 5].ends_with("14 octets received"),
        "{lines:#?}"
    );
    let d = h.delivered();
    assert_eq!(d[0].rcpts.len(), 2);
    assert!(
        d[0].message.ends_with(b"\r\nSubject: x\r\n\r\nbody\r\n"),
        "bare LF stored as CRLF: {:?}",
        d[0].message
    );
}

#[tokio::test]
async fn bdat_size_mismatch_takes_exactly_the_declared_octets() {
    let h = Harness::new();
    let input = script(&[
        "MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\n",
        "BDAT 10 LAST\r\nshort\r\nNOOP\r\n",
    ]);
    let lines = h.talk(&[&input]).await;
    // "short\r\nNOO" is the chunk; "P" is then an unknown command.
    assert_eq!(codes(&lines)[2..], ["250 2.0.0", "500 5.5.2"], "{lines:#?}");
    assert!(h.delivered()[0].message.ends_with(b"\r\nshort\r\nNOO"));
}

#[tokio::test]
async fn refused_bdat_chunk_is_discarded_not_run_as_commands() {
    let h = Harness::new();
    let input = script(&["BDAT 6 LAST\r\nQUIT\r\n", "NOOP\r\n"]);
    let lines = h.talk(&[&input]).await;
    assert_eq!(codes(&lines), ["503 5.5.1", "250 2.0.0"], "{lines:#?}");
}

#[tokio::test]
async fn bdat_over_the_limit_fails_the_transaction_then_a_new_one_works() {
    let h = Harness::limit(10, 10);
    let input = script(&[
        "MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\n",
        "BDAT 20\r\n01234567890123456789",
        "BDAT 2 LAST\r\nxx",
        "MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nBDAT 2 LAST\r\nok",
    ]);
    let lines = h.talk(&[&input]).await;
    assert_eq!(
        codes(&lines),
        [
            "250 2.1.0",
            "250 2.1.5",
            "250 2.1.5",
            "552 5.3.4",
            "552 5.3.4",
            "552 5.3.4",
            "250 2.1.0",
            "250 2.1.5",
            "250 2.0.0",
        ],
        "{lines:#?}"
    );
    let d = h.delivered();
    assert_eq!(d.len(), 1);
    assert!(d[0].message.ends_with(b"\r\nok"));
}

#[tokio::test]
async fn nul_octets_in_the_message_are_refused_per_recipient() {
    let h = Harness::new();
    let input = script(&[
        "MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\n",
        "DATA\r\nbad\0byte\r\n.\r\n",
    ]);
    let lines = h.talk(&[&input]).await;
    assert_eq!(codes(&lines)[4..], ["554 5.6.0", "554 5.6.0"], "{lines:#?}");
    assert!(h.delivered().is_empty());
}

#[tokio::test]
async fn connection_dropped_mid_data_stores_nothing() {
    for cut in [
        "DATA\r\nSubject: x\r\n\r\nhalf a message",
        "DATA\r\nx\r\n.",
        "BDAT 100 LAST\r\nonly part",
    ] {
        let h = Harness::new();
        let input = script(&["MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\n", cut]);
        h.talk(&[&input]).await;
        assert!(h.delivered().is_empty(), "{cut:?}");
    }
}

#[tokio::test]
async fn smuggling_attempt_with_bare_lf_dot_does_not_end_data() {
    let h = Harness::new();
    let input = script(&[
        "MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n",
        "x\n.\nMAIL FROM:<evil@x.y>\r\nRCPT TO:<bob@example.com>\r\n.\r\n",
    ]);
    let lines = h.talk(&[&input]).await;
    assert_eq!(codes(&lines)[3..], ["250 2.0.0"], "{lines:#?}");
    let d = h.delivered();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].rcpts, ["alice@example.com"]);
}

#[tokio::test]
async fn replies_come_byte_by_byte_input_too() {
    let h = Harness::new();
    let input =
        script(&["MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n"]);
    let chunks: Vec<&[u8]> = input.chunks(1).collect();
    let lines = h.talk(&chunks).await;
    assert_eq!(
        codes(&lines),
        [
            "250 2.1.0",
            "250 2.1.5",
            "354 Start",
            "250 2.0.0",
            "221 2.0.0"
        ],
        "{lines:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_client_is_disconnected_with_421() {
    let h = Harness::new();
    let (client, server) = tokio::io::duplex(1 << 16);
    let session = Session::new(
        Arc::clone(&h.ctx),
        server,
        "192.0.2.1".into(),
        CancellationToken::new(),
    );
    let task = tokio::spawn(session.run());
    let (mut rd, _wr) = tokio::io::split(client);
    let mut out = Vec::new();
    rd.read_to_end(&mut out).await.expect("read");
    task.await.expect("session");
    let text = String::from_utf8(out).expect("ascii");
    assert!(
        text.ends_with("421 4.4.2 mcp.test Idle timeout, closing connection\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn shutdown_closes_idle_sessions_with_421() {
    let h = Harness::new();
    let (client, server) = tokio::io::duplex(1 << 16);
    let token = CancellationToken::new();
    let session = Session::new(
        Arc::clone(&h.ctx),
        server,
        "192.0.2.1".into(),
        token.clone(),
    );
    let task = tokio::spawn(session.run());
    let (mut rd, _wr) = tokio::io::split(client);
    let mut greeting = [0u8; 5];
    rd.read_exact(&mut greeting).await.expect("greeting");
    token.cancel();
    let mut out = Vec::new();
    rd.read_to_end(&mut out).await.expect("read");
    task.await.expect("session");
    let text = String::from_utf8(out).expect("ascii");
    assert!(
        text.ends_with("421 4.3.2 mcp.test Service shutting down\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_count_sessions_transactions_and_replies() {
    let h = Harness::new();
    let input = script(&[
        "MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<x@example.com>\r\n",
        "DATA\r\nx\r\n.\r\n",
    ]);
    h.talk(&[&input]).await;
    let text = h.ctx.metrics.encode();
    for want in [
        "mcp_lmtp_sessions 0",
        "mcp_lmtp_sessions_accepted_total 1",
        "mcp_lmtp_transactions_total 1",
        "mcp_lmtp_recipient_replies_total{stage=\"rcpt\",class=\"2xx\"} 1",
        "mcp_lmtp_recipient_replies_total{stage=\"rcpt\",class=\"5xx\"} 1",
        "mcp_lmtp_recipient_replies_total{stage=\"data\",class=\"2xx\"} 1",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}
