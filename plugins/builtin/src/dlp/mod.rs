//! `dlp`: data-loss prevention with validators, not bare regexes (DESIGN.md §4).
//!
//! The plugin scans the Subject and every text part and text-like attachment of the message,
//! anywhere in the MIME tree, after transfer-encoding and charset decoding. Each detector
//! finds candidates and validates them ([`detect`]); matches may need a keyword nearby
//! (`proximity`) and a minimum count (`minCount`). Every detector that fires has an action;
//! the most severe one decides: `reject` > `quarantine` > `redact` > `tag` > `alert`.
//!
//! Matched data never leaves the plugin: logs, errors, verdict texts, headers and metadata
//! name detectors and counts only.

pub mod detect;

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use futures::future::BoxFuture;
use mail_parser::MessageParser;
use mcp_crds::plugin::Capability;
use mcp_plugin_api::{
    Capabilities, MessageContext, Mutation, Plugin, PluginError, StepOutput, Verdict,
};
use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use crate::config::{Size, invalid, parse};
use crate::mime::TextUnits;
use crate::{ConfigError, run_scan};
use detect::{CloudKeyType, WordMatcher, back_chars, fwd_chars};

const NAME: &str = "dlp";

/// The header `tag` sets unless `tagHeader` says otherwise.
pub const DEFAULT_TAG_HEADER: &str = "X-MCP-DLP";
/// The metadata key `alert` sets.
pub const ALERT_METADATA_KEY: &str = "dlp.alert";
/// Default cap on decoded text scanned per message: 10 MiB.
pub const DEFAULT_MAX_SCAN_BYTES: u64 = 10 << 20;
/// Default characters before a card number searched for `excludeNear` words.
pub const DEFAULT_EXCLUDE_WINDOW: u32 = 24;
/// Labels that make a Luhn-valid number an order or reference number, not a card.
pub const DEFAULT_EXCLUDE_WORDS: &[&str] = &[
    "invoice",
    "inv",
    "order",
    "tracking",
    "ref",
    "reference",
    "shipment",
    "booking",
    "confirmation",
];
/// Default `proximity.window`, characters on each side of a match.
pub const DEFAULT_PROXIMITY_WINDOW: u32 = 50;

/// What happens when a detector fires. Ordered by severity, least first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DlpAction {
    /// `SetMetadata dlp.alert` with a summary and a warning log; the message goes on.
    Alert,
    /// A header (`X-MCP-DLP: paymentCard=2, iban=1`); the message goes on.
    Tag,
    /// Masks the matches in the stored message (cards keep their last 4 digits).
    Redact,
    /// Holds the message in the tenant's quarantine.
    Quarantine,
    /// Refuses the message permanently with 5.7.1.
    Reject,
}

/// The validator a detector runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DetectorKind {
    /// Payment card numbers: 13 to 19 digits (spaces or dashes between groups), Luhn,
    /// brand prefix and length, not a published test number, not right after an
    /// `excludeNear` label.
    PaymentCard,
    /// IBANs (ISO 13616): country length table, mod-97, with or without spaces.
    Iban,
    /// US Social Security numbers `AAA-GG-SSSS` minus the never-issued ranges.
    UsSsn,
    /// Cloud credentials and private keys (see `keyTypes`).
    CloudKeys,
    /// A custom regular expression (`pattern`), linear-time Rust `regex` syntax.
    Regex,
    /// A list of words or phrases (`keywords`), whole-word and case-insensitive.
    Keywords,
}

impl DetectorKind {
    fn name(self) -> &'static str {
        match self {
            DetectorKind::PaymentCard => "paymentCard",
            DetectorKind::Iban => "iban",
            DetectorKind::UsSsn => "usSsn",
            DetectorKind::CloudKeys => "cloudKeys",
            DetectorKind::Regex => "regex",
            DetectorKind::Keywords => "keywords",
        }
    }
}

/// Require a keyword near each match.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProximityConfig {
    /// Words or phrases (whole-word, case-insensitive); at least one.
    pub keywords: Vec<String>,
    /// Characters searched on each side of the match; default 50, at most 10000.
    #[serde(default)]
    pub window: Option<u32>,
}

/// Labels that disqualify a card number right after them.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExcludeNearConfig {
    /// Words (whole-word, case-insensitive); default `invoice`, `inv`, `order`, `tracking`,
    /// `ref`, `reference`, `shipment`, `booking`, `confirmation`. At least one when given.
    #[serde(default)]
    pub words: Option<Vec<String>>,
    /// Characters before the number searched; default 24, 0 turns the exclusion off.
    #[serde(default)]
    pub window: Option<u32>,
}

/// One detector.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetectorConfig {
    /// The validator.
    pub kind: DetectorKind,
    /// Name shown in headers, verdicts and metadata, 1 to 64 of `[A-Za-z0-9_-]`, unique;
    /// default the kind (`paymentCard`). Required for `regex` and `keywords`.
    #[serde(default)]
    pub name: Option<String>,
    /// Action when the detector fires; default the top-level `action`.
    #[serde(default)]
    pub action: Option<DlpAction>,
    /// Matches needed for the detector to fire; default 1.
    #[serde(default)]
    pub min_count: Option<u32>,
    /// Only count matches with one of these keywords nearby.
    #[serde(default)]
    pub proximity: Option<ProximityConfig>,
    /// `paymentCard` only: labels that make a number an order/invoice number.
    #[serde(default)]
    pub exclude_near: Option<ExcludeNearConfig>,
    /// `usSsn` only: also match nine bare digits; default false.
    #[serde(default)]
    pub allow_undashed: Option<bool>,
    /// `cloudKeys` only: which credentials (`awsAccessKeyId`, `awsSecretKey`, `gcpApiKey`,
    /// `githubToken`, `slackToken`, `privateKey`); default all.
    #[serde(default)]
    pub key_types: Option<Vec<CloudKeyType>>,
    /// `regex` only (required): the pattern; must not match the empty string.
    #[serde(default)]
    pub pattern: Option<String>,
    /// `keywords` only (required): words or phrases.
    #[serde(default)]
    pub keywords: Option<Vec<String>>,
}

/// `dlp` config.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DlpConfig {
    /// Default action of the detectors; default `tag`.
    #[serde(default)]
    pub action: Option<DlpAction>,
    /// Detectors; default `paymentCard`, `iban`, `usSsn` and `cloudKeys` with their
    /// defaults. At least one when given.
    #[serde(default)]
    pub detectors: Option<Vec<DetectorConfig>>,
    /// Decoded text scanned per message at most, octets or a quantity; default `10Mi`.
    /// Text past it is not scanned (and `redact` of a cut part fails the step).
    #[serde(default)]
    pub max_scan_bytes: Option<Size>,
    /// Header set by `tag` (replacing any present); default `X-MCP-DLP`.
    #[serde(default)]
    pub tag_header: Option<String>,
}

#[derive(Debug)]
enum Finder {
    Card {
        exclude: Option<(WordMatcher, usize)>,
    },
    Iban,
    Ssn {
        allow_undashed: bool,
    },
    Cloud {
        types: Vec<CloudKeyType>,
    },
    Regex(Regex),
    Keywords(WordMatcher),
}

#[derive(Debug)]
struct Detector {
    name: String,
    action: DlpAction,
    min_count: usize,
    proximity: Option<(WordMatcher, usize)>,
    finder: Finder,
}

impl Detector {
    /// Validated matches in `text`, proximity applied.
    fn find(&self, text: &str) -> Vec<Range<usize>> {
        let raw = match &self.finder {
            Finder::Card { exclude } => {
                let mut cards = detect::find_cards(text);
                if let Some((words, window)) = exclude {
                    cards.retain(|r| {
                        !words.any_in(text, back_chars(text, r.start, *window), r.start)
                    });
                }
                cards
            }
            Finder::Iban => detect::find_ibans(text),
            Finder::Ssn { allow_undashed } => detect::find_ssns(text, *allow_undashed),
            Finder::Cloud { types } => detect::find_cloud_keys(text, types),
            Finder::Regex(re) => re
                .find_iter(text)
                .map(|m| m.range())
                .filter(|r| !r.is_empty())
                .collect(),
            Finder::Keywords(words) => words.find_in(text, 0, text.len()).collect(),
        };
        match &self.proximity {
            None => raw,
            Some((words, window)) => raw
                .into_iter()
                .filter(|r| {
                    let from = back_chars(text, r.start, *window);
                    let to = fwd_chars(text, r.end, *window);
                    words.any_in(text, from, r.start) || words.any_in(text, r.end, to)
                })
                .collect(),
        }
    }

    /// How a match is masked: cards keep their last 4 digits and separators; the rest loses
    /// every non-space character.
    fn digits_only(&self) -> bool {
        matches!(self.finder, Finder::Card { .. })
    }
}

/// The `dlp` plugin.
#[derive(Debug)]
pub struct Dlp {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    detectors: Vec<Detector>,
    max_scan_bytes: usize,
    tag_header: String,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn words(list: &[String], field: &str) -> Result<WordMatcher, ConfigError> {
    if list.is_empty() {
        return Err(invalid(NAME, field, "must list at least one word"));
    }
    WordMatcher::new(list).map_err(|e| match e {
        detect::WordsError::Empty(i) => invalid(NAME, format!("{field}[{i}]"), "must not be empty"),
        detect::WordsError::TooLarge => invalid(NAME, field, "too many or too long words"),
    })
}

fn build_detector(
    i: usize,
    d: DetectorConfig,
    default_action: DlpAction,
) -> Result<Detector, ConfigError> {
    let field = |f: &str| format!("detectors[{i}].{f}");
    let only = |set: bool, f: &str, kind: &str| -> Result<(), ConfigError> {
        if set {
            Err(invalid(
                NAME,
                field(f),
                format!("only allowed with kind {kind}"),
            ))
        } else {
            Ok(())
        }
    };
    only(
        d.exclude_near.is_some() && d.kind != DetectorKind::PaymentCard,
        "excludeNear",
        "paymentCard",
    )?;
    only(
        d.allow_undashed.is_some() && d.kind != DetectorKind::UsSsn,
        "allowUndashed",
        "usSsn",
    )?;
    only(
        d.key_types.is_some() && d.kind != DetectorKind::CloudKeys,
        "keyTypes",
        "cloudKeys",
    )?;
    only(
        d.pattern.is_some() && d.kind != DetectorKind::Regex,
        "pattern",
        "regex",
    )?;
    only(
        d.keywords.is_some() && d.kind != DetectorKind::Keywords,
        "keywords",
        "keywords",
    )?;

    let name = match (&d.name, d.kind) {
        (Some(n), _) => n.clone(),
        (None, DetectorKind::Regex | DetectorKind::Keywords) => {
            return Err(invalid(
                NAME,
                field("name"),
                "required for kinds regex and keywords",
            ));
        }
        (None, k) => k.name().to_string(),
    };
    if !valid_name(&name) {
        return Err(invalid(
            NAME,
            field("name"),
            "must be 1 to 64 of [A-Za-z0-9_-]",
        ));
    }
    let min_count = match d.min_count {
        None => 1,
        Some(0) => return Err(invalid(NAME, field("minCount"), "must be at least 1")),
        Some(n) => n as usize,
    };
    let proximity = match &d.proximity {
        None => None,
        Some(p) => {
            let window = p.window.unwrap_or(DEFAULT_PROXIMITY_WINDOW);
            if window == 0 || window > 10_000 {
                return Err(invalid(
                    NAME,
                    field("proximity.window"),
                    "must be 1 to 10000 characters",
                ));
            }
            Some((
                words(&p.keywords, &field("proximity.keywords"))?,
                window as usize,
            ))
        }
    };
    let finder = match d.kind {
        DetectorKind::PaymentCard => {
            let (list, window) = match &d.exclude_near {
                None => (None, DEFAULT_EXCLUDE_WINDOW),
                Some(e) => (e.words.clone(), e.window.unwrap_or(DEFAULT_EXCLUDE_WINDOW)),
            };
            if window > 10_000 {
                return Err(invalid(
                    NAME,
                    field("excludeNear.window"),
                    "must be at most 10000 characters",
                ));
            }
            let list = list.unwrap_or_else(|| {
                DEFAULT_EXCLUDE_WORDS
                    .iter()
                    .map(|w| w.to_string())
                    .collect()
            });
            let exclude = if window == 0 {
                None
            } else {
                Some((words(&list, &field("excludeNear.words"))?, window as usize))
            };
            Finder::Card { exclude }
        }
        DetectorKind::Iban => Finder::Iban,
        DetectorKind::UsSsn => Finder::Ssn {
            allow_undashed: d.allow_undashed.unwrap_or(false),
        },
        DetectorKind::CloudKeys => {
            let types = match d.key_types {
                None => CloudKeyType::ALL.to_vec(),
                Some(t) if t.is_empty() => {
                    return Err(invalid(NAME, field("keyTypes"), "must not be empty"));
                }
                Some(t) => {
                    let mut seen = HashSet::new();
                    t.into_iter().filter(|k| seen.insert(*k)).collect()
                }
            };
            Finder::Cloud { types }
        }
        DetectorKind::Regex => {
            let Some(pattern) = &d.pattern else {
                return Err(invalid(NAME, field("pattern"), "required for kind regex"));
            };
            let re = RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .dfa_size_limit(2 << 20)
                .build()
                .map_err(|e| invalid(NAME, field("pattern"), format!("invalid regex: {e}")))?;
            if re.is_match("") {
                return Err(invalid(
                    NAME,
                    field("pattern"),
                    "must not match the empty string",
                ));
            }
            Finder::Regex(re)
        }
        DetectorKind::Keywords => {
            let Some(list) = &d.keywords else {
                return Err(invalid(
                    NAME,
                    field("keywords"),
                    "required for kind keywords",
                ));
            };
            Finder::Keywords(words(list, &field("keywords"))?)
        }
    };
    Ok(Detector {
        name,
        action: d.action.unwrap_or(default_action),
        min_count,
        proximity,
        finder,
    })
}

/// What one detector found in a message.
#[derive(Debug)]
struct Finding<'d> {
    detector: &'d Detector,
    /// (text unit index, range in its text)
    matches: Vec<(usize, Range<usize>)>,
}

impl Dlp {
    /// Parses and validates `config`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field: an invalid or empty-matching regex, an empty list, a
    /// kind-specific field on the wrong kind, a duplicate name, a zero `minCount`, ...
    pub fn from_config(config: Option<&serde_json::Value>) -> Result<Self, ConfigError> {
        let config: DlpConfig = parse(NAME, config)?;
        let default_action = config.action.unwrap_or(DlpAction::Tag);
        let detectors = match config.detectors {
            Some(d) if d.is_empty() => {
                return Err(invalid(
                    NAME,
                    "detectors",
                    "must list at least one detector",
                ));
            }
            Some(d) => d,
            None => [
                DetectorKind::PaymentCard,
                DetectorKind::Iban,
                DetectorKind::UsSsn,
                DetectorKind::CloudKeys,
            ]
            .into_iter()
            .map(|kind| DetectorConfig {
                kind,
                name: None,
                action: None,
                min_count: None,
                proximity: None,
                exclude_near: None,
                allow_undashed: None,
                key_types: None,
                pattern: None,
                keywords: None,
            })
            .collect(),
        };
        let mut names = HashSet::new();
        let mut built = Vec::with_capacity(detectors.len());
        for (i, d) in detectors.into_iter().enumerate() {
            let det = build_detector(i, d, default_action)?;
            if !names.insert(det.name.clone()) {
                return Err(invalid(
                    NAME,
                    format!("detectors[{i}].name"),
                    format!("duplicate detector name {:?}", det.name),
                ));
            }
            built.push(det);
        }
        let max_scan_bytes = config
            .max_scan_bytes
            .map_or(DEFAULT_MAX_SCAN_BYTES, Size::octets);
        if max_scan_bytes == 0 {
            return Err(invalid(NAME, "maxScanBytes", "must be at least 1 octet"));
        }
        let tag_header = config
            .tag_header
            .unwrap_or_else(|| DEFAULT_TAG_HEADER.into());
        Mutation::change_header(tag_header.clone(), "x")
            .map_err(|e| invalid(NAME, "tagHeader", e.0))?;
        Ok(Self {
            inner: Arc::new(Inner {
                detectors: built,
                max_scan_bytes: usize::try_from(max_scan_bytes).unwrap_or(usize::MAX),
                tag_header,
            }),
        })
    }

    /// The mutations the configured actions may return: `redact` → `ReplaceBody` and
    /// `ChangeHeader`; `tag` → `ChangeHeader`; `alert` → `SetMetadata`.
    pub fn capabilities(&self) -> Capabilities {
        let mut caps = Vec::new();
        for d in &self.inner.detectors {
            match d.action {
                DlpAction::Redact => {
                    caps.extend([Capability::ReplaceBody, Capability::ChangeHeader])
                }
                DlpAction::Tag => caps.push(Capability::ChangeHeader),
                DlpAction::Alert => caps.push(Capability::SetMetadata),
                DlpAction::Quarantine | DlpAction::Reject => {}
            }
        }
        caps.into_iter().collect()
    }

    /// The step output for the raw message `raw`.
    ///
    /// # Errors
    /// [`PluginError::Failed`] when a redaction cannot be written back (the match lies in
    /// text cut by `maxScanBytes`).
    pub fn evaluate(&self, raw: &[u8]) -> Result<StepOutput, PluginError> {
        self.inner.evaluate(raw)
    }
}

impl Inner {
    fn evaluate(&self, raw: &[u8]) -> Result<StepOutput, PluginError> {
        let Some(message) = MessageParser::default().parse(raw) else {
            return Ok(StepOutput::pass());
        };
        let units = TextUnits::collect(&message, raw, self.max_scan_bytes);
        if units.truncated {
            tracing::debug!(limit = self.max_scan_bytes, "dlp scan limit reached");
        }
        let findings: Vec<Finding<'_>> = self
            .detectors
            .iter()
            .filter_map(|d| {
                let matches: Vec<(usize, Range<usize>)> = units
                    .units
                    .iter()
                    .enumerate()
                    .flat_map(|(i, u)| d.find(&u.text).into_iter().map(move |r| (i, r)))
                    .collect();
                (matches.len() >= d.min_count).then_some(Finding {
                    detector: d,
                    matches,
                })
            })
            .collect();
        let Some(action) = findings.iter().map(|f| f.detector.action).max() else {
            return Ok(StepOutput::pass());
        };
        let summary = findings
            .iter()
            .map(|f| format!("{}={}", f.detector.name, f.matches.len()))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(match action {
            DlpAction::Reject => {
                let names = findings
                    .iter()
                    .map(|f| f.detector.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut text = format!("Message refused: sensitive data detected ({names})");
                truncate_ascii(&mut text, 200);
                StepOutput::verdict(Verdict::reject(text))
            }
            DlpAction::Quarantine => {
                let mut reason = format!("dlp: {summary}");
                truncate_ascii(&mut reason, 200);
                StepOutput::verdict(Verdict::quarantine(reason))
            }
            DlpAction::Redact => {
                let redactions = redactions(&units, &findings);
                let rewrite = units.rewrite(&redactions).map_err(|e| {
                    PluginError::Failed(format!("dlp cannot redact this message: {e}"))
                })?;
                let mut mutations = rewrite.header_mutations;
                if let Some(body) = rewrite.body {
                    mutations.push(Mutation::ReplaceBody { body: body.into() });
                }
                StepOutput::mutate(mutations)
            }
            DlpAction::Tag => {
                let mut value = summary;
                truncate_ascii(&mut value, 900);
                let m = Mutation::change_header(self.tag_header.clone(), value)
                    .map_err(|e| PluginError::Failed(e.to_string()))?;
                StepOutput::mutate(vec![m])
            }
            DlpAction::Alert => {
                tracing::warn!(detectors = %summary, "dlp alert: sensitive data in message");
                let mut value = summary;
                truncate_ascii(&mut value, 4096);
                StepOutput::mutate(vec![Mutation::SetMetadata {
                    key: ALERT_METADATA_KEY.into(),
                    value,
                }])
            }
        })
    }
}

/// Cuts an ASCII string to `max` octets (names are ASCII by construction).
fn truncate_ascii(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// The masked texts: matches of the detectors whose action is `redact`.
fn redactions(units: &TextUnits<'_>, findings: &[Finding<'_>]) -> Vec<(usize, String)> {
    // Per unit: byte ranges and whether only digits are masked (cards).
    let mut per_unit: BTreeMap<usize, Vec<(Range<usize>, bool)>> = BTreeMap::new();
    for f in findings
        .iter()
        .filter(|f| f.detector.action == DlpAction::Redact)
    {
        for (unit, r) in &f.matches {
            per_unit
                .entry(*unit)
                .or_default()
                .push((r.clone(), f.detector.digits_only()));
        }
    }
    per_unit
        .into_iter()
        .map(|(unit, ranges)| (unit, mask(&units.units[unit].text, &ranges)))
        .collect()
}

/// `text` with `ranges` masked by `*`: digits only except the last 4 for card ranges, every
/// non-whitespace character otherwise.
fn mask(text: &str, ranges: &[(Range<usize>, bool)]) -> String {
    // 0 = keep, 1 = mask digits, 2 = mask all but whitespace.
    let mut how = vec![0u8; text.len()];
    for (r, digits_only) in ranges {
        if *digits_only {
            let digit_positions: Vec<usize> = text[r.clone()]
                .bytes()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_digit())
                .map(|(i, _)| r.start + i)
                .collect();
            let keep_from = digit_positions.len().saturating_sub(4);
            for &p in &digit_positions[..keep_from] {
                how[p] = how[p].max(1);
            }
        } else {
            for h in &mut how[r.clone()] {
                *h = 2;
            }
        }
    }
    text.char_indices()
        .map(|(i, c)| match how[i] {
            1 if c.is_ascii_digit() => '*',
            2 if !c.is_whitespace() => '*',
            _ => c,
        })
        .collect()
}

impl Plugin for Dlp {
    fn capabilities(&self) -> Capabilities {
        Dlp::capabilities(self)
    }

    fn process<'a>(
        &'a self,
        message: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
        let inner = Arc::clone(&self.inner);
        let raw = message.message.clone();
        Box::pin(async move { run_scan(raw.len(), move || inner.evaluate(&raw)).await? })
    }
}

#[cfg(test)]
mod tests;
