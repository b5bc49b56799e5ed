//! A server's refusal of a handshake: an HTTP error response (RFC 6455 §4.2.2).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use bytes::{BufMut, Bytes, BytesMut};

use super::status::reason_or_class;
use super::tokens::check_field;

/// Header fields [`write_reject`] writes itself; a [`Reject`] header with one of these names is
/// not written.
const RESERVED: &[&str] = &["Connection", "Content-Length", "Transfer-Encoding"];

/// An HTTP response that refuses a WebSocket handshake, and the reason to log.
///
/// Built by the server handshake when a request breaks RFC 6455 §4.2.1 (with the status the
/// RFC calls for), by [`ServerPolicy`](super::ServerPolicy) checks, or by the application:
///
/// ```
/// use tether::handshake::Reject;
/// let reject = Reject::new(401)
///     .reason("missing token")
///     .header("WWW-Authenticate", "Bearer");
/// assert_eq!(reject.status, 401);
/// ```
///
/// [`write_reject`] writes it. Header fields that would corrupt the response (a name that is not
/// a token, a value with CR, LF or NUL) or that it writes itself (`Connection`,
/// `Content-Length`, `Transfer-Encoding`) are skipped, so a value taken from a request cannot
/// inject fields.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("handshake rejected with {status} {}{}", reason_or_class(*.status), reason_suffix(*.status, .reason))]
#[non_exhaustive]
pub struct Reject {
    /// The status code: 3xx, 4xx or 5xx. Anything else (including 304) is written as 500.
    pub status: u16,
    /// Why, for logs and the connection's terminal event. Not sent unless it is also the body.
    pub reason: String,
    /// Extra header fields, in order (`Allow`, `WWW-Authenticate`, `Location`, ...).
    pub headers: Vec<(String, String)>,
    /// The response body, sent with a `Content-Length`.
    pub body: Bytes,
}

impl Reject {
    /// A refusal with `status`, its standard reason phrase as the reason, no extra header and
    /// an empty body.
    #[must_use]
    pub fn new(status: u16) -> Self {
        Reject {
            status,
            reason: reason_or_class(status).into(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A refusal of a request that breaks the protocol: `reason` is logged and also sent as a
    /// plain-text body, so a person testing with a command-line client sees what went wrong.
    pub(crate) fn protocol(status: u16, reason: &str) -> Self {
        let mut body = BytesMut::with_capacity(reason.len() + 1);
        body.put_slice(reason.as_bytes());
        body.put_u8(b'\n');
        Reject::new(status)
            .reason(reason)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body.freeze())
    }

    /// Sets the reason to log.
    #[must_use]
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Adds a header field (repeatable; order is kept).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The status [`write_reject`] sends: [`Reject::status`] if it is a 2xx, 3xx (but 304),
    /// 4xx or 5xx, else 500. A 2xx suits the answer to a plain HTTP request (a health check
    /// passed on by [`ServerPolicy::pass_http_requests`](super::ServerPolicy::pass_http_requests));
    /// a WebSocket client fails on anything but 101 whatever it is.
    #[must_use]
    pub fn effective_status(&self) -> u16 {
        match self.status {
            304 => 500,
            200..=599 => self.status,
            _ => 500,
        }
    }
}

/// Writes `reject` as an HTTP/1.1 response: the status line with the standard reason phrase,
/// `Content-Length`, `Connection: close` (plus `Upgrade` when an `Upgrade` field is sent, as
/// RFC 9110 §7.8 requires, e.g. in a 426), the extra header fields that are valid, then the
/// body. The connection should be closed once it is written.
pub fn write_reject(reject: &Reject, out: &mut BytesMut) {
    let status = reject.effective_status();
    let valid = || {
        reject
            .headers
            .iter()
            .filter(|(n, v)| check_field(n, v, RESERVED).is_ok())
    };
    let upgrade = valid().any(|(n, _)| n.eq_ignore_ascii_case("Upgrade"));
    put_line(
        out,
        &[
            "HTTP/1.1 ",
            &status.to_string(),
            " ",
            reason_or_class(status),
        ],
    );
    // A 204 has no content and no `Content-Length` (RFC 9110 §8.6, §15.3.5); a 205 has none
    // either (§15.3.6).
    let body: &[u8] = if matches!(status, 204 | 205) {
        &[]
    } else {
        &reject.body
    };
    if status != 204 {
        put_line(out, &["Content-Length: ", &body.len().to_string()]);
    }
    put_line(
        out,
        &[
            "Connection: ",
            if upgrade { "Upgrade, close" } else { "close" },
        ],
    );
    for (name, value) in valid() {
        put_line(out, &[name, ": ", value]);
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
}

/// `": reason"`, unless the reason only repeats the status's phrase.
fn reason_suffix(status: u16, reason: &str) -> String {
    if reason.is_empty() || reason == reason_or_class(status) {
        String::new()
    } else {
        alloc::format!(": {reason}")
    }
}

/// Writes the concatenation of `parts` followed by CRLF.
pub(crate) fn put_line(out: &mut BytesMut, parts: &[&str]) {
    for part in parts {
        out.put_slice(part.as_bytes());
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(reject: &Reject) -> String {
        let mut out = BytesMut::new();
        write_reject(reject, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn plain() {
        let r = Reject::new(403);
        assert_eq!(r.reason, "Forbidden");
        assert_eq!(
            written(&r),
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(r.to_string(), "handshake rejected with 403 Forbidden");
        let r = r.reason("origin not allowed");
        assert_eq!(
            r.to_string(),
            "handshake rejected with 403 Forbidden: origin not allowed"
        );
    }

    #[test]
    fn headers_and_body() {
        let r = Reject::new(401)
            .reason("bad token")
            .header("WWW-Authenticate", "Bearer")
            .header("X-Evil", "a\r\nSet-Cookie: x=1")
            .header("Content-Length", "99")
            .header("Bad Name", "1")
            .body("nope");
        assert_eq!(
            written(&r),
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\nConnection: close\r\n\
             WWW-Authenticate: Bearer\r\n\r\nnope"
        );
    }

    #[test]
    fn no_content_statuses_send_no_body() {
        let r = Reject::new(204).body("ignored");
        assert_eq!(
            written(&r),
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
        );
        let r = Reject::new(205).body("ignored");
        assert_eq!(
            written(&r),
            "HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let r = Reject::new(200).body("ok\n");
        assert_eq!(
            written(&r),
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
        );
    }

    #[test]
    fn upgrade_header_adds_the_connection_option() {
        let r = Reject::new(426).header("Upgrade", "websocket");
        let text = written(&r);
        assert!(text.contains("Connection: Upgrade, close\r\n"), "{text}");
    }

    #[test]
    fn odd_statuses_become_500() {
        for status in [0, 101, 199, 304, 600, 999] {
            assert_eq!(Reject::new(status).effective_status(), 500);
        }
        for status in [200, 204, 301, 400, 599] {
            assert_eq!(Reject::new(status).effective_status(), status);
        }
    }
}
