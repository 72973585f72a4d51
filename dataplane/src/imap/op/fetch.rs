//! FETCH (RFC 9051 §6.4.5, §7.5.2) including BINARY (RFC 3516), partial fetches, and the
//! RFC 7162 MODSEQ item (§3.1.4.2) and CHANGEDSINCE / VANISHED modifiers (§3.1.4.1, §3.2.6).

use std::collections::HashMap;
use std::io::Write;

use bytes::Bytes;
use futures::StreamExt;
use imap_codec::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItemName, Section,
};
use imap_codec::imap_types::sequence::SequenceSet;

use crate::imap::session::selected::{compact_set, flag_list, uid_in_set};
use crate::imap::session::{Completion, OpResult, Session};
use crate::imap::wire::condstore::FetchModifiers;
use crate::imap::wire::out;
use crate::mime::{self, BinaryError, SectionSpec, SectionText};
use crate::store::{BlobId, FlagOp, MessageCache, MessageRecord, Uid};

/// Responses are flushed to the client whenever this much is buffered, so a FETCH of a
/// large mailbox streams instead of accumulating (octets).
const FLUSH_THRESHOLD: usize = 256 * 1024;

fn expand(items: MacroOrMessageDataItemNames<'static>) -> Vec<MessageDataItemName<'static>> {
    match items {
        MacroOrMessageDataItemNames::Macro(m) => {
            let mut v = vec![
                MessageDataItemName::Flags,
                MessageDataItemName::InternalDate,
                MessageDataItemName::Rfc822Size,
            ];
            match m {
                Macro::Fast => {}
                Macro::All => v.push(MessageDataItemName::Envelope),
                _ => v.extend([MessageDataItemName::Envelope, MessageDataItemName::Body]),
            }
            v
        }
        MacroOrMessageDataItemNames::MessageDataItemNames(v) => v,
    }
}

/// Our section specifier and its echo in the response (`1.2.HEADER.FIELDS (FROM)`).
fn section_spec(section: Option<&Section<'_>>) -> (SectionSpec, String) {
    let part_str = |p: &[std::num::NonZeroU32]| {
        p.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(".")
    };
    let with_dot = |p: &str, rest: &str| {
        if p.is_empty() {
            rest.to_owned()
        } else {
            format!("{p}.{rest}")
        }
    };
    let names = |v: &[imap_codec::imap_types::core::AString<'_>]| -> (Vec<String>, String) {
        let list: Vec<String> = v
            .iter()
            .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
            .collect();
        let echo = list
            .iter()
            .map(|n| n.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(" ");
        (list, echo)
    };
    let parts = |p: Option<&imap_codec::imap_types::fetch::Part>| -> Vec<std::num::NonZeroU32> {
        p.map(|p| p.0.as_ref().to_vec()).unwrap_or_default()
    };
    let (part, text, echo) = match section {
        None => (vec![], None, String::new()),
        Some(Section::Part(p)) => {
            let v = p.0.as_ref().to_vec();
            let e = part_str(&v);
            (v, None, e)
        }
        Some(Section::Header(p)) => {
            let v = parts(p.as_ref());
            let e = with_dot(&part_str(&v), "HEADER");
            (v, Some(SectionText::Header), e)
        }
        Some(Section::HeaderFields(p, fields)) => {
            let v = parts(p.as_ref());
            let (list, echo) = names(fields.as_ref());
            let e = with_dot(&part_str(&v), &format!("HEADER.FIELDS ({echo})"));
            (
                v,
                Some(SectionText::HeaderFields {
                    names: list,
                    not: false,
                }),
                e,
            )
        }
        Some(Section::HeaderFieldsNot(p, fields)) => {
            let v = parts(p.as_ref());
            let (list, echo) = names(fields.as_ref());
            let e = with_dot(&part_str(&v), &format!("HEADER.FIELDS.NOT ({echo})"));
            (
                v,
                Some(SectionText::HeaderFields {
                    names: list,
                    not: true,
                }),
                e,
            )
        }
        Some(Section::Text(p)) => {
            let v = parts(p.as_ref());
            let e = with_dot(&part_str(&v), "TEXT");
            (v, Some(SectionText::Text), e)
        }
        Some(Section::Mime(p)) => {
            let v = p.0.as_ref().to_vec();
            let e = with_dot(&part_str(&v), "MIME");
            (v, Some(SectionText::Mime), e)
        }
    };
    (
        SectionSpec {
            part: part.into_iter().map(|n| n.get()).collect(),
            text,
        },
        echo,
    )
}

fn partial(data: &[u8], range: Option<(u32, std::num::NonZeroU32)>) -> (&[u8], String) {
    match range {
        None => (data, String::new()),
        Some((start, len)) => {
            let start_usize = (start as usize).min(data.len());
            let end = start_usize
                .saturating_add(len.get() as usize)
                .min(data.len());
            (&data[start_usize..end], format!("<{start}>"))
        }
    }
}

fn body_value(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        out.extend_from_slice(b"\"\"");
    } else {
        out::literal(out, data);
    }
}

/// FETCH / UID FETCH.
pub(super) async fn fetch(
    s: &mut Session,
    set: &SequenceSet,
    items: MacroOrMessageDataItemNames<'static>,
    uid: bool,
    mods: FetchModifiers,
    saved: Option<&[Uid]>,
) -> OpResult {
    if mods.vanished && !s.qresync {
        return Ok(Completion::bad(
            "VANISHED needs ENABLE QRESYNC first (RFC 7162 §3.2.6)",
        ));
    }
    let Some(sel) = s.selected.as_ref() else {
        return Ok(Completion::bad("No mailbox selected"));
    };
    let mut indexes = match sel.resolve(set, uid, saved) {
        Ok(i) => i,
        Err(e) => return Ok(Completion::bad(e)),
    };
    let mut items = expand(items);
    if uid && !items.contains(&MessageDataItemName::Uid) {
        items.insert(0, MessageDataItemName::Uid);
    }
    let mut vanished = Vec::new();
    if let Some(since) = mods.changed_since {
        // RFC 7162 §3.1.4.1: only messages changed after `since`, and MODSEQ is implied.
        indexes.retain(|&i| sel.messages[i].modseq > since);
        if !items.contains(&MessageDataItemName::ModSeq) {
            items.push(MessageDataItemName::ModSeq);
        }
        if mods.vanished {
            // §3.2.6: UIDs of the set expunged after `since`. Those still in the view are
            // announced by the usual VANISHED after this command.
            vanished = s
                .ctx
                .store
                .expunged_since(sel.mailbox.id, since)
                .await?
                .into_iter()
                .filter(|u| sel.seq_of(*u).is_none() && uid_in_set(set, *u, saved))
                .map(|u| u.0)
                .collect();
        }
    }
    if items.contains(&MessageDataItemName::ModSeq) {
        s.enable_condstore();
    }
    if !vanished.is_empty() {
        s.untagged(format!("VANISHED (EARLIER) {}", compact_set(vanished)));
    }
    let report = s.report();
    let Some(sel) = s.selected.as_ref() else {
        return Ok(Completion::bad("No mailbox selected"));
    };
    let needs_cache = items.iter().any(|i| {
        matches!(
            i,
            MessageDataItemName::Envelope
                | MessageDataItemName::Body
                | MessageDataItemName::BodyStructure
        )
    });
    let needs_blob = items.iter().any(needs_body);
    // Partial fetches of the whole message (`BODY[]<start.len>`, `BINARY[]<start.len>`)
    // need only their octets: when nothing else needs the body, they are ranged reads
    // (a ranged GET on S3) instead of reading the whole message.
    let ranged_only = needs_blob
        && items
            .iter()
            .filter(|i| needs_body(i))
            .all(|i| whole_partial(i).is_some());
    let sets_seen = !sel.read_only
        && items.iter().any(|i| {
            matches!(
                i,
                MessageDataItemName::BodyExt { peek: false, .. }
                    | MessageDataItemName::Binary { peek: false, .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Text
            )
        });
    let id = sel.mailbox.id;
    let uids: Vec<Uid> = indexes.iter().map(|&i| sel.messages[i].uid).collect();

    // Implicit \Seen (RFC 9051 §6.4.5) is set before the data is returned, and FLAGS is
    // reported for the messages whose flags changed.
    let mut seen_changed: Vec<Uid> = Vec::new();
    if sets_seen {
        let unseen: Vec<Uid> = indexes
            .iter()
            .map(|&i| &sel.messages[i])
            .filter(|m| !m.flags.iter().any(|f| f == "\\Seen"))
            .map(|m| m.uid)
            .collect();
        if !unseen.is_empty() {
            let outcome = s
                .ctx
                .store
                .store_flags(id, &unseen, FlagOp::Add, &["\\Seen".to_owned()], None)
                .await?;
            if let Some(sel) = s.selected.as_mut() {
                for rec in outcome.updated {
                    seen_changed.push(rec.uid);
                    if let Some(seq) = sel.seq_of(rec.uid) {
                        sel.messages[seq - 1] = rec;
                    }
                }
            }
        }
    }
    let caches: HashMap<Uid, MessageCache> = if needs_cache {
        s.ctx.store.cache(id, &uids).await?.into_iter().collect()
    } else {
        HashMap::new()
    };
    let records: Vec<(usize, MessageRecord)> = match s.selected.as_ref() {
        Some(sel) => indexes
            .iter()
            .map(|&i| (i + 1, sel.messages[i].clone()))
            .collect(),
        None => return Ok(Completion::bad("No mailbox selected")),
    };
    // Bodies are read ahead of the message being answered, a few at a time and in order,
    // so that a FETCH over many messages waits for one blob store round trip (an S3 GET)
    // per batch instead of one per message. Large bodies are read one at a time, which
    // bounds the memory held.
    let wanted: Vec<Option<BlobId>> = records
        .iter()
        .map(|(_, rec)| {
            let must_analyze = needs_cache && !caches.contains_key(&rec.uid);
            ((needs_blob && !ranged_only) || must_analyze).then(|| rec.blob.clone())
        })
        .collect();
    let ahead = if records.iter().all(|(_, r)| r.size <= READ_AHEAD_MAX_SIZE) {
        READ_AHEAD
    } else {
        1
    };
    let blobs = s.ctx.blobs.clone();
    let mut bodies = futures::stream::iter(wanted)
        .map(move |id| {
            let blobs = blobs.clone();
            async move {
                match id {
                    Some(id) => blobs.get(&id).await.map(Some),
                    None => Ok(None),
                }
            }
        })
        .buffered(ahead);
    for (seq, rec) in records {
        let blob: Option<Bytes> = bodies.next().await.transpose()?.flatten();
        let computed;
        let cache = match caches.get(&rec.uid) {
            Some(c) => Some(c),
            None if needs_cache => {
                computed = mime::analyze(blob.as_deref().unwrap_or_default());
                Some(&computed)
            }
            None => None,
        };
        let mut line = format!("* {seq} FETCH (").into_bytes();
        let mut first = true;
        let mut flags_sent = false;
        for item in &items {
            if !first {
                line.push(b' ');
            }
            first = false;
            if blob.is_none()
                && let Some((binary, start, len)) = whole_partial(item)
            {
                let data = s
                    .ctx
                    .blobs
                    .get_range(&rec.blob, u64::from(start), u64::from(len))
                    .await?;
                if binary {
                    let _ = write!(line, "BINARY[]<{start}> ");
                    binary_value(&mut line, &data);
                } else {
                    let _ = write!(line, "BODY[]<{start}> ");
                    body_value(&mut line, &data);
                }
                continue;
            }
            let raw = blob.as_deref().unwrap_or_default();
            match item {
                MessageDataItemName::Uid => {
                    let _ = write!(line, "UID {}", rec.uid.0);
                }
                MessageDataItemName::Flags => {
                    flags_sent = true;
                    let _ = write!(line, "FLAGS {}", flag_list(&rec.flags));
                }
                MessageDataItemName::InternalDate => {
                    let _ = write!(
                        line,
                        "INTERNALDATE \"{}\"",
                        rec.internal_date.format("%d-%b-%Y %H:%M:%S %z")
                    );
                }
                MessageDataItemName::Rfc822Size => {
                    let _ = write!(line, "RFC822.SIZE {}", rec.size);
                }
                MessageDataItemName::ModSeq => {
                    let _ = write!(line, "MODSEQ ({})", rec.modseq.0);
                }
                MessageDataItemName::Envelope => {
                    line.extend_from_slice(b"ENVELOPE ");
                    line.extend_from_slice(
                        cache.map(|c| c.envelope.as_slice()).unwrap_or_default(),
                    );
                }
                MessageDataItemName::Body => {
                    line.extend_from_slice(b"BODY ");
                    line.extend_from_slice(cache.map(|c| c.body.as_slice()).unwrap_or_default());
                }
                MessageDataItemName::BodyStructure => {
                    line.extend_from_slice(b"BODYSTRUCTURE ");
                    line.extend_from_slice(
                        cache
                            .map(|c| c.bodystructure.as_slice())
                            .unwrap_or_default(),
                    );
                }
                MessageDataItemName::BodyExt {
                    section,
                    partial: range,
                    ..
                } => {
                    let (spec, echo) = section_spec(section.as_ref());
                    let data = mime::section(raw, &spec);
                    let (data, origin) = partial(&data, *range);
                    let _ = write!(line, "BODY[{echo}]{origin} ");
                    body_value(&mut line, data);
                }
                MessageDataItemName::Binary {
                    section,
                    partial: range,
                    ..
                } => {
                    let part: Vec<u32> = section.iter().map(|n| n.get()).collect();
                    let data = match binary(raw, &part) {
                        Ok(d) => d,
                        Err(c) => return Ok(c),
                    };
                    let (data, origin) = partial(&data, *range);
                    let _ = write!(line, "BINARY[{}]{origin} ", join_part(&part));
                    binary_value(&mut line, data);
                }
                MessageDataItemName::BinarySize { section } => {
                    let part: Vec<u32> = section.iter().map(|n| n.get()).collect();
                    let data = match binary(raw, &part) {
                        Ok(d) => d,
                        Err(c) => return Ok(c),
                    };
                    let _ = write!(line, "BINARY.SIZE[{}] {}", join_part(&part), data.len());
                }
                MessageDataItemName::Rfc822 => {
                    line.extend_from_slice(b"RFC822 ");
                    body_value(&mut line, raw);
                }
                MessageDataItemName::Rfc822Header => {
                    let data = mime::section(
                        raw,
                        &SectionSpec {
                            part: vec![],
                            text: Some(SectionText::Header),
                        },
                    );
                    line.extend_from_slice(b"RFC822.HEADER ");
                    body_value(&mut line, &data);
                }
                MessageDataItemName::Rfc822Text => {
                    let data = mime::section(
                        raw,
                        &SectionSpec {
                            part: vec![],
                            text: Some(SectionText::Text),
                        },
                    );
                    line.extend_from_slice(b"RFC822.TEXT ");
                    body_value(&mut line, &data);
                }
            }
        }
        if seen_changed.contains(&rec.uid) {
            // The implicit \Seen changed the flags: report them, and with CONDSTORE the UID
            // and new MODSEQ too (RFC 7162 §3.1.2, §3.2.4).
            if !flags_sent {
                let _ = write!(line, " FLAGS {}", flag_list(&rec.flags));
            }
            if report.uid && !items.contains(&MessageDataItemName::Uid) {
                let _ = write!(line, " UID {}", rec.uid.0);
            }
            if report.modseq && !items.contains(&MessageDataItemName::ModSeq) {
                let _ = write!(line, " MODSEQ ({})", rec.modseq.0);
            }
        }
        line.extend_from_slice(b")\r\n");
        s.out.extend_from_slice(&line);
        if s.out.len() > FLUSH_THRESHOLD {
            s.flush().await?;
        }
    }
    Ok(Completion::ok("Fetch completed."))
}

/// Whether `item` needs the message's octets.
/// How many bodies a FETCH reads ahead of the message it answers (see [`fetch`]).
const READ_AHEAD: usize = 8;
/// Bodies are read ahead only when every message of the FETCH is at most this large
/// (RFC822.SIZE, octets): 1 MiB, so at most 8 MiB are held ahead.
const READ_AHEAD_MAX_SIZE: u32 = 1024 * 1024;

fn needs_body(item: &MessageDataItemName<'_>) -> bool {
    matches!(
        item,
        MessageDataItemName::BodyExt { .. }
            | MessageDataItemName::Binary { .. }
            | MessageDataItemName::BinarySize { .. }
            | MessageDataItemName::Rfc822
            | MessageDataItemName::Rfc822Header
            | MessageDataItemName::Rfc822Text
    )
}

/// For a partial fetch of the whole message, `BODY[]<start.len>` (or `BODY.PEEK`) or
/// `BINARY[]<start.len>` (the whole message is not decoded: RFC 3516 §4.2), whether it is
/// BINARY, its start and its length (octets).
fn whole_partial(item: &MessageDataItemName<'_>) -> Option<(bool, u32, u32)> {
    match item {
        MessageDataItemName::BodyExt {
            section: None,
            partial: Some((start, len)),
            ..
        } => Some((false, *start, len.get())),
        MessageDataItemName::Binary {
            section,
            partial: Some((start, len)),
            ..
        } if section.is_empty() => Some((true, *start, len.get())),
        _ => None,
    }
}

/// A BINARY value: a `literal8` (`~{n}`) when it holds NUL, else a string (RFC 3516 §4.2).
fn binary_value(out: &mut Vec<u8>, data: &[u8]) {
    if data.contains(&0) {
        let _ = write!(out, "~{{{}}}\r\n", data.len());
        out.extend_from_slice(data);
    } else {
        body_value(out, data);
    }
}

fn join_part(part: &[u32]) -> String {
    part.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

fn binary(raw: &[u8], part: &[u32]) -> Result<Vec<u8>, Completion> {
    match mime::binary(raw, part) {
        Ok(d) => Ok(d),
        Err(BinaryError::UnknownCte) => Err(Completion::no_code(
            "UNKNOWN-CTE",
            "Unknown Content-Transfer-Encoding",
        )),
        Err(BinaryError::NoSuchPart) => Ok(Vec::new()),
    }
}
