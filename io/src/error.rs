//! The one error type of every adapter: transport failures, handshake outcomes, local misuse
//! and abnormal ends.

use std::io;
use std::time::Duration;

use tether::handshake::proxy::ProxyError;
use tether::handshake::{HandshakeError, UrlError};
use tether::{CloseError, Closed, SendErrorKind};

/// Why an operation failed. A normal close is not an error: receiving returns `None` after
/// it. An abnormal end (1006, a heartbeat timeout, a protocol violation) is
/// [`Error::Closed`] with the terminal information.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (accept, a server's TLS, read or write).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// Client side: opening the transport to `addr` failed (the name did not resolve, the
    /// connection was refused, TLS failed, ...).
    #[error("connecting to {addr} failed: {source}")]
    Connect {
        /// The `host:port` connected to: the server, or the proxy when one is used.
        addr: String,
        /// What failed.
        source: io::Error,
    },
    /// The URL is not a valid `ws://` or `wss://` URL.
    #[error("invalid URL: {0}")]
    Url(#[from] UrlError),
    /// Client side: the HTTP proxy did not open a tunnel (it refused with a status such as
    /// 403 or 407, answered something that is not HTTP, or closed the connection). Boxed, as
    /// the other rare and large variants are.
    #[error("{0}")]
    Proxy(Box<ProxyFailure>),
    /// Client side: the server's answer was not a valid upgrade (e.g. a 401 or a 403: see
    /// [`HandshakeError::http_status`]). Boxed, like [`Error::Closed`]'s information: they are
    /// rare and large, and every result of a receive or send carries room for the largest
    /// variant.
    #[error("opening handshake failed: {0}")]
    Handshake(Box<HandshakeError>),
    /// The opening handshake (or a server's TLS handshake) did not complete within
    /// `Config::handshake_timeout`.
    #[error("the opening handshake timed out after {waited:?}")]
    HandshakeTimeout {
        /// How long it waited: the handshake timeout.
        waited: Duration,
    },
    /// The TCP connection (through the proxy's tunnel when one is used, and, for `wss://`,
    /// the TLS session) was not established within `ClientConfig::connect_timeout`.
    #[error("connecting to {addr} timed out after {waited:?}")]
    ConnectTimeout {
        /// The `host:port` of the server.
        addr: String,
        /// How long it waited: the connect timeout.
        waited: Duration,
    },
    /// Server side: the opening request was refused with this HTTP status (by the policy,
    /// the decision function, or because it was not a valid WebSocket request).
    #[error("opening request rejected with {status}")]
    Rejected {
        /// The HTTP status that was sent.
        status: u16,
    },
    /// Local misuse of a send: sending after a close, during a fragmented message, a control
    /// payload over 125 bytes, ...
    #[error("send refused: {0}")]
    Send(SendErrorKind),
    /// Local misuse of `close`: a code that may not be sent, a reason over 123 bytes.
    #[error("close refused: {0}")]
    Close(CloseError),
    /// The connection ended abnormally: the terminal information (1006 when the transport was
    /// lost, a heartbeat or idle timeout, a protocol error, ...).
    #[error("connection closed abnormally: {} {}", .0.code.0, .0.reason)]
    Closed(Box<Closed>),
    /// A blocking receive with a timeout gave up; the connection is unaffected.
    #[error("timed out waiting for a message")]
    Timeout,
}

impl Error {
    /// The error for a connection whose terminal event arrived before it opened, after a
    /// handshake that was given `handshake_timeout`.
    #[must_use]
    pub fn from_handshake_end(closed: Closed, handshake_timeout: Duration) -> Error {
        match closed.cause {
            tether::CloseCause::HandshakeRejected { status } => Error::Rejected { status },
            tether::CloseCause::HandshakeTimeout => Error::HandshakeTimeout {
                waited: handshake_timeout,
            },
            tether::CloseCause::HandshakeFailed(err) => Error::Handshake(Box::new(err)),
            _ => Error::Closed(Box::new(closed)),
        }
    }
}

/// What [`Error::Proxy`] carries: which proxy, the tunnel asked for and what the proxy did.
#[derive(Debug, thiserror::Error)]
#[error("proxy {proxy} did not open a tunnel to {target}: {error}")]
#[non_exhaustive]
pub struct ProxyFailure {
    /// The proxy's `host:port`.
    pub proxy: String,
    /// The `host:port` the tunnel was asked for.
    pub target: String,
    /// What the proxy did.
    pub error: ProxyError,
}

impl ProxyFailure {
    pub(crate) fn new(proxy: String, target: String, error: ProxyError) -> ProxyFailure {
        ProxyFailure {
            proxy,
            target,
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every pending receive, send and handshake future holds room for an `Error`, and an
    /// idle connection holds such futures: the rare, large variants are boxed so it stays
    /// as small as a `UrlError` and a tag.
    #[test]
    fn the_error_stays_small() {
        assert!(
            std::mem::size_of::<super::Error>() <= 40,
            "{} bytes",
            std::mem::size_of::<super::Error>()
        );
    }
}
