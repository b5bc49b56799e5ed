//! WebSocket URIs: `ws://` and `wss://` (RFC 6455 §3).

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
use core::fmt;
use core::net::Ipv6Addr;
use core::str::FromStr;

/// A parsed `ws://` or `wss://` URI (RFC 6455 §3): the only parts a client needs to open a
/// connection and write its request.
///
/// The host is lowercased; an IPv6 literal is held without its brackets. The path is at least
/// `/`, and the query, when present, stays attached to it as sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WsUrl {
    secure: bool,
    host: String,
    ipv6: bool,
    port: u16,
    path_and_query: String,
}

/// Why a string is not a WebSocket URI (RFC 6455 §3).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The input is empty.
    #[error("empty URL")]
    Empty,
    /// No `scheme://` prefix.
    #[error("URL has no scheme: expected ws:// or wss://")]
    MissingScheme,
    /// An HTTP scheme: WebSocket URIs use their own (RFC 6455 §3).
    #[error("the scheme {scheme:?} is for HTTP: use {}:// for a WebSocket URL", ws_scheme_for(.scheme))]
    HttpScheme {
        /// The scheme given, `http` or `https` in any case.
        scheme: String,
    },
    /// A scheme other than `ws` or `wss`.
    #[error("unsupported scheme {0:?}: expected ws or wss")]
    UnsupportedScheme(String),
    /// Credentials before the host (`user:pass@`), which the `ws-URI` grammar does not have
    /// (RFC 6455 §3). Send credentials in an `Authorization` header instead.
    #[error("URL contains credentials (user@host): send them in an Authorization header")]
    Userinfo,
    /// No host after `//`.
    #[error("URL has no host")]
    MissingHost,
    /// A host with characters a host name cannot have, or a malformed IPv6 literal.
    #[error("invalid host {0:?}")]
    InvalidHost(String),
    /// A port that is not a number from 1 to 65535.
    #[error("invalid port {0:?}: expected a number from 1 to 65535")]
    InvalidPort(String),
    /// A fragment (`#...`): RFC 6455 §3 forbids fragment identifiers in WebSocket URIs.
    #[error("URL has a fragment (#...), which WebSocket URLs may not have")]
    Fragment,
    /// A space, control or non-ASCII character in the path or query: percent-encode it.
    #[error("invalid character {0:?} in the path or query: percent-encode it")]
    InvalidCharacter(char),
}

/// The WebSocket scheme that replaces an HTTP one in [`UrlError::HttpScheme`]'s message.
fn ws_scheme_for(http_scheme: &str) -> &'static str {
    if http_scheme.eq_ignore_ascii_case("https") {
        "wss"
    } else {
        "ws"
    }
}

impl WsUrl {
    /// Parses a `ws://` or `wss://` URI (RFC 6455 §3). The scheme and host are case-insensitive;
    /// the port defaults to 80 for `ws` and 443 for `wss`.
    pub fn parse(input: &str) -> Result<WsUrl, UrlError> {
        if input.is_empty() {
            return Err(UrlError::Empty);
        }
        let (scheme, rest) = input.split_once("://").ok_or(UrlError::MissingScheme)?;
        if scheme.is_empty() || !scheme.bytes().all(is_scheme_char) {
            return Err(UrlError::MissingScheme);
        }
        let secure = if scheme.eq_ignore_ascii_case("ws") {
            false
        } else if scheme.eq_ignore_ascii_case("wss") {
            true
        } else if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
            return Err(UrlError::HttpScheme {
                scheme: scheme.to_owned(),
            });
        } else {
            return Err(UrlError::UnsupportedScheme(scheme.to_owned()));
        };
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(UrlError::Userinfo);
        }
        let (host, ipv6, port) = parse_authority(authority)?;
        if let Some(c) = path_and_query
            .chars()
            .find(|&c| !c.is_ascii() || c.is_ascii_control() || c == ' ')
        {
            return Err(UrlError::InvalidCharacter(c));
        }
        let path_and_query = if path_and_query.starts_with('/') {
            path_and_query.to_owned()
        } else {
            format!("/{path_and_query}")
        };
        let port = port.unwrap_or(if secure { 443 } else { 80 });
        Ok(WsUrl {
            secure,
            host,
            ipv6,
            port,
            path_and_query,
        })
    }

    /// Whether the scheme is `wss` (TLS).
    #[must_use]
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// `"ws"` or `"wss"`.
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        if self.secure { "wss" } else { "ws" }
    }

    /// The host to connect to, lowercased, without brackets around an IPv6 literal.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port to connect to (80 or 443 when the URI gives none).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port the scheme implies: 80 for `ws`, 443 for `wss` (RFC 6455 §3).
    #[must_use]
    pub fn default_port(&self) -> u16 {
        if self.secure { 443 } else { 80 }
    }

    /// The request target: the path (at least `/`) and the query, if any (RFC 6455 §3, the
    /// "resource name").
    #[must_use]
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The value of the `Host` header (RFC 6455 §4.1, RFC 9110 §7.2): the host, in brackets if
    /// it is an IPv6 literal, followed by `:port` unless the port is the scheme's default.
    #[must_use]
    pub fn host_header(&self) -> String {
        let mut out = if self.ipv6 {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port != self.default_port() {
            out.push(':');
            out.push_str(&self.port.to_string());
        }
        out
    }
}

/// Whether `b` may appear in a URI scheme (RFC 3986 §3.1).
fn is_scheme_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

/// Splits `host[:port]` or `[ipv6][:port]` into a lowercased host, whether it is an IPv6
/// literal, and the port if one is given.
fn parse_authority(authority: &str) -> Result<(String, bool, Option<u16>), UrlError> {
    if authority.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let (host, ipv6, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (literal, after) = bracketed
            .split_once(']')
            .ok_or_else(|| UrlError::InvalidHost(authority.to_owned()))?;
        if Ipv6Addr::from_str(literal).is_err() {
            return Err(UrlError::InvalidHost(authority.to_owned()));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| UrlError::InvalidHost(authority.to_owned()))?,
            ),
        };
        (literal, true, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, false, Some(port)),
            None => (authority, false, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    if !ipv6 && !host.bytes().all(is_reg_name_char) {
        return Err(UrlError::InvalidHost(host.to_owned()));
    }
    let port = port.map(parse_port).transpose()?;
    Ok((host.to_ascii_lowercase(), ipv6, port))
}

/// Whether `b` may appear in a registered name or IPv4 address (RFC 3986 §3.2.2: unreserved,
/// percent-encoded and sub-delims).
fn is_reg_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b)
}

/// A decimal port from 1 to 65535.
fn parse_port(port: &str) -> Result<u16, UrlError> {
    let invalid = || UrlError::InvalidPort(port.to_owned());
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(invalid()),
        Ok(n) => Ok(n),
    }
}

impl FromStr for WsUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WsUrl::parse(s)
    }
}

impl fmt::Display for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme(),
            self.host_header(),
            self.path_and_query
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        let url = WsUrl::parse("ws://Example.COM/chat?room=1").unwrap();
        assert!(!url.is_secure());
        assert_eq!(url.host(), "example.com");
        assert_eq!(url.port(), 80);
        assert_eq!(url.path_and_query(), "/chat?room=1");
        assert_eq!(url.host_header(), "example.com");
        assert_eq!(url.to_string(), "ws://example.com/chat?room=1");
    }

    #[test]
    fn secure_default_and_explicit_ports() {
        let url = WsUrl::parse("WSS://h").unwrap();
        assert!(url.is_secure());
        assert_eq!(url.port(), 443);
        assert_eq!(url.path_and_query(), "/");
        assert_eq!(url.host_header(), "h");
        let url = WsUrl::parse("wss://h:443/").unwrap();
        assert_eq!(url.host_header(), "h");
        let url = WsUrl::parse("wss://h:80/").unwrap();
        assert_eq!(url.host_header(), "h:80");
        let url = WsUrl::parse("ws://h?x").unwrap();
        assert_eq!(url.path_and_query(), "/?x");
    }

    #[test]
    fn ipv6() {
        let url = WsUrl::parse("ws://[::1]:9001/x").unwrap();
        assert_eq!(url.host(), "::1");
        assert_eq!(url.port(), 9001);
        assert_eq!(url.host_header(), "[::1]:9001");
        let url = WsUrl::parse("wss://[FE80::1]").unwrap();
        assert_eq!(url.host(), "fe80::1");
        assert_eq!(url.host_header(), "[fe80::1]");
        assert!(matches!(
            WsUrl::parse("ws://[::1/"),
            Err(UrlError::InvalidHost(_))
        ));
        assert!(matches!(
            WsUrl::parse("ws://[zz]/"),
            Err(UrlError::InvalidHost(_))
        ));
        assert!(matches!(
            WsUrl::parse("ws://[::1]x/"),
            Err(UrlError::InvalidHost(_))
        ));
    }

    #[test]
    fn errors() {
        assert_eq!(WsUrl::parse(""), Err(UrlError::Empty));
        assert_eq!(WsUrl::parse("example.com/x"), Err(UrlError::MissingScheme));
        assert_eq!(WsUrl::parse("://x"), Err(UrlError::MissingScheme));
        assert_eq!(
            WsUrl::parse("https://x"),
            Err(UrlError::HttpScheme {
                scheme: "https".into()
            })
        );
        assert_eq!(
            WsUrl::parse("ftp://x"),
            Err(UrlError::UnsupportedScheme("ftp".into()))
        );
        assert_eq!(WsUrl::parse("ws://u:p@x/"), Err(UrlError::Userinfo));
        assert_eq!(WsUrl::parse("ws:///x"), Err(UrlError::MissingHost));
        assert_eq!(WsUrl::parse("ws://:80/x"), Err(UrlError::MissingHost));
        assert_eq!(
            WsUrl::parse("ws://x:0/"),
            Err(UrlError::InvalidPort("0".into()))
        );
        assert_eq!(
            WsUrl::parse("ws://x:65536/"),
            Err(UrlError::InvalidPort("65536".into()))
        );
        assert_eq!(
            WsUrl::parse("ws://x:/"),
            Err(UrlError::InvalidPort("".into()))
        );
        assert_eq!(
            WsUrl::parse("ws://x:+1/"),
            Err(UrlError::InvalidPort("+1".into()))
        );
        assert_eq!(WsUrl::parse("ws://x/#"), Err(UrlError::Fragment));
        assert_eq!(
            WsUrl::parse("ws://x/a b"),
            Err(UrlError::InvalidCharacter(' '))
        );
        assert_eq!(
            WsUrl::parse("ws://x/\r\n"),
            Err(UrlError::InvalidCharacter('\r'))
        );
        assert_eq!(
            WsUrl::parse("ws://x/é"),
            Err(UrlError::InvalidCharacter('é'))
        );
        assert_eq!(
            WsUrl::parse("ws://x y/"),
            Err(UrlError::InvalidHost("x y".into()))
        );
    }

    #[test]
    fn http_scheme_message_suggests_ws() {
        let err = WsUrl::parse("http://x").unwrap_err();
        assert!(err.to_string().contains("ws://"), "{err}");
        let err = WsUrl::parse("HTTPS://x").unwrap_err();
        assert!(err.to_string().contains("wss://"), "{err}");
    }
}
