//! SEARCH (RFC 9051 §6.4.4) with ESEARCH result options (RFC 4731), SEARCHRES (RFC 5182) and
//! the MODSEQ criterion with its `(MODSEQ n)` result (RFC 7162 §3.1.5, §3.1.6).

use chrono::{NaiveDate, Utc};
use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use crate::imap::session::selected::compact_set;
use crate::imap::session::{Completion, OpResult, Session};
use crate::imap::wire::parse::{SAVED_RESULT_SENTINEL, SearchReturn};
use crate::mime::{SearchDoc, SectionSpec, SectionText};
use crate::store::{MessageRecord, ModSeq, Uid};

/// What one message offers to the evaluator.
struct Msg<'a> {
    seq: u32,
    rec: &'a MessageRecord,
    doc: Option<&'a Doc>,
}

struct Doc {
    search: SearchDoc,
    /// The top-level header and the MIME headers of all parts (for TEXT).
    header_text: String,
}

struct Env<'a> {
    max_seq: u32,
    max_uid: u32,
    saved: Option<&'a [Uid]>,
    now: chrono::DateTime<Utc>,
}

fn needs_doc(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_doc),
        SearchKey::Not(k) => needs_doc(k),
        SearchKey::Or(a, b) => needs_doc(a) || needs_doc(b),
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => true,
        _ => false,
    }
}

/// True when the criteria use MODSEQ anywhere (a CONDSTORE enabling action whose results
/// carry the highest MODSEQ of the matches, RFC 7162 §3.1.5).
fn uses_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(uses_modseq),
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::ModSequence { .. } => true,
        _ => false,
    }
}

fn in_set(
    set: &SequenceSet,
    value: u32,
    max: u32,
    saved_hit: impl Fn() -> bool,
    saved: bool,
) -> bool {
    set.0.as_ref().iter().any(|seq| {
        let (a, b) = match seq {
            Sequence::Single(v) => (v, v),
            Sequence::Range(a, b) => (a, b),
        };
        if saved && a == b && matches!(a, SeqOrUid::Value(v) if v.get() == SAVED_RESULT_SENTINEL) {
            return saved_hit();
        }
        let v = |x: &SeqOrUid| match x {
            SeqOrUid::Value(v) => v.get(),
            SeqOrUid::Asterisk => max,
        };
        let (lo, hi) = (v(a).min(v(b)), v(a).max(v(b)));
        (lo..=hi).contains(&value)
    })
}

fn contains(hay: &str, needle: &[u8]) -> bool {
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    hay.to_lowercase().contains(&needle)
}

fn header_has(doc: Option<&Doc>, name: &str, needle: &[u8]) -> bool {
    doc.is_some_and(|d| {
        let values = d.search.header(name);
        if needle.is_empty() {
            return !values.is_empty();
        }
        values.iter().any(|v| contains(v, needle))
    })
}

fn date_of(d: &chrono::DateTime<chrono::FixedOffset>) -> NaiveDate {
    d.date_naive()
}

fn eval(key: &SearchKey<'_>, m: &Msg<'_>, env: &Env<'_>) -> bool {
    let has = |flag: &str| m.rec.flags.iter().any(|f| f.eq_ignore_ascii_case(flag));
    let sent = || {
        m.doc
            .and_then(|d| d.search.sent_date())
            .map(|d| date_of(&d))
    };
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| eval(k, m, env)),
        SearchKey::Or(a, b) => eval(a, m, env) || eval(b, m, env),
        SearchKey::Not(k) => !eval(k, m, env),
        SearchKey::SequenceSet(set) => in_set(
            set,
            m.seq,
            env.max_seq,
            || env.saved.is_some_and(|s| s.contains(&m.rec.uid)),
            env.saved.is_some(),
        ),
        SearchKey::Uid(set) => in_set(
            set,
            m.rec.uid.0,
            env.max_uid,
            || env.saved.is_some_and(|s| s.contains(&m.rec.uid)),
            env.saved.is_some(),
        ),
        SearchKey::All | SearchKey::Old => true,
        SearchKey::New | SearchKey::Recent => false,
        SearchKey::Answered => has("\\Answered"),
        SearchKey::Deleted => has("\\Deleted"),
        SearchKey::Draft => has("\\Draft"),
        SearchKey::Flagged => has("\\Flagged"),
        SearchKey::Seen => has("\\Seen"),
        SearchKey::Unanswered => !has("\\Answered"),
        SearchKey::Undeleted => !has("\\Deleted"),
        SearchKey::Undraft => !has("\\Draft"),
        SearchKey::Unflagged => !has("\\Flagged"),
        SearchKey::Unseen => !has("\\Seen"),
        SearchKey::Keyword(k) => has(k.as_ref()),
        SearchKey::Unkeyword(k) => !has(k.as_ref()),
        SearchKey::Larger(n) => m.rec.size > *n,
        SearchKey::Smaller(n) => m.rec.size < *n,
        SearchKey::Before(d) => date_of(&m.rec.internal_date) < *d.as_ref(),
        SearchKey::On(d) => date_of(&m.rec.internal_date) == *d.as_ref(),
        SearchKey::Since(d) => date_of(&m.rec.internal_date) >= *d.as_ref(),
        SearchKey::SentBefore(d) => sent().is_some_and(|s| s < *d.as_ref()),
        SearchKey::SentOn(d) => sent().is_some_and(|s| s == *d.as_ref()),
        SearchKey::SentSince(d) => sent().is_some_and(|s| s >= *d.as_ref()),
        SearchKey::Older(secs) => {
            (env.now - m.rec.internal_date.with_timezone(&Utc)).num_seconds()
                >= i64::from(secs.get())
        }
        SearchKey::Younger(secs) => {
            (env.now - m.rec.internal_date.with_timezone(&Utc)).num_seconds()
                <= i64::from(secs.get())
        }
        SearchKey::Bcc(s) => header_has(m.doc, "Bcc", s.as_ref()),
        SearchKey::Cc(s) => header_has(m.doc, "Cc", s.as_ref()),
        SearchKey::From(s) => header_has(m.doc, "From", s.as_ref()),
        SearchKey::To(s) => header_has(m.doc, "To", s.as_ref()),
        SearchKey::Subject(s) => header_has(m.doc, "Subject", s.as_ref()),
        SearchKey::Header(name, value) => header_has(
            m.doc,
            &String::from_utf8_lossy(name.as_ref()),
            value.as_ref(),
        ),
        SearchKey::Body(s) => m
            .doc
            .is_some_and(|d| contains(&d.search.body_text(), s.as_ref())),
        // The raw header block and its RFC 2047-decoded form, so that `TEXT Köln` finds
        // `Subject: =?utf-8?q?K=C3=B6ln?=` as SUBJECT does (RFC 9051 §6.4.4, as Dovecot).
        SearchKey::Text(s) => m.doc.is_some_and(|d| {
            contains(&d.header_text, s.as_ref())
                || contains(&d.search.header_text(), s.as_ref())
                || contains(&d.search.body_text(), s.as_ref())
        }),
        // MCP keeps one MODSEQ per message, so every entry name and type compares with it
        // (RFC 7162 §3.1.5 allows that: the message's MODSEQ is at least each flag's).
        SearchKey::ModSequence { modseq, .. } => m.rec.modseq.0 >= *modseq,
    }
}

/// SEARCH / UID SEARCH.
#[allow(clippy::too_many_arguments)]
pub(super) async fn search(
    s: &mut Session,
    tag: &str,
    charset: Option<&Charset<'_>>,
    criteria: &[SearchKey<'_>],
    uid: bool,
    ret: Option<SearchReturn>,
    saved: Option<&[Uid]>,
) -> OpResult {
    if let Some(cs) = charset {
        let name: &str = match cs {
            Charset::Atom(a) => a.as_ref(),
            Charset::Quoted(q) => q.as_ref(),
        };
        if !name.eq_ignore_ascii_case("UTF-8") && !name.eq_ignore_ascii_case("US-ASCII") {
            if ret.as_ref().is_some_and(|r| r.save) {
                s.saved_result.clear();
            }
            return Ok(Completion::no_code(
                "BADCHARSET (UTF-8 US-ASCII)",
                "Unsupported charset",
            ));
        }
    }
    let with_modseq = criteria.iter().any(uses_modseq);
    if with_modseq {
        s.enable_condstore();
    }
    let Some(sel) = s.selected.as_ref() else {
        return Ok(Completion::bad("No mailbox selected"));
    };
    let key_needs_doc = criteria.iter().any(needs_doc);
    let records: Vec<MessageRecord> = sel.messages.clone();
    let env = Env {
        max_seq: u32::try_from(records.len()).unwrap_or(u32::MAX),
        max_uid: records.last().map_or(0, |m| m.uid.0),
        saved,
        now: Utc::now(),
    };
    let mut hits: Vec<(u32, Uid, ModSeq)> = Vec::new();
    for (i, rec) in records.iter().enumerate() {
        let doc = if key_needs_doc {
            let raw = s.ctx.blobs.get(&rec.blob).await?;
            let doc = tokio::task::spawn_blocking(move || {
                let header = crate::mime::section(
                    &raw,
                    &SectionSpec {
                        part: vec![],
                        text: Some(SectionText::Header),
                    },
                );
                let mut header_text = String::from_utf8_lossy(&header).into_owned();
                header_text.push_str(&String::from_utf8_lossy(&crate::mime::mime_headers(&raw)));
                Doc {
                    search: SearchDoc::new(&raw),
                    header_text,
                }
            })
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
            Some(doc)
        } else {
            None
        };
        let m = Msg {
            seq: u32::try_from(i + 1).unwrap_or(u32::MAX),
            rec,
            doc: doc.as_ref(),
        };
        if criteria.iter().all(|k| eval(k, &m, &env)) {
            hits.push((m.seq, rec.uid, rec.modseq));
        }
    }
    let value = |h: &(u32, Uid, ModSeq)| if uid { h.1.0 } else { h.0 };
    let highest = |hits: &mut dyn Iterator<Item = &(u32, Uid, ModSeq)>| hits.map(|h| h.2.0).max();
    let esearch = ret.clone().or_else(|| {
        s.rev2.then(|| SearchReturn {
            all: true,
            ..Default::default()
        })
    });
    match esearch {
        None => {
            let mut line = String::from("SEARCH");
            for h in &hits {
                line.push(' ');
                line.push_str(&value(h).to_string());
            }
            if with_modseq && let Some(m) = highest(&mut hits.iter()) {
                line.push_str(&format!(" (MODSEQ {m})"));
            }
            s.untagged(line);
        }
        Some(r) => {
            if r.save {
                let only_min_max = (r.min || r.max) && !r.all && !r.count;
                s.saved_result = if only_min_max {
                    let mut v = Vec::new();
                    if r.min
                        && let Some(h) = hits.first()
                    {
                        v.push(h.1);
                    }
                    if r.max
                        && let Some(h) = hits.last()
                    {
                        v.push(h.1);
                    }
                    v.dedup();
                    v
                } else {
                    hits.iter().map(|h| h.1).collect()
                };
            }
            if r.min || r.max || r.all || r.count || (r.save && with_modseq) {
                let mut line = format!("ESEARCH (TAG \"{tag}\")");
                if uid {
                    line.push_str(" UID");
                }
                if r.min
                    && let Some(h) = hits.first()
                {
                    line.push_str(&format!(" MIN {}", value(h)));
                }
                if r.max
                    && let Some(h) = hits.last()
                {
                    line.push_str(&format!(" MAX {}", value(h)));
                }
                if r.count {
                    line.push_str(&format!(" COUNT {}", hits.len()));
                }
                if r.all && !hits.is_empty() {
                    line.push_str(&format!(" ALL {}", compact_set(hits.iter().map(value))));
                }
                if with_modseq {
                    // The highest MODSEQ of the messages returned: only MIN/MAX return just
                    // those two; ALL, COUNT and SAVE concern every match (RFC 4731 §3.2).
                    let m = if (r.min || r.max) && !(r.all || r.count || r.save) {
                        let ends = [
                            hits.first().filter(|_| r.min),
                            hits.last().filter(|_| r.max),
                        ];
                        highest(&mut ends.into_iter().flatten())
                    } else {
                        highest(&mut hits.iter())
                    };
                    if let Some(m) = m {
                        line.push_str(&format!(" MODSEQ {m}"));
                    }
                }
                s.untagged(line);
            }
        }
    }
    Ok(Completion::ok("Search completed."))
}
