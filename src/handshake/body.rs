//! How much of a refusal's body a client waits for, and reading it (RFC 9112 §6).
//!
//! When a server refuses the handshake, its body usually says why. The client keeps a bounded
//! prefix of it for the error, and must know when to stop waiting: at the end given by
//! `Content-Length`, at the last chunk, at [`MAX_BODY`] bytes, or when the connection closes.

use alloc::vec::Vec;

use super::headers::Headers;
use super::tokens::{list_elements, trim_ows};

/// The most body bytes kept in a [`HandshakeError::Rejected`](super::HandshakeError::Rejected).
pub(crate) const MAX_BODY: usize = 1024;

/// The most raw bytes read from a chunked body (chunk framing included) to find [`MAX_BODY`]
/// bytes of content.
const MAX_CHUNKED: usize = 4 * MAX_BODY;

/// How a refusal's body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body: 1xx, 204 and 304 responses.
    Empty,
    /// `Content-Length` bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the connection closes.
    UntilClose,
}

impl Framing {
    /// The framing of a response with `status` and `headers`. `Transfer-Encoding` overrides
    /// `Content-Length` (RFC 9112 §6.3); an invalid `Content-Length` reads until close.
    pub(crate) fn of(status: u16, headers: &Headers) -> Self {
        if status < 200 || status == 204 || status == 304 {
            return Framing::Empty;
        }
        if let Some(te) = headers.get("transfer-encoding") {
            let last = list_elements(te).last().unwrap_or_default();
            return if last.eq_ignore_ascii_case("chunked") {
                Framing::Chunked
            } else {
                Framing::UntilClose
            };
        }
        match headers
            .get("content-length")
            .map(|v| trim_ows(v).parse::<usize>())
        {
            Some(Ok(len)) => Framing::Length(len),
            _ => Framing::UntilClose,
        }
    }

    /// Whether `body`, the bytes received after the head so far, holds all the client will
    /// keep. Looks at a constant number of bytes, so calling it after every read stays linear.
    pub(crate) fn is_complete(self, body: &[u8]) -> bool {
        match self {
            Framing::Empty => true,
            Framing::Length(len) => body.len() >= len.min(MAX_BODY),
            Framing::Chunked => {
                body.len() >= MAX_CHUNKED
                    || body.starts_with(b"0\r\n\r\n")
                    || body.ends_with(b"\r\n0\r\n\r\n")
            }
            Framing::UntilClose => body.len() >= MAX_BODY,
        }
    }

    /// The body prefix to report, at most [`MAX_BODY`] bytes: de-chunked when chunked (the raw
    /// bytes if the chunking is malformed).
    pub(crate) fn prefix(self, body: &[u8]) -> Vec<u8> {
        let raw = match self {
            Framing::Empty => &[][..],
            Framing::Length(len) => &body[..body.len().min(len)],
            Framing::Chunked => return dechunk(&body[..body.len().min(MAX_CHUNKED)]),
            Framing::UntilClose => body,
        };
        raw[..raw.len().min(MAX_BODY)].to_vec()
    }
}

/// The content of a chunked body (RFC 9112 §7.1), up to [`MAX_BODY`] bytes; what arrived of an
/// unfinished chunk counts. Malformed chunking gives back the raw bytes.
fn dechunk(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = raw;
    while out.len() < MAX_BODY {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let line = &rest[..line_end];
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let Some(size) = parse_hex(size) else {
            return raw[..raw.len().min(MAX_BODY)].to_vec();
        };
        rest = &rest[line_end + 2..];
        if size == 0 {
            break;
        }
        let take = size.min(rest.len());
        out.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        if take < size {
            break;
        }
        match rest.strip_prefix(b"\r\n") {
            Some(r) => rest = r,
            None => break,
        }
    }
    out.truncate(MAX_BODY);
    out
}

/// A chunk size: hexadecimal digits, surrounding whitespace allowed, at most 8 of them.
fn parse_hex(digits: &[u8]) -> Option<usize> {
    let digits = core::str::from_utf8(digits).ok()?;
    let digits = trim_ows(digits);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    usize::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        Headers::from_pairs(pairs.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    #[test]
    fn framing() {
        assert_eq!(
            Framing::of(204, &headers(&[("Content-Length", "5")])),
            Framing::Empty
        );
        assert_eq!(Framing::of(100, &headers(&[])), Framing::Empty);
        assert_eq!(
            Framing::of(401, &headers(&[("Content-Length", " 5 ")])),
            Framing::Length(5)
        );
        assert_eq!(
            Framing::of(401, &headers(&[("Content-Length", "x")])),
            Framing::UntilClose
        );
        assert_eq!(
            Framing::of(
                401,
                &headers(&[
                    ("Content-Length", "5"),
                    ("Transfer-Encoding", "gzip, chunked")
                ])
            ),
            Framing::Chunked
        );
        assert_eq!(
            Framing::of(401, &headers(&[("Transfer-Encoding", "gzip")])),
            Framing::UntilClose
        );
        assert_eq!(Framing::of(401, &headers(&[])), Framing::UntilClose);
    }

    #[test]
    fn completion() {
        assert!(Framing::Length(3).is_complete(b"abc"));
        assert!(!Framing::Length(3).is_complete(b"ab"));
        assert!(Framing::Length(1 << 30).is_complete(&[0; MAX_BODY]));
        assert!(Framing::Chunked.is_complete(b"0\r\n\r\n"));
        assert!(Framing::Chunked.is_complete(b"3\r\nabc\r\n0\r\n\r\n"));
        assert!(!Framing::Chunked.is_complete(b"3\r\nabc\r\n"));
        assert!(!Framing::UntilClose.is_complete(b"abc"));
    }

    #[test]
    fn dechunking() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"), b"abcde");
        assert_eq!(dechunk(b"3\r\nabc\r\n5\r\nde"), b"abcde");
        assert_eq!(dechunk(b"zz\r\nabc"), b"zz\r\nabc");
        assert_eq!(dechunk(b"FFFFFFFFFFFF\r\nabc"), b"FFFFFFFFFFFF\r\nabc");
        let big = [b'a'; 3000];
        let mut raw = b"BB8\r\n".to_vec();
        raw.extend_from_slice(&big);
        assert_eq!(dechunk(&raw).len(), MAX_BODY);
    }

    #[test]
    fn prefixes() {
        assert_eq!(Framing::Length(2).prefix(b"abcd"), b"ab");
        assert_eq!(Framing::UntilClose.prefix(&[1; 5000]).len(), MAX_BODY);
        assert_eq!(Framing::Empty.prefix(b"abc"), b"");
    }
}
