//! Why a handshake failed (client side) and why a request or response could not be built.

use alloc::string::String;

use bytes::Bytes;

use super::headers::Headers;

/// Why the client's opening handshake failed (RFC 6455 §4.1). Each failure of the server's
/// response has its own variant; [`HandshakeError::http_status`] gives the server's status
/// when it answered with something other than an upgrade.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The server answered with a status other than 101 (or, for an HTTP/2 extended CONNECT,
    /// other than 2xx) and not a redirect: RFC 6455 §4.1 says to handle it per HTTP, which for
    /// a WebSocket client means failing.
    #[error("server rejected the handshake: {status} {reason}")]
    Rejected {
        /// The status code.
        status: u16,
        /// The server's reason phrase, or the standard one if it sent none.
        reason: String,
        /// The response's header fields.
        headers: Headers,
        /// The start of the response body (at most 1 KiB, de-chunked when the response is
        /// chunked and well formed), to show what the server said.
        body: Bytes,
    },
    /// The server redirected the request (3xx). Following it means opening a new connection,
    /// which is the caller's choice (RFC 6455 §4.1 allows, but does not require, it).
    #[error("server redirected the handshake with {status}{}", location_suffix(.location))]
    Redirect {
        /// The status code.
        status: u16,
        /// The `Location` header, if present and UTF-8.
        location: Option<String>,
    },
    /// A 101 response in a version other than HTTP/1.1 (RFC 6455 §4.1).
    #[error("101 response is not HTTP/1.1")]
    UnsupportedVersion,
    /// A 101 response without an `Upgrade` header (RFC 6455 §4.1, item 2).
    #[error("response has no Upgrade header")]
    MissingUpgrade,
    /// An `Upgrade` header that does not name `websocket` (RFC 6455 §4.1, item 2).
    #[error("response Upgrade header is {0:?}, not websocket")]
    InvalidUpgrade(String),
    /// A 101 response without a `Connection` header (RFC 6455 §4.1, item 3).
    #[error("response has no Connection header")]
    MissingConnection,
    /// A `Connection` header without the `upgrade` option (RFC 6455 §4.1, item 3).
    #[error("response Connection header {0:?} lacks the upgrade option")]
    InvalidConnection(String),
    /// A 101 response without a `Sec-WebSocket-Accept` header (RFC 6455 §4.1, item 4).
    #[error("response has no Sec-WebSocket-Accept header")]
    MissingAccept,
    /// A `Sec-WebSocket-Accept` that is not derived from our key: the server is not speaking
    /// WebSocket, or a proxy replayed a response (RFC 6455 §4.1, item 4).
    #[error("response Sec-WebSocket-Accept {0:?} does not match our key")]
    InvalidAccept(String),
    /// The server selected a subprotocol we did not offer (RFC 6455 §4.1, item 6).
    #[error("server selected subprotocol {0:?}, which we did not offer")]
    UnofferedSubprotocol(String),
    /// The server sent `Sec-WebSocket-Protocol` although we offered no subprotocol
    /// (RFC 6455 §4.1, item 6).
    #[error("server sent Sec-WebSocket-Protocol {0:?} but we offered no subprotocol")]
    UnexpectedSubprotocol(String),
    /// The server selected more than one subprotocol (RFC 6455 §4.2.2: it selects one).
    #[error("server selected more than one subprotocol: {0:?}")]
    MultipleSubprotocols(String),
    /// The server accepted an extension we did not offer (RFC 6455 §4.1, item 5).
    #[error("server accepted extension {0:?}, which we did not offer")]
    UnofferedExtension(String),
    /// The server's permessage-deflate answer is invalid (RFC 7692 §5.1: the client fails the
    /// connection).
    #[error("invalid permessage-deflate response: {0}")]
    Deflate(crate::deflate::NegotiationError),
    /// The server's `tether-resume` answer cannot be acted on (see [`crate::resume`]).
    #[error("invalid tether-resume answer: {0}")]
    Resume(String),
    /// The response head is over [`HandshakeLimits::max_head_size`](super::HandshakeLimits).
    #[error("response head exceeds {limit} bytes")]
    HeadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The response has more than [`HandshakeLimits::max_headers`](super::HandshakeLimits)
    /// header fields.
    #[error("response has more than {limit} header fields")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// The response is not valid HTTP/1.x (RFC 9112).
    #[error("malformed HTTP response: {0}")]
    MalformedHttp(&'static str),
    /// The connection ended before the response head was complete.
    #[error("connection closed during the handshake")]
    UnexpectedEof,
    /// The handshake took longer than the configured deadline.
    #[error("handshake timed out")]
    Timeout,
}

fn location_suffix(location: &Option<String>) -> String {
    match location {
        Some(l) => alloc::format!(" to {l}"),
        None => String::new(),
    }
}

impl HandshakeError {
    /// The status the server answered with, when it answered with something other than an
    /// upgrade ([`HandshakeError::Rejected`] and [`HandshakeError::Redirect`]).
    #[must_use]
    pub fn http_status(&self) -> Option<u16> {
        match self {
            HandshakeError::Rejected { status, .. } | HandshakeError::Redirect { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// Why a header field, subprotocol or extension could not be added to a handshake message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// A header name that is not an HTTP token (RFC 9110 §5.1).
    #[error("invalid header name {0:?}")]
    InvalidName(String),
    /// A header value with CR, LF, NUL or another control character (RFC 9110 §5.5): it
    /// would let the value inject fields.
    #[error("invalid value for header {0:?}")]
    InvalidValue(String),
    /// A header the handshake writes itself (`Host`, `Upgrade`, `Connection`, the
    /// `Sec-WebSocket-*` fields, `Content-Length`, `Transfer-Encoding`). Subprotocols and
    /// extensions have their own methods.
    #[error("header {0:?} is set by the handshake itself")]
    Reserved(String),
    /// A subprotocol name that is not a token (RFC 6455 §4.1).
    #[error("invalid subprotocol {0:?}: it must be a non-empty HTTP token")]
    InvalidSubprotocol(String),
    /// The same subprotocol offered twice (RFC 6455 §4.1: the elements are unique).
    #[error("subprotocol {0:?} offered twice")]
    DuplicateSubprotocol(String),
    /// An extension offer that does not start with a token or has characters a header value
    /// cannot (RFC 6455 §9.1).
    #[error("invalid extension offer {0:?}")]
    InvalidExtension(String),
}

/// Why the server could not accept a request as asked. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// The subprotocol is not one the client offered (RFC 6455 §4.2.2: the server selects one
    /// of the client's values).
    #[error("subprotocol {0:?} was not offered by the client")]
    UnofferedSubprotocol(String),
    /// The extension is not one the client offered (RFC 6455 §9.1).
    #[error("extension {0:?} was not offered by the client")]
    UnofferedExtension(String),
    /// The extension does not start with a token or has characters a header value cannot.
    #[error("invalid extension {0:?}")]
    InvalidExtension(String),
    /// `accept` or `reject` was called when no opening request is waiting for an answer (the
    /// connection is a client, or already answered, or ended).
    #[error("no opening request is waiting for an answer")]
    NotAwaiting,
    /// The request is HTTP but not a valid opening request (see
    /// [`Request::is_websocket`](super::Request::is_websocket)): it can only be answered with
    /// a [`Reject`](super::Reject). The status is that of its
    /// [`refusal`](super::Request::refusal).
    #[error("the request is not a WebSocket opening request (the handshake rules answer {0})")]
    NotWebSocket(u16),
}
