//! The server's successful answer, as the client received it (RFC 6455 §4.1).

use alloc::string::String;

use super::headers::Headers;
use super::validate::Negotiated;

/// A valid `101 Switching Protocols` response (RFC 6455 §4.1, §4.2.2): the connection is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Headers,
    negotiated: Negotiated,
}

impl Response {
    pub(crate) fn new(status: u16, headers: Headers, negotiated: Negotiated) -> Self {
        Response {
            status,
            headers,
            negotiated,
        }
    }

    /// The status code: 101.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Every header field, in order (`Set-Cookie` and the like included).
    #[must_use]
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The value of the first header field named `name` (any case), if it is UTF-8.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The subprotocol the server selected, one of those offered (RFC 6455 §4.1, item 6).
    #[must_use]
    pub fn subprotocol(&self) -> Option<&str> {
        self.negotiated.subprotocol.as_deref()
    }

    /// The extensions the server accepted, parameters included (RFC 6455 §4.1, item 5).
    #[must_use]
    pub fn extensions(&self) -> &[String] {
        &self.negotiated.extensions
    }

    /// The negotiated subprotocol and extensions.
    #[must_use]
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The negotiated subprotocol and extensions, taken out.
    #[must_use]
    pub fn into_negotiated(self) -> Negotiated {
        self.negotiated
    }
}
