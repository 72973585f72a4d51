use super::*;
use crate::testutil::context;
use mcp_plugin_api::mutation::apply_to_message;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[test]
fn replies_parse_and_only_ok_is_clean() {
    let long_sig = "S".repeat(MAX_SIGNATURE + 1);
    let long_found = format!("stream: {long_sig} FOUND");
    let cases: Vec<(&[u8], Result<ClamdReply, &str>)> = vec![
        (b"stream: OK", Ok(ClamdReply::Clean)),
        (
            b"stream: Win.Test.EICAR_HDB-1 FOUND",
            Ok(ClamdReply::Found("Win.Test.EICAR_HDB-1".into())),
        ),
        (
            b"stream: MCP.Test.Signature.UNOFFICIAL FOUND",
            Ok(ClamdReply::Found("MCP.Test.Signature.UNOFFICIAL".into())),
        ),
        (
            b"INSTREAM size limit exceeded. ERROR",
            Ok(ClamdReply::SizeLimit),
        ),
        (
            b"stream: Can't allocate memory ERROR",
            Ok(ClamdReply::Error("Can't allocate memory".into())),
        ),
        (
            b"COMMAND READ TIMED OUT ERROR",
            Ok(ClamdReply::Error("COMMAND READ TIMED OUT".into())),
        ),
        (b"", Err("empty")),
        (b"stream: ", Err("unknown")),
        (b"stream: O", Err("unknown")),
        (b"stream: OK ", Err("unknown")),
        (b"stream: ok", Err("unknown")),
        (b"stream:OK", Err("unknown")),
        (b"OK", Err("unknown")),
        (b"PONG", Err("unknown")),
        (b"UNKNOWN COMMAND", Err("unknown")),
        (b"1: stream: OK", Err("unknown")),
        (b"stream: OK\n", Err("control")),
        (b"stream: OK\r", Err("control")),
        (b"stream:  FOUND", Err("signature")),
        (b"stream:   Eicar FOUND", Err("signature")),
        (long_found.as_bytes(), Err("signature")),
        (b"stream: \xff\xfe FOUND", Err("not text")),
        (b"\x00\x01\x02", Err("control")),
        (b"HTTP/1.1 200 OK", Err("unknown")),
    ];
    for (input, want) in cases {
        let got = parse_reply(input);
        match (&got, &want) {
            (Ok(g), Ok(w)) => assert_eq!(g, w, "{input:?}"),
            (Err(g), Err(w)) => assert!(g.contains(w), "{input:?}: {g}"),
            _ => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn addresses_parse() {
    let cases: &[(&str, Option<ClamdAddress>)] = &[
        (
            "tcp://127.0.0.1:3310",
            Some(ClamdAddress::Tcp {
                host: "127.0.0.1".into(),
                port: 3310,
            }),
        ),
        (
            "tcp://clamd.mcp-system.svc:3310",
            Some(ClamdAddress::Tcp {
                host: "clamd.mcp-system.svc".into(),
                port: 3310,
            }),
        ),
        (
            "tcp://[::1]:3310",
            Some(ClamdAddress::Tcp {
                host: "::1".into(),
                port: 3310,
            }),
        ),
        (
            "unix:///run/clamav/clamd.ctl",
            Some(ClamdAddress::Unix("/run/clamav/clamd.ctl".into())),
        ),
        ("unix://relative/path", None),
        ("unix://", None),
        ("unix:///", None),
        ("tcp://127.0.0.1", None),
        ("tcp://127.0.0.1:", None),
        ("tcp://127.0.0.1:0", None),
        ("tcp://127.0.0.1:65536", None),
        ("tcp://127.0.0.1:33a", None),
        ("tcp://:3310", None),
        ("tcp://::1:3310", None),
        ("tcp://[::1]3310", None),
        ("tcp://[nothost]:3310", None),
        ("tcp://host/path:3310", None),
        ("tcp://user@host:3310", None),
        ("127.0.0.1:3310", None),
        ("http://127.0.0.1:3310", None),
        ("", None),
    ];
    for (input, want) in cases {
        let got = input.parse::<ClamdAddress>();
        assert_eq!(got.as_ref().ok(), want.as_ref(), "{input:?}: {got:?}");
        if let Ok(a) = got {
            assert_eq!(a.to_string(), *input, "round trip");
        }
    }
}

#[test]
fn config_errors_name_the_field() {
    let cases = [
        (json!({}), "", "missing field `address`"),
        (
            json!({"address": "localhost:3310"}),
            "address",
            "tcp://host:port",
        ),
        (json!({"address": 3310}), "address", "invalid type"),
        (
            json!({"address": "tcp://h:1", "timeout": "0s"}),
            "timeout",
            "more than 0",
        ),
        (
            json!({"address": "tcp://h:1", "timeout": "soon"}),
            "timeout",
            "invalid duration",
        ),
        (
            json!({"address": "tcp://h:1", "connectTimeout": "0ms"}),
            "connectTimeout",
            "more than 0",
        ),
        (
            json!({"address": "tcp://h:1", "timeout": "1s", "connectTimeout": "2s"}),
            "connectTimeout",
            "at most timeout",
        ),
        (
            json!({"address": "tcp://h:1", "maxSize": 0}),
            "maxSize",
            "at least 1",
        ),
        (
            json!({"address": "tcp://h:1", "maxSize": "lots"}),
            "maxSize",
            "not a size",
        ),
        (
            json!({"address": "tcp://h:1", "chunkSize": "32Mi"}),
            "chunkSize",
            "16Mi",
        ),
        (
            json!({"address": "tcp://h:1", "chunkSize": 0}),
            "chunkSize",
            "16Mi",
        ),
        (
            json!({"address": "tcp://h:1", "action": "delete"}),
            "action",
            "unknown variant",
        ),
        (
            json!({"address": "tcp://h:1", "onOversize": "pass"}),
            "onOversize",
            "unknown variant",
        ),
        (
            json!({"address": "tcp://h:1", "streamMaxLength": 1}),
            "streamMaxLength",
            "unknown field",
        ),
    ];
    for (config, field, msg) in cases {
        let err = Clamav::from_config(Some(&config)).expect_err("invalid");
        assert_eq!(err.field, field, "{config}: {err}");
        assert!(err.message.contains(msg), "{config}: {}", err.message);
    }
    let ok = Clamav::from_config(Some(&json!({"address": "unix:///run/clamav/clamd.ctl"})))
        .expect("defaults");
    assert_eq!(ok.config.max_size, Size(25 << 20));
    assert_eq!(ok.config.chunk_size, Size(64 << 10));
    assert_eq!(ok.config.action, VirusAction::Quarantine);
    assert_eq!(ok.config.on_oversize, OversizeAction::Error);
}

fn plugin(extra: serde_json::Value) -> Clamav {
    let mut config = json!({"address": "tcp://127.0.0.1:9"});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    Clamav::from_config(Some(&config)).expect("valid")
}

#[test]
fn findings_map_to_the_configured_action() {
    let found = || ClamdReply::Found("Win.Test.EICAR_HDB-1".into());
    let q = plugin(json!({})).decide(found()).expect("verdict");
    assert_eq!(
        q,
        StepOutput::verdict(Verdict::quarantine("clamav: Win.Test.EICAR_HDB-1"))
    );
    let r = plugin(json!({"action": "reject"}))
        .decide(found())
        .expect("verdict");
    match &r.verdict {
        Verdict::Reject { status, text } => {
            assert_eq!(status.to_string(), "5.7.1");
            assert_eq!(text, "Virus found: Win.Test.EICAR_HDB-1");
        }
        other => panic!("{other:?}"),
    }
    let t = plugin(json!({"action": "tag"}));
    let out = t.decide(found()).expect("verdict");
    assert_eq!(out.verdict, Verdict::Continue);
    // A header the sender wrote is replaced, not kept next to ours.
    let raw = b"X-MCP-Virus: none\r\nSubject: s\r\n\r\nb\r\n";
    let tagged = apply_to_message(raw, &out.mutations);
    assert_eq!(
        &tagged[..],
        b"X-MCP-Virus: Win.Test.EICAR_HDB-1\r\nSubject: s\r\n\r\nb\r\n"
    );
    assert_eq!(t.capabilities().first_undeclared(&out.mutations), None);
    for p in [plugin(json!({})), plugin(json!({"action": "tag"}))] {
        assert_eq!(p.decide(ClamdReply::Clean), Ok(StepOutput::pass()));
        for reply in [ClamdReply::SizeLimit, ClamdReply::Error("x".into())] {
            assert!(
                matches!(p.decide(reply.clone()), Err(PluginError::Failed(_))),
                "{reply:?} is never clean"
            );
        }
    }
    for out in [&q, &r] {
        assert!(out.verdict.validate().is_ok());
    }
    // The longest signature still makes a valid verdict text.
    let long = plugin(json!({"action": "reject"}))
        .decide(ClamdReply::Found("S".repeat(MAX_SIGNATURE)))
        .expect("verdict");
    assert!(long.verdict.validate().is_ok());
}

#[test]
fn capabilities_follow_the_config() {
    let caps = |c| plugin(c).capabilities();
    assert_eq!(caps(json!({})), Capabilities::none());
    assert_eq!(caps(json!({"action": "reject"})), Capabilities::none());
    assert_eq!(
        caps(json!({"action": "tag"})),
        [Capability::ChangeHeader].into_iter().collect()
    );
    assert_eq!(
        caps(json!({"onOversize": "skip"})),
        [Capability::ChangeHeader, Capability::SetMetadata]
            .into_iter()
            .collect()
    );
}

/// What the fake clamd does once it has read the command.
#[derive(Clone)]
enum Behaviour {
    /// Reads the whole stream, then writes these octets and closes.
    Reply(Vec<u8>),
    /// Writes these octets before reading any chunk, then reads to the end.
    ReplyEarly(Vec<u8>),
    /// Reads the stream and never answers.
    Silent,
}

/// What the fake clamd saw.
#[derive(Debug, Default)]
struct Seen {
    command: Vec<u8>,
    chunks: Vec<usize>,
    body: Vec<u8>,
}

async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, b: Behaviour) -> Seen {
    let mut seen = Seen::default();
    let mut cmd = [0u8; 10];
    if s.read_exact(&mut cmd).await.is_err() {
        return seen;
    }
    seen.command = cmd.to_vec();
    if let Behaviour::ReplyEarly(reply) = &b {
        let _ = s.write_all(reply).await;
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        return seen;
    }
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).await.is_err() {
            return seen;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            break;
        }
        seen.chunks.push(len);
        let mut chunk = vec![0u8; len];
        if s.read_exact(&mut chunk).await.is_err() {
            return seen;
        }
        seen.body.extend_from_slice(&chunk);
    }
    match b {
        Behaviour::Reply(reply) => {
            let _ = s.write_all(&reply).await;
            let _ = s.shutdown().await;
        }
        Behaviour::Silent => {
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
        }
        Behaviour::ReplyEarly(_) => {}
    }
    seen
}

/// A one-connection fake clamd on loopback TCP; returns its address and what it saw.
async fn fake_clamd(b: Behaviour) -> (String, tokio::task::JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        serve_one(s, b).await
    });
    (format!("tcp://{addr}"), task)
}

async fn scan_with(
    b: Behaviour,
    extra: serde_json::Value,
    message: &[u8],
) -> (Result<StepOutput, PluginError>, Seen) {
    let (address, task) = fake_clamd(b).await;
    let mut config = json!({"address": address, "timeout": "2s"});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let p = Clamav::from_config(Some(&config)).expect("valid");
    let out = p.process(&context(message)).await;
    (out, task.await.expect("server"))
}

const MESSAGE: &[u8] = b"Subject: hello\r\n\r\nsome body\r\n";

#[tokio::test]
async fn hostile_replies_are_errors_never_clean() {
    let huge = vec![b'A'; MAX_REPLY + 10];
    let mut huge_nul = vec![b'A'; MAX_REPLY + 10];
    huge_nul.push(0);
    let cases: Vec<(&str, Behaviour, &str)> = vec![
        (
            "truncated",
            Behaviour::Reply(b"stream: O".to_vec()),
            "middle of its reply",
        ),
        (
            "no reply at all",
            Behaviour::Reply(Vec::new()),
            "without a reply",
        ),
        (
            "no NUL",
            Behaviour::Reply(b"stream: OK".to_vec()),
            "middle of its reply",
        ),
        ("huge", Behaviour::Reply(huge), "over 1024"),
        ("huge with NUL", Behaviour::Reply(huge_nul), "over 1024"),
        (
            "garbage",
            Behaviour::Reply(b"\x16\x03\x01\x00\0".to_vec()),
            "control",
        ),
        (
            "newline mode",
            Behaviour::Reply(b"stream: OK\n".to_vec()),
            "middle of its reply",
        ),
        (
            "HTTP server",
            Behaviour::Reply(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
            "middle of its reply",
        ),
        (
            "unknown",
            Behaviour::Reply(b"stream: MAYBE\0".to_vec()),
            "unknown reply",
        ),
    ];
    for (what, b, want) in cases {
        let (out, _) = scan_with(b, json!({}), MESSAGE).await;
        match out {
            Err(PluginError::Protocol(e)) => assert!(e.contains(want), "{what}: {e}"),
            other => panic!("{what}: expected a protocol error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_clean_answer_before_the_whole_stream_is_no_clean_result() {
    // Larger than the loopback socket buffers, so the send is still going on.
    let big = vec![b'x'; 24 << 20];
    let (out, _) = scan_with(
        Behaviour::ReplyEarly(b"stream: OK\0".to_vec()),
        json!({"maxSize": "32Mi"}),
        &big,
    )
    .await;
    match out {
        Err(PluginError::Protocol(e)) => assert!(e.contains("before the whole message"), "{e}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn refusals_by_clamd_are_failures() {
    let cases: Vec<(&str, Behaviour, &str)> = vec![
        (
            "size limit after the stream",
            Behaviour::Reply(b"INSTREAM size limit exceeded. ERROR\0".to_vec()),
            "size limit",
        ),
        (
            "size limit mid-stream",
            Behaviour::ReplyEarly(b"INSTREAM size limit exceeded. ERROR\0".to_vec()),
            "size limit",
        ),
        (
            "scan error",
            Behaviour::Reply(b"stream: Can't allocate memory ERROR\0".to_vec()),
            "Can't allocate memory",
        ),
    ];
    for (what, b, want) in cases {
        let (out, _) = scan_with(b, json!({}), MESSAGE).await;
        match out {
            Err(PluginError::Failed(e)) => assert!(e.contains(want), "{what}: {e}"),
            other => panic!("{what}: expected a failure, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn stream_is_chunked_within_chunk_size_and_terminated() {
    let message: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let (out, seen) = scan_with(
        Behaviour::Reply(b"stream: OK\0".to_vec()),
        json!({"chunkSize": 4096}),
        &message,
    )
    .await;
    assert_eq!(out, Ok(StepOutput::pass()));
    assert_eq!(seen.command, b"zINSTREAM\0");
    assert_eq!(seen.chunks, vec![4096, 4096, 1808]);
    assert_eq!(seen.body, message);

    let (out, seen) = scan_with(
        Behaviour::Reply(b"stream: Eicar-Test-Signature FOUND\0".to_vec()),
        json!({}),
        MESSAGE,
    )
    .await;
    assert_eq!(
        out,
        Ok(StepOutput::verdict(Verdict::quarantine(
            "clamav: Eicar-Test-Signature"
        )))
    );
    assert_eq!(seen.chunks, vec![MESSAGE.len()]);
}

#[tokio::test]
async fn a_large_message_is_refused_mid_stream_without_hanging() {
    // A fake clamd that answers like one whose StreamMaxLength is 1 KiB and closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut first = vec![0u8; 1024];
        let _ = s.read_exact(&mut first).await;
        let _ = s.write_all(b"INSTREAM size limit exceeded. ERROR\0").await;
        drop(s);
    });
    let p = plugin(json!({"address": format!("tcp://{addr}"), "timeout": "5s"}));
    let big = vec![b'x'; 8 << 20];
    let out = p.process(&context(&big)).await;
    task.await.expect("server");
    match out {
        Err(PluginError::Failed(e)) => assert!(e.contains("size limit"), "{e}"),
        // The reset may reach us before the reply does: still a failure, never clean.
        Err(PluginError::Unavailable(e) | PluginError::Protocol(e)) => {
            assert!(!e.is_empty())
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_or_silent_clamd_is_unavailable() {
    // Nothing listens on this port once the listener is gone.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let p = plugin(json!({"address": format!("tcp://{addr}")}));
    match p.process(&context(MESSAGE)).await {
        Err(PluginError::Unavailable(e)) => assert!(e.contains("cannot connect"), "{e}"),
        other => panic!("{other:?}"),
    }
    let (out, _) = scan_with(
        Behaviour::Silent,
        json!({"timeout": "300ms", "connectTimeout": "300ms"}),
        MESSAGE,
    )
    .await;
    match out {
        Err(PluginError::Unavailable(e)) => assert!(e.contains("did not answer"), "{e}"),
        other => panic!("{other:?}"),
    }
    let missing = plugin(json!({"address": "unix:///nonexistent/clamd.ctl"}));
    assert!(matches!(
        missing.process(&context(MESSAGE)).await,
        Err(PluginError::Unavailable(_))
    ));
}

#[cfg(unix)]
#[tokio::test]
async fn scans_over_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("mcp-clamav-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("clamd.sock");
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).expect("bind");
    let task = tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        serve_one(s, Behaviour::Reply(b"stream: Test.Sig FOUND\0".to_vec())).await
    });
    let p = plugin(json!({"address": format!("unix://{}", path.display()), "action": "reject"}));
    let out = p.process(&context(MESSAGE)).await.expect("verdict");
    let seen = task.await.expect("server");
    assert_eq!(seen.body, MESSAGE);
    assert_eq!(out.verdict, Verdict::reject("Virus found: Test.Sig"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn oversize_messages_fail_or_are_marked_not_scanned() {
    let big = vec![b'x'; 2048];
    let failing = plugin(json!({"maxSize": "1Ki"}));
    match failing.process(&context(&big)).await {
        Err(PluginError::Failed(e)) => assert!(e.contains("not scanned"), "{e}"),
        other => panic!("{other:?}"),
    }
    let skipping = plugin(json!({"maxSize": "1Ki", "onOversize": "skip"}));
    let out = skipping.process(&context(&big)).await.expect("skipped");
    assert_eq!(out.verdict, Verdict::Continue);
    assert_eq!(
        skipping.capabilities().first_undeclared(&out.mutations),
        None
    );
    assert_eq!(
        out.mutations,
        vec![
            Mutation::change_header(SCAN_HEADER, "not scanned: 2048 octets over maxSize 1024")
                .expect("valid"),
            Mutation::SetMetadata {
                key: SCAN_METADATA.into(),
                value: "not scanned: 2048 octets over maxSize 1024".into(),
            },
        ]
    );
}
