use super::*;
use crate::testutil::context;
use mcp_plugin_api::mutation::apply_to_message;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn plugin(extra: serde_json::Value) -> Rspamd {
    let mut config = json!({"url": "http://127.0.0.1:9"});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    Rspamd::from_config(Some(&config)).expect("valid")
}

fn reply(v: serde_json::Value) -> CheckReply {
    serde_json::from_value(v).expect("reply")
}

/// A reply like rspamd 3.4's to a GTUBE variant.
fn gtube(action: &str) -> CheckReply {
    reply(json!({
        "is_skipped": true, "score": 15.0, "required_score": 15.0, "action": action,
        "symbols": {"GTUBE": {"name": "GTUBE", "score": 0.0, "metric_score": 0.0}},
        "messages": {"smtp_message": "Gtube pattern"}, "message-id": "undef",
        "subject": "*** SPAM *** hi there"
    }))
}

#[test]
fn actions_map_to_verdicts() {
    let p = plugin(json!({}));
    let cases: &[(&str, &str, Option<&str>, &str)] = &[
        (
            "reject",
            "reject",
            Some("5.7.1"),
            "Spam message rejected: Gtube pattern",
        ),
        (
            "soft reject",
            "tempfail",
            Some("4.7.1"),
            "Message deferred by the spam filter, try again later: Gtube pattern",
        ),
        (
            "greylist",
            "tempfail",
            Some("4.7.1"),
            "Greylisted, try again later: Gtube pattern",
        ),
        ("add header", "continue", None, ""),
        ("rewrite subject", "continue", None, ""),
        ("no action", "continue", None, ""),
        ("discard", "discard", None, ""),
        (
            "quarantine",
            "quarantine",
            None,
            "rspamd: quarantine [15.00 / 15.00] GTUBE",
        ),
    ];
    for (action, verdict, status, text) in cases {
        let out = p.decide(&gtube(action)).expect(action);
        assert_eq!(out.verdict.name(), *verdict, "{action}");
        assert!(out.verdict.validate().is_ok(), "{action}");
        match &out.verdict {
            Verdict::Reject { status: s, text: t } | Verdict::TempFail { status: s, text: t } => {
                assert_eq!(Some(s.to_string().as_str()), *status, "{action}");
                assert_eq!(t, text, "{action}");
            }
            Verdict::Quarantine { reason } => assert_eq!(reason, text),
            _ => assert!(status.is_none()),
        }
        assert_eq!(
            p.capabilities().first_undeclared(&out.mutations),
            None,
            "{action}"
        );
    }
}

#[test]
fn unknown_actions_are_errors() {
    let p = plugin(json!({}));
    for action in ["", "Reject", "spam", "no_action", "add_header", "reject "] {
        assert!(
            matches!(p.decide(&gtube(action)), Err(PluginError::Protocol(_))),
            "{action:?}"
        );
    }
}

#[test]
fn tagging_adds_spam_headers_and_rewrites_the_subject() {
    let p = plugin(json!({}));
    let raw = b"Subject: hi there\r\nX-Spam: No\r\n\r\nbody\r\n";
    let tag = p.decide(&gtube("add header")).expect("tag");
    let out = apply_to_message(raw, &tag.mutations);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "X-Spamd-Result: add header [15.00 / 15.00]; GTUBE(0.00)\r\nSubject: hi there\r\nX-Spam: Yes\r\n\r\nbody\r\n"
    );
    let rewrite = p.decide(&gtube("rewrite subject")).expect("rewrite");
    let out = apply_to_message(raw, &rewrite.mutations);
    assert!(
        String::from_utf8_lossy(&out)
            .contains("\r\nSubject: *** SPAM *** hi there\r\nX-Spam: Yes\r\n"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // No subject with rewrite subject: an error, not a silent pass.
    let mut no_subject = gtube("rewrite subject");
    no_subject.subject = None;
    assert!(matches!(
        p.decide(&no_subject),
        Err(PluginError::Protocol(_))
    ));
    // A non-ASCII rewritten subject is written as encoded words.
    let mut utf8 = gtube("rewrite subject");
    utf8.subject = Some("*** SPAM *** Grüße\r\n\tvom Büro".into());
    let out = p.decide(&utf8).expect("rewrite");
    let subject = out
        .mutations
        .iter()
        .find_map(|m| match m {
            Mutation::ChangeHeader { name, value } if name.as_str() == "Subject" => Some(value),
            _ => None,
        })
        .expect("subject");
    assert!(subject.starts_with("=?utf-8?b?"), "{subject}");
    // no action: nothing of ours.
    assert_eq!(
        p.decide(&gtube("no action")).expect("pass"),
        StepOutput::pass()
    );
}

#[test]
fn milter_headers_become_mutations() {
    // rspamd 3.4's milter block for a clean message with milter_headers enabled.
    let r = reply(json!({
        "score": 3.9, "required_score": 15.0, "action": "no action", "symbols": {},
        "milter": {
            "add_headers": {
                "X-Spamd-Result": {"value": "default: False [3.90 / 15.00];\r\n\tMIME_GOOD(-0.10)[text/plain]", "order": -1},
                "X-Spam-Status": {"value": "No, score=3.90", "order": -1},
                "X-Extra": ["one", {"value": "two", "order": 1}]
            },
            "remove_headers": {"X-Spam": 0, "X-Spamd-Result": 0, "X-Spam-Status": 1}
        }
    }));
    let p = plugin(json!({}));
    let out = p.decide(&r).expect("pass");
    assert_eq!(out.verdict, Verdict::Continue);
    let raw =
        b"X-Spam: Yes\r\nX-Spam-Status: Yes\r\nX-Spam-Status: forged\r\nSubject: s\r\n\r\nb\r\n";
    let got = String::from_utf8_lossy(&apply_to_message(raw, &out.mutations)).into_owned();
    // Removals first, then additions; folding undone.
    assert!(
        !got.contains("forged") && !got.contains("X-Spam: Yes"),
        "{got}"
    );
    for line in [
        "X-Spamd-Result: default: False [3.90 / 15.00]; MIME_GOOD(-0.10)[text/plain]\r\n",
        "X-Spam-Status: No, score=3.90\r\n",
        "X-Extra: one\r\n",
        "X-Extra: two\r\n",
    ] {
        assert!(got.contains(line), "{line:?} missing from {got}");
    }
    // With tag, rspamd's own X-Spamd-Result wins over our summary; X-Spam is ours.
    let mut spam = r.clone();
    spam.action = "add header".into();
    let out = p.decide(&spam).expect("tag");
    let got = String::from_utf8_lossy(&apply_to_message(raw, &out.mutations)).into_owned();
    assert_eq!(got.matches("X-Spamd-Result:").count(), 1, "{got}");
    assert!(got.contains("X-Spam: Yes\r\n"), "{got}");
}

#[test]
fn hostile_milter_blocks_are_errors() {
    let long = "v".repeat(2000);
    let many: serde_json::Map<String, serde_json::Value> = (0..=MAX_MILTER_HEADERS)
        .map(|i| (format!("X-H{i}"), json!("v")))
        .collect();
    let cases = [
        (json!("add"), "not an object"),
        (json!({"add_headers": []}), "not an object"),
        (json!({"remove_headers": ["X-Spam"]}), "not an object"),
        (
            json!({"remove_headers": {"X-Spam": "all"}}),
            "not an integer",
        ),
        (json!({"add_headers": {"Bad Name": "v"}}), "ftext"),
        (json!({"add_headers": {"": "v"}}), "1 to 76"),
        (
            json!({"add_headers": {"X-A": "v\r\nBcc: evil@example.net"}}),
            "not folding",
        ),
        (json!({"add_headers": {"X-A": "v\nBcc: x"}}), "not folding"),
        (json!({"add_headers": {"X-A": "v\0"}}), "NUL"),
        (json!({"add_headers": {"X-A": 5}}), "neither"),
        (
            json!({"add_headers": {"X-A": {"order": 1}}}),
            "without a string value",
        ),
        (json!({"add_headers": many}), "over 64"),
    ];
    for (block, want) in cases {
        match milter_mutations(&block) {
            Err(e) => assert!(e.contains(want), "{block}: {e}"),
            Ok(m) => panic!("{block}: accepted as {m:?}"),
        }
        let mut r = gtube("no action");
        r.milter = Some(block.clone());
        assert!(matches!(
            plugin(json!({})).decide(&r),
            Err(PluginError::Protocol(_))
        ));
    }
    // An over-long value is cut to the contract's 900 octets, not refused.
    let m = milter_mutations(&json!({"add_headers": {"X-A": long}})).expect("cut");
    assert!(matches!(&m[0], Mutation::AddHeader { value, .. } if value.len() == 900));
    assert!(m.iter().all(|m| m.validate().is_ok()));
}

#[test]
fn replies_parse_or_fail_clearly() {
    let cases: &[(&[u8], Option<&str>)] = &[
        (
            br#"{"action":"no action","score":1.5,"required_score":15}"#,
            None,
        ),
        (b"", Some("not JSON")),
        (b"<html>502 Bad Gateway</html>", Some("not JSON")),
        (br#"{"action":"reject","score":1"#, Some("not JSON")),
        (
            br#"{"error":"message is too big"}"#,
            Some("an error: message is too big"),
        ),
        (
            br#"{"score":1,"required_score":2}"#,
            Some("missing field `action`"),
        ),
        (
            br#"{"action":"reject","required_score":2}"#,
            Some("missing field `score`"),
        ),
        (
            br#"{"action":"reject","score":"high","required_score":2}"#,
            Some("score"),
        ),
        (
            br#"{"action":7,"score":1,"required_score":2}"#,
            Some("action"),
        ),
        (br#"[1,2,3]"#, Some("expected")),
        (
            br#"{"action":"reject","score":1,"required_score":2,"symbols":[]}"#,
            Some("symbols"),
        ),
    ];
    for (body, want) in cases {
        match (parse_reply(body), want) {
            (Ok(_), None) => {}
            (Err(e), Some(w)) => assert!(e.contains(w), "{:?}: {e}", String::from_utf8_lossy(body)),
            (got, _) => panic!("{:?}: {got:?}", String::from_utf8_lossy(body)),
        }
    }
}

#[test]
fn config_errors_name_the_field() {
    let cases = [
        (json!({}), "", "missing field `url`"),
        (
            json!({"url": "127.0.0.1:11333"}),
            "url",
            "use http://host:port",
        ),
        (json!({"url": "ftp://rspamd:11333"}), "url", "scheme"),
        (json!({"url": "localhost"}), "url", "use http://host:port"),
        (json!({"url": "http://"}), "url", "not a URL"),
        (json!({"url": "http://rspamd:11333/#x"}), "url", "fragment"),
        (json!({"url": "http://rspamd:port"}), "url", "not a URL"),
        (
            json!({"url": "https://rspamd:11333"}),
            "url",
            "https is not supported",
        ),
        (
            json!({"url": "http://u:p@rspamd:11333"}),
            "url",
            "credentials",
        ),
        (
            json!({"url": "http://rspamd:11333/checkv2"}),
            "url",
            "base URL",
        ),
        (json!({"url": "http://rspamd:11333/?a=1"}), "url", "query"),
        (
            json!({"url": "http://rspamd:11333", "timeout": "0s"}),
            "timeout",
            "more than 0",
        ),
        (
            json!({"url": "http://rspamd:11333", "password": ""}),
            "password",
            "printable",
        ),
        (
            json!({"url": "http://rspamd:11333", "password": "a b"}),
            "password",
            "printable",
        ),
        (
            json!({"url": "http://rspamd:11333", "password": "pässword"}),
            "password",
            "printable",
        ),
        (
            json!({"url": "http://rspamd:11333", "actions": {"spam": "reject"}}),
            "actions.spam",
            "unknown field",
        ),
        (
            json!({"url": "http://rspamd:11333", "actions": {"reject": "bounce"}}),
            "actions.reject",
            "unknown variant",
        ),
        (
            json!({"url": "http://rspamd:11333", "actions": {"add header": "rewriteSubject"}}),
            "actions.add header",
            "rewriteSubject",
        ),
        (
            json!({"url": "http://rspamd:11333", "quarantineOn": ["reject"]}),
            "quarantineOn",
            "unknown field",
        ),
    ];
    for (config, field, msg) in cases {
        let err = Rspamd::from_config(Some(&config)).expect_err("invalid");
        assert_eq!(err.field, field, "{config}: {err}");
        assert!(err.message.contains(msg), "{config}: {}", err.message);
        assert!(
            !err.to_string().contains("pässword"),
            "the password is never shown"
        );
    }
    let p = plugin(json!({"url": "http://rspamd.mcp-system:11333/prefix/", "password": "s3cret"}));
    assert_eq!(
        p.endpoint.to_string(),
        "http://rspamd.mcp-system:11333/prefix/checkv2"
    );
    assert!(
        !format!("{p:?}").contains("s3cret"),
        "Debug hides the password"
    );
    assert_eq!(
        plugin(json!({})).endpoint.to_string(),
        "http://127.0.0.1:9/checkv2"
    );
    assert_eq!(
        plugin(json!({"url": "http://[::1]:11333"}))
            .endpoint
            .to_string(),
        "http://[::1]:11333/checkv2"
    );
    assert_eq!(
        plugin(json!({"url": "http://rspamd"})).endpoint.to_string(),
        "http://rspamd/checkv2"
    );
}

#[test]
fn overrides_change_the_mapping_and_the_capabilities() {
    let p = plugin(
        json!({"actions": {"add header": "quarantine", "rewrite subject": "quarantine", "greylist": "pass", "reject": "quarantine"}}),
    );
    assert_eq!(
        p.decide(&gtube("add header")).expect("q").verdict.name(),
        "quarantine"
    );
    assert_eq!(
        p.decide(&gtube("reject")).expect("q").verdict.name(),
        "quarantine"
    );
    assert_eq!(p.decide(&gtube("greylist")).expect("p"), StepOutput::pass());
    assert_eq!(
        p.capabilities(),
        [Capability::AddHeader, Capability::RemoveHeader]
            .into_iter()
            .collect()
    );
    assert!(
        plugin(json!({}))
            .capabilities()
            .allows(Capability::ChangeHeader)
    );
}

/// What one fake rspamd saw: the request head and body.
#[derive(Debug, Default)]
struct Request {
    head: String,
    body: Vec<u8>,
}

/// A one-request fake rspamd on loopback: reads one HTTP/1.1 request, writes `response` and
/// closes.
async fn fake_rspamd(response: Vec<u8>) -> (String, tokio::task::JoinHandle<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "request cut short");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "body cut short");
            buf.extend_from_slice(&chunk[..n]);
        }
        let _ = s.write_all(&response).await;
        let _ = s.shutdown().await;
        Request {
            head,
            body: buf[head_end..].to_vec(),
        }
    });
    (format!("http://{addr}"), task)
}

fn http(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

const MESSAGE: &[u8] = b"From: Bob <bob@example.net>\r\nSubject: hello\r\n\r\nbody\r\n";

async fn check_with(
    response: Vec<u8>,
    extra: serde_json::Value,
    ctx: MessageContext,
) -> (Result<StepOutput, PluginError>, Request) {
    let (url, task) = fake_rspamd(response).await;
    let mut config = json!({"url": url, "timeout": "2s"});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let p = Rspamd::from_config(Some(&config)).expect("valid");
    let out = p.process(&ctx).await;
    (out, task.await.expect("server"))
}

#[tokio::test]
async fn the_request_carries_the_message_and_envelope() {
    let body = br#"{"action":"reject","score":15,"required_score":15,"symbols":{"GTUBE":{"score":0}},"messages":{"smtp_message":"Gtube pattern"}}"#;
    let (out, req) = check_with(
        http("200 OK", "application/json", body),
        json!({"password": "s3cret"}),
        context(MESSAGE),
    )
    .await;
    assert_eq!(
        out.expect("verdict").verdict,
        Verdict::reject("Spam message rejected: Gtube pattern")
    );
    assert!(
        req.head.starts_with("POST /checkv2 HTTP/1.1\r\n"),
        "{}",
        req.head
    );
    let head = req.head.to_ascii_lowercase();
    for h in [
        "from: sender@example.net\r\n",
        "rcpt: user@example.com\r\n",
        "deliver-to: user@example.com\r\n",
        "password: s3cret\r\n",
    ] {
        assert!(head.contains(h), "{h:?} missing from {}", req.head);
    }
    assert!(
        !head.contains("\r\nuser:"),
        "no User on deliver: {}",
        req.head
    );
    assert_eq!(req.body, MESSAGE);

    let mut append = context(MESSAGE);
    append.stage = Stage::Append;
    append.envelope.mail_from = String::new();
    let ok = br#"{"action":"no action","score":0,"required_score":15}"#;
    let (out, req) = check_with(http("200 OK", "application/json", ok), json!({}), append).await;
    assert_eq!(out, Ok(StepOutput::pass()));
    let head = req.head.to_ascii_lowercase();
    assert!(
        head.contains("\r\nuser: user@example.com\r\n"),
        "{}",
        req.head
    );
    assert!(
        !head.contains("\r\nfrom:"),
        "no From for the null sender: {}",
        req.head
    );
    assert!(!head.contains("\r\npassword:"), "{}", req.head);
}

#[tokio::test]
async fn hostile_replies_are_errors_never_clean() {
    let ok = br#"{"action":"no action","score":0,"required_score":15}"#;
    let mut huge = br#"{"action":"no action","score":0,"required_score":15,"pad":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', MAX_REPLY));
    huge.extend_from_slice(b"\"}");
    let mut truncated = http("200 OK", "application/json", ok);
    truncated.truncate(truncated.len() - 10);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "server error",
            http(
                "500 Internal Server Error",
                "application/json",
                br#"{"error":"cannot parse input"}"#,
            ),
            "HTTP 500: cannot parse input",
        ),
        (
            "unauthorised",
            http("403 Forbidden", "text/plain", b"denied"),
            "check password",
        ),
        (
            "redirect",
            b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
            "HTTP 302",
        ),
        (
            "wrong content type",
            http("200 OK", "text/html", ok),
            "instead of application/json",
        ),
        (
            "no content type",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
            "instead of application/json",
        ),
        (
            "bad JSON",
            http("200 OK", "application/json", b"{\"action\":"),
            "not JSON",
        ),
        (
            "garbage",
            http("200 OK", "application/json", b"\x00\xff\xfe garbage"),
            "not JSON",
        ),
        (
            "error object",
            http("200 OK", "application/json", br#"{"error":"timeout"}"#),
            "an error: timeout",
        ),
        (
            "unknown action",
            http(
                "200 OK",
                "application/json",
                br#"{"action":"maybe","score":1,"required_score":2}"#,
            ),
            "unknown action",
        ),
        (
            "huge",
            http("200 OK", "application/json", &huge),
            "over 1048576",
        ),
        ("truncated", truncated, "rspamd at"),
        ("not HTTP", b"stream: OK\0".to_vec(), "rspamd at"),
        ("nothing", Vec::new(), "rspamd at"),
    ];
    for (what, response, want) in cases {
        let (out, _) = check_with(response, json!({}), context(MESSAGE)).await;
        match out {
            Err(
                e @ (PluginError::Failed(_)
                | PluginError::Protocol(_)
                | PluginError::Unavailable(_)),
            ) => {
                assert!(e.to_string().contains(want), "{what}: {e}")
            }
            Ok(o) => panic!("{what}: taken as {o:?}"),
        }
    }
}

#[tokio::test]
async fn unreachable_or_silent_rspamd_is_unavailable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let p = plugin(json!({"url": format!("http://{addr}")}));
    match p.process(&context(MESSAGE)).await {
        Err(PluginError::Unavailable(e)) => assert!(e.contains("cannot connect"), "{e}"),
        other => panic!("{other:?}"),
    }
    // Accepts, reads, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    });
    let p = plugin(json!({"url": format!("http://{addr}"), "timeout": "300ms"}));
    match p.process(&context(MESSAGE)).await {
        Err(PluginError::Unavailable(e)) => assert!(e.contains("did not answer"), "{e}"),
        other => panic!("{other:?}"),
    }
    task.abort();
}
