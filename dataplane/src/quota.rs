//! Mailbox quotas: reading `spec.quota` ([`mcp_crds::quota::Quota`]) into numbers the store
//! keeps. The store enforces them in the transaction that writes a message
//! ([`crate::store::StoreError::OverQuota`]); IMAP reports them with GETQUOTA (RFC 9208).
//! See docs/quota.md.

use mcp_crds::dataplane::QuotaLimits;
use mcp_crds::quota::Quota;

/// A `spec.quota` value that cannot be a limit.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct QuotaError {
    /// Path of the field, `spec.quota.storage` or `spec.quota.messages`.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// The limits of `quota` as numbers (absent quota: no limits).
///
/// # Errors
/// [`QuotaError`] for a storage value that is not a Kubernetes quantity of at most
/// `i64::MAX` octets, or a negative message count.
pub fn limits(quota: Option<&Quota>) -> Result<QuotaLimits, QuotaError> {
    let Some(quota) = quota else {
        return Ok(QuotaLimits::default());
    };
    let storage = match &quota.storage {
        None => None,
        Some(q) => Some(quantity_bytes(&q.0).map_err(|message| QuotaError {
            field: "spec.quota.storage",
            message,
        })?),
    };
    let messages = match quota.messages {
        None => None,
        Some(n) => Some(u64::try_from(n).map_err(|_| QuotaError {
            field: "spec.quota.messages",
            message: format!("{n} is negative"),
        })?),
    };
    Ok(QuotaLimits { storage, messages })
}

/// Longest quantity accepted, characters; real ones are a handful.
const MAX_QUANTITY_LEN: usize = 64;
/// Largest decimal exponent accepted in either direction (`1e18` is already 1 EB).
const MAX_EXPONENT: i32 = 40;

/// The value of a Kubernetes quantity (`512Mi`, `10G`, `1.5Gi`, `1e9`) as a whole number,
/// rounded up like Kubernetes' `Quantity.Value()`.
///
/// Grammar (k8s.io/apimachinery `resource.Quantity`): an optional sign, digits with an
/// optional fraction, then one suffix: binary `Ki Mi Gi Ti Pi Ei`, decimal `m`, none,
/// `k M G T P E`, or an exponent `e`/`E` followed by a signed integer.
///
/// # Errors
/// A message saying why `text` is not a non-negative quantity of at most `i64::MAX`.
pub fn quantity_bytes(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a quantity such as 512Mi or 10G");
    if text.is_empty() || text.len() > MAX_QUANTITY_LEN {
        return Err(bad());
    }
    let (negative, rest) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() || frac_part.contains('.') {
        return Err(bad());
    }
    let (binary_pow, mut exp10): (u32, i32) = match suffix {
        "" => (0, 0),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        s if s.starts_with(['e', 'E']) => {
            let e = &s[1..];
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let e: i32 = e.parse().map_err(|_| bad())?;
            if !(-MAX_EXPONENT..=MAX_EXPONENT).contains(&e) {
                return Err(bad());
            }
            (0, e)
        }
        _ => return Err(bad()),
    };
    // mantissa = all digits without the point; value = mantissa * 2^binary_pow * 10^exp10.
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 38 {
        return Err(bad());
    }
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| bad())?
    };
    exp10 -= i32::try_from(frac_part.len()).map_err(|_| bad())?;
    if negative && mantissa != 0 {
        return Err(format!("{text:?} is negative"));
    }
    let too_large = || format!("{text:?} is larger than {} octets", i64::MAX);
    let scaled = mantissa.checked_shl(binary_pow).ok_or_else(too_large)?;
    if scaled >> binary_pow != mantissa {
        return Err(too_large());
    }
    let value = if exp10 >= 0 {
        let pow = 10u128
            .checked_pow(exp10.unsigned_abs())
            .ok_or_else(too_large)?;
        scaled.checked_mul(pow).ok_or_else(too_large)?
    } else {
        match 10u128.checked_pow(exp10.unsigned_abs()) {
            Some(pow) => scaled.div_ceil(pow),
            // 10^39 and more exceeds every u128 mantissa: the value is in (0, 1).
            None => u128::from(scaled != 0),
        }
    };
    u64::try_from(value)
        .ok()
        .filter(|v| i64::try_from(*v).is_ok())
        .ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(json: &str) -> Quota {
        serde_json::from_str(json).expect("quota")
    }

    #[test]
    fn quantities_in_every_suffix_form() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("1", 1),
            ("+5", 5),
            ("512Mi", 512 << 20),
            ("10Gi", 10 << 30),
            ("1.5Ki", 1536),
            ("1Ei", 1 << 60),
            ("10G", 10_000_000_000),
            ("2k", 2000),
            ("1M", 1_000_000),
            ("1T", 1_000_000_000_000),
            ("1P", 1_000_000_000_000_000),
            ("1E", 1_000_000_000_000_000_000),
            ("1e9", 1_000_000_000),
            ("1E3", 1000),
            ("5e+2", 500),
            ("15e-1", 2),
            ("1500m", 2),
            ("100m", 1),
            (".5", 1),
            ("2.", 2),
            ("-0", 0),
            ("0.000", 0),
        ];
        for (text, want) in cases {
            assert_eq!(quantity_bytes(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn malformed_negative_and_huge_quantities_are_refused() {
        for text in [
            "", "Mi", "1.2.3", "1 Mi", "1mi", "1KB", "1e", "1e+", "1e99", "0x10", "-1", "-1Mi",
            "8Ei", "1e19", ".", "1Mi ", "١٢",
        ] {
            assert!(quantity_bytes(text).is_err(), "{text:?} accepted");
        }
        assert!(quantity_bytes(&"9".repeat(100)).is_err());
        assert_eq!(quantity_bytes("9223372036854775807"), Ok(i64::MAX as u64));
        assert!(quantity_bytes("9223372036854775808").is_err());
    }

    #[test]
    fn limits_from_a_spec_name_the_field_at_fault() {
        assert_eq!(limits(None).expect("none"), QuotaLimits::default());
        assert_eq!(
            limits(Some(&quota(r#"{"storage":"1Gi","messages":1000}"#))).expect("valid"),
            QuotaLimits {
                storage: Some(1 << 30),
                messages: Some(1000)
            }
        );
        let e = limits(Some(&quota(r#"{"storage":"lots"}"#))).expect_err("lots");
        assert_eq!(e.field, "spec.quota.storage");
        let e = limits(Some(&quota(r#"{"messages":-1}"#))).expect_err("-1");
        assert_eq!(e.field, "spec.quota.messages");
    }
}
