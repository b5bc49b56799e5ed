//! Web origins as a server compares them (RFC 6454 §4, §5).

use alloc::borrow::ToOwned;
use alloc::string::String;

/// An origin in the form browsers send in the `Origin` header (RFC 6454 §6.2): a scheme, a host
/// and a port, compared ignoring the case of the scheme and host, with the scheme's default port
/// filled in. `null` (an opaque origin) is only equal to itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Origin {
    /// `scheme://host[:port]`.
    Tuple {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
    /// `null`.
    Opaque,
}

/// A string that is not an origin (`scheme://host[:port]` or `null`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid origin {0:?}: expected scheme://host[:port] or null")]
pub struct InvalidOrigin(pub String);

impl Origin {
    /// Parses `scheme://host[:port]` (a trailing `/` is tolerated) or `null`.
    pub(crate) fn parse(s: &str) -> Result<Origin, InvalidOrigin> {
        let invalid = || InvalidOrigin(s.to_owned());
        if s == "null" {
            return Ok(Origin::Opaque);
        }
        let (scheme, rest) = s.split_once("://").ok_or_else(invalid)?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok || authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(invalid());
        }
        // The port follows the last colon, unless that colon is inside an IPv6 literal.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port.parse::<u16>().map_err(|_| invalid())?;
                (host, Some(port))
            }
            _ => (authority, None),
        };
        if host.is_empty() || host.bytes().any(|b| b <= b' ' || b >= 0x7f) {
            return Err(invalid());
        }
        let scheme = scheme.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        };
        Ok(Origin::Tuple {
            port: port.or(default),
            host: host.to_ascii_lowercase(),
            scheme,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(s: &str) -> Origin {
        Origin::parse(s).unwrap()
    }

    #[test]
    fn normalises() {
        assert_eq!(o("https://Example.com"), o("HTTPS://example.COM:443"));
        assert_eq!(o("http://example.com"), o("http://example.com:80/"));
        assert_ne!(o("http://example.com"), o("https://example.com"));
        assert_ne!(o("http://example.com"), o("http://example.com:8080"));
        assert_ne!(o("http://example.com"), o("http://sub.example.com"));
        assert_eq!(o("http://[::1]:8080"), o("http://[::1]:8080"));
        assert_ne!(o("http://[::1]"), o("http://[::2]"));
        assert_eq!(o("null"), Origin::Opaque);
        assert_ne!(o("null"), o("http://null"));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "example.com",
            "http://",
            "http://a/b",
            "http://a:x",
            "http://u@a",
            "1x://a",
            "http://a b",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }
}
