//! Verdicts: the one decision a step returns about a message (DESIGN.md §4).

use std::fmt;
use std::str::FromStr;

/// The decision of one pipeline step.
///
/// `Reject` and `TempFail` carry an RFC 3463 enhanced status code and a text that reach the
/// sender (LMTP reply, then the MTA's bounce) or the IMAP client (`NO` response text).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Verdict {
    /// Go on with the next step (the usual answer).
    #[default]
    Continue,
    /// Store the message now; later steps and later pipelines do not run.
    Accept,
    /// Refuse the message permanently: LMTP `5xx` for this recipient, APPEND `NO`.
    Reject {
        /// Class 5 (`5.7.1` for a policy refusal).
        status: EnhancedStatus,
        /// Human-readable reason, printable ASCII.
        text: String,
    },
    /// Refuse for now; the sender retries: LMTP `4xx`, APPEND `NO [UNAVAILABLE]`.
    TempFail {
        /// Class 4 (`4.7.1` for a policy deferral).
        status: EnhancedStatus,
        /// Human-readable reason, printable ASCII.
        text: String,
    },
    /// Accept and drop the message silently: LMTP `250`, nothing stored.
    Discard,
    /// Accept and hold the message in the tenant's quarantine instead of the mailbox.
    Quarantine {
        /// Why, kept with the quarantined message; printable text.
        reason: String,
    },
}

impl Verdict {
    /// `Reject` with `5.7.1` (delivery not authorized, message refused).
    pub fn reject(text: impl Into<String>) -> Self {
        Verdict::Reject {
            status: EnhancedStatus::new(5, 7, 1),
            text: text.into(),
        }
    }

    /// `TempFail` with `4.7.1`.
    pub fn temp_fail(text: impl Into<String>) -> Self {
        Verdict::TempFail {
            status: EnhancedStatus::new(4, 7, 1),
            text: text.into(),
        }
    }

    /// `Quarantine` with `reason`.
    pub fn quarantine(reason: impl Into<String>) -> Self {
        Verdict::Quarantine {
            reason: reason.into(),
        }
    }

    /// Whether later steps run after this verdict (only `Continue`).
    pub fn continues(&self) -> bool {
        matches!(self, Verdict::Continue)
    }

    /// The verdict's name as used in metrics and records: `continue`, `accept`, `reject`,
    /// `tempfail`, `discard`, `quarantine`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Continue => "continue",
            Verdict::Accept => "accept",
            Verdict::Reject { .. } => "reject",
            Verdict::TempFail { .. } => "tempfail",
            Verdict::Discard => "discard",
            Verdict::Quarantine { .. } => "quarantine",
        }
    }

    /// Checks the verdict can be sent on: the status class matches (5 for `Reject`, 4 for
    /// `TempFail`) and texts are 1 to 200 printable ASCII characters (SMTP replies are ASCII).
    ///
    /// # Errors
    /// [`InvalidVerdict`] naming the problem.
    pub fn validate(&self) -> Result<(), InvalidVerdict> {
        match self {
            Verdict::Reject { status, text } => {
                expect_class(*status, 5)?;
                check_text(text)
            }
            Verdict::TempFail { status, text } => {
                expect_class(*status, 4)?;
                check_text(text)
            }
            Verdict::Quarantine { reason } => check_text(reason),
            _ => Ok(()),
        }
    }
}

fn expect_class(status: EnhancedStatus, class: u8) -> Result<(), InvalidVerdict> {
    if status.class == class {
        Ok(())
    } else {
        Err(InvalidVerdict(format!(
            "status {status} must have class {class}"
        )))
    }
}

fn check_text(text: &str) -> Result<(), InvalidVerdict> {
    if text.is_empty() || text.len() > 200 {
        return Err(InvalidVerdict(format!(
            "text must be 1 to 200 characters, got {}",
            text.len()
        )));
    }
    if let Some(c) = text.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(InvalidVerdict(format!(
            "text must be printable ASCII, found {c:?}"
        )));
    }
    Ok(())
}

/// A verdict that breaks the contract.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid verdict: {0}")]
pub struct InvalidVerdict(pub String);

/// An RFC 3463 enhanced mail system status code, `class.subject.detail` (e.g. `5.7.1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnhancedStatus {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// 0 to 999 (RFC 3463 §3.2: 0 to 7 are defined).
    pub subject: u16,
    /// 0 to 999.
    pub detail: u16,
}

impl EnhancedStatus {
    /// `class.subject.detail`; the caller keeps the ranges of the field docs.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        Self {
            class,
            subject,
            detail,
        }
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl FromStr for EnhancedStatus {
    type Err = InvalidVerdict;

    /// Parses `class.subject.detail` (RFC 3463 §2): class 2, 4 or 5; subject and detail 0 to
    /// 999 without leading zeros.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidVerdict(format!("{s:?} is not an enhanced status code like 5.7.1"));
        let mut parts = s.split('.');
        let (Some(c), Some(sub), Some(det), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let num = |p: &str| -> Result<u16, InvalidVerdict> {
            if p.is_empty() || p.len() > 3 || (p.len() > 1 && p.starts_with('0')) {
                return Err(bad());
            }
            if !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        let class = match c {
            "2" => 2,
            "4" => 4,
            "5" => 5,
            _ => return Err(bad()),
        };
        Ok(Self::new(class, num(sub)?, num(det)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_status_parses_and_prints() {
        for (input, ok) in [
            ("5.7.1", true),
            ("4.2.2", true),
            ("2.0.0", true),
            ("5.999.999", true),
            ("3.0.0", false),
            ("5.07.1", false),
            ("5.7", false),
            ("5.7.1.1", false),
            ("5.7.-1", false),
            ("5.1000.0", false),
            ("", false),
        ] {
            let parsed = input.parse::<EnhancedStatus>();
            assert_eq!(parsed.is_ok(), ok, "{input:?}");
            if let Ok(s) = parsed {
                assert_eq!(s.to_string(), input);
            }
        }
    }

    #[test]
    fn verdict_validation() {
        assert!(Verdict::reject("no").validate().is_ok());
        assert!(Verdict::temp_fail("later").validate().is_ok());
        let wrong_class = Verdict::Reject {
            status: EnhancedStatus::new(4, 7, 1),
            text: "x".into(),
        };
        assert!(wrong_class.validate().is_err());
        assert!(Verdict::reject("line\r\nbreak").validate().is_err());
        assert!(Verdict::reject("").validate().is_err());
        assert!(Verdict::quarantine("x".repeat(201)).validate().is_err());
        assert!(Verdict::Discard.validate().is_ok());
    }
}
