use super::*;
use v1::mutation::Kind as M;
use v1::verdict::Kind as V;

fn ctx(message: &'static [u8]) -> MessageContext {
    MessageContext {
        stage: Stage::Deliver,
        tenant: "acme".into(),
        mailbox: "alice@example.com".into(),
        folder: "INBOX".into(),
        envelope: Envelope {
            mail_from: "bob@example.net".into(),
            rcpt_to: "alice@example.com".into(),
        },
        message: Bytes::from_static(message),
        flags: vec!["\\Seen".into()],
        metadata: [("k".to_owned(), "v".to_owned())].into_iter().collect(),
    }
}

const MSG: &[u8] = b"Subject: hi\r\n there\r\nFrom: b@example.net\r\n\r\nbody line\r\n";

#[test]
fn every_verdict_and_mutation_round_trips() {
    let verdicts = [
        Verdict::Continue,
        Verdict::Accept,
        Verdict::reject("no thanks"),
        Verdict::Reject {
            status: EnhancedStatus::new(5, 3, 4),
            text: "too big".into(),
        },
        Verdict::temp_fail("later"),
        Verdict::Discard,
        Verdict::quarantine("suspicious"),
    ];
    let mutations = vec![
        Mutation::add_header("X-A", "1").expect("valid"),
        Mutation::change_header("Subject", "new").expect("valid"),
        Mutation::RemoveHeader {
            name: HeaderName::new("X-B").expect("valid"),
        },
        Mutation::ReplaceBody {
            body: Bytes::from_static(b"new body\r\n"),
        },
        Mutation::AddKeyword {
            keyword: "$Scanned".into(),
        },
        Mutation::AddFlag {
            flag: SystemFlag::Flagged,
        },
        Mutation::FileInto {
            folder: "Archive/2026".into(),
        },
        Mutation::SetMetadata {
            key: "scan.result".into(),
            value: "clean".into(),
        },
    ];
    for verdict in verdicts {
        let out = StepOutput {
            verdict,
            mutations: mutations.clone(),
        };
        assert_eq!(output_from_proto(output_to_proto(&out)), Ok(out));
    }
}

#[test]
fn hostile_replies_are_protocol_errors_never_verdicts() {
    let reply = |verdict: Option<V>, mutations: Vec<Option<M>>| v1::ProcessMessageResponse {
        verdict: verdict.map(|k| v1::Verdict { kind: Some(k) }),
        mutations: mutations
            .into_iter()
            .map(|kind| v1::Mutation { kind })
            .collect(),
    };
    let cont = || Some(V::Continue(v1::Continue {}));
    let cases: Vec<(&str, v1::ProcessMessageResponse, &str)> = vec![
        ("no verdict", reply(None, vec![]), "verdict: missing"),
        (
            "empty verdict",
            v1::ProcessMessageResponse {
                verdict: Some(v1::Verdict { kind: None }),
                mutations: vec![],
            },
            "verdict: missing",
        ),
        (
            "reject with a 4xx status",
            reply(
                Some(V::Reject(v1::Reject {
                    enhanced_status: "4.7.1".into(),
                    text: "x".into(),
                })),
                vec![],
            ),
            "class 5",
        ),
        (
            "tempfail with a garbage status",
            reply(
                Some(V::TempFail(v1::TempFail {
                    enhanced_status: "four".into(),
                    text: "x".into(),
                })),
                vec![],
            ),
            "enhanced_status",
        ),
        (
            "reject without text",
            reply(Some(V::Reject(v1::Reject::default())), vec![]),
            "1 to 200",
        ),
        (
            "reject text with CRLF (reply injection)",
            reply(
                Some(V::Reject(v1::Reject {
                    enhanced_status: String::new(),
                    text: "a\r\n250 ok".into(),
                })),
                vec![],
            ),
            "printable ASCII",
        ),
        (
            "quarantine without reason",
            reply(Some(V::Quarantine(v1::Quarantine::default())), vec![]),
            "1 to 200",
        ),
        (
            "unset mutation",
            reply(cont(), vec![None]),
            "mutations[0]: kind",
        ),
        (
            "header name with a colon",
            reply(
                cont(),
                vec![Some(M::AddHeader(v1::AddHeader {
                    name: "X-A:".into(),
                    value: "1".into(),
                }))],
            ),
            "mutations[0]",
        ),
        (
            "header value with a line break",
            reply(
                cont(),
                vec![
                    Some(M::AddKeyword(v1::AddKeyword {
                        keyword: "ok".into(),
                    })),
                    Some(M::AddHeader(v1::AddHeader {
                        name: "X-A".into(),
                        value: "1\r\nBcc: evil@example.net".into(),
                    })),
                ],
            ),
            "mutations[1]",
        ),
        (
            "unknown flag",
            reply(cont(), vec![Some(M::AddFlag(v1::AddFlag { flag: 99 }))]),
            "unknown system flag 99",
        ),
        (
            "unspecified flag",
            reply(cont(), vec![Some(M::AddFlag(v1::AddFlag { flag: 0 }))]),
            "unknown system flag 0",
        ),
        (
            "folder wildcard",
            reply(
                cont(),
                vec![Some(M::FileInto(v1::FileInto {
                    folder: "a/*".into(),
                }))],
            ),
            "mutations[0]",
        ),
    ];
    for (name, r, want) in cases {
        let err = output_from_proto(r).expect_err(name);
        assert!(err.0.contains(want), "{name}: {err}");
    }
}

#[test]
fn enums_refuse_unspecified_and_unknown_values() {
    for v in [0, 4, -1, 1000] {
        assert!(stage_from_proto("s", v).is_err(), "stage {v}");
        assert!(body_mode_from_proto("b", v + 1000).is_err(), "mode {v}");
    }
    assert!(capability_from_proto("c", 0).is_err());
    assert!(capability_from_proto("c", 9).is_err());
    for c in 1..=8 {
        let cap = capability_from_proto("c", c).expect("known");
        assert_eq!(capability_to_proto(cap) as i32, c);
    }
}

#[test]
fn header_fields_are_unfolded_in_order() {
    let h = header_fields(
        b"Subject: hi\r\n there\r\nX-Empty:\r\nbroken line\r\nFrom:  b@x\r\n\r\nBody: no\r\n",
    );
    let got: Vec<(&str, &str)> = h.iter().map(|h| (&*h.name, &*h.value)).collect();
    assert_eq!(
        got,
        [("Subject", "hi there"), ("X-Empty", ""), ("From", "b@x")]
    );
    assert!(header_fields(b"").is_empty());
    assert_eq!(header_fields(b"A: 1\nB: 2\n\n").len(), 2, "bare LF");
}

#[test]
fn contexts_carry_what_each_body_mode_grants() {
    let c = ctx(MSG);
    let header_len = MSG.len() - b"body line\r\n".len();
    for (mode, limit, want_msg, withheld, streams) in [
        (BodyMode::None, 1 << 20, &b""[..], false, false),
        (BodyMode::Headers, 1 << 20, &MSG[..header_len], false, false),
        (BodyMode::Buffered, 1 << 20, MSG, false, false),
        (BodyMode::Streamed, 1 << 20, MSG, false, true),
        (BodyMode::Buffered, 10, &MSG[..header_len], true, false),
        (BodyMode::Streamed, 10, &MSG[..header_len], true, false),
        (BodyMode::Headers, 10, &MSG[..header_len], false, false),
    ] {
        let out = context_to_proto(&c, CallInfo::default(), mode, limit);
        assert_eq!(out.context.body_withheld, withheld, "{mode:?} {limit}");
        assert_eq!(out.stream_body.is_some(), streams, "{mode:?} {limit}");
        assert_eq!(out.context.size, MSG.len() as u64);
        let (back, meta) = context_from_proto(out.context, out.stream_body).expect("valid");
        assert_eq!(&back.message[..], want_msg, "{mode:?} {limit}");
        assert_eq!(meta.body_withheld, withheld);
        assert_eq!(back.metadata, c.metadata);
        assert_eq!(back.envelope, c.envelope);
        assert_eq!(back.flags, c.flags);
        assert_eq!(back.stage, Stage::Deliver);
    }
}

#[test]
fn hostile_contexts_are_refused() {
    let good = || context_to_proto(&ctx(MSG), CallInfo::default(), BodyMode::Headers, 1 << 20);
    let mut no_envelope = good().context;
    no_envelope.envelope = None;
    let mut body_in_headers_mode = good().context;
    body_in_headers_mode.body = Bytes::from_static(b"x");
    let mut bad_stage = good().context;
    bad_stage.stage = 0;
    let mut bad_mode = good().context;
    bad_mode.body_mode = 42;
    for (name, c, chunks, want) in [
        ("no envelope", no_envelope, None, "context.envelope"),
        (
            "body in headers mode",
            body_in_headers_mode,
            None,
            "context.body",
        ),
        ("unspecified stage", bad_stage, None, "context.stage"),
        ("unknown body mode", bad_mode, None, "context.body_mode"),
        (
            "chunks in headers mode",
            good().context,
            Some(Bytes::from_static(b"x")),
            "chunk",
        ),
    ] {
        let err = context_from_proto(c, chunks).expect_err(name);
        assert!(err.0.contains(want), "{name}: {err}");
    }
}
