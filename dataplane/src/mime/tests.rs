//! Module-level tests of the public MIME API.

use super::*;

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

#[test]
fn analyze_simple() {
    let raw = crlf("Subject: hi\n\nbody\n");
    let c = analyze(&raw);
    assert_eq!(
        String::from_utf8(c.envelope).unwrap(),
        "(NIL \"hi\" NIL NIL NIL NIL NIL NIL NIL NIL)"
    );
    assert_eq!(
        String::from_utf8(c.body).unwrap(),
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1)"
    );
    assert_eq!(
        String::from_utf8(c.bodystructure).unwrap(),
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL)"
    );
}

const NESTED: &str = "From: a@b\nContent-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: text/plain\n\none\n--o\nContent-Type: message/rfc822\n\nSubject: inner\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\nalt1\n--i\nContent-Type: text/html\n\n<p>alt2</p>\n--i--\n--o--\n";

fn spec(part: &[u32], text: Option<SectionText>) -> SectionSpec {
    SectionSpec {
        part: part.to_vec(),
        text,
    }
}

#[test]
fn sections() {
    let raw = crlf(NESTED);
    let s = |p: &[u32], t| String::from_utf8(section(&raw, &spec(p, t))).unwrap();
    assert_eq!(s(&[], None), String::from_utf8(raw.clone()).unwrap());
    assert_eq!(
        s(&[], Some(SectionText::Header)),
        "From: a@b\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
    );
    assert_eq!(s(&[1], None), "one");
    assert_eq!(
        s(&[1], Some(SectionText::Mime)),
        "Content-Type: text/plain\r\n\r\n"
    );
    assert_eq!(
        s(&[2], Some(SectionText::Header)),
        "Subject: inner\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n"
    );
    assert!(s(&[2], Some(SectionText::Text)).starts_with("--i\r\n"));
    assert!(s(&[2], None).starts_with("Subject: inner"));
    assert_eq!(s(&[2, 1], None), "alt1");
    assert_eq!(s(&[2, 2], None), "<p>alt2</p>");
    assert_eq!(
        s(&[2, 2], Some(SectionText::Mime)),
        "Content-Type: text/html\r\n\r\n"
    );
    assert_eq!(s(&[3], None), "");
    // Dovecot leniency: a leaf multipart child answers to one extra `.1`.
    assert_eq!(s(&[1, 1], None), "one");
    assert_eq!(s(&[1, 1, 1], None), "");
    assert_eq!(
        s(
            &[],
            Some(SectionText::HeaderFields {
                names: vec!["FROM".into()],
                not: false
            })
        ),
        "From: a@b\r\n\r\n"
    );
    assert_eq!(
        s(
            &[2],
            Some(SectionText::HeaderFields {
                names: vec!["subject".into()],
                not: true
            })
        ),
        "Content-Type: multipart/alternative; boundary=i\r\n\r\n"
    );
}

#[test]
fn single_part_numbering() {
    let raw = crlf("Subject: x\n\nthe body\n");
    assert_eq!(section(&raw, &spec(&[1], None)), b"the body\r\n");
    assert_eq!(section(&raw, &spec(&[2], None)), b"");
    assert_eq!(section(&raw, &spec(&[1, 1], None)), b"");
    assert_eq!(binary(&raw, &[1]).unwrap(), b"the body\r\n");
    let raw = crlf("Content-Type: message/rfc822\n\nSubject: in\n\ninner body\n");
    assert_eq!(
        section(&raw, &spec(&[1], None)),
        crlf("Subject: in\n\ninner body\n")
    );
    assert_eq!(section(&raw, &spec(&[1, 1], None)), crlf("inner body\n"));
    assert_eq!(
        section(&raw, &spec(&[1], Some(SectionText::Header))),
        crlf("Subject: in\n\n")
    );
}

#[test]
fn binary_decodes() {
    let raw = crlf(
        "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: base64\n\naGVsbG8g\nd29ybGQ=\n--b\nContent-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9 =\nsoft\n--b\nContent-Transfer-Encoding: x-uuencode\n\nbegin\n--b--\n",
    );
    assert_eq!(binary(&raw, &[1]).unwrap(), b"hello world");
    assert_eq!(binary(&raw, &[2]).unwrap(), "café soft".as_bytes());
    assert_eq!(binary(&raw, &[3]), Err(BinaryError::UnknownCte));
    assert_eq!(binary(&raw, &[4]), Err(BinaryError::NoSuchPart));
    assert_eq!(binary(&raw, &[]).unwrap(), raw);
}

#[test]
fn binary_of_multipart_part_is_its_body() {
    let raw = crlf(
        "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\nplain\n--i--\n--o--\n",
    );
    // The same octets as BODY[1] (which the MIME differential checks against Dovecot).
    assert_eq!(
        binary(&raw, &[1]).unwrap(),
        section(&raw, &spec(&[1], None))
    );
    assert!(
        binary(&raw, &[1])
            .unwrap()
            .starts_with(b"--i\r\n\r\nplain\r\n--i--")
    );
}

#[test]
fn search_doc() {
    let raw = crlf(
        "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\n aus =?ISO-8859-1?Q?K=F6ln?=\nDate: Mon, 2 Jan 2023 10:00:00 +0100\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nM=FCnchen\n",
    );
    let d = SearchDoc::new(&raw);
    let subj = d.header("SUBJECT");
    assert_eq!(subj.len(), 1);
    assert!(subj[0].contains("Grüße"), "{subj:?}");
    assert!(subj[0].contains("Köln"), "{subj:?}");
    assert!(d.body_text().contains("München"));
    let date = d.sent_date().unwrap();
    assert_eq!(date.to_rfc3339(), "2023-01-02T10:00:00+01:00");
    assert!(d.header("x-missing").is_empty());
}

#[test]
fn never_panics_on_garbage() {
    let raw = crlf(NESTED);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"\r\n:;=\"()<>@,-.\\ \tab=?Q?B?\x80\xff\x00";
    for round in 0..400 {
        let mut msg: Vec<u8> = match round % 3 {
            0 => raw[..(next() as usize) % raw.len()].to_vec(),
            1 => {
                let mut m = raw.clone();
                for _ in 0..8 {
                    let i = (next() as usize) % m.len();
                    m[i] = alphabet[(next() as usize) % alphabet.len()];
                }
                m
            }
            _ => (0..(next() % 300))
                .map(|_| alphabet[(next() as usize) % alphabet.len()])
                .collect(),
        };
        if round % 7 == 0 {
            msg.extend_from_slice(b"\r\n--o\r\n");
        }
        let _ = analyze(&msg);
        for p in [&[][..], &[1], &[2], &[2, 1], &[2, 2, 1], &[0]] {
            for t in [
                None,
                Some(SectionText::Header),
                Some(SectionText::Text),
                Some(SectionText::Mime),
            ] {
                let _ = section(&msg, &spec(p, t));
            }
            let _ = binary(&msg, p);
        }
        let d = SearchDoc::new(&msg);
        let _ = (d.header("subject"), d.body_text(), d.sent_date());
    }
}

#[test]
fn deep_nesting_is_bounded() {
    let mut raw = Vec::new();
    for _ in 0..5000 {
        raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    raw.extend_from_slice(b"body\r\n");
    let c = analyze(&raw);
    assert!(c.bodystructure.starts_with(b"(\"message\""));
}

#[test]
fn mime_headers_collects_part_headers() {
    let raw = crlf(
        "Subject: top\n\
         Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nbody\n--b\nContent-Disposition: attachment; filename=x.pdf\n\nAAAA\n--b--\n",
    );
    let h = crate::mime::mime_headers(&raw);
    let h = String::from_utf8_lossy(&h);
    assert!(h.contains("Content-Disposition: attachment"), "{h}");
    assert!(h.contains("Content-Type: text/plain"), "{h}");
    assert!(!h.contains("Subject: top"), "{h}");
}
