//! An opening request a server received and validated (RFC 6455 §4.2.1).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;

use super::headers::Headers;
use super::reject::Reject;
use super::validate::{HttpVersion, RequestInfo};

/// A valid opening request, as the server received it (RFC 6455 §4.2.1), or, when the
/// [`ServerPolicy`](super::ServerPolicy) passes them on
/// ([`pass_http_requests`](super::ServerPolicy::pass_http_requests)), any other HTTP request
/// (a health check, a page): then [`is_websocket`](Request::is_websocket) is false and
/// [`refusal`](Request::refusal) is the answer the core would have sent.
///
/// The application (or a [`ServerPolicy`](super::ServerPolicy)) reads it to decide between
/// [`Accept`](super::Accept) and [`Reject`](super::Reject).
///
/// Cloning it is cheap: the parts are shared (the connection keeps the request it hands to
/// the application until the request is answered).
#[derive(Clone, PartialEq, Eq)]
pub struct Request(Arc<Parts>);

#[derive(Debug, PartialEq, Eq)]
struct Parts {
    method: String,
    target: String,
    version: HttpVersion,
    headers: Headers,
    info: RequestInfo,
    /// Why this is not a valid opening request, for a request passed on as plain HTTP.
    refusal: Option<Box<Reject>>,
}

/// Shows the parts, as if they were the request's own fields.
impl core::fmt::Debug for Request {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let p = &*self.0;
        f.debug_struct("Request")
            .field("method", &p.method)
            .field("target", &p.target)
            .field("version", &p.version)
            .field("headers", &p.headers)
            .field("info", &p.info)
            .field("refusal", &p.refusal)
            .finish()
    }
}

impl Request {
    /// A request with what the handshake rules found: `Ok` for a valid opening request, `Err`
    /// with the answer they call for when it is HTTP but not one (a plain request).
    pub(crate) fn new(
        method: String,
        target: String,
        version: HttpVersion,
        headers: Headers,
        info: Result<RequestInfo, Reject>,
    ) -> Self {
        let (info, refusal) = match info {
            Ok(info) => (info, None),
            Err(refusal) => (RequestInfo::default(), Some(Box::new(refusal))),
        };
        Request(Arc::new(Parts {
            method,
            target,
            version,
            headers,
            info,
            refusal,
        }))
    }

    /// The method: `GET` for an HTTP/1.1 upgrade.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.0.method
    }

    /// The request target as sent: the path and the query, if any (RFC 6455 §3, the
    /// "resource name").
    #[must_use]
    pub fn target(&self) -> &str {
        &self.0.target
    }

    /// The path: the target up to `?`.
    #[must_use]
    pub fn path(&self) -> &str {
        self.0
            .target
            .split_once('?')
            .map_or(&self.0.target, |(p, _)| p)
    }

    /// The query: the target after the first `?`, if there is one.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.0.target.split_once('?').map(|(_, q)| q)
    }

    /// The HTTP version.
    #[must_use]
    pub fn version(&self) -> HttpVersion {
        self.0.version
    }

    /// Every header field, in order.
    #[must_use]
    pub fn headers(&self) -> &Headers {
        &self.0.headers
    }

    /// The value of the first header field named `name` (any case), if it is UTF-8.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.headers.get(name)
    }

    /// The `Origin` header (RFC 6455 §4.2.1 item 7, §10.2): browsers always send it.
    #[must_use]
    pub fn origin(&self) -> Option<&str> {
        self.0.info.origin.as_deref()
    }

    /// The subprotocols the client offered, in its order of preference (RFC 6455 §4.2.1,
    /// item 8).
    #[must_use]
    pub fn subprotocols(&self) -> &[String] {
        &self.0.info.subprotocols
    }

    /// The extensions the client offered, parameters included (RFC 6455 §4.2.1, item 9).
    #[must_use]
    pub fn extensions(&self) -> &[String] {
        &self.0.info.extensions
    }

    /// The `Sec-WebSocket-Key`, as sent (RFC 6455 §4.2.1, item 5).
    #[must_use]
    pub fn key(&self) -> &str {
        self.0.info.key.as_deref().unwrap_or_default()
    }

    /// Everything the handshake rules extracted.
    #[must_use]
    pub fn info(&self) -> &RequestInfo {
        &self.0.info
    }

    /// The first subprotocol of `supported` (the server's order of preference) that the client
    /// offered, compared exactly (RFC 6455 §4.2.2 item 5.4 lets the server pick).
    #[must_use]
    pub fn choose_subprotocol<S: AsRef<str>>(&self, supported: &[S]) -> Option<&str> {
        supported.iter().find_map(|s| {
            self.0
                .info
                .subprotocols
                .iter()
                .find(|offered| offered.as_str() == s.as_ref())
                .map(String::as_str)
        })
    }

    /// Whether this is a valid WebSocket opening request. A request passed on as plain HTTP
    /// ([`ServerPolicy::pass_http_requests`](super::ServerPolicy::pass_http_requests)) is not:
    /// it can only be answered with a [`Reject`] (any status, a health check's 200 included).
    #[must_use]
    pub fn is_websocket(&self) -> bool {
        self.0.refusal.is_none()
    }

    /// For a request that is not a valid opening request, the answer the handshake rules
    /// call for (426 for a plain `GET`, 400 for a broken upgrade, 505 for HTTP/1.0, ...), with
    /// the reason.
    #[must_use]
    pub fn refusal(&self) -> Option<&Reject> {
        self.0.refusal.as_deref()
    }

    /// The request head as received: the request line and the header fields, through the
    /// empty line that ends them.
    #[must_use]
    pub fn head(&self) -> &[u8] {
        self.0.headers.buf()
    }

    /// Parses a request head (as [`head`](Request::head) returns it, or as read from a
    /// socket) into a request, validated as a server's handshake validates it; a head that
    /// is HTTP but not an opening request gives a plain request (see
    /// [`is_websocket`](Request::is_websocket)). A server that keeps requests keeps their
    /// heads, which are smaller, and parses them again when asked.
    pub fn parse(head: &[u8]) -> Result<Request, Reject> {
        let limits = super::HandshakeLimits::new(head.len().max(1), head.len() / 2 + 1);
        let mut handshake = super::ServerHandshake::new(&limits);
        handshake.pass_http_requests(true);
        let mut input = bytes::BytesMut::from(head);
        match handshake.handle(&mut input)? {
            Some(request) => Ok(request),
            None => Err(Reject::protocol(400, "malformed request: incomplete head")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connection hands the application a clone of the request it keeps: a clone shares
    /// the parts instead of copying every string.
    #[test]
    fn a_clone_shares_the_request() {
        let head = b"GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n";
        let a = Request::parse(head).unwrap();
        let b = a.clone();
        assert_eq!(a, b);
        assert!(core::ptr::eq(a.target(), b.target()));
        assert!(core::ptr::eq(a.key(), b.key()));
        assert!(core::ptr::eq(a.subprotocols(), b.subprotocols()));
        assert_eq!(b.path(), "/chat");
        assert_eq!(b.subprotocols(), ["chat", "superchat"]);
        assert!(alloc::format!("{b:?}").starts_with("Request { method: \"GET\""));
    }
}
