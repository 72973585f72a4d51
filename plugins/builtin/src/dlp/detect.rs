//! The DLP validators: each finds candidates and keeps only those that pass the checks of
//! their kind (checksums, issuer tables, exclusion lists). They return byte ranges into the
//! text and never copy the matched data anywhere else.

use std::ops::Range;

use regex::{Regex, RegexBuilder};

/// Whole-word, case-insensitive matcher for a list of words or phrases.
#[derive(Clone, Debug)]
pub struct WordMatcher {
    re: Regex,
}

/// Why a word list cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordsError {
    /// The word at this index is empty or only spaces.
    Empty(usize),
    /// The list does not compile within 4 MiB.
    TooLarge,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl WordMatcher {
    /// Builds a matcher for `words` (each non-empty after trimming).
    ///
    /// # Errors
    /// [`WordsError`]: an empty word, or a list too large to compile.
    pub fn new(words: &[String]) -> Result<Self, WordsError> {
        let mut sorted: Vec<&str> = Vec::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            let w = w.trim();
            if w.is_empty() {
                return Err(WordsError::Empty(i));
            }
            sorted.push(w);
        }
        // Longest first, so `reference` wins over `ref` at the same position.
        sorted.sort_by_key(|w| std::cmp::Reverse(w.len()));
        let alternation = sorted
            .iter()
            .map(|w| regex::escape(w))
            .collect::<Vec<_>>()
            .join("|");
        let re = RegexBuilder::new(&format!("(?i:{alternation})"))
            .size_limit(4 << 20)
            .build()
            .map_err(|_| WordsError::TooLarge)?;
        Ok(Self { re })
    }

    /// Whole-word occurrences in `text[from..to]`; word boundaries are judged on all of
    /// `text`. `from` and `to` must be character boundaries.
    pub fn find_in<'t>(
        &'t self,
        text: &'t str,
        from: usize,
        to: usize,
    ) -> impl Iterator<Item = Range<usize>> + 't {
        self.re
            .find_iter(&text[from..to])
            .map(move |m| (m.start() + from)..(m.end() + from))
            .filter(move |r| whole_word(text, r.clone()))
    }

    /// Whether a whole-word occurrence lies in `text[from..to]`.
    pub fn any_in(&self, text: &str, from: usize, to: usize) -> bool {
        self.find_in(text, from, to).next().is_some()
    }
}

fn whole_word(text: &str, r: Range<usize>) -> bool {
    let inner_first = text[r.clone()].chars().next();
    let inner_last = text[r.clone()].chars().next_back();
    let before = text[..r.start].chars().next_back();
    let after = text[r.end..].chars().next();
    let start_ok = !inner_first.is_some_and(is_word_char) || !before.is_some_and(is_word_char);
    let end_ok = !inner_last.is_some_and(is_word_char) || !after.is_some_and(is_word_char);
    start_ok && end_ok
}

/// The byte offset `n` characters before `pos` (or 0).
pub fn back_chars(text: &str, pos: usize, n: usize) -> usize {
    if n == 0 {
        return pos;
    }
    text[..pos]
        .char_indices()
        .rev()
        .nth(n - 1)
        .map_or(0, |(i, _)| i)
}

/// The byte offset `n` characters after `pos` (or the end).
pub fn fwd_chars(text: &str, pos: usize, n: usize) -> usize {
    text[pos..]
        .char_indices()
        .nth(n)
        .map_or(text.len(), |(i, _)| pos + i)
}

fn alnum_at(bytes: &[u8], i: usize) -> bool {
    bytes.get(i).is_some_and(u8::is_ascii_alphanumeric)
}

/// Whether the byte before `r` and the byte at `r.end` are outside `class`.
fn bounded(text: &str, r: &Range<usize>, class: fn(u8) -> bool) -> bool {
    let b = text.as_bytes();
    let before = r.start.checked_sub(1).and_then(|i| b.get(i)).copied();
    let after = b.get(r.end).copied();
    !before.is_some_and(class) && !after.is_some_and(class)
}

// ---------------------------------------------------------------------------------------
// Payment cards

/// A card brand's issuer identification number range and the lengths it issues.
struct Brand {
    name: &'static str,
    /// Inclusive range of the first `digits` digits.
    low: u32,
    high: u32,
    digits: usize,
    lengths: Range<usize>,
}

const fn brand(
    name: &'static str,
    low: u32,
    high: u32,
    digits: usize,
    lengths: Range<usize>,
) -> Brand {
    Brand {
        name,
        low,
        high,
        digits,
        lengths,
    }
}

/// Issuer prefixes and lengths, from the networks' published IIN tables.
const BRANDS: &[Brand] = &[
    brand("visa", 4, 4, 1, 13..14),
    brand("visa", 4, 4, 1, 16..17),
    brand("visa", 4, 4, 1, 19..20),
    brand("mastercard", 51, 55, 2, 16..17),
    brand("mastercard", 2221, 2720, 4, 16..17),
    brand("amex", 34, 34, 2, 15..16),
    brand("amex", 37, 37, 2, 15..16),
    brand("discover", 6011, 6011, 4, 16..20),
    brand("discover", 644, 649, 3, 16..20),
    brand("discover", 65, 65, 2, 16..20),
    brand("discover", 622126, 622925, 6, 16..20),
    brand("jcb", 3528, 3589, 4, 16..20),
    brand("diners", 300, 305, 3, 14..20),
    brand("diners", 3095, 3095, 4, 14..20),
    brand("diners", 36, 36, 2, 14..20),
    brand("diners", 38, 39, 2, 14..20),
    brand("unionpay", 62, 62, 2, 16..20),
    brand("maestro", 5018, 5018, 4, 13..20),
    brand("maestro", 5020, 5020, 4, 13..20),
    brand("maestro", 5038, 5038, 4, 13..20),
    brand("maestro", 5893, 5893, 4, 13..20),
    brand("maestro", 6304, 6304, 4, 13..20),
    brand("maestro", 6759, 6759, 4, 13..20),
    brand("maestro", 6761, 6763, 4, 13..20),
    brand("mir", 2200, 2204, 4, 16..20),
];

/// Test card numbers published by the card networks and payment processors (Stripe,
/// Braintree/PayPal, Adyen) for integration testing. Luhn-valid and brand-valid, they are
/// everywhere in documentation and test mail, and never real cards.
pub const TEST_CARD_NUMBERS: &[&str] = &[
    // Visa
    "4111111111111111",
    "4242424242424242",
    "4012888888881881",
    "4222222222222",
    "4000056655665556",
    "4005519200000004",
    "4009348888881881",
    "4012000033330026",
    "4012000077777777",
    "4217651111111119",
    "4500600000000061",
    "4000000000000002",
    "4000000000000069",
    "4000000000000077",
    "4000000000000093",
    "4000000000009995",
    "4000002500003155",
    // Mastercard
    "5555555555554444",
    "5105105105105100",
    "5200828282828210",
    "5454545454545454",
    "5431111111111111",
    "2223003122003222",
    "2222400010000008",
    "2223000048400011",
    // American Express
    "378282246310005",
    "371449635398431",
    "378734493671000",
    "340000000000009",
    "370000000000002",
    "371111111111114",
    // Discover
    "6011111111111117",
    "6011000990139424",
    "6011000000000004",
    "6011601160116611",
    "6445644564456445",
    // Diners Club
    "30569309025904",
    "38520000023237",
    "3056930009020004",
    "36227206271667",
    "36006666333344",
    "36700102000000",
    "36148900647913",
    // JCB
    "3530111333300000",
    "3566002020360505",
    "3566111111111113",
    "3569990010095841",
    // UnionPay
    "6200000000000005",
    "6205500000000000004",
    "6250941006528599",
    // Maestro
    "6759649826438453",
    "6304000000000000",
    "5018000000000009",
];

/// Luhn (ISO/IEC 7812-1 Annex B) over ASCII digits.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// The brand whose prefix and length table admits `digits`, if any.
pub fn card_brand(digits: &[u8]) -> Option<&'static str> {
    BRANDS.iter().find_map(|b| {
        if !b.lengths.contains(&digits.len()) || digits.len() < b.digits {
            return None;
        }
        let prefix = digits[..b.digits]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        (b.low..=b.high).contains(&prefix).then_some(b.name)
    })
}

/// Whether `digits` is a card number: 13 to 19 digits, Luhn-valid, a known brand, not a
/// published test number.
pub fn is_card_number(digits: &[u8]) -> bool {
    (13..=19).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && luhn(digits)
        && card_brand(digits).is_some()
        && !TEST_CARD_NUMBERS.iter().any(|t| t.as_bytes() == digits)
}

/// Card numbers in `text`: runs of digit groups separated by single spaces or dashes, not
/// glued to letters or digits; every group-aligned slice of 13 to 19 digits is tried.
pub fn find_cards(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // Digits glued to a word or a decimal point are part of something else.
        let glued_before = i > 0
            && (b[i - 1].is_ascii_alphanumeric()
                || (matches!(b[i - 1], b'.' | b',') && i > 1 && b[i - 2].is_ascii_digit()));
        let mut groups: Vec<Range<usize>> = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            groups.push(start..j);
            if j + 1 < b.len() && matches!(b[j], b' ' | b'-') && b[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        let run_end = j;
        let glued_after = alnum_at(b, run_end)
            || (matches!(b.get(run_end), Some(b'.' | b',')) && alnum_at(b, run_end + 1));
        i = run_end;
        if glued_before {
            continue;
        }
        // Card numbers are printed in at most 5 groups (4-4-4-4-3, 4-6-5); 8 leaves room
        // and bounds the work on long runs of short groups.
        let mut a = 0;
        'starts: while a < groups.len() {
            let last = (a + 7).min(groups.len() - 1);
            let counts: Vec<usize> = groups[a..=last]
                .iter()
                .scan(0, |n, g| {
                    *n += g.len();
                    Some(*n)
                })
                .collect();
            for z in (a..=last).rev() {
                if !(13..=19).contains(&counts[z - a]) || (z == groups.len() - 1 && glued_after) {
                    continue;
                }
                let digits: Vec<u8> = groups[a..=z]
                    .iter()
                    .flat_map(|g| b[g.clone()].iter().copied())
                    .collect();
                if is_card_number(&digits) {
                    out.push(groups[a].start..groups[z].end);
                    a = z + 1;
                    continue 'starts;
                }
            }
            a += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// IBAN

/// IBAN lengths by country (ISO 13616 registry): all SEPA countries and the other common
/// ones.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// The IBAN length of country `cc` (upper-case ISO 3166 alpha-2).
pub fn iban_length(cc: &[u8]) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| c.as_bytes() == cc)
        .map(|(_, l)| *l)
}

/// ISO 13616 check: upper-case alphanumerics, the country's length, check digits 02 to 98,
/// and the rearranged number mod 97 == 1.
pub fn is_iban(compact: &[u8]) -> bool {
    if compact.len() < 4
        || !compact[..2].iter().all(u8::is_ascii_uppercase)
        || !compact[2..4].iter().all(u8::is_ascii_digit)
        || !compact
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return false;
    }
    if iban_length(&compact[..2]) != Some(compact.len()) {
        return false;
    }
    let check = (compact[2] - b'0') * 10 + (compact[3] - b'0');
    if !(2..=98).contains(&check) {
        return false;
    }
    let mut rem = 0u32;
    for &c in compact[4..].iter().chain(&compact[..4]) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// IBANs in `text`, compact or in groups separated by single spaces; letters of any case.
pub fn find_ibans(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= b.len() {
        let starts = b[i].is_ascii_alphabetic()
            && b[i + 1].is_ascii_alphabetic()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit()
            && !(i > 0 && b[i - 1].is_ascii_alphanumeric());
        let cc = [b[i].to_ascii_uppercase(), b[i + 1].to_ascii_uppercase()];
        let Some(len) = starts.then(|| iban_length(&cc)).flatten() else {
            i += 1;
            continue;
        };
        let mut compact = Vec::with_capacity(len);
        let mut j = i;
        while compact.len() < len && j < b.len() {
            if b[j].is_ascii_alphanumeric() {
                compact.push(b[j].to_ascii_uppercase());
                j += 1;
            } else if b[j] == b' ' && j + 1 < b.len() && b[j + 1].is_ascii_alphanumeric() {
                j += 1;
            } else {
                break;
            }
        }
        if compact.len() == len && !alnum_at(b, j) && is_iban(&compact) {
            out.push(i..j);
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// US Social Security numbers

/// Numbers never issued or publicly voided: 078-05-1120 (printed on a sample card in
/// wallets sold in 1938) and 219-09-9999 (used in a Social Security Board pamphlet).
pub const VOID_SSNS: &[&str] = &["078051120", "219099999"];

/// Whether the nine digits `area group serial` can be an SSN (SSA rules): area not 000, 666
/// or 900-999; group not 00; serial not 0000; not a voided number.
pub fn is_ssn(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let area = &digits[..3];
    if area == b"000" || area == b"666" || area[0] == b'9' {
        return false;
    }
    if &digits[3..5] == b"00" || &digits[5..] == b"0000" {
        return false;
    }
    !VOID_SSNS.iter().any(|v| v.as_bytes() == digits)
}

/// SSNs in `text`: `AAA-GG-SSSS`, and also nine bare digits when `allow_undashed`.
pub fn find_ssns(text: &str, allow_undashed: bool) -> Vec<Range<usize>> {
    static DASHED: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r"[0-9]{3}-[0-9]{2}-[0-9]{4}").expect("constant"));
    static BARE: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r"[0-9]{9}").expect("constant"));
    let digit_or_dash = |c: u8| c.is_ascii_alphanumeric() || c == b'-';
    let mut out: Vec<Range<usize>> = DASHED
        .find_iter(text)
        .map(|m| m.range())
        .filter(|r| bounded(text, r, digit_or_dash))
        .filter(|r| {
            let digits: Vec<u8> = text[r.clone()].bytes().filter(u8::is_ascii_digit).collect();
            is_ssn(&digits)
        })
        .collect();
    if allow_undashed {
        out.extend(
            BARE.find_iter(text)
                .map(|m| m.range())
                .filter(|r| bounded(text, r, digit_or_dash))
                .filter(|r| is_ssn(text[r.clone()].as_bytes())),
        );
        out.sort_by_key(|r| r.start);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Cloud credentials

/// The kinds of credential the `cloudKeys` detector knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CloudKeyType {
    /// AWS access key id: `AKIA` or `ASIA` and 16 of `[A-Z2-7]`.
    AwsAccessKeyId,
    /// AWS secret access key: 40 base64 characters within 80 characters after
    /// `aws_secret_access_key` (any case, `_`, `-`, space or nothing between the words).
    AwsSecretKey,
    /// Google Cloud API key: `AIza` and 35 of `[0-9A-Za-z_-]`.
    GcpApiKey,
    /// GitHub tokens: `ghp_`, `gho_`, `ghs_`, `ghu_`, `ghr_` and 36 alphanumerics, or
    /// `github_pat_` fine-grained tokens.
    GithubToken,
    /// Slack tokens: `xoxa-`, `xoxb-`, `xoxp-`, `xoxr-`.
    SlackToken,
    /// PEM private keys (`-----BEGIN ... PRIVATE KEY-----`), the whole block.
    PrivateKey,
}

impl CloudKeyType {
    /// Every type.
    pub const ALL: [CloudKeyType; 6] = [
        CloudKeyType::AwsAccessKeyId,
        CloudKeyType::AwsSecretKey,
        CloudKeyType::GcpApiKey,
        CloudKeyType::GithubToken,
        CloudKeyType::SlackToken,
        CloudKeyType::PrivateKey,
    ];
}

/// AWS's documentation examples (`AKIAIOSFODNN7EXAMPLE` and its secret), not credentials.
const AWS_EXAMPLES: &[&str] = &[
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
];

struct CloudPatterns {
    aws_id: Regex,
    aws_secret_label: Regex,
    aws_secret: Regex,
    gcp: Regex,
    github: Regex,
    slack: Regex,
    pem_begin: Regex,
    pem_end: Regex,
}

fn cloud_patterns() -> &'static CloudPatterns {
    static P: std::sync::LazyLock<CloudPatterns> = std::sync::LazyLock::new(|| {
        let re = |p: &str| Regex::new(p).expect("constant regex");
        CloudPatterns {
            aws_id: re(r"(?:AKIA|ASIA)[A-Z2-7]{16}"),
            aws_secret_label: re(r"(?i)aws[_\- ]?secret[_\- ]?access[_\- ]?key"),
            aws_secret: re(r"[A-Za-z0-9/+]{40}"),
            gcp: re(r"AIza[0-9A-Za-z_\-]{35}"),
            github: re(
                r"(?:gh[pousr]_[A-Za-z0-9]{36})|(?:github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})",
            ),
            slack: re(r"xox[abpr]-[0-9]+-[0-9A-Za-z\-]{8,}"),
            pem_begin: re(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
            pem_end: re(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
        }
    });
    &P
}

/// Credentials of the given `types` in `text`.
pub fn find_cloud_keys(text: &str, types: &[CloudKeyType]) -> Vec<Range<usize>> {
    let p = cloud_patterns();
    let token = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'/' || c == b'+' || c == b'=';
    let not_example = |r: &Range<usize>| !AWS_EXAMPLES.contains(&&text[r.clone()]);
    let mut out = Vec::new();
    for t in types {
        match t {
            CloudKeyType::AwsAccessKeyId => out.extend(
                p.aws_id
                    .find_iter(text)
                    .map(|m| m.range())
                    .filter(|r| bounded(text, r, |c| c.is_ascii_alphanumeric()))
                    .filter(not_example),
            ),
            CloudKeyType::AwsSecretKey => {
                for label in p.aws_secret_label.find_iter(text) {
                    let to = fwd_chars(text, label.end(), 80);
                    if let Some(m) = p
                        .aws_secret
                        .find_iter(&text[label.end()..to])
                        .map(|m| (m.start() + label.end())..(m.end() + label.end()))
                        .find(|r| bounded(text, r, b64))
                        .filter(not_example)
                    {
                        out.push(m);
                    }
                }
            }
            CloudKeyType::GcpApiKey => out.extend(
                p.gcp
                    .find_iter(text)
                    .map(|m| m.range())
                    .filter(|r| bounded(text, r, token)),
            ),
            CloudKeyType::GithubToken => out.extend(
                p.github
                    .find_iter(text)
                    .map(|m| m.range())
                    .filter(|r| bounded(text, r, token)),
            ),
            CloudKeyType::SlackToken => out.extend(
                p.slack
                    .find_iter(text)
                    .map(|m| m.range())
                    .filter(|r| bounded(text, r, token)),
            ),
            CloudKeyType::PrivateKey => {
                let mut from = 0;
                while let Some(m) = p.pem_begin.find_at(text, from) {
                    let end = p
                        .pem_end
                        .find_at(text, m.end())
                        .map_or(m.end(), |e| e.end());
                    out.push(m.start()..end);
                    from = end;
                }
            }
        }
    }
    out.sort_by_key(|r| (r.start, r.end));
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(ranges: Vec<Range<usize>>, text: &str) -> Vec<String> {
        ranges.into_iter().map(|r| text[r].to_string()).collect()
    }

    #[test]
    fn luhn_and_brands() {
        let cases: &[(&str, bool, Option<&str>)] = &[
            ("4539148803436467", true, Some("visa")),
            ("4539148803436468", false, Some("visa")),
            ("5425233430109903", true, Some("mastercard")),
            ("2720990000000007", true, Some("mastercard")),
            ("2721000000000004", true, None),
            ("371449635398431", true, Some("amex")),
            ("6011000990139424", true, Some("discover")),
            ("3566002020360505", true, Some("jcb")),
            ("30569309025904", true, Some("diners")),
            ("6200000000000005", true, Some("unionpay")),
            ("6759649826438453", true, Some("maestro")),
            ("1234567812345670", true, None),
            ("4111111111111", false, Some("visa")),
        ];
        for (n, luhn_ok, want) in cases {
            assert_eq!(luhn(n.as_bytes()), *luhn_ok, "luhn {n}");
            assert_eq!(card_brand(n.as_bytes()), *want, "brand {n}");
        }
    }

    #[test]
    fn every_listed_test_number_would_otherwise_be_a_card() {
        for n in TEST_CARD_NUMBERS {
            assert!(
                luhn(n.as_bytes()),
                "{n} fails Luhn: listing it is pointless"
            );
            assert!(card_brand(n.as_bytes()).is_some(), "{n} has no brand");
            assert!(!is_card_number(n.as_bytes()), "{n} is excluded");
        }
    }

    #[test]
    fn card_candidates() {
        let cases: &[(&str, &[&str])] = &[
            ("card 4539148803436467 exp", &["4539148803436467"]),
            ("card 4539 1488 0343 6467.", &["4539 1488 0343 6467"]),
            ("card 4539-1488-0343-6467", &["4539-1488-0343-6467"]),
            ("amex 3714 496353 98431", &[]), // a test number
            ("amex 3782 822463 10005", &[]),
            ("amex 3400 000000 00009", &[]),
            (
                "4539148803436467 and 5425233430109903",
                &["4539148803436467", "5425233430109903"],
            ),
            ("with cvv 4539 1488 0343 6467 124", &["4539 1488 0343 6467"]),
            ("test 4111 1111 1111 1111", &[]),
            ("test 4242424242424242", &[]),
            ("bad luhn 4539148803436468", &[]),
            ("glued x4539148803436467", &[]),
            ("glued 4539148803436467x", &[]),
            ("too long 45391488034364671234", &[]),
            ("decimal 1.4539148803436467", &[]),
            ("no brand 1234567812345670", &[]),
            ("double  space 4539 1488  0343 6467", &[]),
            ("", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(found(find_cards(text), text), *want, "{text:?}");
        }
    }

    #[test]
    fn iban_candidates() {
        let cases: &[(&str, &[&str])] = &[
            (
                "pay DE89370400440532013000 now",
                &["DE89370400440532013000"],
            ),
            (
                "pay DE89 3704 0044 0532 0130 00.",
                &["DE89 3704 0044 0532 0130 00"],
            ),
            ("GB82WEST12345698765432", &["GB82WEST12345698765432"]),
            (
                "gb82 west 1234 5698 7654 32",
                &["gb82 west 1234 5698 7654 32"],
            ),
            (
                "FR1420041010050500013M02606",
                &["FR1420041010050500013M02606"],
            ),
            (
                "NL91ABNA0417164300 BE68539007547034",
                &["NL91ABNA0417164300", "BE68539007547034"],
            ),
            ("CH9300762011623852957", &["CH9300762011623852957"]),
            ("bad checksum DE89370400440532013001", &[]),
            ("swapped DE98370400440532013000", &[]),
            ("too short DE8937040044053201300", &[]),
            ("too long DE893704004405320130001", &[]),
            ("unknown country ZZ89370400440532013000", &[]),
            ("glued xDE89370400440532013000", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(found(find_ibans(text), text), *want, "{text:?}");
        }
        assert!(!is_iban(b"DE00370400440532013000"));
    }

    #[test]
    fn ssn_candidates() {
        let cases: &[(&str, bool, &[&str])] = &[
            ("ssn 123-45-6789", false, &["123-45-6789"]),
            ("woolworth 078-05-1120", false, &[]),
            ("pamphlet 219-09-9999", false, &[]),
            ("area 000-12-3456", false, &[]),
            ("area 666-12-3456", false, &[]),
            ("area 900-12-3456 999-12-3456", false, &[]),
            ("group 123-00-4567", false, &[]),
            ("serial 123-45-0000", false, &[]),
            ("undashed 123456789", false, &[]),
            ("undashed 123456789", true, &["123456789"]),
            ("undashed void 078051120", true, &[]),
            ("phone 555-123-45-6789", false, &[]),
            ("longer 123-45-67890", false, &[]),
            ("ten digits 1234567890", true, &[]),
        ];
        for (text, undashed, want) in cases {
            assert_eq!(found(find_ssns(text, *undashed), text), *want, "{text:?}");
        }
    }

    #[test]
    fn cloud_key_candidates() {
        let gh = format!("ghp_{}", "a1B2".repeat(9));
        let pat = format!("github_pat_{}_{}", "A".repeat(22), "b".repeat(59));
        let gcp = format!("AIza{}", "Sy-_0".repeat(7));
        let aws_secret = "abcdEFGHijklMNOPqrstUVWXyz0123456789+/AB";
        let cases: Vec<(String, Vec<String>)> = vec![
            (
                "id AKIAQWERTYUIOPASDFGH x".into(),
                vec!["AKIAQWERTYUIOPASDFGH".into()],
            ),
            (
                "id ASIAQWERTYUIOPASDFGH".into(),
                vec!["ASIAQWERTYUIOPASDFGH".into()],
            ),
            ("doc example AKIAIOSFODNN7EXAMPLE".into(), vec![]),
            (
                "digits 0,1,8,9 are not base32 AKIAQWERTYUIOPASDFG1".into(),
                vec![],
            ),
            ("glued XAKIAQWERTYUIOPASDFGH".into(), vec![]),
            (
                format!("aws_secret_access_key = {aws_secret}"),
                vec![aws_secret.into()],
            ),
            (
                format!("AWS Secret Access Key: \"{aws_secret}\""),
                vec![aws_secret.into()],
            ),
            (format!("no label {aws_secret}"), vec![]),
            (
                "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                vec![],
            ),
            (format!("key={gcp}"), vec![gcp.clone()]),
            (format!("token {gh}"), vec![gh.clone()]),
            (format!("pat {pat}"), vec![pat.clone()]),
            (
                "slack xoxb-123456789012-abcdefghijkl".into(),
                vec!["xoxb-123456789012-abcdefghijkl".into()],
            ),
            ("slack xoxz-123456789012-abcdefghijkl".into(), vec![]),
            (
                "k\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nafter"
                    .into(),
                vec!["-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----".into()],
            ),
            ("-----BEGIN PUBLIC KEY-----".into(), vec![]),
        ];
        for (text, want) in cases {
            assert_eq!(
                found(find_cloud_keys(&text, &CloudKeyType::ALL), &text),
                want,
                "{text:?}"
            );
        }
    }

    #[test]
    fn words_are_whole_and_case_insensitive() {
        let m =
            WordMatcher::new(&["ref".into(), "Reference".into(), "#tag".into()]).expect("valid");
        let cases: &[(&str, &[&str])] = &[
            ("REF 1", &["REF"]),
            ("preference ref", &["ref"]),
            ("reference", &["reference"]),
            ("refs", &[]),
            ("a #tag b", &["#tag"]),
            ("x#tag", &["#tag"]),
        ];
        for (text, want) in cases {
            assert_eq!(
                found(m.find_in(text, 0, text.len()).collect(), text),
                *want,
                "{text:?}"
            );
        }
        assert_eq!(
            WordMatcher::new(&["a".into(), " ".into()]).err(),
            Some(WordsError::Empty(1))
        );
    }

    #[test]
    fn char_windows() {
        let t = "é1é2é3";
        assert_eq!(back_chars(t, t.len(), 2), t.len() - 3);
        assert_eq!(back_chars(t, 2, 5), 0);
        assert_eq!(fwd_chars(t, 0, 2), 3);
        assert_eq!(fwd_chars(t, 0, 100), t.len());
        assert_eq!(back_chars(t, 3, 0), 3);
    }
}
