//! The server side of the opening handshake over HTTP/1.1: reading the client's request
//! (RFC 6455 §4.2.1).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use bytes::BytesMut;

use super::head::{HeadScanner, ScanError, describe};
use super::headers::{Headers, range_in};
use super::limits::HandshakeLimits;
use super::reject::Reject;
use super::request::Request;
use super::validate::{HttpVersion, validate_request};

/// Reads an opening request from the start of a connection's input, incrementally.
///
/// Feed it the whole input buffer after every read; it looks only at bytes it has not seen, so
/// a request arriving one byte at a time costs time linear in its length, and a head over the
/// limits is refused as soon as the excess arrives. It parses once, when the head is complete,
/// and validates with [`validate_request`](super::validate_request).
///
/// This is the machinery behind a server `Connection`; it is public for fuzzing.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct ServerHandshake {
    scanner: HeadScanner,
    limits: HandshakeLimits,
    finished: bool,
    /// Hand on requests that are HTTP but not an opening request, instead of refusing them.
    pass_http: bool,
}

impl ServerHandshake {
    /// A handshake waiting for its request.
    #[must_use]
    pub fn new(limits: &HandshakeLimits) -> Self {
        ServerHandshake {
            scanner: HeadScanner::new(limits),
            limits: *limits,
            finished: false,
            pass_http: false,
        }
    }

    /// Whether a request that is well-formed HTTP/1.x but not a valid opening request is
    /// returned (as a [`Request`] whose [`refusal`](Request::refusal) is the answer the rules
    /// call for) rather than refused. Default: `false`.
    pub fn pass_http_requests(&mut self, pass: bool) {
        self.pass_http = pass;
    }

    /// Looks at what has arrived. `input` holds everything received and not yet consumed; it
    /// may only grow between calls.
    ///
    /// - `Ok(None)`: the head is not complete; read more.
    /// - `Ok(Some(request))`: the head was valid. It has been removed from `input`; any bytes
    ///   after it (frames the client sent right away) are still there.
    /// - `Err(reject)`: the request breaks RFC 6455 §4.2.1 or the limits (431 for a head over
    ///   [`HandshakeLimits`], 505 for a version other than HTTP/1.1, 400 for anything that is
    ///   not HTTP). Send it with [`write_reject`](super::write_reject) and close. `input` is
    ///   left as it was.
    ///
    /// Once it has returned a request or an error, the handshake is over: further calls return
    /// `Ok(None)` and touch nothing.
    pub fn handle(&mut self, input: &mut BytesMut) -> Result<Option<Request>, Reject> {
        if self.finished {
            return Ok(None);
        }
        let scanned = self.scanner.scan(input);
        if !matches!(scanned, Ok(None)) {
            self.finished = true;
        }
        let head_len = match scanned {
            Ok(Some(len)) => len,
            Ok(None) => return Ok(None),
            Err(ScanError::TooLarge) => {
                return Err(Reject::protocol(
                    431,
                    &alloc::format!("request head exceeds {} bytes", self.limits.max_head_size),
                ));
            }
            Err(ScanError::TooManyHeaders) => return Err(self.too_many_headers()),
        };
        let parsed = self.parse(&input[..head_len])?;
        let info = {
            let head = &input[..parsed.len];
            let fields = parsed.fields.iter().map(|(name, value)| {
                let name = head.get(name.clone()).unwrap_or_default();
                (
                    core::str::from_utf8(name).unwrap_or_default(),
                    head.get(value.clone()).unwrap_or_default(),
                )
            });
            validate_request(&parsed.method, parsed.version, fields)
        };
        // A request that is not a valid opening request is refused, or passed on as plain
        // HTTP with the refusal it would have had.
        let info = match info {
            Err(refusal) if !self.pass_http => return Err(refusal),
            info => info,
        };
        let head = input.split_to(parsed.len).freeze();
        let headers = Headers::from_ranges(head, parsed.fields);
        let (method, target, version) = (parsed.method, parsed.target, parsed.version);
        Ok(Some(Request::new(method, target, version, headers, info)))
    }

    /// Parses a complete head.
    fn parse(&self, head: &[u8]) -> Result<ParsedHead, Reject> {
        let mut slots = vec![httparse::EMPTY_HEADER; self.scanner.field_lines()];
        let mut request = httparse::Request::new(&mut slots);
        let len = match request.parse(head) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                return Err(Reject::protocol(400, "malformed request: incomplete head"));
            }
            Err(httparse::Error::Version) if names_http_version(head) => {
                return Err(Reject::protocol(505, "WebSocket requires HTTP/1.1"));
            }
            Err(httparse::Error::TooManyHeaders) => return Err(self.too_many_headers()),
            Err(e) => {
                return Err(Reject::protocol(
                    400,
                    &alloc::format!("malformed request: {}", describe(e)),
                ));
            }
        };
        let method = String::from(request.method.unwrap_or_default());
        let target = String::from(request.path.unwrap_or_default());
        let version = match request.version {
            Some(0) => HttpVersion::Http10,
            _ => HttpVersion::Http11,
        };
        if !target.starts_with('/') {
            return Err(Reject::protocol(
                400,
                "request target must be a path (origin-form)",
            ));
        }
        let fields = request
            .headers
            .iter()
            .map(|h| (range_in(head, h.name.as_bytes()), range_in(head, h.value)))
            .collect();
        Ok(ParsedHead {
            len,
            method,
            target,
            version,
            fields,
        })
    }

    fn too_many_headers(&self) -> Reject {
        Reject::protocol(
            431,
            &alloc::format!(
                "request has more than {} header fields",
                self.limits.max_headers
            ),
        )
    }
}

/// A request head httparse accepted: its length, start line and the byte ranges of its fields.
struct ParsedHead {
    len: usize,
    method: String,
    target: String,
    version: HttpVersion,
    fields: Vec<(Range<usize>, Range<usize>)>,
}

/// Whether the request line of `head` ends in a well-formed `HTTP/x.y` (or `HTTP/x`) that
/// httparse refused: a version we do not speak deserves 505 rather than 400 (RFC 9110 §15.6.6).
fn names_http_version(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    matches!(
        version,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit()
    ) || matches!(version, [b'H', b'T', b'T', b'P', b'/', major] if major.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_detection() {
        assert!(names_http_version(b"GET / HTTP/2.0\r\n\r\n"));
        assert!(names_http_version(b"GET / HTTP/2\r\n\r\n"));
        assert!(names_http_version(b"GET / HTTP/0.9\r\n\r\n"));
        assert!(!names_http_version(b"GET / HTTX/1.1\r\n\r\n"));
        assert!(!names_http_version(b"GET /\r\n\r\n"));
    }
}
