//! An opening request a server received and validated (RFC 6455 §4.2.1).

use alloc::string::String;

use super::headers::Headers;
use super::validate::{HttpVersion, RequestInfo};

/// A valid opening request, as the server received it (RFC 6455 §4.2.1).
///
/// The application (or a [`ServerPolicy`](super::ServerPolicy)) reads it to decide between
/// [`Accept`](super::Accept) and [`Reject`](super::Reject).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    method: String,
    target: String,
    version: HttpVersion,
    headers: Headers,
    info: RequestInfo,
}

impl Request {
    pub(crate) fn new(
        method: String,
        target: String,
        version: HttpVersion,
        headers: Headers,
        info: RequestInfo,
    ) -> Self {
        Request {
            method,
            target,
            version,
            headers,
            info,
        }
    }

    /// The method: `GET` for an HTTP/1.1 upgrade.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as sent: the path and the query, if any (RFC 6455 §3, the
    /// "resource name").
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path: the target up to `?`.
    #[must_use]
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query: the target after the first `?`, if there is one.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The HTTP version.
    #[must_use]
    pub fn version(&self) -> HttpVersion {
        self.version
    }

    /// Every header field, in order.
    #[must_use]
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The value of the first header field named `name` (any case), if it is UTF-8.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The `Origin` header (RFC 6455 §4.2.1 item 7, §10.2): browsers always send it.
    #[must_use]
    pub fn origin(&self) -> Option<&str> {
        self.info.origin.as_deref()
    }

    /// The subprotocols the client offered, in its order of preference (RFC 6455 §4.2.1,
    /// item 8).
    #[must_use]
    pub fn subprotocols(&self) -> &[String] {
        &self.info.subprotocols
    }

    /// The extensions the client offered, parameters included (RFC 6455 §4.2.1, item 9).
    #[must_use]
    pub fn extensions(&self) -> &[String] {
        &self.info.extensions
    }

    /// The `Sec-WebSocket-Key`, as sent (RFC 6455 §4.2.1, item 5).
    #[must_use]
    pub fn key(&self) -> &str {
        self.info.key.as_deref().unwrap_or_default()
    }

    /// Everything the handshake rules extracted.
    #[must_use]
    pub fn info(&self) -> &RequestInfo {
        &self.info
    }

    /// The first subprotocol of `supported` (the server's order of preference) that the client
    /// offered, compared exactly (RFC 6455 §4.2.2 item 5.4 lets the server pick).
    #[must_use]
    pub fn choose_subprotocol<S: AsRef<str>>(&self, supported: &[S]) -> Option<&str> {
        supported.iter().find_map(|s| {
            self.info
                .subprotocols
                .iter()
                .find(|offered| offered.as_str() == s.as_ref())
                .map(String::as_str)
        })
    }
}
