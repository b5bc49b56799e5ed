//! The `Retry-After` header, in the only form a clockless core can read.

use core::time::Duration;

/// Parses a `Retry-After` header value in its delay-seconds form (RFC 9110 §10.2.3): ASCII digits,
/// optionally surrounded by spaces or tabs. A number too large for the clock saturates. The
/// HTTP-date form needs a wall clock, which the core does not have: it gives `None`, as does
/// anything malformed.
#[must_use]
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let digits = value.trim_matches([' ', '\t']);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = digits.bytes().fold(0u64, |secs, b| {
        secs.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" \t0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in [
            "",
            " ",
            "-1",
            "+5",
            "1.5",
            "12s",
            "1 2",
            "Wed, 21 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(bad), None, "{bad:?}");
        }
    }
}
