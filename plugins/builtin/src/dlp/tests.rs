use super::*;
use crate::testutil::context;
use base64::Engine as _;
use mail_parser::{MessageParser, PartType};
use mcp_plugin_api::mutation::apply_to_message;
use serde_json::json;

const CARD: &str = "4539148803436467";
const CARD_SPACED: &str = "4539 1488 0343 6467";
const MC: &str = "5425233430109903";

fn dlp(config: serde_json::Value) -> Dlp {
    Dlp::from_config(Some(&config)).expect("valid config")
}

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn simple(body: &str) -> Vec<u8> {
    format!("From: a@example.net\r\nSubject: hello\r\n\r\n{body}\r\n").into_bytes()
}

fn multipart(parts: &[(&str, &str)]) -> Vec<u8> {
    let mut out =
        String::from("Subject: multi\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n");
    for (headers, body) in parts {
        out.push_str(&format!("--zz\r\n{headers}\r\n\r\n{body}\r\n"));
    }
    out.push_str("--zz--\r\n");
    out.into_bytes()
}

/// Every text the output exposes outside the stored message: verdict texts and header and
/// metadata values.
fn exposed(out: &StepOutput) -> String {
    let mut s = match &out.verdict {
        Verdict::Reject { text, .. } | Verdict::TempFail { text, .. } => text.clone(),
        Verdict::Quarantine { reason } => reason.clone(),
        _ => String::new(),
    };
    for m in &out.mutations {
        match m {
            Mutation::AddHeader { value, .. }
            | Mutation::ChangeHeader { value, .. }
            | Mutation::SetMetadata { value, .. } => s.push_str(value),
            _ => {}
        }
    }
    s
}

fn tag_value(out: &StepOutput) -> Option<String> {
    out.mutations.iter().find_map(|m| match m {
        Mutation::ChangeHeader { name, value } if name.as_str() == DEFAULT_TAG_HEADER => {
            Some(value.clone())
        }
        _ => None,
    })
}

#[test]
fn detectors_with_true_and_known_false_positives() {
    let p = dlp(json!({"action": "tag", "detectors": [
        {"kind": "paymentCard"}, {"kind": "iban"}, {"kind": "usSsn"}, {"kind": "cloudKeys"},
    ]}));
    let cases: &[(&str, String, Option<&str>)] = &[
        ("card", format!("my card is {CARD}"), Some("paymentCard=1")),
        (
            "card spaced",
            format!("card: {CARD_SPACED} exp 12/29"),
            Some("paymentCard=1"),
        ),
        (
            "two cards",
            format!("{CARD} and {MC}"),
            Some("paymentCard=2"),
        ),
        (
            "issuer test number",
            "use 4111 1111 1111 1111 to test".into(),
            None,
        ),
        ("stripe test number", "4242424242424242".into(), None),
        ("amex test number", "378282246310005".into(), None),
        (
            "order number after invoice",
            format!("Invoice {CARD} is due"),
            None,
        ),
        (
            "order number after label",
            format!("Order no.: {CARD}"),
            None,
        ),
        ("tracking number", format!("tracking #{MC}"), None),
        (
            "label too far away",
            format!("invoice attached. By the way my card is {CARD}"),
            Some("paymentCard=1"),
        ),
        ("Luhn failure", "4539148803436468".into(), None),
        (
            "iban",
            "IBAN DE89 3704 0044 0532 0130 00".into(),
            Some("iban=1"),
        ),
        (
            "iban bad checksum",
            "IBAN DE89 3704 0044 0532 0130 01".into(),
            None,
        ),
        ("ssn", "SSN 123-45-6789".into(), Some("usSsn=1")),
        ("woolworth ssn", "SSN 078-05-1120".into(), None),
        ("ssn undashed not by default", "SSN 123456789".into(), None),
        (
            "aws key",
            "AKIAQWERTYUIOPASDFGH".into(),
            Some("cloudKeys=1"),
        ),
        ("aws doc example", "AKIAIOSFODNN7EXAMPLE".into(), None),
        (
            "mixed",
            format!("{CARD} DE89370400440532013000 123-45-6789"),
            Some("paymentCard=1, iban=1, usSsn=1"),
        ),
    ];
    for (what, body, want) in cases {
        let out = p.evaluate(&simple(body)).expect("evaluates");
        assert_eq!(out.verdict, Verdict::Continue, "{what}");
        assert_eq!(tag_value(&out).as_deref(), *want, "{what}");
    }
}

#[test]
fn mime_decoding_reaches_every_text() {
    let p = dlp(json!({"detectors": [{"kind": "paymentCard"}]}));
    let latin1_body = {
        let mut v = b"Caf\xe9 r\xe9sum\xe9: ".to_vec();
        v.extend_from_slice(CARD.as_bytes());
        v
    };
    let utf16_body: Vec<u8> = format!("\u{feff}Karte {CARD}")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let qp_soft_break = "Card 4539 1488 03=\r\n43 6467 end";
    let nested = format!(
        "Subject: fwd\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
        b64(format!("inner {CARD}").as_bytes())
    );
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "base64 text part",
            multipart(&[(
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64",
                &b64(format!("card {CARD}").as_bytes()),
            )]),
            true,
        ),
        (
            "quoted-printable soft line break inside the number",
            multipart(&[(
                "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable",
                qp_soft_break,
            )]),
            true,
        ),
        (
            "ISO-8859-1",
            multipart(&[(
                "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64",
                &b64(&latin1_body),
            )]),
            true,
        ),
        (
            "UTF-16",
            multipart(&[(
                "Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64",
                &b64(&utf16_body),
            )]),
            true,
        ),
        (
            "nested message/rfc822",
            multipart(&[
                ("Content-Type: text/plain", "see attached"),
                ("Content-Type: message/rfc822", &nested),
            ]),
            true,
        ),
        (
            "base64 message/rfc822",
            multipart(&[(
                "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64",
                &b64(nested.as_bytes()),
            )]),
            true,
        ),
        (
            "csv attachment",
            multipart(&[(
                "Content-Type: text/csv; name=cards.csv\r\nContent-Disposition: attachment; filename=cards.csv",
                &format!("name,card\r\nbob,{CARD}"),
            )]),
            true,
        ),
        (
            "json attachment",
            multipart(&[(
                "Content-Type: application/json\r\nContent-Transfer-Encoding: base64",
                &b64(format!("{{\"pan\": \"{CARD}\"}}").as_bytes()),
            )]),
            true,
        ),
        (
            "html part",
            multipart(&[(
                "Content-Type: text/html",
                &format!("<p>card <b>{CARD}</b></p>"),
            )]),
            true,
        ),
        (
            "encoded Subject",
            format!(
                "Subject: =?utf-8?b?{}?=\r\n\r\nhi\r\n",
                b64(format!("card {CARD}").as_bytes())
            )
            .into_bytes(),
            true,
        ),
        (
            "binary attachment is not text",
            multipart(&[(
                "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64",
                &b64(format!("%PDF {CARD}").as_bytes()),
            )]),
            false,
        ),
    ];
    for (what, raw, fires) in cases {
        let out = p.evaluate(&raw).expect("evaluates");
        assert_eq!(tag_value(&out).is_some(), fires, "{what}: {out:?}");
    }
}

/// The stored message after `out`'s mutations, re-parsed: every text part and the Subject.
fn stored_texts(raw: &[u8], out: &StepOutput) -> (Vec<u8>, Vec<String>) {
    let stored = apply_to_message(raw, &out.mutations).to_vec();
    let msg = MessageParser::default().parse(&stored).expect("re-parses");
    let mut texts = vec![msg.subject().unwrap_or_default().to_string()];
    fn walk(m: &mail_parser::Message<'_>, texts: &mut Vec<String>) {
        for p in &m.parts {
            match &p.body {
                PartType::Text(t) | PartType::Html(t) => texts.push(t.to_string()),
                PartType::Message(n) => {
                    texts.push(n.subject().unwrap_or_default().to_string());
                    walk(n, texts);
                }
                _ => {}
            }
        }
    }
    walk(&msg, &mut texts);
    (stored, texts)
}

#[test]
fn redact_masks_text_and_keeps_everything_else() {
    let p = dlp(json!({"action": "redact"}));
    let pdf = b64(b"%PDF-1.4 binary");
    let raw = multipart(&[
        (
            "Content-Type: text/plain",
            &format!("card {CARD_SPACED} ssn 123-45-6789 ok"),
        ),
        (
            "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable",
            &format!("caf=E9 {MC}"),
        ),
        (
            "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64",
            &pdf,
        ),
        (
            "Content-Type: message/rfc822",
            &format!(
                "Subject: key AKIAQWERTYUIOPASDFGH\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
                b64(format!("inner {CARD}").as_bytes())
            ),
        ),
    ]);
    let out = p.evaluate(&raw).expect("evaluates");
    assert_eq!(out.verdict, Verdict::Continue);
    assert_eq!(p.capabilities().first_undeclared(&out.mutations), None);
    let (stored, texts) = stored_texts(&raw, &out);
    assert_eq!(
        texts,
        vec![
            "multi",
            "card **** **** **** 6467 ssn *********** ok",
            "caf\u{e9} ************9903",
            "key ********************",
            "inner ************6467",
        ]
    );
    let stored = String::from_utf8_lossy(&stored);
    assert!(stored.contains(&format!(
        "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--zz"
    )));
    assert!(
        stored.contains("caf=E9 ************9903"),
        "charset and encoding kept: {stored}"
    );
    for secret in [CARD, CARD_SPACED, MC, "123-45-6789", "AKIAQWERTYUIOPASDFGH"] {
        assert!(!stored.contains(secret), "{secret} left in {stored}");
    }
}

#[test]
fn redact_of_a_single_part_message_and_subject() {
    let p = dlp(json!({"action": "redact", "detectors": [{"kind": "paymentCard"}]}));
    let raw = format!(
        "Subject: =?utf-8?q?Karte_{CARD}_=E2=82=AC?=\r\nContent-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        b64(&format!("\u{feff}Karte {CARD}")
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect::<Vec<_>>())
    );
    let out = p.evaluate(raw.as_bytes()).expect("evaluates");
    let (_, texts) = stored_texts(raw.as_bytes(), &out);
    assert_eq!(
        texts,
        vec!["Karte ************6467 \u{20ac}", "Karte ************6467"]
    );
    assert!(out.mutations.iter().all(|m| m.validate().is_ok()));
}

#[test]
fn actions_and_severity() {
    let config = |card_action: &str| {
        json!({"action": "tag", "detectors": [
            {"kind": "paymentCard", "action": card_action},
            {"kind": "iban"},
        ]})
    };
    let raw = simple(&format!("{CARD} DE89370400440532013000"));
    let cases: &[(&str, &str)] = &[
        ("reject", "reject"),
        ("quarantine", "quarantine"),
        ("redact", "continue"),
        ("tag", "continue"),
        ("alert", "continue"),
    ];
    for (action, verdict) in cases {
        let p = dlp(config(action));
        let out = p.evaluate(&raw).expect("evaluates");
        assert_eq!(out.verdict.name(), *verdict, "{action}");
        assert!(
            out.verdict.validate().is_ok(),
            "{action}: {:?}",
            out.verdict
        );
        assert_eq!(
            p.capabilities().first_undeclared(&out.mutations),
            None,
            "{action}"
        );
        let exposed = exposed(&out);
        assert!(
            !exposed.contains(CARD) && !exposed.contains("DE89"),
            "{action}: {exposed}"
        );
        match *action {
            "reject" => match &out.verdict {
                Verdict::Reject { status, text } => {
                    assert_eq!(status.to_string(), "5.7.1");
                    assert_eq!(
                        text,
                        "Message refused: sensitive data detected (paymentCard, iban)"
                    );
                }
                v => panic!("{v:?}"),
            },
            "quarantine" => assert_eq!(
                out.verdict,
                Verdict::quarantine("dlp: paymentCard=1, iban=1")
            ),
            // The most severe action wins: the iban's tag is dropped, the card is masked.
            "redact" => {
                let (_, texts) = stored_texts(&raw, &out);
                assert_eq!(texts[1], "************6467 DE89370400440532013000\r\n");
                assert_eq!(tag_value(&out), None);
            }
            "tag" => assert_eq!(tag_value(&out).as_deref(), Some("paymentCard=1, iban=1")),
            // alert < tag: the iban's tag wins.
            "alert" => assert_eq!(tag_value(&out).as_deref(), Some("paymentCard=1, iban=1")),
            _ => unreachable!(),
        }
    }
    let alert = dlp(json!({"action": "alert"}));
    let out = alert.evaluate(&raw).expect("evaluates");
    assert_eq!(
        out.mutations,
        vec![Mutation::SetMetadata {
            key: "dlp.alert".into(),
            value: "paymentCard=1, iban=1".into()
        }]
    );
}

#[test]
fn thresholds_proximity_and_custom_detectors() {
    let p = dlp(json!({"detectors": [
        {"kind": "paymentCard", "minCount": 2},
        {"kind": "usSsn", "proximity": {"keywords": ["ssn", "social security"], "window": 20}},
        {"kind": "regex", "name": "project", "pattern": "PRJ-[0-9]{4}"},
        {"kind": "keywords", "name": "confidential", "keywords": ["confidential", "internal only"]},
    ]}));
    let cases: &[(&str, String, Option<&str>)] = &[
        ("one card below minCount", CARD.to_string(), None),
        ("two cards", format!("{CARD} {MC}"), Some("paymentCard=2")),
        ("ssn without keyword", "number 123-45-6789".into(), None),
        (
            "ssn with keyword before",
            "Social Security: 123-45-6789".into(),
            Some("usSsn=1"),
        ),
        (
            "ssn with keyword after",
            "123-45-6789 is my SSN".into(),
            Some("usSsn=1"),
        ),
        (
            "keyword too far",
            format!("ssn{} 123-45-6789", " ".repeat(30)),
            None,
        ),
        ("regex", "see PRJ-1234 and PRJ-9".into(), Some("project=1")),
        (
            "keywords whole word",
            "CONFIDENTIAL and Internal Only".into(),
            Some("confidential=2"),
        ),
        ("keywords not inside words", "nonconfidential".into(), None),
    ];
    for (what, body, want) in cases {
        let out = p.evaluate(&simple(body)).expect("evaluates");
        assert_eq!(tag_value(&out).as_deref(), *want, "{what}");
    }
}

#[test]
fn exclude_near_is_configurable() {
    let body = simple(&format!("Invoice {CARD}"));
    let off = dlp(json!({"detectors": [{"kind": "paymentCard", "excludeNear": {"window": 0}}]}));
    assert!(tag_value(&off.evaluate(&body).expect("evaluates")).is_some());
    let custom = dlp(
        json!({"detectors": [{"kind": "paymentCard", "excludeNear": {"words": ["Rechnung"]}}]}),
    );
    assert!(tag_value(&custom.evaluate(&body).expect("evaluates")).is_some());
    let de = simple(&format!("Rechnung {CARD}"));
    assert!(tag_value(&custom.evaluate(&de).expect("evaluates")).is_none());
}

#[test]
fn scan_limit_caps_the_text() {
    let p = dlp(json!({"maxScanBytes": 100, "detectors": [{"kind": "paymentCard"}]}));
    let early = simple(&format!("{CARD}{}", " x".repeat(200)));
    let late = simple(&format!("{}{CARD}", "x ".repeat(200)));
    assert!(tag_value(&p.evaluate(&early).expect("evaluates")).is_some());
    assert!(tag_value(&p.evaluate(&late).expect("evaluates")).is_none());
    let redact = dlp(
        json!({"maxScanBytes": 100, "action": "redact", "detectors": [{"kind": "paymentCard"}]}),
    );
    let err = redact
        .evaluate(&early)
        .expect_err("cannot redact a cut part");
    assert!(!err.to_string().contains(CARD));
}

#[test]
fn capabilities_are_exactly_the_configured_actions() {
    let caps = |c: serde_json::Value| dlp(c).capabilities();
    assert_eq!(caps(json!({"action": "reject"})), Capabilities::none());
    assert_eq!(caps(json!({"action": "quarantine"})), Capabilities::none());
    assert_eq!(
        caps(json!({})),
        [Capability::ChangeHeader].into_iter().collect()
    );
    assert_eq!(
        caps(json!({"action": "alert"})),
        [Capability::SetMetadata].into_iter().collect()
    );
    assert_eq!(
        caps(json!({"action": "redact"})),
        [Capability::ReplaceBody, Capability::ChangeHeader]
            .into_iter()
            .collect()
    );
}

#[test]
fn config_errors_name_the_field() {
    let cases = [
        (json!({"detectors": []}), "detectors", "at least one"),
        (
            json!({"detectors": [{"kind": "creditCard"}]}),
            "detectors[0].kind",
            "unknown variant",
        ),
        (
            json!({"detectors": [{"kind": "iban", "color": 1}]}),
            "detectors[0].color",
            "unknown field",
        ),
        (
            json!({"detectors": [{"kind": "regex", "name": "r", "pattern": "("}]}),
            "detectors[0].pattern",
            "invalid regex",
        ),
        (
            json!({"detectors": [{"kind": "regex", "name": "r", "pattern": "a*"}]}),
            "detectors[0].pattern",
            "empty string",
        ),
        (
            json!({"detectors": [{"kind": "regex", "name": "r"}]}),
            "detectors[0].pattern",
            "required",
        ),
        (
            json!({"detectors": [{"kind": "regex", "pattern": "x"}]}),
            "detectors[0].name",
            "required",
        ),
        (
            json!({"detectors": [{"kind": "iban", "pattern": "x"}]}),
            "detectors[0].pattern",
            "only allowed with kind regex",
        ),
        (
            json!({"detectors": [{"kind": "iban", "allowUndashed": true}]}),
            "detectors[0].allowUndashed",
            "usSsn",
        ),
        (
            json!({"detectors": [{"kind": "keywords", "name": "k", "keywords": []}]}),
            "detectors[0].keywords",
            "at least one",
        ),
        (
            json!({"detectors": [{"kind": "keywords", "name": "k", "keywords": ["a", " "]}]}),
            "detectors[0].keywords[1]",
            "empty",
        ),
        (
            json!({"detectors": [{"kind": "iban", "minCount": 0}]}),
            "detectors[0].minCount",
            "at least 1",
        ),
        (
            json!({"detectors": [{"kind": "iban", "minCount": -1}]}),
            "detectors[0].minCount",
            "invalid value",
        ),
        (
            json!({"detectors": [{"kind": "iban", "proximity": {"keywords": []}}]}),
            "detectors[0].proximity.keywords",
            "at least one",
        ),
        (
            json!({"detectors": [{"kind": "iban", "proximity": {"keywords": ["x"], "window": 0}}]}),
            "detectors[0].proximity.window",
            "1 to 10000",
        ),
        (
            json!({"detectors": [{"kind": "paymentCard", "excludeNear": {"words": []}}]}),
            "detectors[0].excludeNear.words",
            "at least one",
        ),
        (
            json!({"detectors": [{"kind": "cloudKeys", "keyTypes": ["azure"]}]}),
            "detectors[0].keyTypes[0]",
            "unknown variant",
        ),
        (
            json!({"detectors": [{"kind": "cloudKeys", "keyTypes": []}]}),
            "detectors[0].keyTypes",
            "empty",
        ),
        (
            json!({"detectors": [{"kind": "iban"}, {"kind": "iban"}]}),
            "detectors[1].name",
            "duplicate",
        ),
        (
            json!({"detectors": [{"kind": "iban", "name": "my iban"}]}),
            "detectors[0].name",
            "[A-Za-z0-9_-]",
        ),
        (json!({"action": "block"}), "action", "unknown variant"),
        (
            json!({"maxScanBytes": "lots"}),
            "maxScanBytes",
            "not a size",
        ),
        (json!({"maxScanBytes": 0}), "maxScanBytes", "at least 1"),
        (json!({"tagHeader": "X:DLP"}), "tagHeader", "ftext"),
        (json!("dlp"), "", "must be an object"),
    ];
    for (config, field, msg) in cases {
        let err = Dlp::from_config(Some(&config)).expect_err("invalid");
        assert_eq!(err.field, field, "{config}");
        assert!(err.message.contains(msg), "{config}: {}", err.message);
    }
}

#[tokio::test]
async fn large_messages_are_scanned_off_the_runtime_with_the_same_result() {
    let p = dlp(json!({"action": "reject"}));
    let mut body = "lorem ipsum ".repeat(8 << 10);
    body.push_str(CARD);
    let raw = simple(&body);
    assert!(raw.len() > crate::BLOCKING_THRESHOLD);
    let out = p.process(&context(&raw)).await.expect("processes");
    assert_eq!(out.verdict.name(), "reject");
    let small = p.process(&context(&simple(CARD))).await.expect("processes");
    assert_eq!(small.verdict.name(), "reject");
}

#[tokio::test]
async fn hostile_input_never_panics() {
    let p = dlp(json!({"action": "redact"}));
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n".to_vec(),
        vec![0xff; 100],
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n4539148803436467".to_vec(),
        // Not base64: decodes to garbage that no reader sees as a card either.
        b"Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64 !!!".to_vec(),
        b"Content-Type: text/plain; charset=x-unknown\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ 4539148803436467=".to_vec(),
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nSubject: 4539148803436467\r\n".to_vec(),
        format!("Subject: {}\r\n\r\n{}", "9".repeat(5000), "4 ".repeat(5000)).into_bytes(),
        // Long runs of short digit groups: bounded work per group.
        simple(&"4 12 ".repeat(200_000)),
        // Deep nesting.
        "Content-Type: message/rfc822\r\n\r\n".repeat(2000).into_bytes(),
    ];
    for raw in inputs {
        if let Ok(out) = p.process(&context(&raw)).await {
            assert!(out.verdict.validate().is_ok());
            assert!(out.mutations.iter().all(|m| m.validate().is_ok()));
            let stored = apply_to_message(&raw, &out.mutations);
            assert!(
                !String::from_utf8_lossy(&stored).contains(CARD),
                "{}",
                String::from_utf8_lossy(&stored)
            );
        }
    }
}
